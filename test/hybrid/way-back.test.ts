import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListQueueTagsCommand,
  SQSClient,
  SendMessageBatchCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { RECREATED_TAG } from '../../edge-shim/src/hybrid/region/region.js';
import type { StartOptions } from '../../edge-shim/src/shim.js';
import { METRICS_PREFIX } from '../../edge-shim/src/observability/metrics.js';
import { type Moto, startMoto } from '../../functions/src/local-pipeline/moto.js';
import { FaultProxy } from '../../testkit/fault-proxy.js';
import { RegionStandIn, awsJsonError } from '../../testkit/region-stand-in.js';
import { FAST_HYBRID, drainRegion } from '../helpers/hybrid.js';
import { parseExposition, sampleValue } from '../helpers/prometheus.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';
import { eventually } from '../helpers/wait.js';

// The way back into a region that changed while the edge was cut off: its queues gone (a stack
// redeployed, a queue deleted by hand, an emulator restarted). Each test has a moto of its own,
// which it empties (moto's reset: a restart without the restart), behind a stand-in that can refuse
// what the edge asks and a fault proxy that cuts the link.

interface Site {
  readonly moto: Moto;
  readonly standIn: RegionStandIn;
  readonly proxy: FaultProxy;
  readonly edge: TestShim;
  /** A client of the region itself. */
  readonly region: SQSClient;
}

const sites: Site[] = [];
afterEach(async () => {
  for (const site of sites.splice(0)) {
    site.region.destroy();
    await site.edge.close();
    await site.proxy.close();
    await site.standIn.close();
    await site.moto.stop();
  }
});

async function startSite(options: StartOptions = {}): Promise<Site> {
  const moto = await startMoto();
  const standIn = await RegionStandIn.start(moto.endpoint);
  const proxy = await FaultProxy.start({ target: new URL(standIn.url).host });
  const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
  const edge = await startTestShim({ ...FAST_HYBRID, ...options, upstream: `http://${proxy.address}`, upstreamRegion: 'us-east-1', upstreamCredentials: credentials });
  const site = { moto, standIn, proxy, edge, region: new SQSClient({ endpoint: moto.endpoint, region: 'us-east-1', credentials }) };
  sites.push(site);
  return site;
}

/** Empties the region: every queue gone, as after a restart of the emulator. */
async function emptyRegion(moto: Moto): Promise<void> {
  const response = await fetch(`${moto.endpoint}/moto-api/reset`, { method: 'POST' });
  expect(response.ok).toBe(true);
}

