import { randomUUID } from 'node:crypto';
import { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { ActivityRecorder, RequestFacts } from '../activity.js';
import { type Credential, verifySignature } from '../auth/sigv4.js';
import { isJsonRequest, jsonProtocol } from '../protocol/json.js';
import { queryProtocol } from '../protocol/query.js';
import type { WireProtocol, WireRequest, WireResponse } from '../protocol/wire.js';
import { SqsError } from '../sqs/errors.js';
import type { Health, RequestPath, SqsBackend } from '../backend.js';
import { type Certificate, type Listener, createListener } from './listener.js';
import { addressUrl, isOwnHost, madeByWebPage, schemeOf } from './own-names.js';

// Large enough for a 1 MiB message sent in the Query protocol: form encoding triples every byte
// outside the unreserved set, so a 1 MiB body of such bytes becomes 3 MiB.
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

export interface HttpTimeouts {
  /** Time allowed to receive a request's headers. */
  readonly headersMs: number;
  /** Time allowed to receive a whole request, body included; a long poll starts only after it. */
  readonly requestMs: number;
}

export const DEFAULT_TIMEOUTS: HttpTimeouts = { headersMs: 10_000, requestMs: 30_000 };

/**
 * How long an idle keep-alive connection stays open. A client that sends a request on a pooled
 * connection just as the server closes it gets ECONNRESET, so the client must be the one to close:
 * this outlasts the idle limits of the SDKs' pools (Java 60 s, Go 90 s) and is announced in the
 * Keep-Alive header, which undici and newer Node agents follow (closing 1-2 s before it). Pools with
 * no idle limit of their own (Node 20's agent under SDK v3, botocore) meet a close only after this
 * long, instead of after Node's default 5 s.
 */
export const KEEP_ALIVE_MS = 120_000;

export interface HttpOptions {
  readonly backend: SqsBackend;
  readonly logger: Logger;
  readonly region: string;
  /**
   * Empty: requests are not authenticated (allowed only on loopback; see config), and so requests
   * made by web pages, or naming another host (DNS rebinding), are refused.
   */
  readonly credentials: readonly Credential[];
  /** The base of queue URLs; by default the Host when it is one of the shim's own names, else the address reached. */
  readonly publicUrl?: string;
  /** Given: HTTPS. */
  readonly tls?: Certificate;
  readonly timeouts?: HttpTimeouts;
  /** Told of every SQS request answered, for the activity report. */
  readonly activity?: ActivityRecorder;
}

export interface ShimHttpServer {
  readonly listener: Listener;
  listen(port: number, host: string): Promise<{ address: AddressInfo; url: string }>;
  /**
   * Stops accepting connections and lets requests in flight finish, each answered with
   * `connection: close`; after `graceMs` the connections still open are cut.
   */
  close(graceMs: number): Promise<void>;
}

class BodyTooLarge extends Error {}
class RequestAborted extends Error {}

/** Reads a request body of at most MAX_BODY_BYTES; beyond that, the rest is read and dropped. */
function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(request.headers['content-length']);
    if (declared > MAX_BODY_BYTES) {
      // Answer at once; node discards the rest of the body on this connection as it arrives.
      request.on('data', () => {});
      reject(new BodyTooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    request.on('end', () => {
      if (size > MAX_BODY_BYTES) reject(new BodyTooLarge());
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    });
    request.on('close', () => {
      if (!request.complete) reject(new RequestAborted());
    });
  });
}

const protocolOf = (headers: IncomingHttpHeaders): WireProtocol => (isJsonRequest(headers) ? jsonProtocol : queryProtocol);

function send(response: ServerResponse, wire: WireResponse): void {
  if (response.headersSent || response.destroyed) return;
  response.writeHead(wire.status, { ...wire.headers, 'content-length': Buffer.byteLength(wire.body) });
  response.end(wire.body);
}

/** GET /health's answer: 200 while the shim can take sends, 503 with the reason otherwise. */
export function healthAnswer(health: Health): WireResponse {
  return { status: health.status === 'ok' ? 200 : 503, headers: { 'content-type': 'application/json' }, body: JSON.stringify(health) };
}

/** A whole HTTP response as bytes, for a socket on which node gave up parsing. */
function rawResponse(wire: WireResponse): string {
  const headers = { ...wire.headers, 'content-length': String(Buffer.byteLength(wire.body)), connection: 'close' };
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
  return `HTTP/1.1 ${wire.status} ${STATUS_CODES[wire.status] ?? ''}\r\n${lines.join('')}\r\n${wire.body}`;
}

