import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateQueueCommand, type Message, SendMessageBatchCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { EdgeStatus } from '../../edge-shim/src/observability/status.js';
import { type Moto, startMoto } from '../../functions/src/local-pipeline/moto.js';
import type { FaultMode, ModeName } from '../../testkit/fault-modes.js';
import { FaultProxy } from '../../testkit/fault-proxy.js';
import { type ShimProcess, spawnShim } from '../../testkit/shim-process.js';
import { drainRegion } from '../helpers/hybrid.js';
import { type Cluster, createDatabase, startCluster } from '../../testkit/postgres-cluster.js';
import { TEST_CREDENTIALS } from '../helpers/shim.js';
import { eventually } from '../helpers/wait.js';

// A hybrid edge site of two nodes on one PostgreSQL database, each a process of its own, in front of
// a region (moto) through a fault proxy: both take sends during an outage, the backlog and mode on
// /status are the site's, one node replays, and when it is SIGKILLed mid-replay the other takes over
// and finishes: nothing lost, nothing doubled in FIFO queues, each group in order.

let cluster: Cluster;
let moto: Moto;
let databases = 0;
const open: Array<() => Promise<void>> = [];

beforeAll(async () => {
  [cluster, moto] = await Promise.all([startCluster(), startMoto()]);
}, 180_000);
afterEach(async () => {
  for (const close of open.splice(0).reverse()) await close();
});
afterAll(async () => {
  await moto?.stop();
  cluster?.discard();
});

const REGION = 'us-east-1';
const REGION_CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };
const credential = `${TEST_CREDENTIALS.accessKeyId}:${TEST_CREDENTIALS.secretAccessKey}`;

/** A fresh database on the test's cluster. */
function database(): Promise<string> {
  databases += 1;
  return createDatabase(cluster.url, `hybrid_site_${databases}`);
}

interface Site {
  /** Between the nodes and the database, when asked for (`databaseLink`). */
  readonly databaseLink: FaultProxy | undefined;
  /** Each node's uplink to the region, by node: one proxy for both, unless each has its own. */
  readonly uplinks: readonly FaultProxy[];
  /** Sets the mode of every uplink of the site. */
  cut(mode: FaultMode | ModeName): void;
  readonly region: SQSClient;
  readonly nodes: ShimProcess[];
  /** A client of a node, as a producer at the site has it. */
  client(node: ShimProcess): SQSClient;
  status(node: ShimProcess): Promise<EdgeStatus>;
}

/**
 * Two hybrid nodes on one new database, in front of the region through one fault proxy (the site's
 * uplink), or through one each (`ownUplinks`), so that one node's path may fail while the other's
 * holds; with `databaseLink`, they reach the database through a fault proxy too.
 */
async function startSite(replayRate: number, { ownUplinks = false, databaseLink = false } = {}): Promise<Site> {
  const proxyTo = async (target: string) => {
    const proxy = await FaultProxy.start({ target });
    open.push(() => proxy.close());
    return proxy;
  };
  const direct = new URL(await database());
  const toDatabase = databaseLink ? await proxyTo(direct.host) : undefined;
  if (toDatabase) direct.host = toDatabase.address;
  const url = direct.toString();
  const uplink = () => proxyTo(new URL(moto.endpoint).host);
  const shared = await uplink();
  const uplinks = [shared, ownUplinks ? await uplink() : shared];
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-hybrid-site-'));
  open.push(async () => rmSync(dir, { recursive: true, force: true }));
  const policy = join(dir, 'policy.json');
  writeFileSync(policy, JSON.stringify({ keys: { [TEST_CREDENTIALS.accessKeyId]: [{ allow: ['*'], queues: ['*'] }] } }));
  const start = (proxy: FaultProxy) =>
    spawnShim({
      dbFile: url,
      credentials: [credential],
      args: [
        ...['--upstream', `http://${proxy.address}`, '--upstream-region', REGION, '--access-policy', policy],
        // A short outage: probed ten times a second, offline after 3 failures, back after 3 successes over 300 ms.
        ...['--upstream-timeout', '3s', '--probe-interval', '100ms', '--probe-timeout', '1s', '--breaker-failures', '3', '--recovery-probes', '3', '--recovery-time', '300ms'],
        ...['--replay-rate', String(replayRate)],
      ],
      env: { AWS_ACCESS_KEY_ID: REGION_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: REGION_CREDENTIALS.secretAccessKey },
    });
  const nodes = [await start(uplinks[0]!), await start(uplinks[1]!)];
  open.push(() => Promise.all(nodes.map((node) => node.stop('SIGKILL'))).then(() => {}));
  const clients: SQSClient[] = [];
  open.push(async () => clients.forEach((client) => client.destroy()));
  const region = new SQSClient({ endpoint: moto.endpoint, region: REGION, credentials: REGION_CREDENTIALS });
  clients.push(region);
  return {
    databaseLink: toDatabase,
    uplinks,
    cut(mode) {
      for (const proxy of new Set(uplinks)) proxy.setMode(mode);
    },
    region,
    nodes,
    client(node) {
      const client = new SQSClient({ endpoint: node.url, region: REGION, credentials: TEST_CREDENTIALS });
      clients.push(client);
      return client;
    },
    async status(node) {
      return (await (await fetch(`${node.adminUrl}/status`)).json()) as EdgeStatus;
    },
  };
}

