import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateQueueCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import Database from 'better-sqlite3';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { CommitGroup } from '../../edge-shim/src/sqs/commit-group.js';
import { type Db, openDatabase } from '../../edge-shim/src/sqs/database.js';
import { SqsError } from '../../edge-shim/src/sqs/errors.js';
import { spawnShim } from '../../testkit/shim-process.js';
import { sqsClient } from '../helpers/shim.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-durability-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('--durability', () => {
  it.each([
    ['process', 1],
    ['power', 2],
  ] as const)('%s opens the database in WAL mode with synchronous = %i', (durability, synchronous) => {
    const file = join(tempDir(), 'shim.db');
    const db = openDatabase(file, durability);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    // 1 is NORMAL (the WAL is synced at checkpoints only), 2 is FULL (synced at every commit).
    expect(db.pragma('synchronous', { simple: true })).toBe(synchronous);
    db.close();
    // WAL mode is a property of the file: another connection finds it.
    const other = new Database(file, { readonly: true });
    expect(other.pragma('journal_mode', { simple: true })).toBe('wal');
    other.close();
  });

  // The synchronous setting is per connection, so the running shim is observed from outside:
  // strace counts the syncs of its write-ahead log while it acknowledges one commit at a time, by
  // thread. The thread that serves (the process's main thread) syncs the WAL at every commit with
  // power. With process it syncs it only when it starts the WAL over after a complete checkpoint
  // (SQLite syncs the new header), so at most once per checkpoint (the checkpointer thread's
  // syncs), plus once as the database is created; checkpoints come as often as the checkpointer's
  // timer fires while commits come, more on a slow, loaded machine.
  const canTrace = (() => {
    try {
      execFileSync('strace', ['-f', '-o', '/dev/null', 'true'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
  const COMMITS = 30;
  it.skipIf(!canTrace).each([
    ['process', 'syncs the WAL only at checkpoints', (serving: number, checkpoints: number) => expect(serving, `${checkpoints} checkpoint syncs`).toBeLessThanOrEqual(checkpoints + 1)],
    ['power', 'syncs the WAL at every commit', (serving: number) => expect(serving).toBeGreaterThanOrEqual(COMMITS)],
  ] as const)('the running shim with --durability %s %s (needs strace)', { timeout: 30_000 }, async (durability, _what, check) => {
    const dir = tempDir();
    const trace = join(dir, 'syncs.txt');
    const shim = await spawnShim({
      dbFile: join(dir, 'shim.db'),
      durability,
      wrapper: ['strace', '-f', '-y', '-e', 'trace=fsync,fdatasync', '-o', trace],
    });
    const sqs = sqsClient(shim.url);
    try {
      const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'synced' }));
      for (let i = 0; i < COMMITS; i++) await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: `m${i}` }));
    } finally {
      sqs.destroy();
      // SIGKILL: no checkpoint at close adds syncs of its own.
      await shim.stop('SIGKILL');
    }
    // With -f, each line starts with the thread's id; the main thread's is the process's.
    const walSyncThreads = readFileSync(trace, 'utf8')
      .split('\n')
      .flatMap((line) => /^(\d+)\s+(?:fsync|fdatasync)\(\d+<[^>]*-wal>\)/.exec(line)?.slice(1, 2) ?? [])
      .map(Number);
    const serving = walSyncThreads.filter((thread) => thread === shim.pid).length;
    check(serving, walSyncThreads.length - serving);
  });
});

describe('group commit', () => {
  let db: Db;
  let reader: Database.Database;
  let commitFailures: unknown[];
  let group: CommitGroup;
  beforeEach(() => {
    const file = join(tempDir(), 'group.db');
    db = openDatabase(file, 'process');
    db.exec('CREATE TABLE notes (text TEXT NOT NULL)');
    reader = new Database(file, { readonly: true });
    commitFailures = [];
    group = new CommitGroup(db, (error) => commitFailures.push(error));
    return () => {
      reader.close();
      db.close();
    };
  });
  const insert = (text: string) => db.prepare('INSERT INTO notes (text) VALUES (?)').run(text);
  const committed = () => reader.prepare<[], { text: string }>('SELECT text FROM notes ORDER BY rowid').all().map((row) => row.text);

  it('runs operations that arrive together in one transaction and answers them only after its COMMIT', async () => {
    const events: string[] = [];
    const answered = (name: string) => () => events.push(`${name} answered, committed: ${committed().join(',')}`);
    const first = group.run(() => insert('first')).then(answered('first'));
    const second = group.run(() => {
      // The first operation's row is in this transaction but not yet committed.
      events.push(`second runs, committed: ${committed().join(',')}`);
      insert('second');
    });
    await Promise.all([first, second.then(answered('second'))]);
    expect(events).toEqual(['second runs, committed: ', 'first answered, committed: first,second', 'second answered, committed: first,second']);
  });

  it('rolls back only the operation that failed', async () => {
    const failure = new SqsError('InvalidParameterValue', 'refused half way');
    const outcomes = await Promise.allSettled([
      group.run(() => insert('before')),
      group.run(() => {
        insert('undone');
        throw failure;
      }),
      group.run(() => insert('after')),
    ]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toBe(failure);
    expect(committed()).toEqual(['before', 'after']);
    expect(commitFailures).toEqual([]);
  });

  it('answers every operation of a group with an error when its COMMIT fails, and stores none of them', async () => {
    // A deferred foreign key is checked at COMMIT only: the one bad row makes the COMMIT itself fail.
    db.pragma('foreign_keys = ON');
    db.exec(`CREATE TABLE parents (id INTEGER PRIMARY KEY);
      CREATE TABLE children (parent INTEGER REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED)`);
    const outcomes = await Promise.allSettled([
      group.run(() => insert('fine')),
      group.run(() => db.prepare('INSERT INTO children (parent) VALUES (42)').run()),
    ]);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toMatchObject({ code: 'ServiceUnavailable' });
    }
    expect(commitFailures).toHaveLength(1);
    expect(committed()).toEqual([]);
    expect(db.inTransaction).toBe(false);
    // The next group works again.
    await group.run(() => insert('later'));
    expect(committed()).toEqual(['later']);
  });
});
