import { ReceiveMessageCommand, SendMessageBatchCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METRICS_PREFIX, Metrics } from '../../edge-shim/src/observability/metrics.js';
import type { RequestPath } from '../../edge-shim/src/backend.js';
import type { EdgeStatus } from '../../edge-shim/src/observability/status.js';
import { edgeStatus, queueStatus } from '../helpers/edge-status.js';
import { type Families, histogram, parseExposition, sampleValue } from '../helpers/prometheus.js';
import { type TestShim, sqsClient, startTestShim, testEngine } from '../helpers/shim.js';
import { createQueue } from '../helpers/sqs-queues.js';

// GET /metrics: the Prometheus exposition of the recorder's counters and of the status document's
// gauges, checked against the text format and the naming conventions; then a real standalone shim.

/** Every family of the shim's own, with its type: a rename or a new family must be made here too. */
const FAMILIES: Record<string, 'COUNTER' | 'GAUGE' | 'HISTOGRAM'> = {
  requests_total: 'COUNTER',
  request_duration_seconds: 'HISTOGRAM',
  request_errors_total: 'COUNTER',
  messages_sent_total: 'COUNTER',
  messages_received_total: 'COUNTER',
  messages_deleted_total: 'COUNTER',
  messages_replayed_total: 'COUNTER',
  messages_expired_total: 'COUNTER',
  replay_possibly_duplicated_messages_total: 'COUNTER',
  fallback_agent_restarts_total: 'COUNTER',
  mode: 'GAUGE',
  mode_since_timestamp_seconds: 'GAUGE',
  breaker_state: 'GAUGE',
  upstream_last_success_timestamp_seconds: 'GAUGE',
  upstream_last_failure_timestamp_seconds: 'GAUGE',
  upstream_credentials_refused: 'GAUGE',
  queue_messages: 'GAUGE',
  queue_backlog_messages: 'GAUGE',
  queue_oldest_backlog_age_seconds: 'GAUGE',
  replay_state: 'GAUGE',
  replay_rate_messages_per_second: 'GAUGE',
  replay_eta_seconds: 'GAUGE',
  replay_window_batches: 'GAUGE',
  replay_queue_waiting: 'GAUGE',
  link_bytes_per_second: 'GAUGE',
  sync_state: 'GAUGE',
  sync_items_planned: 'GAUGE',
  sync_items_done: 'GAUGE',
  sync_items: 'GAUGE',
  fallback_agents_up: 'GAUGE',
  conflicts: 'GAUGE',
  storage_state: 'GAUGE',
  store_size_bytes: 'GAUGE',
  store_max_size_bytes: 'GAUGE',
  disk_free_bytes: 'GAUGE',
  disk_reserve_bytes: 'GAUGE',
  disk_reserve_held: 'GAUGE',
  build_info: 'GAUGE',
};
const NODE_FAMILIES = /^(process|nodejs)_/;
const ALLOWED_LABELS = new Set(['action', 'path', 'code', 'queue', 'stage', 'mode', 'state', 'outcome', 'version', 'node']);

const m = (name: string) => METRICS_PREFIX + name;
/** What the HTTP front tells of a request: where it was carried out, and how long it took. */
const took = (seconds: number, ...paths: RequestPath[]) => ({ paths, seconds });
const QUEUE_URL = 'http://127.0.0.1:9324/000000000000/payments.fifo';
/** What a browser sends when it opens a page. */
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

async function scrape(metrics: Metrics, status: EdgeStatus): Promise<Families> {
  return parseExposition(await metrics.exposition(status));
}