const fifo = { FifoQueue: 'true', ContentBasedDeduplication: 'true' };
const GROUPS = 6;

/** Sends `count` messages through the nodes in turn, in batches of 10: FIFO bodies `g<group>-<n>` in each group's order. */
async function sendThroughBoth(clients: readonly SQSClient[], queueUrls: readonly string[], name: string, count: number): Promise<string[]> {
  const bodies = Array.from({ length: count }, (_, index) => `g${index % GROUPS}-${Math.floor(index / GROUPS)}`);
  for (let start = 0; start < count; start += 10) {
    const node = (start / 10) % clients.length;
    const Entries = bodies.slice(start, start + 10).map((MessageBody, index) => ({ Id: `e${index}`, MessageBody, MessageGroupId: MessageBody.split('-')[0] }));
    const { Failed } = await clients[node]!.send(new SendMessageBatchCommand({ QueueUrl: queueUrls[node]!, Entries }));
    expect(Failed ?? [], `a batch through node ${node} of ${name}`).toEqual([]);
  }
  return bodies;
}

/** Each group's bodies, in the order the region gave them. */
function byGroup(messages: readonly Message[]): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const { Body } of messages) {
    const group = Body!.split('-')[0]!;
    groups.set(group, [...(groups.get(group) ?? []), Body!]);
  }
  return groups;
}

it('takes sends on both nodes during an outage, shows the site\'s backlog on each, and has one node replay it, taken over when that node is SIGKILLed', { timeout: 240_000 }, async () => {
  // 40 messages a second: the 300 sent take several seconds to replay, long enough to kill the replaying node in the middle.
  const site = await startSite(40);
  const [a, b] = site.nodes as [ShimProcess, ShimProcess];
  const clients = [site.client(a), site.client(b)];
  const name = `site-${randomUUID().slice(0, 8)}.fifo`;
  const { QueueUrl } = await clients[0]!.send(new CreateQueueCommand({ QueueName: name, Attributes: fifo }));
  const queueUrls = [QueueUrl!, `${b.url}${new URL(QueueUrl!).pathname}`];

  site.cut('blackhole');
  for (const node of [a, b]) await eventually(async () => (await site.status(node)).mode, (mode) => mode === 'offline', 200);
  const sent = await sendThroughBoth(clients, queueUrls, name, 300);
  // Each node shows the site's backlog, both nodes, and the site offline.
  for (const node of [a, b]) {
    const status = await eventually(() => site.status(node), (status) => status.backlog === 300 && status.site?.nodes.length === 2, 200);
    expect(status.site).toMatchObject({ mode: 'offline' });
    expect(status.site!.nodes.filter((node) => node.replays)).toHaveLength(1);
  }

  site.cut('pass');
  // The replaying node, once it has handed some of the backlog over.
  const replaying = await eventually(
    async () => {
      const status = await site.status(a);
      return status.backlog < 280 && status.backlog > 0 ? status.site!.nodes.find((node) => node.replays) : undefined;
    },
    (node) => node !== undefined,
    200,
  );
  const statuses = await Promise.all([site.status(a), site.status(b)]);
  const leader = statuses[0]!.site!.node === replaying!.name ? a : b;
  const survivor = leader === a ? b : a;
  await leader.stop('SIGKILL');
  const finished = await eventually(() => site.status(survivor), (status) => status.backlog === 0 && status.mode === 'online', 200);
  expect(finished.site!.nodes.find((node) => node.name === finished.site!.node)).toMatchObject({ replays: true });

  const received = await drainRegion(site.region, name);
  const bodies = received.map((message) => message.Body!);
  const lost = sent.filter((body) => !bodies.includes(body));
  const doubled = bodies.length - new Set(bodies).size;
  console.info(`hybrid site, replay leader SIGKILLed: sent ${sent.length}, acknowledged ${sent.length}, in the region ${bodies.length}, lost ${lost.length}, doubled ${doubled}`);
  expect(lost).toEqual([]);
  expect(doubled).toBe(0);
  // Each group in the order sent.
  for (const [group, inRegion] of byGroup(received)) expect(inRegion, group).toEqual(sent.filter((body) => body.startsWith(`${group}-`)));
});

