/**
 * What the hybrid benchmarks share (bench/hybrid.ts, bench/way-back*.ts): SQS endpoints signed by the
 * benchmark, a hybrid shim in its own process with its log kept, and where a run comes from.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import type { EdgeStatus } from '../edge-shim/src/observability/status.js';
import { type ShimProcess, spawnShim } from '../testkit/shim-process.js';
import { type Credentials, Signer } from './sign.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const RESULTS = join(ROOT, 'bench', 'results');
export const REGION = 'us-east-1';
// The shim's clients sign with these; the shim signs its calls to the region with the emulator's.
export const SHIM_CREDENTIALS: Credentials = { accessKeyId: 'AKIDHOLDFASTBENCH', secretAccessKey: 'holdfast-bench-secret' };
export const REGION_CREDENTIALS: Credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };

/** Somewhere SQS requests can be sent: the region itself, or a shim in front of it. */
export interface Endpoint {
  readonly name: string;
  readonly url: URL;
  readonly signer: Signer;
  readonly credentials: Credentials;
  readonly pid: number;
}

export const endpoint = (name: string, url: string, credentials: Credentials, pid: number): Endpoint => ({
  name,
  url: new URL(url.endsWith('/') ? url : `${url}/`),
  signer: new Signer(REGION, credentials),
  credentials,
  pid,
});

/** An SQS request in the JSON protocol; throws on any answer but 200. */
export async function call(target: Endpoint, action: string, input: Record<string, unknown>, timeoutMs?: number): Promise<Record<string, unknown>> {
  const body = JSON.stringify(input);
  const headers = await target.signer.sign(target.url, action, body);
  const response = await request(target.url, { method: 'POST', headers, body, ...(timeoutMs !== undefined && { headersTimeout: timeoutMs, bodyTimeout: timeoutMs }) });
  const text = await response.body.text();
  if (response.statusCode !== 200) throw new Error(`${target.name} ${action}: HTTP ${response.statusCode} ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

export const queueUrl = async (target: Endpoint, name: string, attributes: Record<string, string> = {}) =>
  (await call(target, 'CreateQueue', { QueueName: name, Attributes: attributes })).QueueUrl as string;

/** Every message a queue holds: visible, in flight and delayed. */
export async function messagesIn(target: Endpoint, url: string): Promise<number> {
  const { Attributes } = await call(target, 'GetQueueAttributes', {
    QueueUrl: url,
    AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
  });
  return Object.values(Attributes as Record<string, string>).reduce((sum, value) => sum + Number(value), 0);
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const percentile = (sorted: readonly number[], fraction: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)]!);

/** A shim log line (pino's JSON). */
export interface LogLine {
  /** Milliseconds since the epoch. */
  readonly time: number;
  readonly msg: string;
  readonly [key: string]: unknown;
}

/** A hybrid shim in its own process, with its log lines kept for reading. */
export interface HybridShim {
  readonly process: ShimProcess;
  readonly endpoint: Endpoint;
  readonly log: LogLine[];
  status(): Promise<EdgeStatus>;
  /** Polls the status until `done` holds, and returns that status. */
  until(done: (status: EdgeStatus) => boolean, what: string, timeoutMs?: number): Promise<EdgeStatus>;
}

export interface HybridShimOptions {
  /** Node options, e.g. --cpu-prof. */
  readonly nodeOptions?: readonly string[];
  /** Another checkout whose shim to run (an earlier commit, for "before" rows). */
  readonly root?: string;
}

/** A hybrid shim (in front of `upstream`, signing with the region's credentials) in its own process. */
export async function startHybridShim(dir: string, name: string, upstream: string, args: readonly string[], options: HybridShimOptions = {}): Promise<HybridShim> {
  const shim = await spawnShim({
    dbFile: join(dir, `${name}.db`),
    credentials: [`${SHIM_CREDENTIALS.accessKeyId}:${SHIM_CREDENTIALS.secretAccessKey}`],
    args: ['--upstream', upstream, '--upstream-region', REGION, ...args],
    env: { AWS_ACCESS_KEY_ID: REGION_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: REGION_CREDENTIALS.secretAccessKey },
    nodeOptions: options.nodeOptions ?? [],
    ...(options.root !== undefined && { root: options.root }),
  });
  const log: LogLine[] = [];
  createInterface({ input: shim.child.stdout! }).on('line', (line) => {
    try {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      // The log's time is ISO 8601 text; the benchmarks compare it with Date.now().
      log.push({ ...parsed, time: Date.parse(String(parsed.time)) } as LogLine);
    } catch {
      // Not a log line.
    }
  });
  const status = async () => {
    const response = await request(`${shim.adminUrl}/status`);
    return (await response.body.json()) as EdgeStatus;
  };
  return {
    process: shim,
    endpoint: endpoint(name, shim.url, SHIM_CREDENTIALS, shim.pid),
    log,
    status,
    async until(done, what, timeoutMs = 30 * 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const current = await status();
        if (done(current)) return current;
        if (Date.now() > deadline) throw new Error(`${name}: not ${what} within ${timeoutMs / 1000} s: ${JSON.stringify({ mode: current.mode, backlog: current.backlog, lastError: current.replay?.lastError })}`);
        await sleep(100);
      }
    },
  };
}

export function motoVersion(): string {
  try {
    return execFileSync('python3', ['-c', 'import moto; print(moto.__version__)'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

/** The commit a checkout is at, and whether its shim has uncommitted changes. */
export function revision(root = ROOT): string {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return `${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--', 'edge-shim') ? ' with uncommitted changes' : ''}`;
  } catch {
    return 'outside git';
  }
}
