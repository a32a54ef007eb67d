import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isLoopback } from '../edge-shim/src/config.js';
import { isOwnHost } from '../edge-shim/src/http/own-names.js';
import { FaultModeError } from './fault-modes.js';
import type { FaultProxy, HostPort } from './fault-proxy.js';

export interface ControlServer {
  /** Base URL of the control endpoint, e.g. http://127.0.0.1:4568. */
  readonly url: string;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 64 * 1024;

function answer(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new FaultModeError(`the body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new FaultModeError('the body is not JSON: give a mode, e.g. {"kind":"blackhole"}');
  }
}

/**
 * The proxy's control endpoint, for tools in other processes: `GET /mode`, `PUT /mode` (a mode as
 * JSON, e.g. `{"kind":"latency","downstreamMs":200}` or `"blackhole"`), `GET /stats`. It has no
 * authentication, so it listens on loopback only, and answers only requests that name it so (a
 * web page whose name was rebound to loopback names itself).
 */
export async function startControlServer(proxy: FaultProxy, listen: HostPort): Promise<ControlServer> {
  if (!isLoopback(listen.host)) throw new Error(`the control endpoint has no authentication: listen on loopback, not ${listen.host}`);
  const modeBody = () => ({ mode: proxy.mode, inForce: proxy.stats().mode });
  const server = createServer((request, response) => {
    if (request.headers.host !== undefined && !isOwnHost(request.headers.host, request.socket)) {
      return answer(response, 403, { error: 'the Host header does not name this endpoint: reach it by a loopback address' });
    }
    const path = new URL(request.url ?? '/', 'http://control').pathname;
    const route = `${request.method} ${path}`;
    if (route === 'GET /mode') return answer(response, 200, modeBody());
    if (route === 'GET /stats') return answer(response, 200, proxy.stats());
    if (route === 'PUT /mode') {
      readJson(request)
        .then((mode) => {
          proxy.setMode(mode as string);
          answer(response, 200, modeBody());
        })
        .catch((error: Error) => answer(response, error instanceof FaultModeError ? 400 : 500, { error: error.message }));
      return;
    }
    const known = path === '/mode' || path === '/stats';
    answer(response, known ? 405 : 404, { error: known ? `${request.method} is not supported on ${path}` : `no such resource ${path}: use /mode or /stats` });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
