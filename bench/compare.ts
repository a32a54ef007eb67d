/**
 * `npx tsx bench/compare.ts [-- options]`: SendMessage at 32 clients against the bare server and the
 * shims of one or more checkouts (`--root DIR`, repeatable; an earlier commit can be exported with
 * `git archive <commit> | tar -x -C DIR` and DIR/node_modules linked to this one's). They take
 * turns, round after round, so that all meet the same background load of a shared machine; the
 * report gives the median of the rounds: requests per second, that as a share of the bare server's,
 * and CPU time per request of the server's main thread (its event loop) and of its whole process.
 * `--postgres`: the shims on PostgreSQL (a throwaway cluster, a database for each) instead of SQLite.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { createDatabase, startCluster } from '../testkit/postgres-cluster.js';
import { type ShimProcess, spawnShim } from '../testkit/shim-process.js';
import { spawnBare } from './bare-process.js';
import { LoadGenerator, type PreparedRequest } from './load.js';
import { cpuSeconds } from './proc-stats.js';
import { type Credentials, Signer } from './sign.js';

const { values: options } = parseArgs({
  options: {
    root: { type: 'string', multiple: true },
    clients: { type: 'string', default: '32' },
    seconds: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '5' },
    postgres: { type: 'boolean', default: false },
  },
});
const ROOTS = options.root ?? [fileURLToPath(new URL('..', import.meta.url))];
const CLIENTS = Number(options.clients);
const CREDENTIALS: Credentials = { accessKeyId: 'AKIDHOLDFASTBENCH', secretAccessKey: 'holdfast-bench-secret' };

interface Server {
  readonly name: string;
  readonly origin: string;
  readonly pid: number;
  readonly requests: PreparedRequest[];
}

interface Round {
  readonly requestsPerSecond: number;
  readonly mainMicros: number;
  readonly processMicros: number;
}

async function sendMessages(url: string, shim: boolean): Promise<PreparedRequest[]> {
  const endpoint = new URL(url);
  const signer = new Signer('us-east-1', CREDENTIALS);
  let queueUrl = `${url}/000000000000/compare`;
  if (shim) {
    const body = JSON.stringify({ QueueName: 'compare' });
    const created = await request(endpoint, { method: 'POST', headers: await signer.sign(endpoint, 'CreateQueue', body), body });
    queueUrl = ((await created.body.json()) as { QueueUrl: string }).QueueUrl;
  }
  return Promise.all(
    Array.from({ length: 64 }, async (_, index) => {
      const body = JSON.stringify({ QueueUrl: queueUrl, MessageBody: `bench message ${index} ${'x'.repeat(80)}` });
      return { path: endpoint.pathname, headers: await signer.sign(endpoint, 'SendMessage', body), body };
    }),
  );
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const dir = mkdtempSync(join(tmpdir(), 'holdfast-compare-'));
const cluster = options.postgres ? await startCluster() : undefined;
const bare = await spawnBare();
const shims: ShimProcess[] = [];
const generator = new LoadGenerator(1);
try {
  const servers: Server[] = [{ name: 'bare', origin: bare.url, pid: bare.pid, requests: await sendMessages(bare.url, false) }];
  for (const [index, root] of ROOTS.entries()) {
    const dbFile = cluster ? await createDatabase(cluster.url, `compare_${index}`) : join(dir, `shim-${index}.db`);
    const shim = await spawnShim({ root, dbFile, credentials: [`${CREDENTIALS.accessKeyId}:${CREDENTIALS.secretAccessKey}`] });
    shims.push(shim);
    servers.push({ name: root, origin: shim.url, pid: shim.pid, requests: await sendMessages(shim.url, true) });
  }
  for (const server of servers) await generator.run({ origin: server.origin, clients: 8, durationMs: 1000, requests: server.requests });
  const rounds = new Map<string, Round[]>(servers.map((server) => [server.name, []]));
  for (let round = 0; round < Number(options.rounds); round++) {
    for (const server of servers) {
      const [main, all] = [cpuSeconds(server.pid, server.pid), cpuSeconds(server.pid)];
      const result = await generator.run({ origin: server.origin, clients: CLIENTS, durationMs: Number(options.seconds) * 1000, requests: server.requests });
      if (result.errors > 0) throw new Error(`${server.name}: ${result.errors} errors, e.g. ${result.errorSample}`);
      const micros = (seconds: number) => (seconds / result.requests) * 1e6;
      rounds.get(server.name)!.push({
        requestsPerSecond: result.requestsPerSecond,
        mainMicros: micros(cpuSeconds(server.pid, server.pid) - main),
        processMicros: micros(cpuSeconds(server.pid) - all),
      });
      console.error(`round ${round + 1}: ${server.name} ${result.requestsPerSecond.toFixed(0)} req/s`);
    }
  }
  const bareRate = median(rounds.get('bare')!.map((round) => round.requestsPerSecond));
  console.log(`SendMessage at ${CLIENTS} clients, medians of ${options.rounds} rounds of ${options.seconds} s taken in turns:\n`);
  console.log('| server | requests/s | of bare | main thread µs/request | process µs/request |\n| --- | ---: | ---: | ---: | ---: |');
  for (const [name, results] of rounds) {
    const rate = median(results.map((round) => round.requestsPerSecond));
    const cell = (pick: (round: Round) => number) => median(results.map(pick)).toFixed(1);
    console.log(`| ${name} | ${rate.toFixed(0)} | ${((rate / bareRate) * 100).toFixed(0)}% | ${cell((round) => round.mainMicros)} | ${cell((round) => round.processMicros)} |`);
  }
} finally {
  await generator.close();
  bare.child.kill('SIGTERM');
  await Promise.all(shims.map((shim) => shim.stop('SIGTERM')));
  cluster?.discard();
  rmSync(dir, { recursive: true, force: true });
}
