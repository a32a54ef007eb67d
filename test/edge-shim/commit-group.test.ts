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

function open(): CommitGroup {
  dir = mkdtempSync(join(tmpdir(), 'holdfast-commit-'));
  db = openDatabase(join(dir, 'commit.db'), 'process');
  db.exec('CREATE TABLE notes (text TEXT NOT NULL) STRICT');
  return new CommitGroup(db, (error) => {
    throw error;
  });
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
