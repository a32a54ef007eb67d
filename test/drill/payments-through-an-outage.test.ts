import { expect, it } from 'vitest';
import { runDrill } from '../../drill/drill.js';
import { FAST_EDGE_TIMING } from '../../drill/edge.js';
import { markdownReport } from '../../drill/report.js';

// The payments workflow through an outage, end to end and checked from the outside (issue 9): a
// region on moto with its agents in the local runner, the edge shim as a process in front of it
// through the fault proxy, its fallback agents under its supervisor, payments sent through the edge
// at a steady rate, half of them low-risk. While the region is cut off the edge authorizes the
// low-risk ones and escalates the others; one of the payments it authorizes also gets an authorize
// step of the region's own, written differently into the region's step log meanwhile (a conflict
// made on purpose). When the region returns the edge syncs, then replays, and the region's agents
// finish the pipeline. The drill's checks (drill/verify.ts) then read the gateway, the notifier,
// the ledger, the step log, the counters, the queues and the edge's /status.

it('authorizes low-risk payments at the edge and escalates the others; after sync and replay each is authorized and posted once, notified at most once, the ledger balanced, the counters right, and only the conflict made is reported', { timeout: 900_000 }, async () => {
  const report = await runDrill({
    kind: 'blackhole',
    outageSeconds: 8,
    rate: 2,
    lowRiskShare: 0.5,
    seed: 9,
    warmupSeconds: 2,
    tailSeconds: 1,
    timing: FAST_EDGE_TIMING,
    makeConflict: true,
    stallSeconds: 240,
  });
  console.log(markdownReport(report));
  // Every check of the drill, in words when one fails: degraded mode against its limits, each saga
  // final, gateway / ledger / notifier against how each ended, velocity counters, human review,
  // queues empty, the sync finished before the replay, the conflicts.
  expect(report.failures).toEqual([]);
  expect(report.acknowledged).toBe(report.sent);
  expect(report.lost).toBe(0);

  // The edge handled the payments sent while it was offline: authorized the low-risk ones, escalated the others.
  expect(report.detectionSeconds).not.toBeNull();
  expect(report.processedAtEdge).toBeGreaterThan(0);
  expect(report.escalatedAtEdge).toBeGreaterThan(0);
  expect(report.escalated).toBe(report.escalatedAtEdge);
  expect(report.inHumanReview).toBe(report.escalated);
  // Its work was synced into the region, then its queued tasks replayed.
  expect(report.sync?.written).toBeGreaterThan(0);
  expect(report.replayed).toBeGreaterThan(0);

  // Each payment authorized at most once (exactly once when completed), posted at most once, notified at most once.
  expect(report.authorizedTwice).toBe(0);
  expect(report.postedTwice).toBe(0);
  expect(report.notifiedTwice).toBe(0);
  expect(report.completed + report.escalated).toBe(report.sent);
  expect(report.notified).toBe(report.completed);
  expect(report.ledgerBalanced).toBe(true);
  expect(report.velocityMismatches).toEqual([]);

  // Exactly the conflict made, reported on /status, the region's record left as it was.
  expect(report.conflictsMade).toBe(1);
  expect(report.conflicts).toBe(1);
});
