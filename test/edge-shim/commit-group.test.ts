import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { CommitGroup } from '../../edge-shim/src/sqs/commit-group.js';
import { type Db, openDatabase } from '../../edge-shim/src/sqs/database.js';
import { SqsError } from '../../edge-shim/src/sqs/errors.js';

// The group commit on a real SQLite file: shutting down must neither lose queued work nor run it
// on a closed database.
let dir: string;
let db: Db;

function open(
  onCommitFailure: (error: unknown) => void = (error) => {
    throw error;
  },
): CommitGroup {
  dir = mkdtempSync(join(tmpdir(), 'holdfast-commit-'));
  db = openDatabase(join(dir, 'commit.db'), 'process');
  db.exec('CREATE TABLE notes (text TEXT NOT NULL) STRICT');
  return new CommitGroup(db, onCommitFailure);
}

afterEach(() => {
  if (db.open) db.close();
  rmSync(dir, { recursive: true, force: true });
});

it('commits the work queued before close, then refuses new work', async () => {
  const commits = open();
  const insert = db.prepare('INSERT INTO notes (text) VALUES (?)');
  const queued = [commits.run(() => insert.run('a')), commits.run(() => insert.run('b'))];
  const closed = commits.close();
  await expect(commits.run(() => insert.run('c'))).rejects.toSatisfy((error) => error instanceof SqsError && error.code === 'ServiceUnavailable');
  await closed;
  await Promise.all(queued);
  db.close();
  db = openDatabase(join(dir, 'commit.db'), 'process');
  expect(db.prepare('SELECT text FROM notes ORDER BY text').pluck().all()).toEqual(['a', 'b']);
});

it('closes at once when nothing is queued', async () => {
  const commits = open();
  await commits.close();
  await expect(commits.run(() => 1)).rejects.toBeInstanceOf(SqsError);
});

it('an error that rolls back the whole transaction fails the whole group; no later operation commits on its own', async () => {
  const failures: unknown[] = [];
  const commits = open((error) => {
    failures.push(error);
  });
  // SQLite rolls back the whole transaction on some errors (disk full, I/O); RAISE(ROLLBACK) does so on demand.
  db.exec(`CREATE TEMP TRIGGER doom AFTER INSERT ON notes WHEN new.text = 'doom' BEGIN SELECT RAISE(ROLLBACK, 'rolled back'); END`);
  const insert = db.prepare('INSERT INTO notes (text) VALUES (?)');
  const outcomes = await Promise.allSettled([commits.run(() => insert.run('a')), commits.run(() => insert.run('doom')), commits.run(() => insert.run('b'))]);
  const stored = db.prepare('SELECT text FROM notes ORDER BY text').pluck().all();
  // Whatever was answered as a success is stored, and whatever is stored was answered as a success.
  const succeeded = ['a', 'doom', 'b'].filter((_, index) => outcomes[index]!.status === 'fulfilled').sort();
  expect(stored).toEqual(succeeded);
  expect(outcomes[1]!.status).toBe('rejected');
  expect(failures).toHaveLength(1);
});

it('commits work run alone in a transaction of its own: a group failing beside it does not take it down', async () => {
  const failures: unknown[] = [];
  const commits = open((error) => {
    failures.push(error);
  });
  db.exec(`CREATE TEMP TRIGGER doom AFTER INSERT ON notes WHEN new.text = 'doom' BEGIN SELECT RAISE(ROLLBACK, 'rolled back'); END`);
  const insert = db.prepare('INSERT INTO notes (text) VALUES (?)');
  // Queued in one turn of the event loop: grouped together but for the one run alone.
  const outcomes = await Promise.allSettled([commits.run(() => insert.run('a')), commits.runAlone(() => insert.run('alone')), commits.run(() => insert.run('doom'))]);
  expect(outcomes.map((outcome) => outcome.status)).toEqual(['rejected', 'fulfilled', 'rejected']);
  expect(db.prepare('SELECT text FROM notes ORDER BY text').pluck().all()).toEqual(['alone']);
  expect(failures).toHaveLength(1);
});
