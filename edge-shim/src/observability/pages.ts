import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { WireResponse } from '../protocol/wire.js';
import type { Metrics } from './metrics.js';
import type { StatusProvider } from './status.js';

export type OperatorPage = () => WireResponse | Promise<WireResponse>;

export interface OperatorPagesOptions {
  readonly status: StatusProvider;
  readonly metrics: Metrics;
}

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
 * The operator's pages, answered on GET without SQS authentication: the status document, the
 * metrics, and the status page (at / and /ui) with its scripts and styles. Nothing on them is secret.
 */
export function operatorPages({ status, metrics }: OperatorPagesOptions): Map<string, OperatorPage> {
  const page = staticFile(() => uiFile('index.html'), 'text/html; charset=utf-8');
  return new Map<string, OperatorPage>([
    ['/status', async () => ({ status: 200, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' }, body: JSON.stringify(await status()) })],
    [
      '/metrics',
      async () => ({ status: 200, headers: { 'content-type': metrics.contentType, 'cache-control': 'no-store' }, body: await metrics.exposition(await status()) }),
    ],
    ['/', page],
    ['/ui', page],
    ...ASSETS.map(({ path, file, type }) => [path, staticFile(file, type)] as const),
  ]);
}
