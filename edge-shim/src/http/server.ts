import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { type Credential, verifySignature } from '../auth/sigv4.js';
import { jsonProtocol, isJsonRequest } from '../protocol/json.js';
import { queryProtocol } from '../protocol/query.js';
import type { WireProtocol, WireRequest, WireResponse } from '../protocol/wire.js';
import { SqsError } from '../sqs/errors.js';
import type { SqsService } from '../sqs/service.js';

// Large enough for a 1 MiB message sent in the Query protocol (form-encoded, binary in base64).
const MAX_BODY_BYTES = 4 * 1024 * 1024;

export interface HttpOptions {
  readonly service: SqsService;
  readonly logger: Logger;
  readonly region: string;
  /** Empty: requests are not authenticated (allowed only on loopback; see config). */
  readonly credentials: readonly Credential[];
  readonly clock: () => number;
}

class BodyTooLarge extends Error {}

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new BodyTooLarge());
        request.resume();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

function send(response: ServerResponse, wire: WireResponse): void {
  if (response.headersSent || response.destroyed) return;
  response.writeHead(wire.status, { ...wire.headers, 'content-length': Buffer.byteLength(wire.body) });
  response.end(wire.body);
}

/**
 * The HTTP front of the shim: health checks, and SQS requests in either wire protocol, each
 * authenticated, decoded, run by the service and encoded back in the protocol it came in.
 */
export function createShimServer(options: HttpOptions): Server {
  const { service, logger } = options;

  async function handleSqs(request: IncomingMessage, response: ServerResponse, url: URL, requestId: string): Promise<void> {
    let protocol: WireProtocol = queryProtocol;
    try {
      const body = await readBody(request);
      const wire: WireRequest = { method: request.method ?? 'GET', path: url.pathname, query: url.searchParams, headers: request.headers, body };
      if (isJsonRequest(wire)) protocol = jsonProtocol;
      if (options.credentials.length > 0) {
        verifySignature(wire, { credentials: options.credentials, region: options.region, now: options.clock() });
      }
      const call = protocol.decode(wire);
      const abort = new AbortController();
      response.on('close', () => abort.abort());
      const output = await service.call(call.action, call.input, { baseUrl: `http://${request.headers.host ?? url.host}`, signal: abort.signal });
      send(response, protocol.encodeResult(call.action, output, requestId));
      logger.debug({ requestId, action: call.action, protocol: protocol.name }, 'request');
    } catch (caught) {
      let error = caught;
      if (caught instanceof BodyTooLarge) error = new SqsError('InvalidParameterValue', `The request body is larger than ${MAX_BODY_BYTES} bytes.`);
      if (!(error instanceof SqsError)) {
        logger.error({ requestId, err: error }, 'request failed');
        error = new SqsError('InternalFailure', 'The request processing has failed because of an unknown error.');
      } else {
        logger.debug({ requestId, code: error.code }, 'request refused');
      }
      send(response, protocol.encodeError(error as SqsError, requestId));
    }
  }

  return createServer((request, response) => {
    const requestId = randomUUID();
    const url = new URL(request.url ?? '/', 'http://shim');
    if (request.method === 'GET' && url.pathname === '/health') {
      const healthy = service.healthy();
      response.writeHead(healthy ? 200 : 503, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ status: healthy ? 'ok' : 'unavailable' }));
      return;
    }
    void handleSqs(request, response, url, requestId);
  });
}

export function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