it('keeps a producer\'s FIFO group in order when it sends through a node that stored its last message, then through one that passes sends through', { timeout: 240_000 }, async () => {
  const site = await startSite(40, { ownUplinks: true });
  const [a, b] = site.nodes as [ShimProcess, ShimProcess];
  const clients = [site.client(a), site.client(b)];
  const name = `order-${randomUUID().slice(0, 8)}.fifo`;
  const { QueueUrl } = await clients[0]!.send(new CreateQueueCommand({ QueueName: name, Attributes: fifo }));
  const queueUrls = [QueueUrl!, `${b.url}${new URL(QueueUrl!).pathname}`];
  // Node a loses its path to the region; node b keeps its own.
  site.uplinks[0]!.setMode('blackhole');
  await eventually(async () => (await site.status(a)).mode, (mode) => mode === 'offline', 200);
  expect((await site.status(b)).mode).toBe('online');
  // One producer, one group, its sends through a and b in turn, each once the one before was acknowledged.
  const sent = Array.from({ length: 20 }, (_, index) => `g0-${index}`);
  for (const [index, MessageBody] of sent.entries()) {
    await clients[index % 2]!.send(new SendMessageCommand({ QueueUrl: queueUrls[index % 2]!, MessageBody, MessageGroupId: 'g0' }));
  }
  site.uplinks[0]!.setMode('pass');
  for (const node of [a, b]) await eventually(() => site.status(node), (status) => status.backlog === 0 && status.mode === 'online', 200);
  const received = (await drainRegion(site.region, name)).map((message) => message.Body);
  expect(received).toEqual(sent);
});

it('passes sends through to the region while the site\'s database is down', { timeout: 240_000 }, async () => {
  const site = await startSite(40);
  const [a] = site.nodes as [ShimProcess, ShimProcess];
  const client = site.client(a);
  const name = `through-${randomUUID().slice(0, 8)}.fifo`;
  const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: name, Attributes: fifo }));
  await cluster.stop();
  try {
    // Whether the site holds a backlog cannot be asked: the view as last read says it does not, and the region takes the send.
    await client.send(new SendMessageCommand({ QueueUrl, MessageBody: 'g0-0', MessageGroupId: 'g0' }));
  } finally {
    await cluster.start();
  }
  expect((await drainRegion(site.region, name)).map((message) => message.Body)).toEqual(['g0-0']);
});

it('passes sends through to the region while the site\'s database does not answer at all', { timeout: 240_000 }, async () => {
  const site = await startSite(40, { databaseLink: true });
  const [a] = site.nodes as [ShimProcess, ShimProcess];
  const client = site.client(a);
  const name = `unanswered-${randomUUID().slice(0, 8)}.fifo`;
  const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: name, Attributes: fifo }));
  await eventually(() => site.status(a), (status) => status.queues.some((queue) => queue.name === name));
  // The database's packets are dropped, as by a partition: the node's question about the backlog waits, then its view decides.
  site.databaseLink!.setMode('blackhole');
  try {
    await client.send(new SendMessageCommand({ QueueUrl, MessageBody: 'g0-0', MessageGroupId: 'g0' }));
    // /status answers too, from the view as last read, while the database still does not.
    const status = await site.status(a);
    expect(status).toMatchObject({ mode: 'online' });
    expect(status.queues.map((queue) => queue.name)).toContain(name);
  } finally {
    site.databaseLink!.setMode('pass');
  }
  expect((await drainRegion(site.region, name)).map((message) => message.Body)).toEqual(['g0-0']);
});
