/**
 * The sync row of issue 15 (item 6): the records of the fallback agents' work synced from an edge
 * database into the region's tables (moto's DynamoDB) through the fault proxy adding a round trip,
 * beside a direct client's conditional PutItem rate on the same path.
 *
 * The edge database is filled by running a small saga's agent at an edge site over SQLite (each task:
 * its saga, its step, its idempotency record and a counter operation; one counter per writer), as
 * the fallback agents do. "after" syncs it as the shim does (edge-shim's SyncBack: the writes through
 * the congestion window, four times --replay-concurrency as its ceiling, fed a round trip each second as the
 * shim's probe feeds it); "before" runs an earlier checkout's sync engine (`root`) on a copy of the
 * same database, with an SDK client as that checkout's edge made it.
 */
import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConditionalCheckFailedException, DynamoDBClient, ListTablesCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { pino } from 'pino';
import { DEFAULTS } from '../edge-shim/src/config.js';
import { SyncBack, syncWritesCeiling } from '../edge-shim/src/fallback/sync-back.js';
import { LinkEstimates } from '../edge-shim/src/hybrid/link/estimates.js';
import type { syncEdgeToRegion as SyncEngine } from '../functions/src/edge/sync.js';
import { functionIdentity, invocationInfo, lambdaContext } from '../functions/src/event-source/context.js';
import { sqsEvent } from '../functions/src/event-source/sqs-event.js';
import { createWorkflowResources } from '../functions/src/local-pipeline/resources.js';
import { type Moto, startMoto } from '../functions/src/local-pipeline/moto.js';
import { createAgent } from '../functions/src/runtime/agent.js';
import { edgeSite } from '../functions/src/runtime/site.js';
import type { SagaDefinition } from '../functions/src/runtime/saga.js';
import { openEdgeDatabase } from '../functions/src/runtime/store/sqlite-database.js';
import { sqliteStores } from '../functions/src/runtime/store/stores.js';
import { stageTaskId } from '../functions/src/runtime/task.js';
import type { WorkflowDefinition } from '../functions/src/workflow-definition.js';
import { FaultProxy } from '../testkit/fault-proxy.js';
import { REGION, REGION_CREDENTIALS, sleep } from './hybrid-shim.js';

export interface SyncRunSpec {
  readonly side: 'after' | 'before';
  readonly root?: string;
  /** Tasks the edge agent runs: about 4 records each. */
  readonly tasks: number;
  /** How long the earlier engine may sync before it is stopped and reported as not finished. */
  readonly boundMs: number;
}

export interface SyncRun {
  readonly side: 'after' | 'before';
  readonly revision: string;
  readonly records: number;
  readonly seconds: number;
  readonly converged: boolean;
  readonly written: number;
  readonly identical: number;
  readonly conflicts: number;
  /** A direct client's conditional PutItem (attribute_not_exists) on the same path, at 1, at --replay-concurrency and at the sync's ceiling of writes in flight. */
  readonly direct: ReadonlyArray<{ readonly concurrency: number; readonly writes: number; readonly perSecond: number }>;
  readonly link: string;
  readonly notes: readonly string[];
}

/** The link to the region: 50 ms of round trip (25 ms each way). */
const ONE_WAY_MS = 25;
const DIRECT_WRITES = 2000;
const PROBE_EVERY_MS = 1000;

const stage = (name: string) => ({ name, entry: 'unused', maxReceiveCount: 3, timeoutSeconds: 30, memoryMb: 128, batchSize: 10, maxConcurrency: 2, runsAtEdge: true });
const workflow: WorkflowDefinition = { name: 'bench-sync', stages: [stage('charge')] };
const policy = { timeoutMs: 30_000, retry: { attempts: 1, initialDelayMs: 1, maxDelayMs: 1 }, breaker: { consecutiveFailures: 50, halfOpenAfterMs: 1_000 } };
const saga: SagaDefinition<{ amountMinor: number }> = {
  workflow,
  parseInput: (input) => input as { amountMinor: number },
  agents: {
    charge: {
      policy,
      escalateToHumanReview: false,
      alternatives: [
        {
          name: 'cash',
          run: async ({ workflowId, input, site, stores }) => {
            await stores.counters.increment(`velocity:${workflowId}`, site.id, [{ key: 'velocity/bench', delta: 1 }]);
            return { chargedBy: site.id, amountMinor: input.amountMinor };
          },
        },
      ],
    },
  },
  settingsFromEnvironment: () => undefined,
};

