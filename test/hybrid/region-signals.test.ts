import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegionStandIn, awsJsonError } from '../../testkit/region-stand-in.js';
import { emulator } from '../helpers/emulator.js';
import { type HybridTest, drainRegion, startHybridTest } from '../helpers/hybrid.js';
import { expectSqsError } from '../helpers/sqs-errors.js';
import { eventually } from '../helpers/wait.js';

// What the edge makes of what the region answers: only what says the region is away takes it
// offline. The region here is the emulator behind a stand-in that answers, when told to, what an
// emulator never does: the edge's own credentials refused, server errors for one queue or for all,
// a page that is not SQS.

let region: RegionStandIn;
let edge: HybridTest;

beforeAll(async () => {
  region = await RegionStandIn.start(emulator().endpoint);
  edge = await startHybridTest({ upstream: region.url });
}, 60_000);

afterAll(async () => {
  await edge?.close();
  await region?.close();
});

async function queue(name: string): Promise<string> {
  return (await edge.sqs.send(new CreateQueueCommand({ QueueName: `${name}-${Date.now()}` }))).QueueUrl!;
}

const nameOf = (url: string) => url.split('/').pop()!;
const EXPIRED = awsJsonError(403, 'ExpiredToken', 'The security token included in the request is expired');

describe('the edge\'s own credentials refused', () => {
  it('goes offline saying so, stores and acknowledges sends meanwhile (producers never see the refusal), and replays once they are taken again', { timeout: 60_000 }, async () => {
    const orders = await queue('orders');
    region.rule = () => EXPIRED;
    try {
      // A producer's send: acknowledged by the edge, not refused with the shim's ExpiredToken.
      const sent = await edge.sqs.send(new SendMessageCommand({ QueueUrl: orders, MessageBody: 'kept' }));
      expect(sent.MessageId).toBeDefined();
      const offline = await eventually(() => edge.shim.status(), (status) => status.mode === 'offline');
      expect(offline.reason).toMatch(/refuses the edge's credentials: ExpiredToken/);
      expect(offline.reason).toMatch(/renew the credentials the shim runs with/);
      expect(offline.upstream!.credentialsRefused).toMatch(/ExpiredToken/);
      const health = (await (await request(`${edge.shim.url}/health`)).body.json()) as { status: string; attention?: string };
      expect(health.status).toBe('ok');
      expect(health.attention).toMatch(/ExpiredToken/);
      expect(offline.queues.find((entry) => entry.name === nameOf(orders))!.backlog).toBe(1);
    } finally {
      region.rule = undefined;
    }
    await eventually(() => edge.shim.status(), (status) => status.mode === 'online' && status.backlog === 0 && status.upstream!.credentialsRefused === null);
    expect((await drainRegion(edge.region, nameOf(orders))).map((message) => message.Body)).toEqual(['kept']);
  });

  it('keeps the refusal when a request signed before it is answered after it', { timeout: 60_000 }, async () => {
    const orders = await queue('late');
    let release!: () => void;
    const released = new Promise<undefined>((resolve) => (release = () => resolve(undefined)));
    let arrived!: () => void;
    const heldArrived = new Promise<void>((resolve) => (arrived = resolve));
    region.rule = ({ operation }) => {
      if (operation !== 'GetQueueAttributes') return undefined;
      arrived();
      return released;
    };
    try {
      // A lookup reaches the region and waits there; meanwhile the region starts refusing the credentials.
      // (A send under way when the edge goes offline is left to the edge: its answer never comes.)
      const early = edge.sqs.send(new GetQueueAttributesCommand({ QueueUrl: orders, AttributeNames: ['VisibilityTimeout'] }));
      await heldArrived;
      region.rule = () => EXPIRED;
      await edge.sqs.send(new SendMessageCommand({ QueueUrl: orders, MessageBody: 'refused, so kept' }));
      expect((await edge.shim.status()).upstream!.credentialsRefused).toMatch(/ExpiredToken/);
      // The early lookup's answer comes last: it tells nothing of the credentials now.
      release();
      expect((await early).Attributes?.VisibilityTimeout).toBeDefined();
      const status = await edge.shim.status();
      expect(status.upstream!.credentialsRefused).toMatch(/ExpiredToken/);
      expect(status.mode).toBe('offline');
    } finally {
      release();
      region.rule = undefined;
    }
    await eventually(() => edge.shim.status(), (status) => status.mode === 'online' && status.backlog === 0 && status.upstream!.credentialsRefused === null);
    expect((await drainRegion(edge.region, nameOf(orders))).map((message) => message.Body).sort()).toEqual(['refused, so kept']);
  });
});

describe('errors the region answers', () => {
  it('passes one queue\'s server errors to its client as the region answered them, and stays online', { timeout: 60_000 }, async () => {
    const broken = await queue('broken');
    const fine = await queue('fine');
    const before = (await edge.shim.status()).transitions.length;
    region.rule = ({ operation, input }) =>
      operation === 'SendMessage' && String(input.QueueUrl).endsWith(`/${nameOf(broken)}`) ? awsJsonError(500, 'InternalError', 'We encountered an internal error.') : undefined;
    try {
      // Twenty failures of one queue: its client retries them (the SDK's own retries, then its error).
      for (let i = 0; i < 20; i += 1) {
        await expectSqsError(edge.sqs.send(new SendMessageCommand({ QueueUrl: broken, MessageBody: `b${i}` })), { name: 'InternalError', status: 500 });
      }
      await edge.sqs.send(new SendMessageCommand({ QueueUrl: fine, MessageBody: 'fine' }));
    } finally {
      region.rule = undefined;
    }
    const status = await edge.shim.status();
    expect(status.mode).toBe('online');
    expect(status.transitions.length).toBe(before);
    // Nothing of the broken queue was stored at the edge: its client was told.
    expect(status.queues.find((entry) => entry.name === nameOf(broken))?.backlog ?? 0).toBe(0);
    expect((await drainRegion(edge.region, nameOf(fine))).map((message) => message.Body)).toEqual(['fine']);
  });

  it('answers a page that is not SQS as that request\'s error, retryable, and stays online', { timeout: 60_000 }, async () => {
    const orders = await queue('paged');
    const before = (await edge.shim.status()).transitions.length;
    region.rule = ({ operation }) => (operation === 'ReceiveMessage' ? { status: 200, headers: { 'content-type': 'text/html' }, body: '<html>Sign in to the network</html>' } : undefined);
    try {
      await expectSqsError(edge.sqs.send(new ReceiveMessageCommand({ QueueUrl: orders })), { name: 'ServiceUnavailable', status: 503 });
    } finally {
      region.rule = undefined;
    }
    const status = await edge.shim.status();
    expect(status.mode).toBe('online');
    expect(status.transitions.length).toBe(before);
  });

  it('goes offline in a brownout: most requests failing across queues', { timeout: 60_000 }, async () => {
    const queues = await Promise.all(['a', 'b', 'c'].map((name) => queue(`brownout-${name}`)));
    region.rule = ({ operation }) => (operation === 'ListQueues' ? undefined : awsJsonError(503, 'ServiceUnavailable', 'Service is unavailable.'));
    try {
      // Clients keep sending while the region fails them all: the edge takes it for an outage, and then stores.
      let stored = 0;
      for (let round = 0; round < 30 && stored === 0; round += 1) {
        for (const url of queues) {
          await edge.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: `m${round}` })).then(
            () => (stored += 1),
            () => undefined,
          );
        }
      }
      const offline = await eventually(() => edge.shim.status(), (status) => status.mode === 'offline');
      expect(offline.reason).toMatch(/circuit breaker opened/);
      expect(stored).toBeGreaterThan(0);
    } finally {
      region.rule = undefined;
    }
    await eventually(() => edge.shim.status(), (status) => status.mode === 'online' && status.backlog === 0);
  });
});