const REPLAYING = edgeStatus({
  mode: 'replaying',
  since: '2026-03-01T10:00:00.000Z',
  reason: 'the region answered 3 probes in 5 s',
  breaker: 'half-open',
  upstream: {
    url: 'http://127.0.0.1:5000',
    region: 'eu-west-1',
    lastSuccessAt: '2026-03-01T10:00:02.000Z',
    lastFailureAt: '2026-03-01T09:40:00.500Z',
    lastFailure: 'connect ECONNREFUSED',
    credentialsRefused: null,
    recovery: { successes: 3, needed: 3, sinceFirstSuccessSeconds: 5, neededSeconds: 5 },
  },
  backlog: 140,
  oldestBacklogAgeSeconds: 1260,
  replay: { state: 'running', replayed: 60, rate: 42.5, etaSeconds: 3.3, lastError: null, window: 6, linkBytesPerSecond: 131072, possiblyDuplicated: 0 },
  sync: { state: 'running', done: 30, total: 50, written: 20, identical: 7, conflicts: 2, skipped: 1, lastError: null, finishedAt: null },
  agents: [
    { stage: 'authorize', state: 'running', restarts: 1, lastRestartAt: null, lastRestartReason: null, lastHeartbeatAt: null, tasksDone: 12 },
    { stage: 'authorize', state: 'running', restarts: 0, lastRestartAt: null, lastRestartReason: null, lastHeartbeatAt: null, tasksDone: 9 },
    { stage: 'post', state: 'crashed', restarts: 4, lastRestartAt: null, lastRestartReason: null, lastHeartbeatAt: null, tasksDone: 0 },
  ],
  conflictCount: 2,
  queues: [
    queueStatus('payments.fifo', { local: { visible: 100, inFlight: 30, delayed: 0 }, backlog: 130, oldestBacklogAgeSeconds: 1260, path: 'local' }),
    queueStatus('notices', { local: { visible: 8, inFlight: 0, delayed: 2 }, backlog: 10, oldestBacklogAgeSeconds: 600, path: 'local', replayWaits: 'the region lacks this queue' }),
  ],
  storage: { state: 'ok', storeBytes: 3_000_000, maxStoreBytes: 10_000_000, diskFreeBytes: 5_000_000_000, diskReserveBytes: 1_048_576, reserveHeld: true },
});

