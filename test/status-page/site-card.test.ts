import { afterAll, beforeAll, expect, it } from 'vitest';
import type { EdgeStatus } from '../../edge-shim/src/observability/status.js';
import { edgeStatus } from '../helpers/edge-status.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';
import { eventually } from '../helpers/wait.js';
import { type HeadlessChromium, launchChromium } from './scenario.js';

// The status page's Site card, in a real browser: shown for a site of several nodes with each
// node's mode, which one replays and how long since it was heard (silent ones marked), hidden for a
// site of one. The page reads a /status the test gives the shim's admin listener.

let status: EdgeStatus;
let shim: TestShim;
let browser: HeadlessChromium;

beforeAll(async () => {
  shim = await startTestShim({
    pages: new Map([['/status', async () => ({ status: 200, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' }, body: JSON.stringify(status) })]]),
  });
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await shim?.close();
});

interface CardDocument {
  getElementById(id: string): { readonly textContent: string | null; readonly hidden: boolean; readonly parentElement: { readonly hidden: boolean } } | null;
  querySelectorAll(selector: string): Iterable<{ readonly textContent: string | null; readonly className: string }>;
}

it('lists the site\'s nodes with their modes, the replaying one and a silent one marked, and hides the card for one node', { timeout: 60_000 }, async () => {
  status = edgeStatus({
    mode: 'offline',
    site: {
      mode: 'offline',
      node: 'edge-a/1f2e3d',
      nodes: [
        { name: 'edge-a/1f2e3d', mode: 'offline', replays: false, seenSecondsAgo: 0 },
        { name: 'edge-b/4c5b6a', mode: 'offline', replays: true, seenSecondsAgo: 42 },
      ],
    },
  });
  const page = await browser.context.newPage();
  await page.goto(`${shim.shim.adminUrl}/`);
  const read = () =>
    page.evaluate(() => {
      const { document } = globalThis as unknown as { document: CardDocument };
      return {
        hidden: document.getElementById('site-heading')!.parentElement.hidden,
        mode: document.getElementById('site-mode')!.textContent,
        nodes: [...document.querySelectorAll('#site-nodes li')].map((item) => item.textContent),
        silent: [...document.querySelectorAll('#site-nodes .state-bad')].map((item) => item.textContent),
      };
    });
  const shown = await eventually(read, (card) => card.nodes.length === 2, 100);
  expect(shown.hidden).toBe(false);
  expect(shown.mode).toBe('offline');
  expect(shown.nodes[0]).toBe('edge-a/1f2e3d offline (this node) heard 0 s ago');
  expect(shown.nodes[1]).toBe('edge-b/4c5b6a offline, replays the backlog heard 42 s ago');
  expect(shown.silent).toEqual(['heard 42 s ago']);

  status = edgeStatus();
  const alone = await eventually(read, (card) => card.hidden, 100);
  expect(alone.hidden).toBe(true);
});
