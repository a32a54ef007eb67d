import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

interface CruiseResult {
  readonly modules: readonly { readonly source: string; readonly dependencies: readonly { readonly resolved: string; readonly dynamic: boolean }[] }[];
  readonly summary: { readonly violations: readonly { readonly rule: { readonly name: string }; readonly from: string; readonly to: string }[] };
}

/** `npm run lint:deps` (dependency-cruiser, the rules in .dependency-cruiser.cjs) as JSON; it exits non-zero on a violation. */
function cruise(): Promise<CruiseResult> {
  return new Promise((resolve, reject) => {
    execFile('npm', ['run', '--silent', 'lint:deps', '--', '--output-type', 'json'], { cwd: REPO, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (!stdout) reject(new Error(`npm run lint:deps printed nothing: ${stderr || error?.message}`));
      else resolve(JSON.parse(stdout) as CruiseResult);
    });
  });
}

it('keeps the import graph within its rules: no cycle, no upward import, one door from the shim into functions/', { timeout: 120_000 }, async () => {
  const { modules, summary } = await cruise();
  expect(summary.violations.map((violation) => `${violation.rule.name}: ${violation.from} → ${violation.to}`)).toEqual([]);
  // The cruise read the TypeScript sources, dynamic imports included: the fallback agent's lazy runner is in the graph.
  const agentProcess = modules.find((module) => module.source === 'edge-shim/src/fallback/agent-process.ts');
  expect(agentProcess?.dependencies).toContainEqual(expect.objectContaining({ resolved: 'functions/src/edge/runner.ts', dynamic: true }));
});
