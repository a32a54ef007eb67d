import { randomUUID } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, paginateScan } from '@aws-sdk/lib-dynamodb';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listSyncConflicts, mergeCountsPerWriter, pendingSyncRecords, type RegionTables, type SyncProgress, syncEdgeToRegion } from '../../functions/src/edge/index.js';
import { createAgent } from '../../functions/src/runtime/agent.js';
import { Checkpoints } from '../../functions/src/runtime/checkpoint.js';
import type { AgentDependencies } from '../../functions/src/runtime/dependencies.js';
import type { SagaDefinition, StepContext } from '../../functions/src/runtime/saga.js';
import { REGION, type Site, edgeSite } from '../../functions/src/runtime/site.js';
import { dynamoDbStores } from '../../functions/src/runtime/store/stores.js';
import { counterValue, type Stores } from '../../functions/src/runtime/store/types.js';
import { type Task, stageTaskId } from '../../functions/src/runtime/task.js';
import type { WorkflowDefinition } from '../../functions/src/workflow-definition.js';
import { SyncBack } from '../../edge-shim/src/fallback/sync-back.js';
import { LinkEstimates } from '../../edge-shim/src/hybrid/link/estimates.js';
import { emulator } from '../helpers/emulator.js';
import { waitForState } from '../helpers/wait.js';
import { isPostgresDatabase } from '../../functions/src/runtime/store/site-database.js';
import { EDGE_ENGINES, type EdgeEngine, edgeDatabase, regionTables, type TestEdgeDatabase } from './support/backends.js';
import { invocationContext, taskEvent } from './support/runtime.js';

/**
 * The sync engine, from edge databases into a region on the emulator: what it writes, that a
 * region agent then answers a replayed task from the edge's result, that counters of several sites
 * converge in any order, that a stopped sync resumes and a repeated one changes nothing, and that
 * a conflict is kept with both versions and never overwrites the region. Each on either engine of
 * the edge database: an SQLite file, and PostgreSQL.
 */
const stage = (name: string) => ({ name, entry: 'unused', maxReceiveCount: 3, timeoutSeconds: 10, memoryMb: 128, batchSize: 10, maxConcurrency: 2, runsAtEdge: true });
const workflow: WorkflowDefinition = { name: 'sync', stages: [stage('charge'), stage('receipt')] };
const policy = { timeoutMs: 1_000, retry: { attempts: 1, initialDelayMs: 1, maxDelayMs: 1 }, breaker: { consecutiveFailures: 50, halfOpenAfterMs: 1_000 } };
const VELOCITY = 'velocity/acct-1';
const silent = pino({ level: 'silent' });

interface Input {
  readonly amountMinor: number;
}

/** Charges really made, as `<site>:<workflow id>`. */
let charges: string[];

async function charge({ workflowId, input, site, stores }: StepContext<Input>) {
  await stores.counters.increment(`velocity:${workflowId}`, site.id, [{ key: VELOCITY, delta: 1 }]);
  charges.push(`${site.id}:${workflowId}`);
  return { chargedBy: site.id, amountMinor: input.amountMinor };
}

const saga: SagaDefinition<Input> = {
  workflow,
  parseInput: (input) => input as Input,
  agents: {
    charge: {
      policy,
      escalateToHumanReview: false,
      // The card network is reached from the region only; an edge site takes cash.
      alternatives: [
        { name: 'card', regionOnly: true, run: (context) => charge(context) },
        { name: 'cash', run: (context) => charge(context) },
      ],
    },
    receipt: { policy, escalateToHumanReview: false, alternatives: [{ name: 'printer', run: async () => 'printed' }] },
  },
  settingsFromEnvironment: () => undefined,
};

interface Region {
  readonly tables: RegionTables & { ledger: string };
  readonly dynamodb: DynamoDBClient;
  readonly documents: DynamoDBDocumentClient;
  readonly stores: Stores;
}

async function region(): Promise<Region> {
  const { tables, dynamodb, documents } = await regionTables('sync');
  return { tables, dynamodb, documents, stores: dynamoDbStores(dynamodb, tables) };
}

const edges: TestEdgeDatabase[] = [];
async function edge(engine: EdgeEngine): Promise<TestEdgeDatabase> {
  const database = await edgeDatabase(engine);
  edges.push(database);
  return database;
}

