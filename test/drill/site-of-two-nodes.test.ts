import { expect, it } from 'vitest';
import { runDrill } from '../../drill/drill.js';
import { FAST_EDGE_TIMING } from '../../drill/edge.js';
import { markdownReport } from '../../drill/report.js';

// The drill with its edge as a site of two nodes on one PostgreSQL database behind HAProxy
// (`npm run drill -- --edge-nodes 2`): halfway through the outage the node that holds the replay
// lease is SIGKILLed. The other node goes on taking payments and running the fallback agents, and
// when the region returns it syncs, takes the lease over and replays; checked from the outside as
// every drill is.

it('runs the payments through an outage on two edge nodes, one of them SIGKILLed during it: nothing lost, nothing doubled', { timeout: 600_000 }, async () => {
  const report = await runDrill({
    kind: 'blackhole',
    outageSeconds: 8,
    rate: 2,
    lowRiskShare: 0.5,
    seed: 18,
    warmupSeconds: 2,
    tailSeconds: 1,
    timing: FAST_EDGE_TIMING,
    stallSeconds: 240,
    edgeNodes: 2,
  });
  console.log(markdownReport(report));
  expect(report.killedNode).not.toBeNull();
  expect(report.failures).toEqual([]);
  expect(report.rejected).toBe(0);
  expect(report.acknowledged).toBe(report.sent);
  expect(report.lost).toBe(0);
  expect(report.authorizedTwice).toBe(0);
  expect(report.postedTwice).toBe(0);
  expect(report.notifiedTwice).toBe(0);
  expect(report.ledgerBalanced).toBe(true);
  // The surviving node handled payments at the edge and replayed what the site stored.
  expect(report.processedAtEdge + report.escalatedAtEdge).toBeGreaterThan(0);
  expect(report.replayed).toBeGreaterThan(0);
});
