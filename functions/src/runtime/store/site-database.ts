import pg from 'pg';
import { type PostgresDatabase, openPostgresDatabase } from './postgres-database.js';
import { type EdgeDatabase, openEdgeDatabase } from './sqlite-database.js';
import { postgresStores, sqliteStores } from './stores.js';
import type { Stores } from './types.js';

/**
 * An edge site's database, open: the SQLite file of a single-server site, or a pool on the
 * PostgreSQL database that the shim nodes of a site share.
 */
export type SiteDatabase = EdgeDatabase | PostgresDatabase;

/**
 * Whether an edge database's location is a PostgreSQL URL (`postgres://` or `postgresql://`)
 * rather than an SQLite file. A URL of any other scheme is refused: taken as a file name, it would
 * quietly become a new, empty database.
 */
export function isPostgresLocation(location: string): boolean {
  if (/^postgres(ql)?:\/\//.test(location)) return true;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(location)?.[1];
  if (scheme) throw new Error(`the edge database ${scheme}://… is neither a file nor a postgres:// (or postgresql://) URL`);
  return false;
}

export function isPostgresDatabase(db: SiteDatabase): db is PostgresDatabase {
  return db instanceof pg.Pool;
}

/**
 * Opens an edge database by its location: the SQLite file (created on first use), or the
 * PostgreSQL database (migrated to this runtime's schema).
 */
export async function openSiteDatabase(location: string): Promise<SiteDatabase> {
  return isPostgresLocation(location) ? openPostgresDatabase(location) : openEdgeDatabase(location);
}

export async function closeSiteDatabase(db: SiteDatabase): Promise<void> {
  if (isPostgresDatabase(db)) await db.end();
  else db.close();
}

/**
 * The fallback agents' stores on an edge database, whichever its engine. No ledger on either: the
 * region's ledger is the book of record, and the sync does not carry postings to it.
 */
export function siteStores(db: SiteDatabase): Stores {
  return isPostgresDatabase(db) ? { ...postgresStores(db), ledger: undefined } : sqliteStores(db);
}
