import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Health } from '../backend.js';
import type { WireResponse } from '../protocol/wire.js';
import { type Certificate, type Listener, createListener } from './listener.js';
import { isOwnHost } from './own-names.js';
import { DEFAULT_TIMEOUTS, healthAnswer } from './server.js';

/**
 * A page of the admin listener, answered on GET and HEAD. One registered under a path ending in `/`
 * answers every path one level below it and is given the rest (`/conflicts/` answers `/conflicts/7`).
 */
export type OperatorPage = (rest: string) => WireResponse | Promise<WireResponse>;

export interface AdminServerOptions {
  readonly pages: ReadonlyMap<string, OperatorPage>;
  readonly health: () => Health;
  /**
   * Given: every request must carry it, as a bearer token or as the password of Basic
   * authentication (which browsers ask for themselves). Otherwise only requests naming the listener
   * by its own names are answered (see isOwnHost): a rebound name cannot read the pages.
   */
  readonly token?: string;
  readonly tls?: Certificate;
  readonly logger: Logger;
}

export interface AdminServer {
  readonly listener: Listener;
  listen(port: number, host: string): Promise<{ address: AddressInfo; url: string }>;
  /** Stops accepting and cuts the connections still open: the pages hold no request worth waiting for. */
  close(): Promise<void>;
}

const REALM = 'holdfast edge';
const PLAIN = { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' };

const digest = (text: string) => createHash('sha256').update(text).digest();

/** The token an Authorization header carries: a bearer token, or Basic's password (any user name). */
function tokenOf(authorization: string | undefined): string | undefined {
  const match = /^(Bearer|Basic)\s+(\S+)$/i.exec(authorization ?? '');
  if (!match) return undefined;
  if (match[1]!.toLowerCase() === 'bearer') return match[2];
  const userAndPassword = Buffer.from(match[2]!, 'base64').toString('utf8');
  const colon = userAndPassword.indexOf(':');
  return colon < 0 ? undefined : userAndPassword.slice(colon + 1);
}

function send(response: ServerResponse, wire: WireResponse): void {
  response.writeHead(wire.status, { ...wire.headers, 'content-length': Buffer.byteLength(wire.body) });
  response.end(wire.body);
}

/**
 * The operator's listener: the status document, the metrics, the status page and whatever else
 * `pages` holds, and /health, apart from the SQS port so that it can stay on loopback (the default)
 * or behind a token while producers reach the SQS port from the site's network.
 */
export function createAdminServer(options: AdminServerOptions): AdminServer {
  const { pages, logger } = options;
  const expected = options.token === undefined ? undefined : digest(options.token);

  function refusal(request: IncomingMessage): WireResponse | undefined {
    if (expected) {
      const given = tokenOf(request.headers.authorization);
      if (given !== undefined && timingSafeEqual(digest(given), expected)) return undefined;
      return {
        status: 401,
        headers: { ...PLAIN, 'www-authenticate': `Bearer realm="${REALM}", Basic realm="${REALM}", charset="UTF-8"` },
        body: 'The operator pages need the admin token: Authorization: Bearer TOKEN (or the token as the password of Basic).',
      };
    }
    const host = request.headers.host;
    if (host !== undefined && !isOwnHost(host, request.socket)) {
      return { status: 403, headers: PLAIN, body: 'The Host header does not name this listener: reach it by a loopback address.' };
    }
    return undefined;
  }

  async function answer(request: IncomingMessage): Promise<WireResponse> {
    if (request.method !== 'GET' && request.method !== 'HEAD') return { status: 405, headers: { ...PLAIN, allow: 'GET, HEAD' }, body: 'Only GET and HEAD are answered here.' };
    const refused = refusal(request);
    if (refused) {
      logger.debug({ status: refused.status, host: request.headers.host }, 'operator page refused');
      return refused;
    }
    const path = new URL(request.url ?? '/', 'http://admin').pathname;
    if (path === '/health') return healthAnswer(options.health());
    const exact = pages.get(path);
    if (exact) return exact('');
    const below = path.lastIndexOf('/') + 1;
    const parent = pages.get(path.slice(0, below));
    if (parent && below > 1) return parent(path.slice(below));
    return { status: 404, headers: PLAIN, body: `No page at ${path}.` };
  }

  const listener = createListener(
    { headersTimeout: DEFAULT_TIMEOUTS.headersMs, requestTimeout: DEFAULT_TIMEOUTS.requestMs },
    (request, response) => {
      answer(request).then(
        (wire) => send(response, wire),
        (error: unknown) => {
          logger.error({ err: error, url: request.url }, 'operator page failed');
          send(response, { status: 500, headers: PLAIN, body: 'The page failed; the shim logged why.' });
        },
      );
    },
    options.tls,
  );
  const { server } = listener;
  return {
    listener,
    listen: (port, host) => listener.listen(port, host),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
