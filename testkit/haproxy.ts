import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../functions/src/local-pipeline/moto.js';
import { ensureDebianPackages } from './debian-packages.js';

const HAPROXY = '/usr/sbin/haproxy';
const START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5000;

// What a client is told while no node is in service (quoted for HAProxy's configuration).
const NO_NODE = 'No node of the edge site is in service; try again.';
const NO_NODE_JSON = `{\\"__type\\":\\"com.amazonaws.sqs#ServiceUnavailable\\",\\"message\\":\\"${NO_NODE}\\"}`;
const NO_NODE_XML = `<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code><Message>${NO_NODE}</Message></Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>`;

/** A server behind the balancer: an edge shim node's SQS listener. */
export interface Backend {
  readonly name: string;
  /** host:port */
  readonly address: string;
}

export interface LoadBalancerOptions {
  /** What the health check asks each backend (default /health, the shim's). */
  readonly healthPath?: string;
  /** How often each backend is checked, in ms (default 500). */
  readonly checkIntervalMs?: number;
}

/** HAProxy on a free loopback port in front of `backends`, as a site puts one before its shim nodes. */
export interface LoadBalancer {
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/**
 * The configuration a site would give HAProxy before its shim nodes, on loopback: HTTP mode, round
 * robin, each node health-checked on `/health` (a node whose database is unreachable answers 503
 * there and is taken out), a request whose connection to a node failed (the node is gone) sent to
 * another, and client and server timeouts above SQS's 20 s long polls. While no node is in service
 * it answers 503 ServiceUnavailable itself, in the client's protocol (JSON for a request with
 * X-Amz-Target, else the Query protocol's XML), which SDKs retry; its own HTML page would reach them
 * as an answer they cannot read.
 */
export function haproxyConfig(port: number, backends: readonly Backend[], options: LoadBalancerOptions = {}): string {
  const interval = options.checkIntervalMs ?? 500;
  return [
    'global',
    '  maxconn 4096',
    'defaults',
    '  mode http',
    '  timeout connect 2s',
    '  timeout client 60s',
    '  timeout server 60s',
    '  timeout http-keep-alive 10s',
    // A connection that could not be made is retried, on another node: the request never reached one.
    '  retries 2',
    '  option redispatch',
    'frontend sqs',
    `  bind 127.0.0.1:${port}`,
    `  http-request return status 503 content-type application/x-amz-json-1.0 string "${NO_NODE_JSON}" if { nbsrv(nodes) eq 0 } { req.hdr(x-amz-target) -m found }`,
    `  http-request return status 503 content-type text/xml string "${NO_NODE_XML}" if { nbsrv(nodes) eq 0 }`,
    '  default_backend nodes',
    'backend nodes',
    '  balance roundrobin',
    `  option httpchk GET ${options.healthPath ?? '/health'}`,
    '  http-check expect status 200',
    `  default-server inter ${interval} fall 2 rise 2`,
    ...backends.map((backend) => `  server ${backend.name} ${backend.address} check`),
    '',
  ].join('\n');
}

/** Starts Debian's HAProxy (installed when missing) in the foreground on a temporary configuration. */
export async function startHaproxy(backends: readonly Backend[], options: LoadBalancerOptions = {}): Promise<LoadBalancer> {
  ensureDebianPackages(['haproxy'], () => existsSync(HAPROXY), HAPROXY);
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-haproxy-'));
  const port = await freePort();
  const config = join(dir, 'haproxy.cfg');
  writeFileSync(config, haproxyConfig(port, backends, options));
  const child: ChildProcess = spawn(HAPROXY, ['-db', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit');
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const grace = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(grace);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`haproxy did not start listening on 127.0.0.1:${port}: ${stderr.trim()}`);
    }
    await sleep(50);
  }
  return { url: `http://127.0.0.1:${port}`, pid: child.pid!, stop };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
