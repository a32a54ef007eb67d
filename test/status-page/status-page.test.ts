import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type MadeConflict, makeConflict } from '../../drill/conflict.js';
import { type DrillEdge, FAST_EDGE_TIMING, startEdge } from '../../drill/edge.js';
import { PaymentMix } from '../../drill/payments-mix.js';
import { Producers } from '../../drill/producers.js';
import { type DrillRegion, startRegion } from '../../drill/region.js';
import { FaultProxy } from '../../testkit/fault-proxy.js';
import { eventually } from '../helpers/wait.js';
import { type HeadlessChromium, launchChromium, openPageLater, runStatusPageScenario } from './scenario.js';

// The status page in headless Chromium through a real outage, built from the drill's parts: a moto
// region with the payments workflow and its agents, the edge shim as a process in front of it
// through the fault proxy, its fallback agents, producers sending payments through it. While the
// region is cut off one fallback agent is killed (the supervisor restarts it) and a conflict is made
// in the region; the region comes back slow (a quarter of a second on every answer) so that the
// sync spans several polls of the page (its ceiling is four writes at a time for a replay of one
// batch at a time), and the replay is held to 2 messages a second so that it does too.

const SCREENSHOTS = fileURLToPath(new URL('../../test-results/status-page/', import.meta.url));
const REPLAY_RATE = 2;
const REGION_LATENCY_MS = 250;

let browser: HeadlessChromium;
let region: DrillRegion;
let proxy: FaultProxy;
let edge: DrillEdge;
let producers: Producers;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'holdfast-status-page-'));
  browser = await launchChromium();
  region = await startRegion();
  proxy = await FaultProxy.start({ target: new URL(region.aws.endpoint).host });
  edge = await startEdge({ region, regionThrough: proxy.address, dir, timing: { ...FAST_EDGE_TIMING, replayRate: REPLAY_RATE, replayConcurrency: 1 } });
  await eventually(() => edge.status(), (status) => status.mode === 'online');
  producers = new Producers(
    { endpoint: edge.url, region: region.aws.region, credentials: edge.credentials, queueUrl: `${edge.url}/000000000000/payments-authorize.fifo` },
    new PaymentMix('page', 0.5, 1),
    2,
  );
}, 120_000);

afterAll(async () => {
  producers?.close();
  await browser?.close();
  await edge?.stop();
  await proxy?.close();
  await region?.close();
  rmSync(dir, { recursive: true, force: true });
});

it('shows a real outage as it happens: online, offline with a growing backlog and a restarted agent, syncing, replaying, online again with the conflict to look at', { timeout: 600_000 }, async () => {
  let made: MadeConflict | undefined;
  let online = 0;
  const { screenshots, shown, conflictValues } = await runStatusPageScenario(browser.context, {
    url: edge.adminUrl,
    screenshots: SCREENSHOTS,
    async step(state) {
      if (state === 'online' && online++ === 0) {
        producers.start();
        await eventually(() => producers.acknowledged, (acked) => acked >= 4);
      }
      if (state === 'offline') {
        proxy.setMode('blackhole');
        await eventually(() => edge.status(), (status) => status.mode === 'offline' && status.agents.some((agent) => agent.stage === 'notify' && agent.state === 'running'));
        const offlineAt = Date.now();
        // A fallback agent dies; the supervisor brings it back. The notify agent: it only polls at
        // the edge (notify tasks come after the ledger, which waits for the region), so it holds
        // nothing that would have to wait out its visibility timeout before the replay.
        const notifyPid = await eventually(() => notifyAgentPid(edge.logFile), (pid) => pid !== undefined);
        process.kill(notifyPid!, 'SIGKILL');
        await eventually(() => edge.status(), (status) => status.agents.some((agent) => agent.restarts > 0 && agent.state === 'running'));
        made = await makeConflict(region, producers.sent, offlineAt, new Promise(() => {}));
      }
      if (state === 'replaying') {
        await producers.stop();
        proxy.setMode({ kind: 'latency', downstreamMs: REGION_LATENCY_MS });
      }
      if (state === 'online' && online > 1) proxy.setMode('pass');
    },
  });
  expect(Object.keys(screenshots)).toEqual(['1-online', '2-offline', '3-syncing', '4-replaying', '5-online-again', '6-online-phone']);
  expect(shown['2-offline']!.agentRestarts).toBeGreaterThanOrEqual(1);
  expect(made).toBeDefined();
  expect(shown['5-online-again']!.conflictCount).toBe(1);
  expect((await edge.status()).conflicts.map((conflict) => conflict.key)).toEqual([`${made!.paymentId}/0`]);
  // Opened on the page, the conflict shows both records, from the admin listener's /conflicts/ID.
  expect(JSON.parse(conflictValues!)).toMatchObject({ region: expect.anything(), edge: expect.anything() });

  // A page opened now draws the outage it did not see, from the edge's own history, before its first poll
  // (once the history, sampled every 5 s, has a sample since the edge came back).
  await eventually(async () => (await (await fetch(`${edge.adminUrl}/status/history`)).json()) as { samples: { mode: string }[] }, (history) => history.samples.at(-1)?.mode === 'online', 500);
  const later = await openPageLater(browser.context, edge.adminUrl, join(SCREENSHOTS, '7-opened-later.png'));
  expect(later.history.windowSeconds).toBe(600);
  expect(later.history.samples.some((sample) => sample.mode === 'offline' && sample.backlog > 0)).toBe(true);
  expect(later.history.samples.at(-1)!.mode).toBe('online');
  expect(later.beforeFirstPoll.backlogChartPoints).toBe(later.history.samples.length);
  expect(later.beforeFirstPoll.mode).not.toBe('online');
  expect(later.live.mode).toBe('online');

  // The edge's stdout through all of it (the shim's lines and whatever its fallback agents, their
  // runners and their handlers wrote there) in one schema, levels as labels; no handler's metrics
  // (EMF) among them.
  const lines = readFileSync(edge.logFile, 'utf8').split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
  expect(lines.length).toBeGreaterThan(10);
  for (const line of lines) expect(line, JSON.stringify(line)).toMatchObject({ level: expect.stringMatching(/^(trace|debug|info|warn|error|fatal)$/), time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), pid: expect.any(Number), name: expect.any(String), msg: expect.any(String) });
});

/** The notify agent's process: the last the shim logged as polling (the status names no process). */
function notifyAgentPid(logFile: string): number | undefined {
  const entries = readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg?: string; stage?: string; pid?: number });
  return entries.filter((entry) => entry.stage === 'notify' && /^fallback agent notify (is polling|is back)/.test(entry.msg ?? '')).at(-1)?.pid;
}