/** Runs a stage's agent for tasks at a site, with hand-offs kept in `handedOff`. */
async function runAt(site: Site, stores: Stores, stageName: string, tasks: Task[], handedOff: Task[] = []) {
  const dependencies: AgentDependencies = {
    site,
    stores,
    settings: undefined,
    handOff: async (task) => void handedOff.push(task),
    escalate: async () => {
      throw new Error('nothing is escalated in this workflow');
    },
  };
  const response = await createAgent(saga, stageName, dependencies)(taskEvent(tasks), invocationContext(`sync-${stageName}`, 10));
  expect(response.batchItemFailures).toEqual([]);
  return handedOff;
}

const task = (workflowId: string, stageName = 'charge', amountMinor = 1_000): Task => ({
  taskId: stageTaskId(workflowId, stageName),
  workflow: workflow.name,
  workflowId,
  stage: stageName,
  group: 'acct-1',
  input: { amountMinor },
});

function sync(target: Region, database: TestEdgeDatabase, extra: Partial<Parameters<typeof syncEdgeToRegion>[0]> = {}) {
  return syncEdgeToRegion({ database: database.db, dynamodb: target.dynamodb, tables: target.tables, logger: silent, ...extra });
}

/** Records the shim would wait for before replaying: not synced to this region yet, and not a conflict on record. */
function pending(target: Region, database: TestEdgeDatabase) {
  return pendingSyncRecords({ database: database.db, dynamodb: target.dynamodb, tables: target.tables });
}

/** Every item of the region's tables, to tell that a sync changed nothing. */
async function regionItems(target: Region): Promise<unknown[]> {
  const items: unknown[] = [];
  for (const table of [target.tables.workflow, target.tables.idempotency, target.tables.state]) {
    for await (const page of paginateScan({ client: target.documents }, { TableName: table, ConsistentRead: true })) items.push(...(page.Items ?? []));
  }
  return items.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

beforeAll(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'CRITICAL';
});
afterEach(async () => {
  await Promise.all(edges.splice(0).map((database) => database.remove()));
});

