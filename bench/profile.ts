import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

/** The functions and files where a V8 .cpuprofile spent the most time of their own, as markdown. */
export function summarizeProfile(file: string, root: string, top = 15): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; startTime: number; endTime: number };
  const totalHits = profile.nodes.reduce((sum, node) => sum + (node.hitCount ?? 0), 0);
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url ? relative(root, url.replace(/^file:\/\//, '')) : '(native)';
    const name = `${functionName || '(anonymous)'} ${url ? `${where}:${lineNumber + 1}` : ''}`.trim();
    byFunction.set(name, (byFunction.get(name) ?? 0) + hits);
    byFile.set(where, (byFile.get(where) ?? 0) + hits);
  }
  const rows = (counts: Map<string, number>) =>
    [...counts]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, hits]) => `| ${((hits / totalHits) * 100).toFixed(1)}% | \`${name}\` |`)
      .join('\n');
  return [
    `Profile ${relative(root, file)}: ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s, ${totalHits} samples (self time).`,
    '',
    '| self | function |',
    '| ---: | --- |',
    rows(byFunction),
    '',
    '| self | file |',
    '| ---: | --- |',
    rows(byFile),
  ].join('\n');
}