/**
 * Why a request is refused before it is read, when the shim checks no signatures: anything a web
 * page on some site could make a browser send, or a Host that is not the shim's own name.
 */
function unsignedRefusal(request: IncomingMessage, publicUrl: URL | undefined): string | undefined {
  if (madeByWebPage(request.headers)) return 'Requests made by web pages are refused: this shim checks no signatures.';
  const host = request.headers.host;
  if (host !== undefined && !isOwnHost(host, request.socket, publicUrl)) {
    return "The Host header does not name this shim: reach it by a loopback address, or by its --public-url.";
  }
  return undefined;
}

/** The base of the queue URLs of an answer: never a Host header that is not one of the shim's own names. */
function baseUrl(request: IncomingMessage, publicUrl: URL | undefined): string {
  if (publicUrl) return publicUrl.origin;
  const host = request.headers.host;
  if (host !== undefined && isOwnHost(host, request.socket)) return `${schemeOf(request.socket)}://${host}`;
  return addressUrl(request.socket);
}

interface Target {
  readonly path: string;
  /** Still percent-encoded, without its `?`. */
  readonly queryString: string;
}

// Every request of the AWS JSON protocol is to `/`, which needs no URL parser to split.
const ROOT: Target = { path: '/', queryString: '' };

function parseTarget(raw: string | undefined): Target {
  if (raw === undefined || raw === '/') return ROOT;
  let url: URL;
  try {
    url = new URL(raw, 'http://shim');
  } catch {
    throw new SqsError('MalformedQueryString', 'The request URL is not valid.');
  }
  return { path: url.pathname, queryString: url.search.slice(1) };
}

/**
 * The HTTP front of the shim: health checks, and SQS requests in either wire protocol, each
 * authenticated, decoded, run by the backend and encoded back in the protocol it came in.
 * Whatever a client sends, it gets an answer in the SQS error shape it expects, not a hang.
 */
