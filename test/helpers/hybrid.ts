import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteMessageBatchCommand, GetQueueUrlCommand, type Message, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { StartOptions } from '../../edge-shim/src/shim.js';
import { FaultProxy } from '../../testkit/fault-proxy.js';
import { emulator } from './emulator.js';
import { postgresDatabase } from './postgres.js';
import { TEST_CREDENTIALS, type TestShim, startTestShim, testEngine } from './shim.js';

export interface HybridTest extends TestShim {
  /** Between the shim and the region: cut it, and mend it, with `proxy.setMode`. */
  readonly proxy: FaultProxy;
  /** A client of the region itself, to check from the outside what reached it. */
  readonly region: SQSClient;
  /** Stops the shim and starts it again on the same database, proxy and options (some changed by `changes`). */
  restart(changes?: StartOptions): Promise<HybridTest>;
}

/**
 * Settings that make a test's outage short: the region is probed ten times a second and a probe
 * gives up after a second, three failures in a row take the edge offline, three probes in a row over
 * 300 ms bring it back; a request may take 3 s (the emulator is slow on a loaded machine).
 */
export const FAST_HYBRID: StartOptions = {
  upstreamTimeoutMs: 3000,
  probeIntervalMs: 100,
  probeTimeoutMs: 1000,
  breakerFailures: 3,
  recoveryProbes: 3,
  recoveryMs: 300,
};

/**
 * An access policy that lets the test's key (and the loopback client) do everything to every
 * queue, as the edge did before it had one: for tests of routing across queues of any kind, the
 * region's own included. The default policy is tested in test/security/.
 */
export function openAccessPolicy(): string {
  openPolicyFile ??= (() => {
    const file = join(mkdtempSync(join(tmpdir(), 'holdfast-open-policy-')), 'policy.json');
    const everything = [{ allow: ['*', 'permissions', 'delete', 'purge', 'move'], queues: ['*'] }];
    writeFileSync(file, JSON.stringify({ keys: { [TEST_CREDENTIALS.accessKeyId]: everything, anonymous: everything } }));
    return file;
  })();
  return openPolicyFile;
}
let openPolicyFile: string | undefined;

/** Where a test's fallback agents keep their stores: a file in `dir` on SQLite, the site's own database on PostgreSQL. */
export function agentsDatabase(dir: string): StartOptions {
  return testEngine() === 'sqlite' ? { edgeDbFile: join(dir, 'edge-agents.db') } : {};
}

/**
 * A hybrid shim in front of the emulator (the region), through a fault proxy; `region` names
 * another emulator (a test's own moto) instead of the shared one.
 */
export async function startHybridTest(options: StartOptions = {}, region?: { readonly endpoint: string }): Promise<HybridTest> {
  const aws = region ? { ...emulator(), endpoint: region.endpoint } : emulator();
  const through = await FaultProxy.start({ target: new URL(aws.endpoint).host });
  // The database outlives a restart: it is in a directory of its own, not the shim's (or a PostgreSQL database of its own).
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-hybrid-'));
  let settings: StartOptions = {
    dbFile: testEngine() === 'postgres' ? (await postgresDatabase()).url : join(dir, 'edge.db'),
    upstream: `http://${through.address}`,
    upstreamRegion: aws.region,
    // The emulator serves DynamoDB on the same port: the sync of fallback agents goes through the proxy too.
    regionDynamoDb: `http://${through.address}`,
    upstreamCredentials: aws.credentials,
    ...FAST_HYBRID,
    ...options,
  };
  const start = async (): Promise<HybridTest> => {
    const shim = await startTestShim(settings);
    const region = new SQSClient({ endpoint: aws.endpoint, region: aws.region, credentials: aws.credentials });
    const stop = async () => {
      region.destroy();
      shim.sqs.destroy();
      await shim.shim.close();
      rmSync(shim.dir, { recursive: true, force: true });
    };
    return {
      ...shim,
      proxy: through,
      region,
      async restart(changes = {}) {
        await stop();
        settings = { ...settings, ...changes };
        return start();
      },
      async close() {
        await stop();
        await through.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  };
  return start();
}

/**
 * Everything the region's queue holds, received and deleted, in the order received; the queue is
 * empty once a receive waiting a second finds nothing.
 */
export async function drainRegion(region: SQSClient, name: string): Promise<Message[]> {
  const QueueUrl = (await region.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl!;
  const all: Message[] = [];
  for (;;) {
    const { Messages } = await region.send(
      new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageSystemAttributeNames: ['All'], MessageAttributeNames: ['All'] }),
    );
    if (!Messages) return all;
    all.push(...Messages);
    const Entries = Messages.map((message, index) => ({ Id: `d${index}`, ReceiptHandle: message.ReceiptHandle }));
    await region.send(new DeleteMessageBatchCommand({ QueueUrl, Entries }));
  }
}
