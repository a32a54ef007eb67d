import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** A stretch of the run to summarize, in microseconds of the monotonic clock (as V8 stamps samples). */
export interface ProfileWindow {
  readonly label: string;
  readonly fromUs: number;
  readonly toUs: number;
}

/** Now on the monotonic clock that V8's CPU profiler stamps its samples with, in microseconds. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/**
 * Where the profiled process spent its time during each window: the functions with the most time
 * of their own (self), and the callers that most time was spent under (inclusive), as markdown.
 */
export function summarizeProfile(file: string, root: string, windows: readonly ProfileWindow[], top = 12): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parents = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
  const name = (node: ProfileNode) => {
    const { functionName, url, lineNumber } = node.callFrame;
    return `${functionName || '(anonymous)'}${url ? ` ${relative(root, url.replace(/^file:\/\//, ''))}:${lineNumber + 1}` : ''}`;
  };
  const times: number[] = [];
  let time = profile.startTime;
  for (const delta of profile.timeDeltas) times.push((time += delta));

  // Windows with the same label (a measurement taken in parts) are summarized together.
  const byLabel = new Map<string, ProfileWindow[]>();
  for (const window of windows) byLabel.set(window.label, [...(byLabel.get(window.label) ?? []), window]);
  const sections = [...byLabel].map(([label, parts]) => {
    const self = new Map<string, number>();
    const inclusive = new Map<string, number>();
    let total = 0;
    profile.samples.forEach((id, index) => {
      if (!parts.some((part) => times[index]! >= part.fromUs && times[index]! <= part.toUs)) return;
      total++;
      const leaf = name(nodes.get(id)!);
      self.set(leaf, (self.get(leaf) ?? 0) + 1);
      const seen = new Set<string>();
      for (let at: number | undefined = id; at !== undefined; at = parents.get(at)) {
        const frame = name(nodes.get(at)!);
        if (seen.has(frame) || frame === '(root)') continue;
        seen.add(frame);
        inclusive.set(frame, (inclusive.get(frame) ?? 0) + 1);
      }
    });
    const rows = (counts: Map<string, number>) =>
      [...counts]
        .sort((a, b) => b[1] - a[1])
        .slice(0, top)
        .map(([frame, count]) => `| ${((count / total) * 100).toFixed(1)}% | \`${frame}\` |`);
    if (total === 0) return `### ${label}\n\nNo samples.`;
    return [
      `### ${label}`,
      '',
      `${total} samples. Self time:`,
      '',
      '| share | function |',
      '| ---: | --- |',
      ...rows(self),
      '',
      'Inclusive time:',
      '',
      '| share | function and what it calls |',
      '| ---: | --- |',
      ...rows(inclusive),
    ].join('\n');
  });
  return [`From ${relative(root, file)}; "(idle)" is time the shim waited with nothing to run.`, '', ...sections].join('\n\n');
}
