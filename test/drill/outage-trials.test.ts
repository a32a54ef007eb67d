import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type DrillOptions, OUTAGE_KINDS, runDrill } from '../../drill/drill.js';
import { FAST_EDGE_TIMING } from '../../drill/edge.js';
import { markdownReport } from '../../drill/report.js';
import { seededRandom } from '../../testkit/fault-modes.js';

// Randomized outage drills: a few seeded runs of the whole drill (a moto region with its agents,
// the edge shim as a process with its fallback agents, producers of payments through it) with a
// random outage kind and length each, every one checked from the outside. A trial is fixed by its
// seed: a failing one names it, and
//   HOLDFAST_DRILL_SEED=<seed> HOLDFAST_DRILL_TRIALS=1 npx vitest run test/drill/outage-trials.test.ts
// runs it again (HOLDFAST_DRILL_TRIALS=<n> runs more).
//
// Every trial asserts the promise (nothing acknowledged lost, nothing authorized, posted or notified
// twice, the ledger balanced, every send taken) and then that every other check of the drill passed:
// the degraded mode's limits, the counters, the sync before the replay, no conflict but those made
// on purpose. Where answers are lost (lost-answers, and flapping, which has lost-answer spells) the
// region may hold a send the edge stored too: the edge keeps it from its fallback agents and leaves
// it to the replay, so it runs once, in the region.

// Of each log a failed trial kept (the region runner's, each shim node's), what it prints: the last warnings and errors.
const WARNINGS_SHOWN = 30;

/** The last warnings and errors of each log in a failed drill's directory, for CI's output (the directory is gone with the machine). */
function warningsOf(workDir: string): string {
  return readdirSync(workDir)
    .filter((file) => file.endsWith('.log'))
    .map((file) => {
      const warnings = readFileSync(join(workDir, file), 'utf8')
        .split('\n')
        // The shim logs level labels, the region runner pino's numbers.
        .filter((line) => /"level":("warn"|"error"|"fatal"|[456]0\b)/.test(line))
        .slice(-WARNINGS_SHOWN);
      return `${file}: ${warnings.length === 0 ? 'no warnings' : `last ${warnings.length} warnings and errors\n${warnings.join('\n')}`}`;
    })
    .join('\n');
}

const TRIALS = Number(process.env.HOLDFAST_DRILL_TRIALS ?? 3);
const FIRST_SEED = Number(process.env.HOLDFAST_DRILL_SEED ?? Math.floor(Math.random() * 1_000_000));

/**
 * A trial's drill, drawn from its seed: any outage kind, 2 to 6 s long, at 2 payments a second, the
 * edge one node on SQLite or two on PostgreSQL (one SIGKILLed halfway through the outage).
 */
function trialOptions(seed: number): DrillOptions {
  const random = seededRandom(seed);
  return {
    kind: OUTAGE_KINDS[Math.floor(random() * OUTAGE_KINDS.length)]!,
    outageSeconds: 2 + Math.floor(random() * 5),
    edgeNodes: random() < 0.5 ? 1 : 2,
    rate: 2,
    lowRiskShare: 0.5,
    seed,
    warmupSeconds: 2,
    tailSeconds: 1,
    timing: FAST_EDGE_TIMING,
    stallSeconds: 240,
  };
}

describe('randomized outage drills', () => {
  it.each(Array.from({ length: TRIALS }, (_, index) => FIRST_SEED + index))('trial with seed %i: nothing lost, nothing doubled', { timeout: 600_000 }, async (seed) => {
    const options = trialOptions(seed);
    const started = Date.now();
    const report = await runDrill(options);
    console.log(`trial seed ${seed}: ${options.kind} for ${options.outageSeconds} s on ${options.edgeNodes} node(s), took ${((Date.now() - started) / 1000).toFixed(0)} s\n${markdownReport(report)}`);
    if (!report.passed && report.workDir) console.log(`trial seed ${seed} failed; its logs are in ${report.workDir}\n${warningsOf(report.workDir)}`);
    const context = `seed ${seed}, ${options.kind} for ${options.outageSeconds} s on ${options.edgeNodes} node(s); rerun: HOLDFAST_DRILL_SEED=${seed} HOLDFAST_DRILL_TRIALS=1 npx vitest run test/drill/outage-trials.test.ts`;
    expect(report.lost, `lost (${context})`).toBe(0);
    expect(report.authorizedTwice, `authorized twice (${context})`).toBe(0);
    expect(report.postedTwice, `posted twice (${context})`).toBe(0);
    expect(report.notifiedTwice, `notified twice (${context})`).toBe(0);
    expect(report.ledgerBalanced, `ledger balanced (${context})`).toBe(true);
    expect(report.rejected, `sends the edge refused (${context})`).toBe(0);
    expect(report.acknowledged, `acknowledged (${context})`).toBe(report.sent);
    expect(report.failures, `failed checks (${context})`).toEqual([]);
  });
});
