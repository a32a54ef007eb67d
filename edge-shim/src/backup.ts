import Database from 'better-sqlite3';
import { isPostgresLocation } from '../../functions/src/edge/index.js';
import { existsSync, statSync } from 'node:fs';
import { join, parse } from 'node:path';
import { ConfigError, type ShimConfig, edgeDatabase } from './config.js';
import { checkIntegrity } from './sqs/integrity.js';

export interface BackedUp {
  readonly from: string;
  readonly to: string;
  readonly bytes: number;
}

/** Where the fallback agents' database goes beside a backup of the shim's: backup.db → backup.edge-agents.db. */
export function edgeBackupFile(target: string): string {
  const { dir, name, ext } = parse(target);
  return join(dir, `${name}.edge-agents${ext}`);
}

/**
 * `holdfast backup FILE`: SQLite's online backup of the shim's database (--db) to FILE, and of the
 * fallback agents' (--edge-db, edge-agents.db beside --db by default) when there is one, beside it.
 * Each is a consistent copy as of one moment, taken through a read transaction of its own: a
 * running shim and its agents go on writing meanwhile (its `<db>.lock` is for shims, not readers).
 * Each copy is checked (quick_check) before it is reported. An existing FILE is refused: a backup
 * never overwrites, so that a slip cannot write over the live database.
 */
export async function backUp(config: Pick<ShimConfig, 'dbFile' | 'edgeDbFile'>, target: string): Promise<BackedUp[]> {
  if (isPostgresLocation(config.dbFile)) throw new ConfigError('the queues are in PostgreSQL: back them up with its own tools (pg_dump, or the base backups of its replication)');
  const copies = [{ from: config.dbFile, to: target }];
  const edgeDb = edgeDatabase(config);
  if (existsSync(edgeDb)) copies.push({ from: edgeDb, to: edgeBackupFile(target) });
  if (!existsSync(config.dbFile)) throw new ConfigError(`there is no database ${config.dbFile} to back up: give the shim's --db`);
  for (const { to } of copies) {
    if (existsSync(to)) throw new ConfigError(`${to} exists: back up to a new file`);
  }
  const done: BackedUp[] = [];
  for (const { from, to } of copies) {
    const source = new Database(from, { readonly: true, fileMustExist: true });
    try {
      // The whole database in one step: one snapshot, which the shim's writes cannot make start over
      // (SQLite restarts a stepwise backup when another connection writes between its steps).
      await source.backup(to, { progress: () => 0x7fffffff });
    } finally {
      source.close();
    }
    const copy = new Database(to, { readonly: true, fileMustExist: true });
    try {
      checkIntegrity(copy, to, 'quick');
    } finally {
      copy.close();
    }
    done.push({ from, to, bytes: statSync(to).size });
  }
  return done;
}