describe('a region that lost its queues', () => {
  it('creates them again from the edge\'s copy (dead-letter queue first, tagged), then replays into them in order', { timeout: 90_000 }, async () => {
    const { moto, proxy, edge, region } = await startSite();
    const deadLetter = (await edge.sqs.send(new CreateQueueCommand({ QueueName: 'orders-dlq.fifo', Attributes: { FifoQueue: 'true' } }))).QueueUrl!;
    const { Attributes } = await edge.sqs.send(new GetQueueAttributesCommand({ QueueUrl: deadLetter, AttributeNames: ['QueueArn'] }));
    const redrive = JSON.stringify({ deadLetterTargetArn: Attributes!.QueueArn, maxReceiveCount: 3 });
    const orders = (
      await edge.sqs.send(new CreateQueueCommand({ QueueName: 'orders.fifo', Attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'true', VisibilityTimeout: '45', RedrivePolicy: redrive } }))
    ).QueueUrl!;

    proxy.setMode('blackhole');
    await eventually(() => edge.shim.status(), (status) => status.mode === 'offline');
    for (let i = 0; i < 12; i += 1) await edge.sqs.send(new SendMessageCommand({ QueueUrl: orders, MessageBody: `order ${i}`, MessageGroupId: `g${i % 3}` }));
    await emptyRegion(moto);
    proxy.setMode('pass');
    await eventually(() => edge.shim.status(), (status) => status.mode === 'online' && status.backlog === 0, 100);

    const url = (await region.send(new GetQueueUrlCommand({ QueueName: 'orders.fifo' }))).QueueUrl!;
    const { Tags } = await region.send(new ListQueueTagsCommand({ QueueUrl: url }));
    expect(Tags?.[RECREATED_TAG]).toMatch(/^\d{4}-\d\d-\d\dT/);
    const recreated = (await region.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }))).Attributes!;
    expect(recreated).toMatchObject({ FifoQueue: 'true', ContentBasedDeduplication: 'true', VisibilityTimeout: '45' });
    expect(JSON.parse(recreated.RedrivePolicy!)).toMatchObject({ maxReceiveCount: 3 });
    expect(JSON.parse(recreated.RedrivePolicy!).deadLetterTargetArn).toMatch(/:orders-dlq\.fifo$/);
    await region.send(new GetQueueUrlCommand({ QueueName: 'orders-dlq.fifo' }));
    const replayed = await drainRegion(region, 'orders.fifo');
    expect(replayed).toHaveLength(12);
    for (const group of ['g0', 'g1', 'g2']) {
      const bodies = replayed.filter((message) => message.Attributes?.MessageGroupId === group).map((message) => Number(message.Body!.split(' ')[1]));
      expect(bodies).toEqual([...bodies].sort((a, b) => a - b));
    }
  });

  it('creates a lost queue once when several of the replay\'s workers meet its loss at once', { timeout: 90_000 }, async () => {
    const { moto, standIn, edge, region } = await startSite();
    await edge.sqs.send(new CreateQueueCommand({ QueueName: 'lost', Attributes: { VisibilityTimeout: '45' } }));
    // On PostgreSQL, the site's view reads the queue at its next refresh (the replay meets a lost queue by its backlog, which the view has counted).
    await edge.shim.hybrid!.view.refresh();
    await emptyRegion(moto);
    let creations = 0;
    standIn.rule = ({ operation, input }) => {
      if (operation === 'CreateQueue' && input.QueueName === 'lost') creations += 1;
      return undefined;
    };
    // Two at once, as two workers' batches answered QueueDoesNotExist ask for it.
    const [url, again] = await Promise.all([edge.shim.hybrid!.region.recreate('lost'), edge.shim.hybrid!.region.recreate('lost')]);
    expect(again).toBe(url);
    expect(creations).toBe(1);
    const { Attributes } = await region.send(new GetQueueAttributesCommand({ QueueUrl: (await region.send(new GetQueueUrlCommand({ QueueName: 'lost' }))).QueueUrl!, AttributeNames: ['VisibilityTimeout'] }));
    expect(Attributes?.VisibilityTimeout).toBe('45');
  });

  it('leaves to the edge a send under way when the edge goes offline, rather than pass on what a region that came back without the queue answers it', { timeout: 90_000 }, async () => {
    // A request may wait long, so that only the edge going offline can end it early.
    const { standIn, edge, region } = await startSite({ upstreamTimeoutMs: 60_000 });
    const queueUrl = (await edge.sqs.send(new CreateQueueCommand({ QueueName: 'straddling' }))).QueueUrl!;
    let sendHeld = false;
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    standIn.rule = async ({ operation }) => {
      if (operation === 'SendMessage') {
        sendHeld = true;
        await released;
        return awsJsonError(400, 'QueueDoesNotExist', 'The specified queue does not exist.', 'AWS.SimpleQueueService.NonExistentQueue');
      }
      // Once the send is under way, the region fails the probes: the edge goes offline.
      return operation === 'ListQueues' && sendHeld ? awsJsonError(500, 'InternalError', 'the region is failing') : undefined;
    };
    const sending = edge.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'straddles the cut' }));
    await eventually(() => sendHeld, Boolean);
    await eventually(() => edge.shim.status(), (status) => status.mode === 'offline');
    release();
    expect((await sending).MessageId).toBeDefined();
    expect((await edge.shim.status()).backlog).toBe(1);
    standIn.rule = undefined;
    await eventually(() => edge.shim.status(), (status) => status.mode === 'online' && status.backlog === 0, 100);
    expect((await drainRegion(region, 'straddling')).map((message) => message.Body)).toEqual(['straddles the cut']);
  });

  it('parks the replay of a queue the region refuses to create again, says why, and replays the others', { timeout: 90_000 }, async () => {
    const { moto, standIn, proxy, edge, region } = await startSite();
    const refused = (await edge.sqs.send(new CreateQueueCommand({ QueueName: 'refused' }))).QueueUrl!;
    const other = (await edge.sqs.send(new CreateQueueCommand({ QueueName: 'other' }))).QueueUrl!;
    proxy.setMode('blackhole');
    await eventually(() => edge.shim.status(), (status) => status.mode === 'offline');
    await edge.sqs.send(new SendMessageCommand({ QueueUrl: refused, MessageBody: 'waits' }));
    await edge.sqs.send(new SendMessageCommand({ QueueUrl: other, MessageBody: 'goes' }));
    await emptyRegion(moto);
    standIn.rule = ({ operation, input }) =>
      operation === 'CreateQueue' && input.QueueName === 'refused' ? awsJsonError(400, 'AccessDenied', 'User is not authorized to perform: sqs:CreateQueue') : undefined;
    proxy.setMode('pass');

    const waiting = await eventually(
      () => edge.shim.status(),
      (status) => status.queues.find((queue) => queue.name === 'refused')?.replayWaits !== null && status.queues.find((queue) => queue.name === 'other')?.backlog === 0,
      100,
    );
    expect(waiting.queues.find((queue) => queue.name === 'refused')!.replayWaits).toMatch(/cannot create it again: .*AccessDenied/);
    expect(waiting.queues.find((queue) => queue.name === 'refused')!.backlog).toBe(1);
    expect((await drainRegion(region, 'other')).map((message) => message.Body)).toEqual(['goes']);
  });
});

