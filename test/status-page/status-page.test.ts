import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Metrics } from '../../edge-shim/src/observability/metrics.js';
import { operatorPages } from '../../edge-shim/src/observability/pages.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';
import { type HeadlessChromium, launchChromium, runStatusPageScenario } from './scenario.js';
import { ScriptedEdge } from './scripted-edge.js';

// The status page in headless Chromium through a drill: a real shim serves the page, and its
// /status answers the scripted document of an edge going through an outage. Scripted because the
// hybrid edge that produces the real document is being built; `runStatusPageScenario` takes any
// shim URL and a `step` that brings the edge to each state, so the hybrid shim can replace it.

const SCREENSHOTS = fileURLToPath(new URL('../../test-results/status-page/', import.meta.url));

let browser: HeadlessChromium;
let t: TestShim;
const edge = new ScriptedEdge();

beforeAll(async () => {
  browser = await launchChromium();
  t = await startTestShim({ pages: operatorPages({ status: () => edge.status(), metrics: new Metrics() }) });
});

afterAll(async () => {
  await browser?.close();
  await t?.close();
});

it('shows an outage as it happens: online, offline with a growing backlog, replaying, online again', { timeout: 240_000 }, async () => {
  const { screenshots, shown } = await runStatusPageScenario(browser.context, {
    url: t.shim.url,
    screenshots: SCREENSHOTS,
    step: async (state) => edge.step(state),
  });
  expect(Object.keys(screenshots)).toEqual(['1-online', '2-offline', '3-replaying', '4-online-again', '5-online-phone']);
  // What this script does besides the drill: an agent restarted while offline, a sync that runs
  // (at a rate the page works out) and finds a conflict during the replay.
  expect(shown['2-offline']!.agentRestarts).toBe(1);
  expect(shown['3-replaying']!.syncRate).toMatch(/^[\d.]+\/s$/);
  expect(shown['3-replaying']!.conflictCount).toBe(1);
  expect(shown['4-online-again']!.conflictCount).toBe(1);
});
