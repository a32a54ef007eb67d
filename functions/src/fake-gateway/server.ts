import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { Socket } from 'node:net';

/**
 * A small payment gateway and notifier on loopback, for exercising retries, timeouts, breakers and
 * fallbacks over real connections. Switches (in process through `faults`, or over HTTP with
 * PUT /_faults) add latency, answer the next requests with an error status, or take it down (every
 * connection is reset as soon as it is accepted).
 */
export interface GatewayFaults {
  /** Delay before every answer. */
  latencyMs: number;
  /** Answer this many of the next requests with `failStatus`. */
  failNext: number;
  failStatus: number;
  /** Reset every connection. */
  down: boolean;
}

export interface Authorization {
  readonly authorizationId: string;
  readonly paymentId: string;
  readonly account: string;
  readonly amountMinor: number;
  readonly currency: string;
  status: 'authorized' | 'voided';
}

export interface Notification {
  readonly notificationId: string;
  readonly paymentId: string;
  readonly account: string;
}

export interface GatewayState {
  readonly authorizations: Authorization[];
  readonly notifications: Notification[];
  /** Requests received per route (`POST /authorizations`, ...), repeats and failed ones included. */
  readonly requests: Record<string, number>;
  /** Connections reset while down. */
  refusedConnections: number;
}

export interface FakeGateway {
  readonly url: string;
  readonly faults: GatewayFaults;
  readonly state: GatewayState;
  close(): Promise<void>;
}

/** Accounts whose payments the fake fraud service scores as fraud. */
export const FRAUDULENT_ACCOUNT_PREFIX = 'fraud-';

class HttpAnswer extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`HTTP ${status}`);
  }
}

function positiveInteger(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) throw new HttpAnswer(422, { error: `${field} must be a positive integer` });
  return value;
}

function text(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new HttpAnswer(422, { error: `${field} is required` });
  return value;
}

async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  if (chunks.length === 0) return {};
  try {
    const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // answered below
  }
  throw new HttpAnswer(400, { error: 'body must be a JSON object' });
}

export async function startFakeGateway(options: { host?: string; port?: number } = {}): Promise<FakeGateway> {
  const faults: GatewayFaults = { latencyMs: 0, failNext: 0, failStatus: 503, down: false };
  const state: GatewayState = { authorizations: [], notifications: [], requests: {}, refusedConnections: 0 };
  // Answers already given per Idempotency-Key, so a repeated request has its effect once.
  const answered = new Map<string, { status: number; body: unknown }>();
  const sockets = new Set<Socket>();

  function route(method: string, path: string, body: Record<string, unknown>): { status: number; body: unknown } {
    if (method === 'POST' && path === '/authorizations') {
      const authorization: Authorization = {
        authorizationId: `auth-${randomUUID()}`,
        paymentId: text(body.paymentId, 'paymentId'),
        account: text(body.account, 'account'),
        amountMinor: positiveInteger(body.amountMinor, 'amountMinor'),
        currency: text(body.currency, 'currency'),
        status: 'authorized',
      };
      state.authorizations.push(authorization);
      return { status: 201, body: { authorizationId: authorization.authorizationId, status: authorization.status } };
    }
    const voidMatch = /^\/authorizations\/([^/]+)\/void$/.exec(path);
    if (method === 'POST' && voidMatch) {
      const authorization = state.authorizations.find((candidate) => candidate.authorizationId === decodeURIComponent(voidMatch[1]!));
      if (!authorization) throw new HttpAnswer(404, { error: 'no such authorization' });
      authorization.status = 'voided';
      return { status: 200, body: { authorizationId: authorization.authorizationId, status: authorization.status } };
    }
    if (method === 'POST' && path === '/fraud-scores') {
      const account = text(body.account, 'account');
      positiveInteger(body.amountMinor, 'amountMinor');
      return { status: 200, body: { score: account.startsWith(FRAUDULENT_ACCOUNT_PREFIX) ? 97 : 12 } };
    }
    if (method === 'POST' && path === '/notifications') {
      const notification: Notification = { notificationId: `note-${randomUUID()}`, paymentId: text(body.paymentId, 'paymentId'), account: text(body.account, 'account') };
      state.notifications.push(notification);
      return { status: 202, body: { notificationId: notification.notificationId } };
    }
    throw new HttpAnswer(404, { error: `no route for ${method} ${path}` });
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<{ status: number; body: unknown }> {
    const method = request.method ?? 'GET';
    const path = new URL(request.url ?? '/', 'http://gateway').pathname;
    const body = await readJson(request);
    if (path === '/_faults' && method === 'PUT') {
      Object.assign(faults, body);
      return { status: 200, body: faults };
    }
    if (path === '/_state' && method === 'GET') return { status: 200, body: state };
    const routeName = `${method} ${path.replace(/^\/authorizations\/[^/]+\/void$/, '/authorizations/{id}/void')}`;
    state.requests[routeName] = (state.requests[routeName] ?? 0) + 1;
    if (faults.latencyMs > 0) {
      const closed = new Promise((resolve) => response.once('close', resolve));
      await Promise.race([new Promise((resolve) => setTimeout(resolve, faults.latencyMs)), closed]);
      // The client gave up (timed out) while we were slow: drop the request without effect.
      if (response.destroyed) return { status: 499, body: {} };
    }
    if (faults.failNext > 0) {
      faults.failNext--;
      return { status: faults.failStatus, body: { error: 'injected failure' } };
    }
    const key = request.headers['idempotency-key'];
    const replayKey = typeof key === 'string' ? `${routeName} ${key}` : undefined;
    const earlier = replayKey && answered.get(replayKey);
    if (earlier) return earlier;
    const answer = route(method, path, body);
    if (replayKey) answered.set(replayKey, answer);
    return answer;
  }

  const server: Server = createServer((request, response) => {
    // Taken down while a kept-alive connection was open: that connection goes too.
    if (faults.down) {
      state.refusedConnections++;
      request.socket.resetAndDestroy();
      return;
    }
    handle(request, response)
      .catch((error: unknown) => (error instanceof HttpAnswer ? { status: error.status, body: error.body } : { status: 500, body: { error: String(error) } }))
      .then(({ status, body }) => {
        if (response.destroyed) return;
        response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      });
  });
  server.on('connection', (socket) => {
    if (faults.down) {
      state.refusedConnections++;
      socket.resetAndDestroy();
      return;
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fake gateway has no TCP address');

  return {
    url: `http://${address.address}:${address.port}`,
    faults,
    state,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