describe('Metrics', () => {
  it('exposes every family in the text format, named by the Prometheus conventions', async () => {
    const metrics = new Metrics();
    metrics.answered('SendMessage', { QueueUrl: QUEUE_URL }, {}, took(0.01, 'upstream'));
    metrics.answered('ReceiveMessage', { QueueUrl: QUEUE_URL }, { Messages: [{}] }, took(0.01, 'upstream'));
    metrics.answered('DeleteMessage', { QueueUrl: QUEUE_URL }, {}, took(0.01, 'upstream'));
    metrics.failed('SendMessage', 'ServiceUnavailable', took(0.01, 'local'));
    metrics.messagesReplayed('payments.fifo', 1);
    metrics.messagesPossiblyDuplicated('payments.fifo', 1);
    metrics.agentRestarted('authorize');
    metrics.messagesExpired('notices', 1);
    const families = await scrape(metrics, REPLAYING);

    const own = [...families.values()].filter((family) => family.name.startsWith(METRICS_PREFIX));
    expect(Object.fromEntries(own.map((family) => [family.name, family.type]))).toEqual(Object.fromEntries(Object.entries(FAMILIES).map(([name, type]) => [m(name), type])));
    for (const family of own) {
      expect(family.name).toMatch(/^[a-z_]+$/);
      // Counters end in _total; nothing else does. Units are base units, spelled out.
      expect(family.name.endsWith('_total')).toBe(family.type === 'COUNTER');
      if (family.type === 'HISTOGRAM') expect(family.name).toMatch(/_seconds$/);
      expect(family.name).not.toMatch(/_(ms|milliseconds|kb|mb|minutes|percent)(_|$)/);
      expect(family.help.length).toBeGreaterThan(10);
      for (const sample of family.metrics) for (const label of Object.keys(sample.labels ?? {})) expect(ALLOWED_LABELS).toContain(label);
    }
    for (const [name, family] of families) if (!name.startsWith(METRICS_PREFIX) && !NODE_FAMILIES.test(name)) throw new Error(`metric ${name} (${family.type}) is neither the shim's nor Node's`);
  });

  it('counts the recorded events by their labels, keeping client-chosen values bounded', async () => {
    const metrics = new Metrics();
    for (let i = 0; i < 3; i += 1) metrics.answered('SendMessage', { QueueUrl: QUEUE_URL }, {}, took(0.04, 'upstream'));
    // The region did not take it: stored at the edge, so carried out both ways.
    metrics.answered('SendMessage', { QueueUrl: QUEUE_URL }, {}, took(2.1, 'upstream', 'local'));
    metrics.answered('SendMessageBatch', { QueueUrl: 'notices' }, { Successful: [{}, {}], Failed: [{}] }, took(0.002, 'local'));
    metrics.answered('ReceiveMessage', { QueueUrl: QUEUE_URL }, { Messages: [{}, {}, {}] }, took(0.003, 'local'));
    metrics.answered('ReceiveMessage', { QueueUrl: QUEUE_URL }, {}, took(20, 'local'));
    metrics.answered('DeleteMessageBatch', { QueueUrl: QUEUE_URL }, { Successful: [{}, {}] }, took(0.001, 'local'));
    metrics.answered('NoSuchAction', {}, {}, took(0.001, 'local'));
    metrics.failed('SendMessage', 'ServiceUnavailable', took(0.001, 'local'));
    metrics.failed('SendMessage', 'ServiceUnavailable', took(0.001));
    metrics.failed(undefined, 'InvalidClientTokenId', took(0.001));
    metrics.failed('Made<Up>', 'not a "code"\n', took(0.001));
    metrics.messagesReplayed('payments.fifo', 10);
    metrics.messagesReplayed('payments.fifo', 5);
    metrics.messagesReplayed('notices', 1);
    metrics.messagesPossiblyDuplicated('payments.fifo', 2);
    metrics.agentRestarted('authorize');
    metrics.agentRestarted('authorize');
    metrics.messagesExpired('notices', 3);
    metrics.messagesExpired('notices', 4);
    const exposition = await metrics.exposition(REPLAYING);
    const families = parseExposition(exposition);

    expect(sampleValue(families, m('requests_total'), { action: 'SendMessage', path: 'upstream' })).toBe(4);
    expect(sampleValue(families, m('requests_total'), { action: 'SendMessage', path: 'local' })).toBe(2);
    expect(sampleValue(families, m('requests_total'), { action: 'SendMessageBatch', path: 'local' })).toBe(1);
    expect(sampleValue(families, m('requests_total'), { action: 'ReceiveMessage', path: 'local' })).toBe(2);
    expect(sampleValue(families, m('requests_total'), { action: 'DeleteMessageBatch', path: 'local' })).toBe(1);
    expect(sampleValue(families, m('requests_total'), { action: 'unknown', path: 'local' })).toBe(1);
    expect(families.get(m('requests_total'))!.metrics).toHaveLength(6);
    // One observation per request carried out, on the path it ended on.
    const durations = histogram(exposition, m('request_duration_seconds'));
    expect(durations.get('SendMessage upstream')).toEqual({ count: 3, sum: expect.closeTo(0.12, 6), buckets: expect.objectContaining({ '0.025': 0, '0.05': 3, '+Inf': 3 }) });
    expect(durations.get('SendMessage local')).toEqual({ count: 2, sum: expect.closeTo(2.101, 6), buckets: expect.objectContaining({ '0.001': 1, '2.5': 2 }) });
    expect(durations.get('ReceiveMessage local')).toEqual({ count: 2, sum: expect.closeTo(20.003, 6), buckets: expect.objectContaining({ '0.0025': 0, '0.005': 1, '10': 1, '20': 2 }) });
    expect([...durations.keys()].sort()).toEqual(['DeleteMessageBatch local', 'ReceiveMessage local', 'SendMessage local', 'SendMessage upstream', 'SendMessageBatch local', 'unknown local']);
    expect(sampleValue(families, m('messages_sent_total'), { queue: 'payments.fifo' })).toBe(4);
    expect(sampleValue(families, m('messages_sent_total'), { queue: 'notices' })).toBe(2);
    expect(sampleValue(families, m('messages_received_total'), { queue: 'payments.fifo' })).toBe(3);
    expect(sampleValue(families, m('messages_deleted_total'), { queue: 'payments.fifo' })).toBe(2);
    expect(families.get(m('messages_deleted_total'))!.metrics).toHaveLength(1);
    expect(sampleValue(families, m('request_errors_total'), { action: 'SendMessage', code: 'ServiceUnavailable' })).toBe(2);
    expect(sampleValue(families, m('request_errors_total'), { action: 'unknown', code: 'InvalidClientTokenId' })).toBe(1);
    expect(sampleValue(families, m('request_errors_total'), { action: 'unknown', code: 'other' })).toBe(1);
    expect(sampleValue(families, m('messages_replayed_total'), { queue: 'payments.fifo' })).toBe(15);
    expect(sampleValue(families, m('messages_replayed_total'), { queue: 'notices' })).toBe(1);
    expect(sampleValue(families, m('replay_possibly_duplicated_messages_total'), { queue: 'payments.fifo' })).toBe(2);
    expect(sampleValue(families, m('fallback_agent_restarts_total'), { stage: 'authorize' })).toBe(2);
    expect(sampleValue(families, m('messages_expired_total'), { queue: 'notices' })).toBe(7);
    expect(metrics.requestsCarriedOut()).toEqual({ upstream: 4, local: 7 });
    expect([metrics.expiredMessages('notices'), metrics.expiredMessages('payments.fifo')]).toEqual([7, 0]);
  });

  it('sets the gauges from the status document at each scrape', async () => {
    const metrics = new Metrics();
    let families = await scrape(metrics, REPLAYING);
    const value = (name: string, labels?: Record<string, string>) => sampleValue(families, m(name), labels);

    expect(families.get(m('mode'))!.metrics.map((sample) => [sample.labels!.mode, Number(sample.value)])).toEqual([
      ['standalone', 0],
      ['online', 0],
      ['offline', 0],
      ['replaying', 1],
    ]);
    expect(value('mode_since_timestamp_seconds')).toBe(Date.parse('2026-03-01T10:00:00.000Z') / 1000);
    expect(value('breaker_state', { state: 'half-open' })).toBe(1);
    expect(value('breaker_state', { state: 'open' })).toBe(0);
    expect(value('upstream_last_success_timestamp_seconds')).toBe(Date.parse('2026-03-01T10:00:02.000Z') / 1000);
    expect(value('upstream_last_failure_timestamp_seconds')).toBe(Date.parse('2026-03-01T09:40:00.500Z') / 1000);
    expect(value('queue_messages', { queue: 'payments.fifo', state: 'visible' })).toBe(100);
    expect(value('queue_messages', { queue: 'payments.fifo', state: 'in_flight' })).toBe(30);
    expect(value('queue_messages', { queue: 'notices', state: 'delayed' })).toBe(2);
    expect(value('queue_backlog_messages', { queue: 'payments.fifo' })).toBe(130);
    expect(value('queue_backlog_messages', { queue: 'notices' })).toBe(10);
    expect(value('queue_oldest_backlog_age_seconds', { queue: 'payments.fifo' })).toBe(1260);
    expect(value('replay_state', { state: 'running' })).toBe(1);
    expect(value('replay_state', { state: 'idle' })).toBe(0);
    expect(value('replay_rate_messages_per_second')).toBe(42.5);
    expect(value('replay_eta_seconds')).toBe(3.3);
    expect(value('replay_window_batches')).toBe(6);
    expect(value('link_bytes_per_second')).toBe(131072);
    expect(value('replay_queue_waiting', { queue: 'notices' })).toBe(1);
    expect(value('replay_queue_waiting', { queue: 'payments.fifo' })).toBeUndefined();
    expect(value('upstream_credentials_refused')).toBe(0);
    expect(value('sync_state', { state: 'running' })).toBe(1);
    expect(value('sync_items_planned')).toBe(50);
    expect(value('sync_items_done')).toBe(30);
    expect(value('sync_items', { outcome: 'written' })).toBe(20);
    expect(value('sync_items', { outcome: 'identical' })).toBe(7);
    expect(value('sync_items', { outcome: 'conflict' })).toBe(2);
    expect(value('sync_items', { outcome: 'skipped' })).toBe(1);
    expect(value('fallback_agents_up', { stage: 'authorize' })).toBe(2);
    expect(value('fallback_agents_up', { stage: 'post' })).toBe(0);
    expect(value('conflicts')).toBe(2);
    expect(value('storage_state', { state: 'ok' })).toBe(1);
    expect(value('store_size_bytes')).toBe(3_000_000);
    expect(value('store_max_size_bytes')).toBe(10_000_000);
    expect(value('disk_free_bytes')).toBe(5_000_000_000);
    expect(value('disk_reserve_bytes')).toBe(1_048_576);
    expect(value('disk_reserve_held')).toBe(1);

    // The next scrape shows the next document: a queue gone takes its series along, and what no
    // longer applies (an ETA, a failure) has no sample rather than a 0.
    families = await scrape(
      metrics,
      edgeStatus({
        mode: 'online',
        upstream: { ...REPLAYING.upstream!, lastFailureAt: null, credentialsRefused: 'the region refuses the edge\'s credentials: ExpiredToken' },
        queues: [queueStatus('notices', { local: { visible: 1, inFlight: 0, delayed: 0 } })],
        storage: { ...REPLAYING.storage!, state: 'store-full', reserveHeld: false },
      }),
    );
    expect(value('mode', { mode: 'online' })).toBe(1);
    expect(value('mode', { mode: 'replaying' })).toBe(0);
    expect(value('breaker_state', { state: 'closed' })).toBe(1);
    expect(value('upstream_last_failure_timestamp_seconds')).toBeUndefined();
    expect(value('upstream_credentials_refused')).toBe(1);
    expect(families.get(m('replay_queue_waiting'))!.metrics).toHaveLength(0);
    expect(value('queue_messages', { queue: 'payments.fifo', state: 'visible' })).toBeUndefined();
    expect(value('queue_messages', { queue: 'notices', state: 'visible' })).toBe(1);
    expect(families.get(m('queue_oldest_backlog_age_seconds'))!.metrics).toHaveLength(0);
    expect(value('replay_eta_seconds')).toBeUndefined();
    expect(value('replay_state', { state: 'idle' })).toBe(1);
    expect(families.get(m('fallback_agents_up'))!.metrics).toHaveLength(0);
    expect(value('storage_state', { state: 'store-full' })).toBe(1);
    expect(value('disk_reserve_held')).toBe(0);
  });

  it('has no samples for the hybrid parts of a standalone document', async () => {
    const families = await scrape(
      new Metrics(),
      edgeStatus({ mode: 'standalone', breaker: null, upstream: null, replay: null, sync: null, storage: { ...REPLAYING.storage!, maxStoreBytes: null } }),
    );
    expect(sampleValue(families, m('mode'), { mode: 'standalone' })).toBe(1);
    for (const name of ['breaker_state', 'upstream_last_success_timestamp_seconds', 'upstream_credentials_refused', 'replay_state', 'replay_rate_messages_per_second', 'replay_window_batches', 'link_bytes_per_second', 'sync_state', 'sync_items_planned', 'sync_items', 'store_max_size_bytes']) {
      expect(families.get(m(name))!.metrics, name).toHaveLength(0);
    }
  });

  it("carries Node's process metrics under their stock names, unprefixed, as Node dashboards expect them", async () => {
    const families = await scrape(new Metrics(), REPLAYING);
    expect(families.get('process_cpu_seconds_total')?.type).toBe('COUNTER');
    expect(families.get('nodejs_eventloop_lag_seconds')?.type).toBe('GAUGE');
    expect(families.get('nodejs_heap_size_used_bytes')?.type).toBe('GAUGE');
    expect(sampleValue(families, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect([...families.keys()].filter((name) => name.startsWith(`${METRICS_PREFIX}process_`) || name.startsWith(`${METRICS_PREFIX}nodejs_`))).toEqual([]);
  });
});

describe('a standalone shim', () => {
  let t: TestShim;
  beforeAll(async () => {
    t = await startTestShim();
  });
  afterAll(async () => {
    await t.close();
  });

  it('answers /metrics and /status on the admin listener, without SQS authentication, with the requests it carried out and its queue depths', async () => {
    const queueUrl = await createQueue(t.sqs, 'metrics');
    const queue = queueUrl.split('/').pop()!;
    for (let i = 0; i < 5; i += 1) await t.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: `m${i}` }));
    await t.sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: [1, 2, 3].map((i) => ({ Id: `e${i}`, MessageBody: `b${i}` })) }));
    const received = await t.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 2, VisibilityTimeout: 600 }));
    expect(received.Messages).toHaveLength(2);
    await expect(t.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl.replace(queue, 'no-such-queue'), MessageBody: 'x' }))).rejects.toThrow();
    const stranger = sqsClient(t.shim.url, { accessKeyId: 'AKIDSTRANGER', secretAccessKey: 'unknown' });
    await expect(stranger.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'x' }))).rejects.toThrow();
    stranger.destroy();

    const response = await fetch(`${t.shim.adminUrl}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const exposition = await response.text();
    const families = parseExposition(exposition);
    const value = (name: string, labels?: Record<string, string>) => sampleValue(families, m(name), labels);
    expect(value('mode', { mode: 'standalone' })).toBe(1);
    expect(value('requests_total', { action: 'CreateQueue', path: 'local' })).toBe(1);
    // Five sent, and the one to a queue that does not exist: carried out, and answered with an error.
    expect(value('requests_total', { action: 'SendMessage', path: 'local' })).toBe(6);
    expect(value('requests_total', { action: 'SendMessageBatch', path: 'local' })).toBe(1);
    expect(value('requests_total', { action: 'ReceiveMessage', path: 'local' })).toBe(1);
    expect(families.get(m('requests_total'))!.metrics.filter((sample) => sample.labels!.path === 'upstream')).toHaveLength(0);
    const durations = histogram(exposition, m('request_duration_seconds'));
    expect(durations.get('SendMessage local')!.count).toBe(6);
    expect(durations.get('SendMessage local')!.sum).toBeGreaterThan(0);
    expect(durations.get('ReceiveMessage local')!.count).toBe(1);
    expect([...durations.keys()].every((key) => key.endsWith(' local'))).toBe(true);
    expect(value('messages_sent_total', { queue })).toBe(8);
    expect(value('messages_received_total', { queue })).toBe(2);
    expect(families.get(m('messages_deleted_total'))!.metrics).toHaveLength(0);
    expect(value('request_errors_total', { action: 'SendMessage', code: 'QueueDoesNotExist' })).toBe(1);
    // Refused before its action was read.
    expect(value('request_errors_total', { action: 'unknown', code: 'InvalidClientTokenId' })).toBe(1);
    expect(value('queue_messages', { queue, state: 'visible' })).toBe(6);
    expect(value('queue_messages', { queue, state: 'in_flight' })).toBe(2);
    expect(value('queue_messages', { queue, state: 'delayed' })).toBe(0);
    expect(value('queue_backlog_messages', { queue })).toBe(0);
    expect(families.get(m('breaker_state'))!.metrics).toHaveLength(0);
    if (testEngine() === 'sqlite') {
      expect(value('store_size_bytes')).toBeGreaterThan(0);
      expect(value('storage_state', { state: 'ok' })).toBe(1);
    }

    const status = await fetch(`${t.shim.adminUrl}/status`);
    expect(status.status).toBe(200);
    expect(status.headers.get('content-type')).toBe('application/json');
    const document = (await status.json()) as EdgeStatus;
    expect(document).toMatchObject({
      mode: 'standalone',
      breaker: null,
      upstream: null,
      replay: null,
      sync: null,
      agents: [],
      backlog: 0,
      conflictCount: 0,
      requests: { upstream: 0, local: 9 },
      queues: [{ name: queue, fifo: false, local: { visible: 6, inFlight: 2, delayed: 0 }, backlog: 0, oldestBacklogAgeSeconds: null, expired: 0, path: 'local' }],
      storage: testEngine() === 'sqlite' ? { state: 'ok', reserveHeld: true } : null,
    });
    expect(Date.parse(document.since)).not.toBeNaN();
  });

  it('serves the status page and its assets from itself, with a policy that loads nothing from elsewhere', async () => {
    for (const path of ['/', '/ui']) {
      const page = await fetch(`${t.shim.adminUrl}${path}`, { headers: { accept: BROWSER_ACCEPT } });
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'; script-src 'self'/);
      const html = await page.text();
      expect(html).toContain('<title>Holdfast edge status</title>');
      for (const [, asset] of html.matchAll(/(?:src|href)="(ui\/[^"]+)"/g)) {
        const answer = await fetch(`${t.shim.adminUrl}/${asset}`);
        expect(answer.status, asset).toBe(200);
        expect(answer.headers.get('content-type'), asset).toMatch(asset!.endsWith('.js') ? /^text\/javascript/ : /^text\/css/);
        expect((await answer.text()).length, asset).toBeGreaterThan(100);
      }
    }
    expect((await fetch(`${t.shim.adminUrl}/metrics`, { method: 'HEAD' })).status).toBe(200);
  });
});
