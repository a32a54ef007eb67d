import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, type Page, chromium } from 'playwright-core';
import { expect } from 'vitest';
import { CHROMIUM } from '../helpers/chromium-setup.js';
import { eventually } from '../helpers/wait.js';

// The status page through an outage, in a real browser: the page opened on a shim, and at each
// state of a drill (online, offline with a growing backlog, syncing once the region is back,
// replaying, online again) what it shows, with a screenshot of each. The edge behind the page is
// whatever `step` brings to the state asked for: the drill's hybrid shim in front of moto.

export type DrillState = 'online' | 'offline' | 'replaying';

export interface StatusPageScenario {
  /** The shim's base URL; the page is opened at its `/`. */
  readonly url: string;
  /**
   * Brings the edge to a state: 'offline' cuts the region while producers keep sending, 'replaying'
   * gives it back (the sync then the replay must each take several polls), the last 'online' lets
   * the replay finish. The scenario then waits for the page.
   */
  step(state: DrillState): Promise<void>;
  /** Where the screenshots go, one PNG per state. */
  readonly screenshots: string;
}


const PHONE = { width: 390, height: 844 };
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface HeadlessChromium {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

/** Headless Chromium on a fresh profile (playwright passes --headless and --user-data-dir itself). */
export async function launchChromium(): Promise<HeadlessChromium> {
  const profile = mkdtempSync(join(tmpdir(), 'holdfast-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1280, height: 900 } });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** What the page shows that the scenario looks at, read from the DOM. */
export interface Shown {
  readonly mode: string;
  readonly breaker: string;
  readonly backlog: number;
  readonly replayProgress: number;
  readonly replayEta: string;
  readonly syncRate: string;
  readonly syncState: string;
  readonly syncProgress: number;
  readonly conflictCount: number;
  readonly agentRestarts: number;
  readonly backlogChartPoints: number;
  readonly requestsChartPoints: number;
  readonly transitions: string[];
  readonly queuePaths: string[];
  readonly connection: string;
  /** The widest chart and the whole page, in CSS pixels: on a phone neither may overflow. */
  readonly chartWidth: number;
  readonly pageWidth: number;
}

/** As much of the page's DOM as the scenario reads (the project's type check has no DOM library). */
interface PageElement {
  readonly textContent: string | null;
  readonly offsetWidth: number;
  readonly value: number;
  readonly dataset: Record<string, string | undefined>;
}
interface PageDocument {
  getElementById(id: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement>;
  readonly documentElement: { readonly scrollWidth: number };
}

/** Everything at once, in the page: one reading of one rendering. */
function readPage(page: Page): Promise<Shown> {
  return page.evaluate(() => {
    const { document } = globalThis as unknown as { document: PageDocument };
    const text = (id: string) => document.getElementById(id)?.textContent?.trim() ?? '';
    const texts = (selector: string) => [...document.querySelectorAll(selector)].map((element) => element.textContent?.trim() ?? '');
    const points = (id: string) => Number(document.getElementById(id)?.dataset.points);
    return {
      mode: text('mode'),
      breaker: text('breaker'),
      backlog: Number(text('backlog').replace(/\D/g, '')),
      replayProgress: document.getElementById('replay-progress')!.value,
      replayEta: text('replay-eta'),
      syncRate: text('sync-rate'),
      syncState: text('sync-state'),
      syncProgress: document.getElementById('sync-progress')!.value,
      conflictCount: Number(text('conflict-count')),
      agentRestarts: texts('#agents tbody td:nth-child(4)').reduce((sum, restarts) => sum + Number(restarts), 0),
      backlogChartPoints: points('chart-backlog'),
      requestsChartPoints: points('chart-requests'),
      transitions: texts('#transitions li'),
      queuePaths: texts('#queues tbody td:nth-child(2)'),
      connection: text('connection'),
      chartWidth: Math.max(...[...document.querySelectorAll('.uplot')].map((chart) => chart.offsetWidth)),
      pageWidth: document.documentElement.scrollWidth,
    };
  });
}

/** Reads the page until `done` holds; the test's timeout bounds the wait. */
const waitForPage = (page: Page, done: (shown: Shown) => boolean) => eventually(() => readPage(page), done, 100);

export interface ScenarioResult {
  /** The screenshots taken, and what the page showed when each was taken, by state. */
  readonly screenshots: Record<string, string>;
  readonly shown: Record<string, Shown>;
  /** What the first conflict showed once opened (its records, loaded from /conflicts/ID), if the page listed any. */
  readonly conflictValues: string | undefined;
}

/**
 * Runs the drill against the page and checks it shows each state: online; offline, its backlog
 * growing and charted; the region back, the sync running at a rate the page works out; replaying,
 * its progress bar moving with a time left; online again with nothing waiting and the transitions
 * listed. Fails on any error in the page.
 */
export async function runStatusPageScenario(browser: BrowserContext, scenario: StatusPageScenario): Promise<ScenarioResult> {
  mkdirSync(scenario.screenshots, { recursive: true });
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') problems.push(`console ${message.type()}: ${message.text()}`);
  });
  const screenshots: Record<string, string> = {};
  const shownAt: Record<string, Shown> = {};
  const shoot = async (name: string) => {
    shownAt[name] = shown;
    screenshots[name] = join(scenario.screenshots, `${name}.png`);
    await page.screenshot({ path: screenshots[name], fullPage: true });
  };

  let shown: Shown;
  await scenario.step('online');
  await page.goto(`${scenario.url}/`);
  shown = await waitForPage(page, (s) => s.mode === 'online' && s.connection === 'Live' && s.backlogChartPoints >= 2);
  expect(shown.breaker).toBe('closed');
  expect(shown.backlog).toBe(0);
  expect(shown.queuePaths.every((path) => path === 'to the region')).toBe(true);
  await shoot('1-online');

  await scenario.step('offline');
  shown = await waitForPage(page, (s) => s.mode === 'offline' && s.backlog > 0);
  const pointsWhenOffline = shown.backlogChartPoints;
  // Growing: two later polls each show more waiting, and the chart has gained their points.
  for (let growth = 0; growth < 2; growth += 1) {
    const before = shown.backlog;
    shown = await waitForPage(page, (s) => s.backlog > before);
  }
  expect(shown.backlogChartPoints).toBeGreaterThanOrEqual(pointsWhenOffline + 2);
  expect(shown.mode).toBe('offline');
  expect(shown.breaker).not.toBe('closed');
  expect(shown.queuePaths.length).toBeGreaterThan(0);
  expect(shown.queuePaths.every((path) => path === 'to the edge store')).toBe(true);
  expect(shown.transitions[0]).toMatch(/online → offline/);
  await shoot('2-offline');

  await scenario.step('replaying');
  // Before the replay, the sync: still offline, the page reckons its rate from two polls.
  shown = await waitForPage(page, (s) => s.syncState === 'running' && /^[\d.,]+\/s$/.test(s.syncRate));
  expect(shown.mode).toBe('offline');
  expect(shown.syncProgress).toBeLessThan(100);
  await shoot('3-syncing');

  shown = await waitForPage(page, (s) => s.mode === 'replaying');
  const firstProgress = shown.replayProgress;
  // Moving: the bar advances and is part-way (a picture of a replay, not of its end).
  shown = await waitForPage(page, (s) => s.replayProgress > firstProgress && s.replayProgress < 100);
  expect(shown.mode).toBe('replaying');
  expect(shown.replayEta).not.toBe('–');
  expect(shown.transitions[0]).toMatch(/offline → replaying/);
  await shoot('4-replaying');

  await scenario.step('online');
  shown = await waitForPage(page, (s) => s.mode === 'online' && s.backlog === 0);
  expect(shown.replayProgress).toBe(100);
  expect(shown.breaker).toBe('closed');
  expect(shown.transitions.slice(0, 3).map((transition) => /(\w+) → (\w+)/.exec(transition)?.slice(1, 3).join('→'))).toEqual([
    'replaying→online',
    'offline→replaying',
    'online→offline',
  ]);
  expect(shown.requestsChartPoints).toBeGreaterThan(pointsWhenOffline);
  await shoot('5-online-again');
  // The status names conflicts only: their records are loaded when one is opened.
  let conflictValues: string | undefined;
  const conflict = page.locator('#conflicts details').first();
  if ((await conflict.count()) > 0) {
    await conflict.locator('summary').click();
    await expect.poll(() => conflict.locator('pre').textContent()).not.toBe('loading…');
    conflictValues = (await conflict.locator('pre').textContent()) ?? undefined;
  }
  // The same page on a phone: one column, charts as wide as the screen, nothing to scroll sideways.
  await page.setViewportSize({ width: PHONE.width, height: PHONE.height });
  shown = await waitForPage(page, (s) => s.chartWidth <= PHONE.width);
  expect(shown.pageWidth).toBeLessThanOrEqual(PHONE.width);
  await shoot('6-online-phone');

  await page.close();
  expect(problems).toEqual([]);
  return { screenshots, shown: shownAt, conflictValues };
}

export interface OpenedLater {
  /** The shim's history as the page loaded it: `{ windowSeconds, samples }`. */
  readonly history: { readonly windowSeconds: number; readonly samples: readonly { readonly t: number; readonly mode: string; readonly backlog: number }[] };
  /** What the page showed before any poll of /status answered. */
  readonly beforeFirstPoll: Shown;
  /** And once its polls came through. */
  readonly live: Shown;
}

/**
 * A page opened after the fact: its charts must show the last minutes at once, from the shim's
 * history, before its first poll of /status (held back here until the charts are read) answers.
 */
export async function openPageLater(browser: BrowserContext, url: string, screenshot: string): Promise<OpenedLater> {
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  let releasePolls!: () => void;
  const polls = new Promise<void>((resolve) => (releasePolls = resolve));
  await page.route(`${url}/status`, async (route) => {
    await polls;
    await route.continue();
  });
  const historyLoaded = page.waitForResponse((response) => response.url() === `${url}/status/history`);
  await page.goto(`${url}/`);
  const history = (await (await historyLoaded).json()) as OpenedLater['history'];
  const beforeFirstPoll = await waitForPage(page, (s) => s.backlogChartPoints > 0);
  await page.screenshot({ path: screenshot, fullPage: true });
  releasePolls();
  const live = await waitForPage(page, (s) => s.connection === 'Live' && s.backlogChartPoints > beforeFirstPoll.backlogChartPoints);
  await page.close();
  expect(problems).toEqual([]);
  return { history, beforeFirstPoll, live };
}
