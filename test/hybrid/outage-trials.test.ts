import { randomUUID } from 'node:crypto';
import { CreateQueueCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { type FaultMode, seededRandom } from '../../testkit/fault-modes.js';
import { eventually } from '../helpers/wait.js';
import { drainRegion, startHybridTest } from '../helpers/hybrid.js';

// Randomized outages: seeded trials of random outage kinds and lengths under steady load from
// several producers, each checked from the region's side at the end: no acknowledged message lost,
// no FIFO message twice, every FIFO group in order. A trial is fixed by its seed: a failing one
// names it, and HOLDFAST_TRIAL_SEED=<seed> HOLDFAST_TRIALS=1 runs it again.

const TRIALS = Number(process.env.HOLDFAST_TRIALS ?? 5);
const FIRST_SEED = Number(process.env.HOLDFAST_TRIAL_SEED ?? Math.floor(Math.random() * 1_000_000));
const FIFO_PRODUCERS = 3;
const STANDARD_PRODUCERS = 2;

interface Plan {
  readonly outage: FaultMode;
  /** Acknowledged sends (all producers) before the cut, during it, and after it is mended. */
  readonly before: number;
  readonly during: number;
  readonly after: number;
}

function plan(random: () => number): Plan {
  const between = (low: number, high: number) => low + Math.floor(random() * (high - low + 1));
  const kinds: FaultMode[] = [
    { kind: 'blackhole' },
    { kind: 'refuse' },
    { kind: 'reset' },
    { kind: 'lost-answers', then: 'hang' },
    { kind: 'lost-answers', then: 'reset' },
    {
      kind: 'flapping',
      seed: between(1, 1000),
      steps: [
        { kind: 'blackhole', ms: [100, 600] },
        { kind: 'pass', ms: [100, 600] },
        { kind: 'lost-answers', then: 'reset', ms: [100, 400] },
      ],
    },
  ];
  return { outage: kinds[between(0, kinds.length - 1)]!, before: between(10, 40), during: between(20, 150), after: between(10, 40) };
}

interface Producer {
  readonly group: string | undefined;
  /** Bodies acknowledged, in the order sent. */
  readonly acknowledged: string[];
  errors: number;
}

/**
 * Sends one message after another until told to stop; a send that fails is sent again as it was
 * (for FIFO with the same deduplication id, so that the region takes it once).
 */
async function produce(sqs: SQSClient, QueueUrl: string, producer: Producer, acknowledged: () => void, stop: () => boolean): Promise<void> {
  for (let sequence = 0; !stop(); sequence++) {
    const { group } = producer;
    const body = group === undefined ? `standard:${sequence}:${randomUUID()}` : `${group}:${sequence}`;
    const fifo = group === undefined ? {} : { MessageGroupId: group, MessageDeduplicationId: `${group}-${sequence}` };
    for (;;) {
      try {
        await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: body, ...fifo }));
        break;
      } catch {
        producer.errors += 1;
      }
    }
    producer.acknowledged.push(body);
    acknowledged();
  }
}

describe('randomized outages', () => {
  it.each(Array.from({ length: TRIALS }, (_, index) => FIRST_SEED + index))(
    'trial with seed %i: nothing lost, no FIFO duplicate, every group in order',
    { timeout: 120_000 },
    async (seed) => {
      const trial = plan(seededRandom(seed));
      const t = await startHybridTest();
      try {
        const fifoName = `trial-${seed}-${randomUUID().slice(0, 6)}.fifo`;
        const standardName = `trial-${seed}-${randomUUID().slice(0, 6)}`;
        const fifoUrl = (await t.sqs.send(new CreateQueueCommand({ QueueName: fifoName, Attributes: { FifoQueue: 'true' } }))).QueueUrl!;
        const standardUrl = (await t.sqs.send(new CreateQueueCommand({ QueueName: standardName }))).QueueUrl!;
        const producers: Producer[] = [
          ...Array.from({ length: FIFO_PRODUCERS }, (_, index) => ({ group: `g${index}`, acknowledged: [], errors: 0 })),
          ...Array.from({ length: STANDARD_PRODUCERS }, () => ({ group: undefined, acknowledged: [], errors: 0 })),
        ];
        let acknowledged = 0;
        const target = { value: trial.before };
        const reached = () => acknowledged >= target.value;
        let stopping = false;
        const running = producers.map((producer) =>
          produce(t.sqs, producer.group === undefined ? standardUrl : fifoUrl, producer, () => (acknowledged += 1), () => stopping),
        );
        await eventually(reached, Boolean);
        t.proxy.setMode(trial.outage);
        target.value += trial.during;
        await eventually(reached, Boolean);
        t.proxy.setMode('pass');
        target.value += trial.after;
        await eventually(reached, Boolean);
        stopping = true;
        await Promise.all(running);
        await eventually(() => t.shim.status(), (status) => status.mode === 'online' && status.backlog === 0);

        const context = `seed ${seed}, outage ${JSON.stringify(trial.outage)}`;
        expect(producers.map((producer) => producer.errors), `producers saw errors (${context})`).toEqual(producers.map(() => 0));
        const fifo = await drainRegion(t.region, fifoName);
        for (const producer of producers.filter((candidate) => candidate.group !== undefined)) {
          const inRegion = fifo.map((message) => message.Body!).filter((body) => body.startsWith(`${producer.group}:`));
          expect(inRegion, `group ${producer.group}: in order, once each, none lost (${context})`).toEqual(producer.acknowledged);
        }
        const standard = new Set((await drainRegion(t.region, standardName)).map((message) => message.Body!));
        const lost = producers.filter((producer) => producer.group === undefined).flatMap((producer) => producer.acknowledged.filter((body) => !standard.has(body)));
        expect(lost, `standard messages lost (${context})`).toEqual([]);
      } finally {
        await t.close();
      }
    },
  );
});