describe.each(EDGE_ENGINES)('sync from an edge site (%s) to the region', (engine) => {
  // A region of each engine's own: the sites' counts would meet in a shared one.
  let main: Region;
  beforeAll(async () => {
    main = await region();
  });
  afterAll(() => main.dynamodb.destroy());

  it('writes what the edge did, so that a region agent answers a replayed task with the edge\'s result; a second run changes nothing', async () => {
    charges = [];
    const site = edgeSite('edge-a');
    const database = await edge(engine);
    const [first, second] = [`w-${randomUUID()}`, `w-${randomUUID()}`];
    const handedOff = await runAt(site, database.stores, 'charge', [task(first), task(second)]);
    expect(handedOff.map((next) => next.taskId)).toEqual([stageTaskId(first, 'receipt'), stageTaskId(second, 'receipt')]);
    expect(await pending(main, database)).toBe(9);

    const progress: SyncProgress[] = [];
    const result = await sync(main, database, { onProgress: (step) => progress.push(step) });
    // Two sagas, two steps, two idempotency records, one counter (this site's count), two counter operations.
    expect(result.counts).toEqual({ written: 9, identical: 0, conflicts: 0, skipped: 0 });
    expect(result.byKind).toMatchObject({ saga: { written: 2 }, step: { written: 2 }, idempotency: { written: 2 }, counter: { written: 1 }, 'counter-operation': { written: 2 } });
    expect(progress.map((step) => step.done)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(progress.at(-1)).toMatchObject({ total: 9, counts: { written: 9 } });
    expect(await pending(main, database)).toBe(0);

    const log = await main.stores.stepLog.load(first);
    expect(log.saga).toMatchObject({ status: 'running', input: { amountMinor: 1_000 } });
    expect(log.steps.map((step) => [step.step, step.status, step.ranAt?.site, step.ranAt?.atEdge])).toEqual([['charge', 'completed', 'edge-a', true]]);
    expect(await main.stores.counters.read(VELOCITY)).toMatchObject({ 'edge-a': 2 });

    // The task is replayed to the region: its agent answers from the edge's record and charges nothing.
    const regionHandOffs = await runAt(REGION, main.stores, 'charge', [task(first)]);
    expect(charges).toEqual([`edge-a:${first}`, `edge-a:${second}`]);
    expect(regionHandOffs).toEqual([]);

    const before = await regionItems(main);
    const again = await sync(main, database);
    expect(again.counts).toEqual({ written: 0, identical: 9, conflicts: 0, skipped: 0 });
    expect(await regionItems(main)).toEqual(before);
  });

  it('carries a saga the region began further with what the edge did after it', async () => {
    charges = [];
    const target = await region();
    try {
      const database = await edge(engine);
      const workflowId = `w-${randomUUID()}`;
      // The region charged; the edge, given the hand-off, printed the receipt and completed the saga.
      const [receiptTask] = await runAt(REGION, target.stores, 'charge', [task(workflowId)]);
      await runAt(edgeSite('edge-a'), database.stores, 'receipt', [receiptTask!]);

      const result = await sync(target, database);
      expect(result.counts.conflicts).toBe(0);
      // The saga moves running -> completed; the carried charge step is the region's already; the receipt is new.
      expect(result.byKind).toMatchObject({ saga: { written: 1 }, step: { identical: 1, written: 1 }, idempotency: { written: 1 } });
      const log = await target.stores.stepLog.load(workflowId);
      expect(log.saga?.status).toBe('completed');
      expect(log.steps.map((step) => [step.step, step.status, step.ranAt?.site])).toEqual([
        ['charge', 'completed', 'region'],
        ['receipt', 'completed', 'edge-a'],
      ]);
    } finally {
      target.dynamodb.destroy();
    }
  });

  it('merges counters of two edge sites and the region to the same values in either order of syncs', async () => {
    charges = [];
    const [a, b] = [await edge(engine), await edge(engine)];
    const [siteA, siteB] = [edgeSite('edge-a'), edgeSite('edge-b')];
    const [east, west] = [await region(), await region()];
    try {
      for (const target of [east, west]) {
        for (let i = 0; i < 4; i++) await target.stores.counters.increment(`region-${i}`, 'region', [{ key: VELOCITY, delta: 1 }]);
      }
      for (let i = 0; i < 3; i++) await runAt(siteA, a.stores, 'charge', [task(`w-${randomUUID()}`)]);
      for (let i = 0; i < 2; i++) await runAt(siteB, b.stores, 'charge', [task(`w-${randomUUID()}`)]);

      await sync(east, a);
      await sync(east, b);
      await sync(west, b);
      await sync(west, a);
      // A syncs again after more work: its own count grows, nobody else's changes.
      await runAt(siteA, a.stores, 'charge', [task(`w-${randomUUID()}`)]);
      await sync(west, a);
      await sync(east, a);
      await sync(east, b);

      const expected = { region: 4, 'edge-a': 4, 'edge-b': 2 };
      expect(await east.stores.counters.read(VELOCITY)).toEqual(expected);
      expect(await west.stores.counters.read(VELOCITY)).toEqual(expected);
      expect(counterValue(expected)).toBe(10);
    } finally {
      east.dynamodb.destroy();
      west.dynamodb.destroy();
    }
  });

  it('settles the site\'s counts once they reached the region: its limits count from zero again', async () => {
    const database = await edge(engine);
    const stores = database.stores;
    const reserve = (id: string) => stores.counters.increment(id, 'edge-a', [{ key: 'exposure/site/edge-a/EUR', delta: 600, limit: 1_000 }]);
    expect(await reserve('pay-1')).toBe('applied');
    expect(await reserve('pay-2')).toBe('over-limit');
    await sync(main, database);
    expect(await reserve('pay-2')).toBe('applied');
    expect(await reserve('pay-3')).toBe('over-limit');
    expect(await stores.counters.read('exposure/site/edge-a/EUR')).toEqual({ 'edge-a': 1_200 });
  });

  it('resumes a sync stopped by a failed write or by its signal, and ends where an uninterrupted one would', async () => {
    charges = [];
    const target = await region();
    try {
      const database = await edge(engine);
      await runAt(edgeSite('edge-a'), database.stores, 'charge', [task(`w-${randomUUID()}`), task(`w-${randomUUID()}`), task(`w-${randomUUID()}`)]);

      // The fourth write fails as a connection dropped by the region would.
      let writes = 0;
      target.dynamodb.middlewareStack.add(
        (next, context) => async (args) => {
          if (/Put|Update|TransactWrite/.test(context.commandName ?? '') && ++writes === 4) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
          return next(args);
        },
        { step: 'initialize', name: 'failFourthWrite' },
      );
      await expect(sync(target, database)).rejects.toThrow('socket hang up');
      target.dynamodb.middlewareStack.remove('failFourthWrite');

      // A new outage stops the next attempt after two more records.
      const stop = new AbortController();
      await expect(
        sync(target, database, { signal: stop.signal, onProgress: ({ done }) => done === 5 && stop.abort(new Error('the region went away again')) }),
      ).rejects.toThrow('the region went away again');

      const resumed = await sync(target, database);
      expect(resumed.counts.conflicts).toBe(0);
      expect(resumed.counts.written + resumed.counts.identical).toBe(13);
      expect(resumed.counts.identical).toBeGreaterThanOrEqual(5);

      // The same end as a sync that was never stopped.
      const uninterrupted = await region();
      try {
        await sync(uninterrupted, database);
        const strip = (items: unknown[]) => JSON.stringify(items).replace(/"(updatedAt|createdAt)":"[^"]*"/g, '');
        expect(strip(await regionItems(target))).toBe(strip(await regionItems(uninterrupted)));
      } finally {
        uninterrupted.dynamodb.destroy();
      }
      expect((await sync(target, database)).counts).toEqual({ written: 0, identical: 13, conflicts: 0, skipped: 0 });
    } finally {
      target.dynamodb.destroy();
    }
  });

  it('writes records concurrently at the pace its pacer allows, each saga before its steps', async () => {
    charges = [];
    const target = await region();
    try {
      const database = await edge(engine);
      const workflowIds = Array.from({ length: 6 }, () => `w-${randomUUID()}`);
      const receipts = await runAt(edgeSite('edge-a'), database.stores, 'charge', workflowIds.map((id) => task(id)));
      await runAt(edgeSite('edge-a'), database.stores, 'receipt', receipts);
      // Every write to the workflow table, as it starts and as it ends.
      const events: string[] = [];
      target.dynamodb.middlewareStack.add(
        (next, context) => async (args) => {
          const input = args.input as { TableName?: string; Item?: { pk?: string; sk?: string }; Key?: { pk?: { S?: string }; sk?: { S?: string } } };
          const written = input.TableName === target.tables.workflow && /Put|Update/.test(context.commandName ?? '');
          const key = written ? JSON.stringify(input.Item ?? input.Key) : '';
          if (written) events.push(`start ${key}`);
          const result = await next(args);
          if (written) events.push(`end ${key}`);
          return result;
        },
        { step: 'build', name: 'recordWrites' },
      );
      let running = 0;
      let most = 0;
      const pacer = {
        async run<T>(write: () => Promise<T>) {
          most = Math.max(most, ++running);
          try {
            return await write();
          } finally {
            running -= 1;
          }
        },
      };
      const result = await sync(target, database, { pacer });
      expect(result.byKind.saga.written).toBe(6);
      expect(result.byKind.step.written).toBe(12);
      expect(most).toBeGreaterThan(1);
      for (const workflowId of workflowIds) {
        const sagaEnd = events.findIndex((event) => event.startsWith('end') && event.includes(`saga#${workflowId}`) && event.includes('"saga"'));
        const firstStep = events.findIndex((event) => event.startsWith('start') && event.includes(`saga#${workflowId}`) && event.includes('step#'));
        expect(sagaEnd).toBeGreaterThanOrEqual(0);
        expect(firstStep).toBeGreaterThan(sagaEnd);
      }
    } finally {
      target.dynamodb.destroy();
    }
  });

  it('names the table and what to do when the region lacks one, and resumes once pointed at the right ones', async () => {
    charges = [];
    const target = await region();
    try {
      const database = await edge(engine);
      await runAt(edgeSite('edge-a'), database.stores, 'charge', [task(`w-${randomUUID()}`)]);
      const wrong = { ...target.tables, workflow: `missing-${randomUUID()}` };
      await expect(sync(target, database, { tables: wrong })).rejects.toThrow(`the region has no table ${wrong.workflow} (the workflow's workflow table): give the deployed stack's table names with --region-tables`);
      const result = await sync(target, database);
      expect(result.counts.conflicts).toBe(0);
      expect(result.byKind.saga.written).toBe(1);
    } finally {
      target.dynamodb.destroy();
    }
  });

  it('records a conflict with both versions, reports it, and never overwrites the region', async () => {
    charges = [];
    const database = await edge(engine);
    const workflowId = `w-${randomUUID()}`;
    // The same task ran in the region and, unaware, at the edge: two charges, two answers.
    await runAt(REGION, main.stores, 'charge', [task(workflowId)]);
    await runAt(edgeSite('edge-a'), database.stores, 'charge', [task(workflowId)]);
    expect(charges).toEqual([`region:${workflowId}`, `edge-a:${workflowId}`]);
    const regionBefore = await main.stores.stepLog.load(workflowId);

    const result = await sync(main, database);
    expect(result.byKind).toMatchObject({ saga: { identical: 1 }, step: { conflicts: 1 }, idempotency: { conflicts: 1 }, 'counter-operation': { conflicts: 1 } });
    expect(result.conflicts.map((conflict) => [conflict.kind, conflict.key])).toEqual([
      ['step', `${workflowId}/0`],
      ['idempotency', expect.stringMatching(/^sync\.charge#/)],
      ['counter-operation', `velocity:${workflowId}`],
    ]);
    const [step, idempotency] = result.conflicts;
    expect(step!.edge).toMatchObject({ result: { answeredBy: 'cash', value: { chargedBy: 'edge-a' } } });
    expect(step!.region).toMatchObject({ result: { answeredBy: 'card', value: { chargedBy: 'region' } } });
    expect([idempotency!.edge, idempotency!.region]).toMatchObject([{ data: { answeredBy: 'cash' } }, { data: { answeredBy: 'card' } }]);
    expect(await main.stores.stepLog.load(workflowId)).toEqual(regionBefore);

    // Kept in the edge database (in the order found: the writes run concurrently); a second sync
    // finds the same conflicts and adds no rows.
    expect((await listSyncConflicts(database.db)).map((conflict) => conflict.kind).sort()).toEqual(['counter-operation', 'idempotency', 'step']);
    const again = await sync(main, database);
    expect(again.counts.conflicts).toBe(3);
    expect(await listSyncConflicts(database.location)).toHaveLength(3);
    // A conflict waits for a person, not for the sync: nothing holds the replay back.
    expect(await pending(main, database)).toBe(0);
    expect(await main.stores.stepLog.load(workflowId)).toEqual(regionBefore);
  });

  it("as the shim runs it (SyncBack, given the database's location): what is pending, the sync, its conflicts for the status", async () => {
    charges = [];
    const target = await region();
    const database = await edge(engine);
    const workflowId = `w-${randomUUID()}`;
    await runAt(REGION, target.stores, 'charge', [task(workflowId)]);
    await runAt(edgeSite('edge-a'), database.stores, 'charge', [task(workflowId)]);
    const { endpoint, region: name, credentials } = emulator();
    const back = new SyncBack({
      database: database.location,
      tables: target.tables,
      concurrency: 4,
      link: new LinkEstimates(),
      minTimeoutMs: 5_000,
      region: { name, dynamoDbEndpoint: endpoint, credentials },
      logger: silent,
    });
    try {
      // The saga, its step, the idempotency record, the site's counter and its operation.
      expect(await back.pending()).toBe(5);
      await back.run();
      expect(back.status()).toMatchObject({ state: 'done', total: 5, identical: 1, written: 1, conflicts: 3 });
      // The status sees the conflicts as soon as the sync is over.
      const { latest, count } = back.conflicts();
      expect(count).toBe(3);
      const step = latest.find((conflict) => conflict.kind === 'step')!;
      expect(back.conflict(step.id)).toMatchObject({ key: `${workflowId}/0`, edge: { result: { answeredBy: 'cash' } }, region: { result: { answeredBy: 'card' } }, resolvedAt: null });
      expect(await back.pending()).toBe(0);
    } finally {
      await back.close();
      target.dynamodb.destroy();
    }
  });

  // An SQLite file is one shim's; on PostgreSQL every node of the site syncs when the region returns.
  it.runIf(engine === 'postgres')('runs the syncs of several nodes of a site one at a time: the later ones find everything done', async () => {
    charges = [];
    const target = await region();
    try {
      const database = await edge(engine);
      await runAt(edgeSite('edge-a'), database.stores, 'charge', [task(`w-${randomUUID()}`), task(`w-${randomUUID()}`)]);
      // The first node's writes wait until let go; it holds the sync's lock once its first write waits.
      let letGo!: () => void;
      const held = new Promise<void>((resolve) => (letGo = resolve));
      let writing!: () => void;
      const firstWriteWaits = new Promise<void>((resolve) => (writing = resolve));
      const first = sync(target, database, {
        pacer: {
          run: async (write) => {
            writing();
            return held.then(write);
          },
        },
      });
      await firstWriteWaits;
      // A second node, on a pool of its own, waits for it rather than writing meanwhile.
      const progress: SyncProgress[] = [];
      const second = sync(target, database, { database: database.location, onProgress: (step) => progress.push(step) });
      try {
        const db = database.db;
        if (!isPostgresDatabase(db)) throw new Error('a PostgreSQL database was asked for');
        await waitForState(async () => expect((await db.query("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).rowCount).toBe(1));
        expect(progress).toEqual([]);
      } finally {
        letGo();
      }
      expect((await first).counts).toEqual({ written: 9, identical: 0, conflicts: 0, skipped: 0 });
      expect((await second).counts).toEqual({ written: 0, identical: 9, conflicts: 0, skipped: 0 });
    } finally {
      target.dynamodb.destroy();
    }
  });

  it('fast-forwards checkpointed state the region did not change, merges concurrent versions where the state type knows how, and reports the others', async () => {
    const target = await region();
    try {
      const database = await edge(engine);
      type Counts = Record<string, number>;
      const edgeState = new Checkpoints<Counts>(database.stores.checkpoints, 'edge-a');
      const regionState = new Checkpoints<Counts>(target.stores.checkpoints, 'region');
      // Counts per writer merge by maximum; a plain state has no merger.
      const mergers = { 'counts/': mergeCountsPerWriter };
      const syncCheckpoints = async () => (await sync(target, database, { checkpointMergers: mergers })).byKind.checkpoint;

      await edgeState.save('counts/acct-1', { 'edge-a': 1 }, 0);
      await edgeState.save('plain/acct-1', { x: 1 }, 0);
      expect(await syncCheckpoints()).toEqual({ written: 2, identical: 0, conflicts: 0, skipped: 0 });

      // Only the edge moved on: fast-forward.
      await edgeState.save('counts/acct-1', { 'edge-a': 2 }, 1);
      expect((await syncCheckpoints()).written).toBe(1);
      expect((await regionState.restoreLatest('counts/acct-1')).intact).toEqual({ version: 2, state: { 'edge-a': 2 } });

      // Both moved on: merged where the state type knows how, a conflict where it does not.
      await regionState.save('counts/acct-1', { 'edge-a': 2, region: 5 }, 2);
      await edgeState.save('counts/acct-1', { 'edge-a': 3 }, 2);
      await regionState.save('plain/acct-1', { x: 2 }, 1);
      await edgeState.save('plain/acct-1', { x: 3 }, 1);
      const result = await sync(target, database, { checkpointMergers: mergers });
      expect(result.byKind.checkpoint).toEqual({ written: 1, identical: 0, conflicts: 1, skipped: 0 });
      expect((await regionState.restoreLatest('counts/acct-1')).intact).toEqual({ version: 4, state: { 'edge-a': 3, region: 5 } });
      expect((await target.stores.checkpoints.list('counts/acct-1'))[0]).toMatchObject({ writer: 'edge-a', baseVersion: 3 });
      // The edge goes on from the merged state.
      expect((await edgeState.restoreLatest('counts/acct-1')).intact?.state).toEqual({ 'edge-a': 3, region: 5 });
      expect((await regionState.restoreLatest('plain/acct-1')).intact?.state).toEqual({ x: 2 });
      expect(result.conflicts.map((conflict) => [conflict.kind, conflict.key])).toEqual([['checkpoint', 'plain/acct-1']]);
      expect(result.conflicts[0]!).toMatchObject({ edge: { state: '{"x":3}', writer: 'edge-a' }, region: { state: '{"x":2}', writer: 'region' } });

      // Next time only the edge moves: fast-forward from the merged version.
      await edgeState.save('counts/acct-1', { 'edge-a': 4, region: 5 }, 4);
      expect(await syncCheckpoints()).toMatchObject({ written: 1, conflicts: 1 });
      expect((await regionState.restoreLatest('counts/acct-1')).intact).toEqual({ version: 5, state: { 'edge-a': 4, region: 5 } });

      // A person settles the plain state in the region as the edge has it: the next sync finds it
      // identical and marks the conflict kept on it resolved.
      expect(await listSyncConflicts(database.db)).toHaveLength(1);
      await regionState.save('plain/acct-1', { x: 3 }, 2);
      expect(await syncCheckpoints()).toEqual({ written: 0, identical: 2, conflicts: 0, skipped: 0 });
      expect(await listSyncConflicts(database.db)).toEqual([]);
      expect(await listSyncConflicts(database.db, { includeResolved: true })).toMatchObject([{ kind: 'checkpoint', key: 'plain/acct-1', resolvedAt: expect.any(String) }]);
    } finally {
      target.dynamodb.destroy();
    }
  });
});
