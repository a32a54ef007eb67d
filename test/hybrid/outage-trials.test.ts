import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { CreateQueueCommand, type Message, SendMessageCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { type Moto, startMoto } from '../../functions/src/local-pipeline/moto.js';
import { type FaultMode, seededRandom } from '../../testkit/fault-modes.js';
import { eventually } from '../helpers/wait.js';
import { type HybridTest, drainRegion, startHybridTest } from '../helpers/hybrid.js';

// Randomized outages: seeded trials of random outage kinds and lengths under steady load from
// several producers, then a return through a path drawn too (clean, a thin link, a slow region, a
// region answering errors), sometimes with the region restarted empty during the outage or the edge
// restarted in the middle of it. Each is checked from the region's side at the end: no acknowledged
// message lost, no FIFO message twice, every FIFO group in order; and, once the region answers
// again, the edge never went back offline while its probe was answered. A trial is fixed by its
// seed: a failing one names it, and HOLDFAST_TRIAL_SEED=<seed> HOLDFAST_TRIALS=1 runs it again.
// Each trial has a moto of its own, so that it may empty it.

const TRIALS = Number(process.env.HOLDFAST_TRIALS ?? 5);
const FIRST_SEED = Number(process.env.HOLDFAST_TRIAL_SEED ?? Math.floor(Math.random() * 1_000_000));
const FIFO_PRODUCERS = 3;
const STANDARD_PRODUCERS = 2;
// Of the edge's log, what a failing trial prints: its last lines at info or above.
const LOG_LINES_SHOWN = 40;

interface Plan {
  readonly outage: FaultMode;
  /** The path once the outage ends. */
  readonly comeback: FaultMode;
  /** The region loses every queue during the outage (emptied, as by a restart). */
  readonly regionRestarted: boolean;
  /** The edge is restarted during the outage. */
  readonly edgeRestarted: boolean;
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
  const comebacks: FaultMode[] = [
    { kind: 'pass' },
    // 2 Mbit/s and 100 ms each way.
    { kind: 'link', upstreamBytesPerSecond: 262_144, downstreamBytesPerSecond: 262_144, upstreamMs: 100, downstreamMs: 100 },
    { kind: 'slow', delayMs: [300, 1500], seed: between(1, 1000) },
    { kind: 'errors', share: 0.2, answers: ['unavailable', 'throttling'], seed: between(1, 1000) },
  ];
  const outage = kinds[between(0, kinds.length - 1)]!;
  return {
    outage,
    comeback: comebacks[between(0, comebacks.length - 1)]!,
    regionRestarted: random() < 0.25,
    edgeRestarted: random() < 0.25,
    before: between(10, 40),
    during: between(20, 150),
    after: between(10, 40),
  };
}

interface Producer {
  readonly group: string | undefined;
  /** Bodies acknowledged, in the order sent. */
  readonly acknowledged: string[];
  /** The errors this producer's sends met: when (epoch ms, as the edge logs it), which producer, `name: message`. */
  readonly errors: string[];
}

/**
 * Sends one message after another until told to stop, pausing while the trial's target is
 * reached (the edge takes sends far faster offline than the region does: without the pause, a
 * slow step of the trial piles up thousands); a send that fails is sent again as it was (for FIFO
 * with the same deduplication id, so that the region takes it once).
 */
async function produce(edge: () => HybridTest, QueueUrl: string, producer: Producer, acknowledged: () => void, stop: () => boolean, paused: () => boolean): Promise<void> {
  for (let sequence = 0; !stop(); sequence++) {
    await eventually(() => stop() || !paused(), Boolean);
    if (stop()) return;
    const { group } = producer;
    const body = group === undefined ? `standard:${sequence}:${randomUUID()}` : `${group}:${sequence}`;
    const fifo = group === undefined ? {} : { MessageGroupId: group, MessageDeduplicationId: `${group}-${sequence}` };
    for (;;) {
      try {
        await edge().sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: body, ...fifo }));
        break;
      } catch (error) {
        producer.errors.push(`at ${Date.now()}, ${producer.group ?? 'standard'}: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
      }
    }
    producer.acknowledged.push(body);
    acknowledged();
  }
}

/** A trial in a few words, for its name: what fails, how it comes back, what else happens. */
function described(trial: Plan): string {
  const extras = [trial.regionRestarted && 'region restarted empty', trial.edgeRestarted && 'edge restarted'].filter(Boolean);
  return [`${trial.outage.kind}, back through ${trial.comeback.kind}`, ...extras].join(', ');
}

describe('randomized outages', () => {
  it.each(Array.from({ length: TRIALS }, (_, index) => ({ seed: FIRST_SEED + index, what: described(plan(seededRandom(FIRST_SEED + index))) })))(
    'trial with seed $seed ($what): nothing lost, no FIFO duplicate, every group in order',
    { timeout: 120_000 },
    async ({ seed }) => {
      const trial = plan(seededRandom(seed));
      const moto: Moto = await startMoto();
      // The edge's log, kept for a trial that fails (restarts included).
      const logDir = mkdtempSync(join(tmpdir(), 'holdfast-trial-log-'));
      const logFile = join(logDir, 'edge.log');
      const edgeLog = () => readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-LOG_LINES_SHOWN).join('\n');
      let t = await startHybridTest({ logger: pino({ level: 'info' }, pino.destination({ dest: logFile, sync: true })) }, moto);
      try {
        const fifoName = `trial-${seed}-${randomUUID().slice(0, 6)}.fifo`;
        const standardName = `trial-${seed}-${randomUUID().slice(0, 6)}`;
        const fifoUrl = (await t.sqs.send(new CreateQueueCommand({ QueueName: fifoName, Attributes: { FifoQueue: 'true' } }))).QueueUrl!;
        const standardUrl = (await t.sqs.send(new CreateQueueCommand({ QueueName: standardName }))).QueueUrl!;
        const producers: Producer[] = [
          ...Array.from({ length: FIFO_PRODUCERS }, (_, index) => ({ group: `g${index}`, acknowledged: [], errors: [] })),
          ...Array.from({ length: STANDARD_PRODUCERS }, () => ({ group: undefined, acknowledged: [], errors: [] })),
        ];
        let acknowledged = 0;
        const target = { value: trial.before };
        const reached = () => acknowledged >= target.value;
        let stopping = false;
        const running = producers.map((producer) =>
          produce(() => t, producer.group === undefined ? standardUrl : fifoUrl, producer, () => (acknowledged += 1), () => stopping, reached),
        );
        // What the region held when it lost its queues: delivered before, not lost by the edge.
        const delivered: { fifo: Message[]; standard: Message[] } = { fifo: [], standard: [] };
        await eventually(reached, Boolean);
        t.proxy.setMode(trial.outage);
        target.value += trial.during;
        if (trial.regionRestarted || trial.edgeRestarted) {
          await eventually(() => t.shim.status(), (status) => status.mode === 'offline');
          // Nothing of the edge reaches the region now: what it holds was delivered before.
          t.proxy.setMode('blackhole');
        }
        if (trial.regionRestarted) {
          delivered.fifo.push(...(await drainRegion(t.region, fifoName)));
          delivered.standard.push(...(await drainRegion(t.region, standardName)));
          expect((await fetch(`${moto.endpoint}/moto-api/reset`, { method: 'POST' })).ok).toBe(true);
        }
        if (trial.edgeRestarted) t = await t.restart({ port: t.shim.port });
        await eventually(reached, Boolean);
        // The region answers again: from here, the edge must not go back offline while its probe is answered.
        const mendedAt = Date.now();
        t.proxy.setMode(trial.comeback);
        target.value += trial.after;
        await eventually(reached, Boolean);
        stopping = true;
        await Promise.all(running);
        await eventually(() => t.shim.status(), (status) => status.mode === 'online' && status.backlog === 0);
        // The first transition after the mend may still be the outage's own (a probe under way when it came).
        const sinceMend = (await t.shim.status()).transitions.filter((transition) => Date.parse(transition.at) >= mendedAt).reverse();
        const backAt = sinceMend.findIndex((transition) => transition.to !== 'offline');
        const returnsToOffline = backAt < 0 ? 0 : sinceMend.slice(backAt).filter((transition) => transition.to === 'offline').length;

        const context = `seed ${seed}, outage ${JSON.stringify(trial.outage)}, comeback ${JSON.stringify(trial.comeback)}, region restarted ${trial.regionRestarted}, edge restarted ${trial.edgeRestarted}`;
        // The region's own errors (the errors comeback) are its clients' to retry, as without the edge; a
        // restarted edge refuses connections for a moment. Otherwise producers see nothing of the outage.
        if (trial.comeback.kind !== 'errors' && !trial.edgeRestarted) {
          const errors = producers.flatMap((producer) => producer.errors);
          expect(errors, `producers saw errors (${context}); the edge's last log lines:\n${errors.length > 0 ? edgeLog() : ''}`).toEqual([]);
        }
        // A probe that the region answers errors to may rightly take the edge offline again.
        if (trial.comeback.kind !== 'errors') expect(returnsToOffline, `returns to offline while the probe was answered (${context})`).toBe(0);
        // A send the region had taken before its restart, unanswered at the cut (in flight as the
        // link went), is rightly taken again once the region forgot its deduplication id.
        const before = new Set(delivered.fifo.map((message) => message.Body));
        const fifo = [...delivered.fifo, ...(await drainRegion(t.region, fifoName)).filter((message) => !before.has(message.Body))];
        for (const producer of producers.filter((candidate) => candidate.group !== undefined)) {
          const inRegion = fifo.map((message) => message.Body!).filter((body) => body.startsWith(`${producer.group}:`));
          expect(inRegion, `group ${producer.group}: in order, once each, none lost (${context})`).toEqual(producer.acknowledged);
        }
        const standard = new Set([...delivered.standard, ...(await drainRegion(t.region, standardName))].map((message) => message.Body!));
        const lost = producers.filter((producer) => producer.group === undefined).flatMap((producer) => producer.acknowledged.filter((body) => !standard.has(body)));
        expect(lost, `standard messages lost (${context})`).toEqual([]);
      } finally {
        await t.close();
        await moto.stop();
        rmSync(logDir, { recursive: true, force: true });
      }
    },
  );
});