/** An edge database holding what an edge agent did for `tasks` tasks. */
export async function fillEdgeDatabase(file: string, tasks: number): Promise<number> {
  let redelivered = 0;
  process.env.POWERTOOLS_LOG_LEVEL ??= 'CRITICAL';
  const db = openEdgeDatabase(file);
  try {
    const site = edgeSite('bench-edge');
    const agent = createAgent(saga, 'charge', {
      site,
      stores: sqliteStores(db),
      settings: undefined,
      handOff: async () => undefined,
      escalate: async () => {
        throw new Error('nothing is escalated');
      },
    });
    const identity = functionIdentity({ functionName: 'bench-charge', region: REGION, accountId: '123456789012', memoryMb: 256 });
    for (let first = 0; first < tasks; first += 10) {
      const messages = Array.from({ length: Math.min(10, tasks - first) }, (_, index) => {
        const workflowId = `w-${first + index}-${randomUUID().slice(0, 8)}`;
        const body = JSON.stringify({ taskId: stageTaskId(workflowId, 'charge'), workflow: workflow.name, workflowId, stage: 'charge', group: `acct-${(first + index) % 50}`, input: { amountMinor: 1000 } });
        return { MessageId: `m-${first + index}`, ReceiptHandle: `r-${first + index}`, Body: body, MD5OfBody: 'unused', Attributes: { ApproximateReceiveCount: '1', MessageGroupId: 'acct', SentTimestamp: String(Date.now()) } };
      });
      // A task the agent failed (on a loaded machine, its policy's timeout) is delivered again, as SQS would.
      let pending = messages;
      for (let attempt = 1; pending.length > 0; attempt++) {
        // Each delivery is an invocation of its own, with its own deadline.
        const response = await agent(sqsEvent(pending, { queueArn: `arn:aws:sqs:${REGION}:123456789012:bench.fifo`, region: REGION }), lambdaContext(invocationInfo(identity, 30)));
        const failed = new Set(response.batchItemFailures.map((failure) => failure.itemIdentifier));
        if (failed.size > 0 && attempt === 5) throw new Error(`the edge agent failed ${failed.size} tasks five times`);
        redelivered += failed.size;
        pending = pending.filter((message) => failed.has(message.MessageId));
      }
    }
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
  return redelivered;
}

/** Conditional PutItems of fresh keys, `concurrency` at a time, as a direct client on the same path. */
async function directPuts(dynamodb: DynamoDBClient, table: string, concurrency: number, writes: number): Promise<number> {
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < writes) {
      const index = next++;
      try {
        await dynamodb.send(
          new PutItemCommand({
            TableName: table,
            Item: { pk: { S: `direct#${randomUUID()}` }, sk: { S: `c${concurrency}#${index}` }, body: { S: 'x'.repeat(300) } },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        );
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return writes / ((performance.now() - started) / 1000);
}

export async function syncRun(spec: SyncRunSpec, revisionOf: (root?: string) => string, say: (line: string) => void): Promise<SyncRun> {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-way-back-sync-'));
  const stops: Array<() => Promise<void>> = [];
  const notes: string[] = [];
  try {
    const file = join(dir, 'edge.db');
    const fillStarted = performance.now();
    const redelivered = await fillEdgeDatabase(file, spec.tasks);
    if (redelivered > 0) notes.push(`the edge agent failed ${redelivered} task deliveries while the database was filled, each done on a later delivery`);
    say(`sync ${spec.side}: the edge agent ran ${spec.tasks} tasks in ${((performance.now() - fillStarted) / 1000).toFixed(1)} s (${redelivered} delivered again)`);
    const moto: Moto = await startMoto();
    stops.push(() => moto.stop());
    const connection = { endpoint: moto.endpoint, region: REGION, credentials: REGION_CREDENTIALS };
    const { tables } = await createWorkflowResources(connection, workflow, { namePrefix: `sync-${spec.side}-` });
    const proxy = await FaultProxy.start({ target: new URL(moto.endpoint).host, mode: { kind: 'latency', upstreamMs: ONE_WAY_MS, downstreamMs: ONE_WAY_MS } });
    stops.push(() => proxy.close());
    const throughProxy = `http://${proxy.address}`;
    const regionTables = { idempotency: tables.idempotency, workflow: tables.workflow, state: tables.state };
    const silent = pino({ level: 'silent' });

    let result: { written: number; identical: number; conflicts: number; skipped: number } | undefined;
    let records = 0;
    const started = performance.now();
    if (spec.side === 'after') {
      const link = new LinkEstimates();
      const probeClient = new DynamoDBClient({ region: REGION, endpoint: throughProxy, credentials: REGION_CREDENTIALS });
      let probing = true;
      const probes = (async () => {
        while (probing) {
          const at = performance.now();
          await probeClient.send(new ListTablesCommand({ Limit: 1 })).catch(() => undefined);
          link.noteRoundTrip(performance.now() - at);
          await sleep(PROBE_EVERY_MS);
        }
      })();
      const sync = new SyncBack({
        database: file,
        tables: regionTables,
        concurrency: syncWritesCeiling(DEFAULTS.replayConcurrency),
        link,
        minTimeoutMs: DEFAULTS.upstreamTimeoutMs,
        region: { name: REGION, dynamoDbEndpoint: throughProxy, credentials: REGION_CREDENTIALS },
        logger: silent,
      });
      try {
        await sync.run();
      } finally {
        probing = false;
        await probes;
        probeClient.destroy();
      }
      const status = sync.status();
      records = status?.total ?? 0;
      result = status ? { written: status.written, identical: status.identical, conflicts: status.conflicts, skipped: status.skipped } : undefined;
    } else {
      const copy = join(dir, 'edge-before.db');
      copyFileSync(file, copy);
      const engine = (await import(pathToFileURL(join(spec.root!, 'functions', 'src', 'edge', 'sync.ts')).href)) as { syncEdgeToRegion: typeof SyncEngine };
      const dynamodb = new DynamoDBClient({ region: REGION, endpoint: throughProxy, credentials: REGION_CREDENTIALS });
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(new Error('bound')), spec.boundMs);
      let done = 0;
      try {
        const outcome = await engine.syncEdgeToRegion({
          database: copy,
          dynamodb,
          tables: regionTables,
          logger: silent,
          signal: controller.signal,
          onProgress: (progress) => {
            done = progress.done;
            records = progress.total;
          },
        });
        result = outcome.counts;
      } catch (error) {
        if (!controller.signal.aborted) throw error;
        notes.push(`stopped at the bound of ${spec.boundMs / 1000} s with ${done} of ${records} records synced`);
        records = done;
      } finally {
        clearTimeout(timer);
        dynamodb.destroy();
      }
    }
    const seconds = (performance.now() - started) / 1000;
    say(`sync ${spec.side}: ${records} records in ${seconds.toFixed(1)} s (${(records / seconds).toFixed(1)}/s)`);

    const direct = new DynamoDBClient({ region: REGION, endpoint: throughProxy, credentials: REGION_CREDENTIALS });
    const directRates: Array<{ concurrency: number; writes: number; perSecond: number }> = [];
    try {
      for (const concurrency of [1, DEFAULTS.replayConcurrency, syncWritesCeiling(DEFAULTS.replayConcurrency)]) {
        const writes = concurrency === 1 ? DIRECT_WRITES / 4 : DIRECT_WRITES;
        directRates.push({ concurrency, writes, perSecond: await directPuts(direct, regionTables.workflow, concurrency, writes) });
      }
    } finally {
      direct.destroy();
    }
    say(`sync ${spec.side}: direct conditional PutItem ${directRates.map((rate) => `${rate.concurrency} at a time: ${rate.perSecond.toFixed(1)}/s`).join(', ')}`);
    return {
      side: spec.side,
      revision: revisionOf(spec.root),
      records,
      seconds,
      converged: result !== undefined && notes.length === 0,
      written: result?.written ?? 0,
      identical: result?.identical ?? 0,
      conflicts: result?.conflicts ?? 0,
      direct: directRates,
      link: `fault proxy latency ${ONE_WAY_MS} ms each way (${2 * ONE_WAY_MS} ms round trip) to moto's DynamoDB`,
      notes,
    };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}
