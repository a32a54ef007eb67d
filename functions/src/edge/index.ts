/**
 * The one door from the edge shim into functions/: the workflow definitions it runs fallback agents
 * for, the names of the stack's outputs it is wired from, the environment of a fallback agent, the runner's types, the sync engine, its conflict list,
 * and the edge database (an SQLite file or a PostgreSQL URL). The runner itself is behind ./runner.ts, so that loading this module (the
 * shim does at start) does not load it.
 */
export {
  DEAD_LETTER_RETENTION_SECONDS,
  humanReviewQueueName,
  STACK_OUTPUTS,
  stageQueueNames,
  stageVisibilityTimeoutSeconds,
  type StageDefinition,
  type WorkflowDefinition,
} from '../workflow-definition.js';
export type { AwsConnection, HeldMessage, LocalRunner, RunnerEvent, StageQueues } from '../event-source/runner.js';
export { edgeAgentEnvironment, type EdgeAgentEnvironmentOptions } from './environment.js';
export { holdfastLogger } from '../runtime/log.js';
export {
  listSyncConflicts,
  mergeCountsPerWriter,
  pendingSyncRecords,
  concurrencyLimit,
  syncEdgeToRegion,
  SYNC_KINDS,
  type RegionTables,
  type StateMerger,
  SyncWriteError,
  type SyncConflict,
  type SyncCounts,
  type SyncKind,
  type SyncOptions,
  type SyncProgress,
  type SyncResult,
  type WritePacer,
} from './sync.js';
export { EDGE_SCHEMA_VERSION, openEdgeDatabase, type EdgeDatabase } from '../runtime/store/sqlite-database.js';
export { closeSiteDatabase, isPostgresLocation, openSiteDatabase, type SiteDatabase } from '../runtime/store/site-database.js';
export { isTypeScript, tsxApiFor } from '../event-source/typescript.js';
export { migrate, postgresPool, type VersionedSchema } from '../runtime/store/postgres-database.js';
export { isTransient } from '../runtime/errors.js';