export function createShimServer(options: HttpOptions): ShimHttpServer {
  const { backend, logger } = options;
  const publicUrl = options.publicUrl === undefined ? undefined : new URL(options.publicUrl);
  const signed = options.credentials.length > 0;
  const timeouts = options.timeouts ?? DEFAULT_TIMEOUTS;
  // The response whose request is being read on each connection, to answer when node cannot parse the rest.
  const receiving = new WeakMap<Duplex, ServerResponse>();
  // Responses not yet finished, to tell their clients `connection: close` when the server closes.
  const active = new Set<ServerResponse>();
  let closing = false;
  // Listeners shared by every request (`this` is the emitter), so that none allocates closures for them.
  function requestReceived(this: IncomingMessage) {
    receiving.delete(this.socket);
  }
  function responseClosed(this: ServerResponse) {
    active.delete(this);
  }
  // A client that goes away mid-body makes the request emit 'error' then 'close'; readBody acts on 'close'.
  const ignoreError = () => {};

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const debug = logger.isLevelEnabled('debug');
    const started = performance.now();
    const paths: RequestPath[] = [];
    const facts = (): RequestFacts => ({ paths, seconds: (performance.now() - started) / 1000 });
    const requestId = randomUUID();
    const method = request.method ?? '';
    const protocol = protocolOf(request.headers);
    let action: string | undefined;
    receiving.set(request.socket, response);
    request.once('end', requestReceived);
    request.on('error', ignoreError);
    active.add(response);
    response.once('close', responseClosed);
    if (closing) response.setHeader('connection', 'close');
    try {
      const target = parseTarget(request.url);
      const isHealth = target.path === '/health' && (method === 'GET' || method === 'HEAD');
      const refusal = signed ? undefined : unsignedRefusal(request, publicUrl);
      if (refusal !== undefined) {
        logger.debug({ requestId, origin: request.headers.origin, host: request.headers.host }, 'request refused: made by a web page, or to a name not the shim\'s');
        if (isHealth) send(response, { status: 403, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: refusal });
        else throw new SqsError('AccessDenied', refusal);
        return;
      }
      if (isHealth) {
        send(response, healthAnswer(closing ? { status: 'unavailable', reason: 'the shim is shutting down' } : backend.health()));
        return;
      }
      const body = await readBody(request);
      if (method !== 'POST' && (method !== 'GET' || protocol === jsonProtocol)) {
        throw new SqsError('UnsupportedOperation', `The HTTP method ${method} is not supported for ${protocol === jsonProtocol ? 'the AWS JSON protocol' : 'SQS'} requests.`);
      }
      const wire: WireRequest = { method, path: target.path, queryString: target.queryString, headers: request.headers, body };
      // Wall-clock time, not the service's clock: freshness is agreement with the client's clock.
      const principal = options.credentials.length > 0 ? verifySignature(wire, { credentials: options.credentials, region: options.region, now: Date.now() }) : undefined;
      const call = protocol.decode(wire);
      action = call.action;
      if (debug) logger.debug({ requestId, action, protocol: protocol.name }, 'request started');
      // Only a receive can wait (long polling), so only a receive needs to learn that its client
      // has gone; an AbortController for every request would be measurable overhead.
      let signal: AbortSignal | undefined;
      if (call.action === 'ReceiveMessage') {
        const abort = new AbortController();
        response.once('close', () => response.writableFinished || abort.abort());
        signal = abort.signal;
      }
      const output = await backend.call(call.action, call.input, { baseUrl: baseUrl(request, publicUrl), signal, principal, carriedOut: (path) => paths.push(path) });
      options.activity?.answered(call.action, call.input, output, facts());
      send(response, protocol.encodeResult(call.action, output, requestId));
    } catch (caught) {
      if (caught instanceof RequestAborted) {
        logger.debug({ requestId, method }, 'client went away before sending its whole request');
        return;
      }
      let error = caught;
      if (caught instanceof BodyTooLarge) error = new SqsError('InvalidParameterValue', `The request body is larger than ${MAX_BODY_BYTES} bytes.`);
      if (!(error instanceof SqsError)) {
        logger.error({ requestId, action, err: error }, 'request failed');
        error = new SqsError('InternalFailure', 'The request processing has failed because of an unknown error.');
      }
      options.activity?.failed(action, (error as SqsError).code, facts());
      send(response, protocol.encodeError(error as SqsError, requestId));
    } finally {
      if (debug) {
        logger.debug({ requestId, method, action, protocol: protocol.name, status: response.headersSent ? response.statusCode : undefined, ms: Math.round(performance.now() - started) }, 'request done');
      }
    }
  }

  const listener = createListener(
    {
      headersTimeout: timeouts.headersMs,
      requestTimeout: timeouts.requestMs,
      // How often node looks for connections past those timeouts (by default every 30 s).
      connectionsCheckingInterval: Math.min(1000, timeouts.headersMs),
      // A request without Host is answered by the handler, in SQS form, rather than by node.
      requireHostHeader: false,
    },
    (request, response) => void handle(request, response),
    options.tls,
  );
  const { server } = listener;
  server.keepAliveTimeout = KEEP_ALIVE_MS;

  // Bad HTTP (unparseable request line, headers or chunked body) and request timeouts.
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    const pending = receiving.get(socket);
    receiving.delete(socket);
    logger.debug({ code: error.code }, 'malformed or timed out HTTP request');
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const timedOut = error.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    const sqsError = new SqsError(
      'InvalidParameterValue',
      timedOut ? `The request was not received in full within ${timeouts.requestMs / 1000} seconds.` : 'The request is not valid HTTP/1.1.',
    );
    const requestId = randomUUID();
    if (pending && !pending.headersSent) {
      pending.shouldKeepAlive = false;
      send(pending, protocolOf(pending.req.headers).encodeError(sqsError, requestId));
      return;
    }
    if (pending) {
      socket.destroy();
      return;
    }
    const raw = (error as { rawPacket?: Buffer }).rawPacket?.toString('latin1') ?? '';
    const protocol = /^x-amz-target:|^content-type:\s*application\/x-amz-json/im.test(raw) ? jsonProtocol : queryProtocol;
    // Destroyed once written: a client that never closes its side does not keep the socket.
    socket.end(rawResponse(protocol.encodeError(sqsError, requestId)), () => socket.destroy());
  });

  return {
    listener,
    listen: (port, host) => listener.listen(port, host),
    close(graceMs) {
      closing = true;
      for (const response of active) if (!response.headersSent) response.setHeader('connection', 'close');
      return new Promise<void>((resolve) => {
        const cut = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
          clearTimeout(cut);
          resolve();
        });
      });
    },
  };
}
