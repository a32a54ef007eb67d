import type { WireResponse } from '../protocol/wire.js';
import type { Metrics } from './metrics.js';
import type { StatusProvider } from './status.js';

export type OperatorPage = () => WireResponse | Promise<WireResponse>;

export interface OperatorPagesOptions {
  readonly status: StatusProvider;
  readonly metrics: Metrics;
}

/**
 * The operator's pages, answered on GET without SQS authentication: the status document and the
 * metrics. Nothing on them is secret.
 */
export function operatorPages({ status, metrics }: OperatorPagesOptions): Map<string, OperatorPage> {
  return new Map<string, OperatorPage>([
    ['/status', async () => ({ status: 200, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' }, body: JSON.stringify(await status()) })],
    [
      '/metrics',
      async () => ({ status: 200, headers: { 'content-type': metrics.contentType, 'cache-control': 'no-store' }, body: await metrics.exposition(await status()) }),
    ],
  ]);
}
