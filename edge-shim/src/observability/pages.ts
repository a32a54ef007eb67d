import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { OperatorPage } from '../http/admin-server.js';
import type { WireResponse } from '../protocol/wire.js';
import type { StatusHistory } from './history.js';
import type { Metrics } from './metrics.js';
import type { ConflictRecord, StatusProvider } from './status.js';

export type { OperatorPage };

export interface OperatorPagesOptions {
  readonly status: StatusProvider;
  readonly metrics: Metrics;
  /** The last minutes, for the status page's charts at open. */
  readonly history: StatusHistory;
  /** A sync conflict in full, by its id; absent where there is no sync (a standalone shim). */
  readonly conflict?: (id: number) => ConflictRecord | undefined;
}

const json = (status: number, body: unknown): WireResponse => ({ status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' }, body: JSON.stringify(body) });

// The page loads only what the shim serves; it talks to /status only; nothing may frame it.
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

const require = createRequire(import.meta.url);
const uiFile = (name: string) => fileURLToPath(new URL(`./ui/${name}`, import.meta.url));

/** Files of the page, by the path it loads them under; read on first use, then kept. */
const ASSETS: ReadonlyArray<{ path: string; file: () => string; type: string }> = [
  { path: '/ui/status-page.js', file: () => uiFile('status-page.js'), type: 'text/javascript; charset=utf-8' },
  { path: '/ui/status-page.css', file: () => uiFile('status-page.css'), type: 'text/css; charset=utf-8' },
  { path: '/ui/uPlot.iife.min.js', file: () => require.resolve('uplot/dist/uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  { path: '/ui/uPlot.min.css', file: () => require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' },
];

function staticFile(file: () => string, type: string): OperatorPage {
  let body: string | undefined;
  return () => {
    body ??= readFileSync(file(), 'utf8');
    return { status: 200, headers: { 'content-type': type, 'cache-control': 'no-cache', ...PAGE_HEADERS }, body };
  };
}

/**
 * The operator's pages, served by the admin listener: the status document and its last minutes, the
 * metrics, the status page (at / and /ui) with its scripts and styles, and each sync conflict in
 * full at /conflicts/ID (the status document names conflicts, never what the records hold).
 */
export function operatorPages({ status, metrics, history, conflict }: OperatorPagesOptions): Map<string, OperatorPage> {
  const page = staticFile(() => uiFile('index.html'), 'text/html; charset=utf-8');
  return new Map<string, OperatorPage>([
    ['/status', async () => json(200, await status())],
    ['/status/history', () => json(200, history.recent())],
    [
      '/metrics',
      async () => ({ status: 200, headers: { 'content-type': metrics.contentType, 'cache-control': 'no-store' }, body: await metrics.exposition(await status()) }),
    ],
    ['/', page],
    ['/ui', page],
    ...ASSETS.map(({ path, file, type }) => [path, staticFile(file, type)] as const),
    ...(conflict
      ? [
          [
            '/conflicts/',
            (id: string) => {
              const found = /^\d{1,15}$/.test(id) ? conflict(Number(id)) : undefined;
              return found ? json(200, found) : json(404, { error: `no conflict ${id}` });
            },
          ] as const,
        ]
      : []),
  ]);
}
