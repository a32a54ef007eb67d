/**
 * What the edge shim calls to run fallback agents and bring their work to the region: the
 * environment of a fallback agent, the sync engine, its conflict list, and the edge database.
 */
export { edgeAgentEnvironment, type EdgeAgentEnvironmentOptions } from './environment.js';
export {
  listSyncConflicts,
  mergeCountsPerWriter,
  syncEdgeToRegion,
  SYNC_KINDS,
  type RegionTables,
  type StateMerger,
  type SyncConflict,
  type SyncCounts,
  type SyncKind,
  type SyncOptions,
  type SyncProgress,
  type SyncResult,
} from './sync.js';
export { openEdgeDatabase, type EdgeDatabase } from '../runtime/store/sqlite-database.js';
