import { randomUUID } from 'node:crypto';
import {
  IdempotencyAlreadyInProgressError,
  IdempotencyConfig,
  IdempotencyValidationError,
  makeIdempotent,
} from '@aws-lambda-powertools/idempotency';
import type { Context } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Checkpoints, VersionConflictError } from '../../functions/src/runtime/checkpoint.js';
import { PermanentError } from '../../functions/src/runtime/errors.js';
import { siteMark, edgeSite, REGION } from '../../functions/src/runtime/site.js';
import { BACKENDS, type TestBackend, testBackend } from './support/backends.js';
import { invocationContext } from './support/runtime.js';

/**
 * One contract, three backends: the region's DynamoDB stores (on the emulator), the edge's SQLite
 * ones and a multi-node site's PostgreSQL ones must answer every call alike, conditional writes
 * included, so that an agent cannot tell them apart. The idempotency layers are held to Powertools'
 * own expectations through makeIdempotent.
 */
describe.each(BACKENDS)('stores on %s', (name) => {
  // moto decides a condition and writes without a lock, so concurrent writers race in the emulator
  // (seen: two creators of one step both won, a transaction's ADD lost); DynamoDB itself does not.
  const concurrentWrites = it.skipIf(name === 'dynamodb');
  let backend: TestBackend;
  beforeAll(async () => {
    backend = await testBackend(name);
  });
  afterAll(() => backend.close());
  afterEach(() => {
    vi.useRealTimers();
  });

  describe('step log', () => {
    it('creates a saga record once and returns the stored one to later starts', async () => {
      const { stepLog } = backend.stores;
      const id = `w-${randomUUID()}`;
      expect(await stepLog.load(id)).toEqual({ saga: undefined, steps: [] });
      expect(await stepLog.startSaga(id, 'wf', { amount: 1 })).toEqual({ workflowId: id, workflow: 'wf', status: 'running', input: { amount: 1 } });
      expect(await stepLog.startSaga(id, 'wf', { amount: 2 })).toEqual({ workflowId: id, workflow: 'wf', status: 'running', input: { amount: 1 } });
    });

    it('moves the saga only from the states named', async () => {
      const { stepLog } = backend.stores;
      const id = `w-${randomUUID()}`;
      await stepLog.startSaga(id, 'wf', {});
      expect(await stepLog.setSagaStatus(id, ['compensating'], 'compensated')).toBe(false);
      expect(await stepLog.setSagaStatus(id, ['running', 'escalated'], 'compensating')).toBe(true);
      expect(await stepLog.setSagaStatus(id, ['running'], 'completed')).toBe(false);
      expect((await stepLog.load(id)).saga?.status).toBe('compensating');
      expect(await stepLog.setSagaStatus(`w-${randomUUID()}`, ['running'], 'completed')).toBe(false);
    });

    concurrentWrites('lets one of many concurrent writers create a saga or a step, and shows the others what it wrote', async () => {
      const { stepLog } = backend.stores;
      const id = `w-${randomUUID()}`;
      const sagas = await Promise.all([1, 2, 3, 4, 5].map((amount) => stepLog.startSaga(id, 'wf', { amount })));
      expect(new Set(sagas.map((saga) => JSON.stringify(saga.input))).size).toBe(1);
      const moves = await Promise.all([1, 2, 3, 4, 5].map(() => stepLog.transitionStep(id, { name: 'first', index: 0 }, ['absent'], { status: 'started' })));
      expect(moves.filter((move) => move !== undefined)).toEqual([{ step: 'first', index: 0, status: 'started', attempts: 1, compensationAttempts: 0 }]);
      const completions = await Promise.all([1, 2, 3].map(() => stepLog.transitionStep(id, { name: 'first', index: 0 }, ['started'], { status: 'completed', result: 1 })));
      expect(completions.filter((move) => move !== undefined)).toHaveLength(1);
    });

    it('moves a step only from the states named, counting attempts and keeping results, errors and site marks', async () => {
      const { stepLog } = backend.stores;
      const id = `w-${randomUUID()}`;
      await stepLog.startSaga(id, 'wf', {});
      const edge = siteMark(edgeSite('edge-1'), new Date('2030-01-02T03:04:05.000Z'));
      const region = siteMark(REGION, new Date('2030-01-02T04:00:00.000Z'));
      const second = { name: 'second', index: 1 };
      const first = { name: 'first', index: 0 };

      expect(await stepLog.transitionStep(id, second, ['started'], { status: 'completed' })).toBeUndefined();
      expect(await stepLog.transitionStep(id, second, ['absent', 'started'], { status: 'started', ranAt: edge })).toEqual({
        step: 'second',
        index: 1,
        status: 'started',
        attempts: 1,
        compensationAttempts: 0,
        ranAt: edge,
      });
      expect((await stepLog.transitionStep(id, second, ['absent', 'started'], { status: 'started', ranAt: region }))?.attempts).toBe(2);
      expect(await stepLog.transitionStep(id, first, ['absent'], { status: 'completed', result: { answeredBy: 'x', value: [1, 'a'], skipped: [] } })).toMatchObject({
        status: 'completed',
        attempts: 0,
        result: { answeredBy: 'x', value: [1, 'a'], skipped: [] },
      });
      expect(await stepLog.transitionStep(id, second, ['started'], { status: 'failed', error: 'PermanentError: no' })).toMatchObject({
        status: 'failed',
        error: 'PermanentError: no',
        ranAt: region,
      });
      expect(await stepLog.transitionStep(id, second, ['started'], { status: 'completed' })).toBeUndefined();
      expect(await stepLog.transitionStep(id, first, ['completed', 'compensating'], { status: 'compensating', compensatedAt: edge })).toMatchObject({
        compensationAttempts: 1,
        compensatedAt: edge,
      });
      expect((await stepLog.transitionStep(id, first, ['completed', 'compensating'], { status: 'compensating', compensatedAt: edge }))?.compensationAttempts).toBe(2);
      await stepLog.transitionStep(id, first, ['compensating'], { status: 'compensated' });

      const { steps } = await stepLog.load(id);
      expect(steps.map((step) => [step.index, step.step, step.status, step.attempts, step.compensationAttempts])).toEqual([
        [0, 'first', 'compensated', 0, 2],
        [1, 'second', 'failed', 2, 0],
      ]);
      // The outcome survives the later moves.
      expect(steps[0]!.result).toEqual({ answeredBy: 'x', value: [1, 'a'], skipped: [] });
    });
  });

  describe('checkpoints', () => {
    it('saves versions with optimistic concurrency, recording writer and base version', async () => {
      const checkpoints = new Checkpoints<{ count: number }>(backend.stores.checkpoints, 'site-a');
      const rival = new Checkpoints<{ count: number }>(backend.stores.checkpoints, 'site-b');
      const key = `agent-${randomUUID()}`;
      expect(await checkpoints.restoreLatest(key)).toEqual({ latestVersion: 0 });
      expect(await checkpoints.save(key, { count: 1 }, 0)).toBe(1);
      const read = await checkpoints.restoreLatest(key);
      expect(read).toEqual({ latestVersion: 1, intact: { version: 1, state: { count: 1 } } });

      // Two writers read version 1; the second to write loses.
      expect(await rival.save(key, { count: 2 }, read.latestVersion)).toBe(2);
      await expect(checkpoints.save(key, { count: 99 }, read.latestVersion)).rejects.toBeInstanceOf(VersionConflictError);
      expect((await checkpoints.restoreLatest(key)).intact).toEqual({ version: 2, state: { count: 2 } });
      const snapshots = await backend.stores.checkpoints.list(key);
      expect(snapshots.map((snapshot) => [snapshot.version, snapshot.writer, snapshot.baseVersion])).toEqual([
        [2, 'site-b', 1],
        [1, 'site-a', 0],
      ]);
    });

    it('restores the latest intact version when the newest snapshot is corrupt', async () => {
      const checkpoints = new Checkpoints<{ count: number }>(backend.stores.checkpoints, 'site-a');
      const key = `agent-${randomUUID()}`;
      await checkpoints.save(key, { count: 1 }, 0);
      await checkpoints.save(key, { count: 2 }, 1);
      await checkpoints.save(key, { count: 3 }, 2);
      await backend.tamperCheckpoint(key, 3, '{"count":300}');
      const restored = await checkpoints.restoreLatest(key);
      expect(restored).toEqual({ latestVersion: 3, intact: { version: 2, state: { count: 2 } } });
      expect((await checkpoints.versions(key)).map((version) => version.intact)).toEqual([false, true, true]);
      // The next save names the newest version, corrupt or not.
      expect(await checkpoints.save(key, { count: 4 }, restored.latestVersion)).toBe(4);
    });
  });

  describe('counters', () => {
    it('applies an operation once, to its writer only', async () => {
      const { counters } = backend.stores;
      const key = `c-${randomUUID()}`;
      const other = `c-${randomUUID()}`;
      expect(await counters.read(key)).toEqual({});
      expect(await counters.increment('op-1', 'site-a', [{ key, delta: 5 }, { key: other, delta: 1 }])).toBe('applied');
      expect(await counters.increment('op-1', 'site-a', [{ key, delta: 5 }, { key: other, delta: 1 }])).toBe('already-applied');
      expect(await counters.increment(`op-${randomUUID()}`, 'site-b', [{ key, delta: 2 }])).toBe('applied');
      expect(await counters.increment(`op-${randomUUID()}`, 'site-a', [{ key, delta: 3 }])).toBe('applied');
      expect(await counters.read(key)).toEqual({ 'site-a': 8, 'site-b': 2 });
      expect(await counters.read(other)).toEqual({ 'site-a': 1 });
    });

    it("refuses, all or none, an operation that would take a writer's count past a limit", async () => {
      const { counters } = backend.stores;
      const account = `c-${randomUUID()}`;
      const site = `c-${randomUUID()}`;
      const reserve = (id: string, writer: string, delta: number) =>
        counters.increment(id, writer, [
          { key: account, delta, limit: 100 },
          { key: site, delta, limit: 150 },
        ]);
      expect(await reserve('r-1', 'site-a', 60)).toBe('applied');
      expect(await reserve('r-2', 'site-a', 41)).toBe('over-limit');
      expect(await counters.read(account)).toEqual({ 'site-a': 60 });
      expect(await counters.read(site)).toEqual({ 'site-a': 60 });
      expect(await reserve('r-3', 'site-a', 40)).toBe('applied');
      // Another writer's count has its own limit.
      expect(await reserve('r-4', 'site-b', 100)).toBe('applied');
      expect(await reserve('r-5', 'site-b', 101)).toBe('over-limit');
      expect(await counters.increment('r-6', 'site-a', [{ key: `c-${randomUUID()}`, delta: 1, limit: 0 }])).toBe('over-limit');
      // A repeat is recognized before any limit is looked at.
      expect(await reserve('r-1', 'site-a', 60)).toBe('already-applied');
      expect(await counters.read(account)).toEqual({ 'site-a': 100, 'site-b': 100 });
    });

    concurrentWrites('keeps a limit against concurrent operations, applying each repeated one once', async () => {
      const { counters } = backend.stores;
      const key = `c-${randomUUID()}`;
      const outcomes = await Promise.all(
        Array.from({ length: 8 }, (_, i) => counters.increment(`op-${key}-${i % 6}`, 'site-a', [{ key, delta: 30, limit: 100 }])),
      );
      // Six distinct operations (two of them sent twice): three fit under the limit.
      expect(outcomes.filter((outcome) => outcome === 'applied')).toHaveLength(3);
      expect(await counters.read(key)).toEqual({ 'site-a': 90 });
    });

    it('refuses malformed increments with a clear error', async () => {
      const { counters } = backend.stores;
      await expect(counters.increment('bad-1', 'site-a', [{ key: 'k', delta: 0 }])).rejects.toThrow('delta must be a positive safe integer');
      await expect(counters.increment('bad-2', 'site-a', [{ key: 'k', delta: 1.5 }])).rejects.toThrow('delta must be a positive safe integer');
      await expect(counters.increment('bad-3', 'site-a', [])).rejects.toThrow('has no increments');
      await expect(counters.increment('bad-4', 'site-a', [{ key: 'k', delta: 1 }, { key: 'k', delta: 1 }])).rejects.toThrow('names k twice');
    });
  });

  // The SQLite edge keeps no ledger (the region's book of record); a PostgreSQL site may.
  describe.skipIf(name === 'sqlite')('ledger', () => {
    const posting = (id: string, from: string, to: string, amountMinor: number) => ({
      id,
      memo: `memo of ${id}`,
      entries: [
        { postingId: id, leg: 0, account: from, side: 'debit' as const, amountMinor, currency: 'EUR' },
        { postingId: id, leg: 1, account: to, side: 'credit' as const, amountMinor, currency: 'EUR' },
      ],
    });

    it('writes a posting with its entries once', async () => {
      const ledger = backend.stores.ledger!;
      const written = posting(`p-${randomUUID()}`, `customer:${randomUUID()}`, `merchant:${randomUUID()}`, 1_999);
      expect(await ledger.writePosting(written)).toBe('written');
      expect(await ledger.writePosting({ ...written, memo: 'another' })).toBe('already-posted');
      expect(await ledger.getPosting(written.id)).toEqual(written);
      expect(await ledger.getPosting(`p-${randomUUID()}`)).toBeUndefined();
    });

    it('refuses a posting that touches a closed account and writes none of it', async () => {
      const ledger = backend.stores.ledger!;
      const closed = `merchant:${randomUUID()}`;
      await ledger.closeAccount(closed);
      const refused = posting(`p-${randomUUID()}`, `customer:${randomUUID()}`, closed, 500);
      const error = await ledger.writePosting(refused).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(PermanentError);
      expect((error as Error).message).toBe(`ledger account closed: ${closed}`);
      expect(await ledger.getPosting(refused.id)).toBeUndefined();
      expect(await ledger.writePosting(posting(`p-${randomUUID()}`, `customer:${randomUUID()}`, `merchant:${randomUUID()}`, 500))).toBe('written');
    });

    it('lists every entry of every posting', async () => {
      const ledger = backend.stores.ledger!;
      const postings = [1, 2, 3].map((amount) => posting(`p-${randomUUID()}`, `customer:${randomUUID()}`, `merchant:${randomUUID()}`, amount));
      for (const written of postings) await ledger.writePosting(written);
      const ids = new Set(postings.map((written) => written.id));
      const listed: unknown[] = [];
      for await (const entry of ledger.entries()) if (ids.has(entry.postingId)) listed.push(entry);
      expect(listed).toHaveLength(6);
      expect(listed).toEqual(expect.arrayContaining(postings.flatMap((written) => written.entries)));
    });
  });

  describe('idempotency layer, as Powertools expects it', () => {
    interface Request {
      readonly id: string;
      readonly amount: number;
    }

    /**
     * A function made idempotent over one of the backend's layers, counting its real runs. Each call
     * is an invocation with its own Lambda context (30 s to run unless given); `hold` makes the next
     * run wait until opened.
     */
    function idempotent(expiresAfterSeconds = 3_600) {
      const runs: string[] = [];
      let gate: { entered: () => void; opened: Promise<void> } | undefined;
      const persistenceStore = backend.stores.idempotencyLayer();
      const keyPrefix = `contract-${randomUUID().slice(0, 8)}`;
      const work = async (request: Request) => {
        runs.push(request.id);
        const held = gate;
        gate = undefined;
        if (held) {
          held.entered();
          await held.opened;
        }
        return { charged: request.amount, run: runs.length };
      };
      const fn = (request: Request, context: Context = invocationContext('contract', 30)) =>
        makeIdempotent(work, {
          persistenceStore,
          keyPrefix,
          config: new IdempotencyConfig({ eventKeyJmesPath: 'id', payloadValidationJmesPath: 'amount', throwOnNoIdempotencyKey: true, expiresAfterSeconds, lambdaContext: context }),
        })(request);
      const hold = () => {
        let entered!: () => void;
        let open!: () => void;
        const whenEntered = new Promise<void>((resolve) => (entered = resolve));
        gate = { entered, opened: new Promise<void>((resolve) => (open = resolve)) };
        return { entered: whenEntered, open };
      };
      return { fn, runs, hold };
    }

    it('runs once and answers a repeat with the stored result (completed)', async () => {
      const { fn, runs } = idempotent();
      const request = { id: `r-${randomUUID()}`, amount: 250 };
      expect(await fn(request)).toEqual({ charged: 250, run: 1 });
      expect(await fn(request)).toEqual({ charged: 250, run: 1 });
      expect(runs).toEqual([request.id]);
    });

    it('turns a repeat away while the first run is in progress, then answers it once done (in progress)', async () => {
      const { fn, runs, hold } = idempotent();
      const request = { id: `r-${randomUUID()}`, amount: 10 };
      const gate = hold();
      const first = fn(request);
      await gate.entered;
      await expect(fn(request)).rejects.toBeInstanceOf(IdempotencyAlreadyInProgressError);
      gate.open();
      expect(await first).toEqual({ charged: 10, run: 1 });
      expect(await fn(request)).toEqual({ charged: 10, run: 1 });
      expect(runs).toHaveLength(1);
    });

    it('lets a repeat take over a run whose invocation ran out of time', async () => {
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
      const { fn, runs, hold } = idempotent();
      const request = { id: `r-${randomUUID()}`, amount: 10 };
      const gate = hold();
      const stuck = fn(request, invocationContext('contract', 5));
      await gate.entered;
      // The first invocation's deadline (5 s) passes: its worker is taken for dead.
      vi.setSystemTime(Date.now() + 6_000);
      expect(await fn(request)).toEqual({ charged: 10, run: 2 });
      expect(runs).toEqual([request.id, request.id]);
      gate.open();
      await stuck;
    });

    it('runs again once the stored result has expired (expired)', async () => {
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
      const { fn, runs } = idempotent(60);
      const request = { id: `r-${randomUUID()}`, amount: 42 };
      expect(await fn(request)).toEqual({ charged: 42, run: 1 });
      vi.setSystemTime(Date.now() + 61_000);
      expect(await fn(request)).toEqual({ charged: 42, run: 2 });
      expect(await fn(request)).toEqual({ charged: 42, run: 2 });
      expect(runs).toHaveLength(2);
    });

    it('refuses the same key with another payload (payload mismatch)', async () => {
      const { fn, runs } = idempotent();
      const id = `r-${randomUUID()}`;
      await fn({ id, amount: 1 });
      await expect(fn({ id, amount: 2 })).rejects.toBeInstanceOf(IdempotencyValidationError);
      expect(runs).toEqual([id]);
    });

    it('forgets a run that failed, so that the next one runs', async () => {
      const layer = backend.stores.idempotencyLayer();
      let calls = 0;
      const fn = makeIdempotent(
        async (request: Request) => {
          calls++;
          if (calls === 1) throw new Error('failed');
          return { ok: request.id };
        },
        { persistenceStore: layer, keyPrefix: `contract-${randomUUID().slice(0, 8)}`, config: new IdempotencyConfig({ eventKeyJmesPath: 'id', lambdaContext: invocationContext('contract', 30) }) },
      );
      const request = { id: `r-${randomUUID()}`, amount: 1 };
      await expect(fn(request)).rejects.toThrow('failed');
      expect(await fn(request)).toEqual({ ok: request.id });
      expect(calls).toBe(2);
    });
  });
});
