import { createHash } from 'node:crypto';
import type { CheckpointStore, Snapshot } from './store/types.js';

export { VersionConflictError } from './store/types.js';

/** Hex SHA-256 of a snapshot's JSON text. */
export const snapshotHash = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

export interface Restored<S> {
  /** Newest version stored, intact or not (0 for none): the version the next save must name. */
  readonly latestVersion: number;
  /** The newest snapshot whose content still matches its hash, if any. */
  readonly intact?: { readonly version: number; readonly state: S };
}

/**
 * Checkpointed agent state: versioned snapshots with a SHA-256 of their content. A save names the
 * version it read and fails with VersionConflictError when another writer got there first. Each
 * snapshot records its writer (the site) and the version it was derived from, so that versions two
 * sites wrote apart from each other can be told apart when the edge syncs back (edge/sync.ts).
 */
export class Checkpoints<S> {
  constructor(
    private readonly store: CheckpointStore,
    private readonly writer: string,
  ) {}

  /** Saves `state` as the version after `readVersion` (0 when nothing was read); returns the new version. */
  async save(key: string, state: S, readVersion: number): Promise<number> {
    const text = JSON.stringify(state);
    const version = readVersion + 1;
    await this.store.put(key, { version, state: text, sha256: snapshotHash(text), createdAt: new Date().toISOString(), writer: this.writer, baseVersion: readVersion });
    return version;
  }

  /** Restores the newest intact snapshot, skipping any whose content no longer matches its hash. */
  async restoreLatest(key: string): Promise<Restored<S>> {
    const snapshots = await this.store.list(key);
    const latestVersion = snapshots[0]?.version ?? 0;
    for (const snapshot of snapshots) {
      if (isIntact(snapshot)) return { latestVersion, intact: { version: snapshot.version, state: JSON.parse(snapshot.state) as S } };
    }
    return { latestVersion };
  }

  /** Every version, newest first, with whether it is intact. */
  async versions(key: string): Promise<{ version: number; createdAt: string; intact: boolean }[]> {
    return (await this.store.list(key)).map((snapshot) => ({
      version: snapshot.version,
      createdAt: snapshot.createdAt,
      intact: isIntact(snapshot),
    }));
  }
}

export function isIntact(snapshot: Snapshot): boolean {
  if (snapshotHash(snapshot.state) !== snapshot.sha256) return false;
  try {
    JSON.parse(snapshot.state);
    return true;
  } catch {
    return false;
  }
}
