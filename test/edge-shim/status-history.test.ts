import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type HistorySample, StatusHistory } from '../../edge-shim/src/observability/history.js';
import type { EdgeStatus } from '../../edge-shim/src/observability/status.js';
import { edgeStatus } from '../helpers/edge-status.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';
import { createQueue } from '../helpers/sqs-queues.js';
import { eventually } from '../helpers/wait.js';

// The edge's last minutes, kept in memory so that the status page draws them as soon as it opens:
// sampled from the status document, served at /status/history on the admin listener.

interface History {
  readonly windowSeconds: number;
  readonly samples: HistorySample[];
}

describe('StatusHistory', () => {
  let history: StatusHistory | undefined;
  afterEach(() => history?.stop());

  it('samples the mode, the backlog and the request rates, and keeps only its window', async () => {
    let status: EdgeStatus = edgeStatus({ mode: 'online', backlog: 0, requests: { upstream: 0, local: 0 } });
    history = new StatusHistory(async () => status, { intervalMs: 20, windowMs: 400, logger: pino({ level: 'silent' }) });
    await eventually(() => history!.recent().samples, (samples) => samples.length >= 2);
    status = edgeStatus({ mode: 'offline', backlog: 40, requests: { upstream: 10, local: 500 } });
    const { windowSeconds, samples } = await eventually(
      () => history!.recent(),
      ({ samples }) => samples.some((sample) => sample.mode === 'offline' && sample.local !== null && sample.local > 0),
    );
    expect(windowSeconds).toBe(0.4);
    expect(samples[0]).toMatchObject({ mode: 'online', backlog: 0 });
    const jump = samples.find((sample) => sample.mode === 'offline')!;
    expect(jump).toMatchObject({ backlog: 40, replay: expect.any(Number) });
    // 500 requests at the edge between two samples about 20 ms apart.
    expect(jump.local).toBeGreaterThan(500);
    expect(jump.upstream).toBeGreaterThan(0);
    // Once the window has gone by, nothing older is kept.
    const later = await eventually(() => history!.recent().samples, (kept) => kept.every((sample) => sample.mode === 'offline'));
    expect(later.at(-1)!.t - later[0]!.t).toBeLessThanOrEqual(0.4);
    expect(later.at(-1)!.local).toBe(0);
  });
});

describe('GET /status/history', () => {
  let t: TestShim | undefined;
  afterEach(async () => t?.close());

  it('serves the last minutes of a standalone shim, its mode and requests a second, without SQS authentication', async () => {
    t = await startTestShim({ historyIntervalMs: 50 });
    const read = async () => (await (await fetch(`${t!.shim.adminUrl}/status/history`)).json()) as History;
    const queueUrl = await createQueue(t.sqs, 'history');
    for (let i = 0; i < 20; i += 1) await t.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: `m${i}` }));
    const { windowSeconds, samples } = await eventually(read, (history) => history.samples.filter((sample) => sample.local !== null && sample.local > 0).length >= 1 && history.samples.length >= 3);
    expect(windowSeconds).toBe(600);
    expect(samples.every((sample) => sample.mode === 'standalone' && sample.backlog === 0 && (sample.upstream ?? 0) === 0 && sample.replay === null)).toBe(true);
    expect(samples[0]!.local).toBeNull();
    expect(samples.map((sample) => sample.t)).toEqual([...samples.map((sample) => sample.t)].sort());
    expect(Math.abs(samples.at(-1)!.t - Date.now() / 1000)).toBeLessThan(60);
    const response = await fetch(`${t.shim.adminUrl}/status/history`);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.headers.get('cache-control')).toBe('no-store');
  });
});