describe('queue priorities', () => {
  it('replays the queue of higher priority first when the path has room for one batch at a time', { timeout: 90_000 }, async () => {
    const moto = await startMoto();
    const standIn = await RegionStandIn.start(moto.endpoint);
    const proxy = await FaultProxy.start({ target: new URL(standIn.url).host });
    const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
    const dir = mkdtempSync(join(tmpdir(), 'holdfast-priorities-'));
    const queuesFile = join(dir, 'queues.json');
    writeFileSync(queuesFile, JSON.stringify({ queues: [{ name: 'telemetry', attributes: {}, priority: -10 }, { name: 'payments', attributes: {}, priority: 10 }] }));
    const edge = await startTestShim({ ...FAST_HYBRID, upstream: `http://${proxy.address}`, upstreamRegion: 'us-east-1', upstreamCredentials: credentials, queuesFile, replayConcurrency: 1 });
    const site = { moto, standIn, proxy, edge, region: new SQSClient({ endpoint: moto.endpoint, region: 'us-east-1', credentials }) };
    sites.push(site);
    rmSync(dir, { recursive: true, force: true });

    proxy.setMode('blackhole');
    await eventually(() => edge.shim.status(), (status) => status.mode === 'offline');
    const urls = { telemetry: `${edge.shim.url}/000000000000/telemetry`, payments: `${edge.shim.url}/000000000000/payments` };
    // Telemetry first at the edge: the replay goes by priority, not by age.
    for (const name of ['telemetry', 'payments'] as const) {
      for (let batch = 0; batch < 3; batch += 1) {
        await edge.sqs.send(new SendMessageBatchCommand({ QueueUrl: urls[name], Entries: Array.from({ length: 10 }, (_, i) => ({ Id: `m${i}`, MessageBody: `${name} ${batch * 10 + i}` })) }));
      }
    }
    proxy.setMode('pass');
    await eventually(() => edge.shim.status(), (status) => status.mode === 'online' && status.backlog === 0, 100);
    const sentAt = async (name: string) => (await drainRegion(site.region, name)).map((message) => Number(message.Attributes!.SentTimestamp));
    const payments = await sentAt('payments');
    const telemetry = await sentAt('telemetry');
    expect(payments).toHaveLength(30);
    expect(telemetry).toHaveLength(30);
    // At most the one batch that got the room before the payments' waited for it went ahead of them.
    const lastPayment = Math.max(...payments);
    expect(telemetry.filter((at) => at < lastPayment).length).toBeLessThanOrEqual(10);
  });
});

describe('a thin link', () => {
  it('passes live sends through while a replay holds the link, instead of timing them out into the edge\'s store', { timeout: 120_000 }, async () => {
    const { proxy, edge, region } = await startSite({ upstreamTimeoutMs: 1500 });
    const urls = {
      bulk: (await edge.sqs.send(new CreateQueueCommand({ QueueName: 'bulk' }))).QueueUrl!,
      live: (await edge.sqs.send(new CreateQueueCommand({ QueueName: 'live' }))).QueueUrl!,
    };
    proxy.setMode('blackhole');
    await eventually(() => edge.shim.status(), (status) => status.mode === 'offline');
    // 16 messages of 48 KiB: twelve seconds of a 512 kbit/s link, where a batch of several of them
    // sent at once holds a live request behind it for longer than its usual timeout (1.5 s here).
    const body = 'x'.repeat(48 * 1024);
    for (let batch = 0; batch < 4; batch += 1) {
      await edge.sqs.send(new SendMessageBatchCommand({ QueueUrl: urls.bulk, Entries: Array.from({ length: 4 }, (_, i) => ({ Id: `m${i}`, MessageBody: `${batch * 4 + i} ${body}` })) }));
    }
    proxy.setMode({ kind: 'link', upstreamBytesPerSecond: 65_536, downstreamBytesPerSecond: 65_536, upstreamMs: 50, downstreamMs: 50 });
    await eventually(() => edge.shim.status(), (status) => status.mode === 'replaying');
    let sentDuringReplay = 0;
    for (let i = 0; i < 8; i += 1) {
      await edge.sqs.send(new SendMessageCommand({ QueueUrl: urls.live, MessageBody: `live ${i} ${'y'.repeat(1000)}` }));
      const status = await edge.shim.status();
      if (status.mode === 'replaying' && status.backlog > 0) sentDuringReplay += 1;
    }
    await eventually(() => edge.shim.status(), (status) => status.mode === 'online' && status.backlog === 0, 100);
    // The measure means something only if the replay held the link while live sends went.
    expect(sentDuringReplay).toBeGreaterThanOrEqual(4);
    const families = parseExposition(await (await fetch(`${edge.shim.adminUrl}/metrics`)).text());
    const value = (metric: string, labels: Record<string, string>) => sampleValue(families, `${METRICS_PREFIX}${metric}`, labels) ?? 0;
    // Each live send went to the region as it came (none stored and replayed), every bulk message was replayed.
    expect(value('requests_total', { action: 'SendMessage', path: 'upstream' })).toBe(8);
    expect(value('messages_replayed_total', { queue: 'live' })).toBe(0);
    expect(value('messages_replayed_total', { queue: 'bulk' })).toBe(16);
    proxy.setMode('pass');
    expect((await drainRegion(region, 'live')).map((message) => message.Body!.split(' ').slice(0, 2).join(' '))).toEqual(Array.from({ length: 8 }, (_, i) => `live ${i}`));
    expect(await drainRegion(region, 'bulk')).toHaveLength(16);
  });
});
