import type { SiteMark } from '../site.js';
import type { SagaRecord, SagaStatus, Snapshot, StepRecord, StepStatus } from './types.js';

// The rows of the step log and the checkpoints as both SQL backends (SQLite at the edge,
// PostgreSQL on a site of several nodes) keep them: the same columns, JSON as text.

export interface SagaRow {
  workflow_id: string;
  workflow: string;
  status: string;
  input: string;
}

export interface StepRow {
  step_index: number;
  step: string;
  status: string;
  attempts: number;
  compensation_attempts: number;
  result: string | null;
  error: string | null;
  ran_at: string | null;
  compensated_at: string | null;
}

export function toSaga(row: SagaRow): SagaRecord {
  return { workflowId: row.workflow_id, workflow: row.workflow, status: row.status as SagaStatus, input: JSON.parse(row.input) };
}

export function toStep(row: StepRow): StepRecord {
  return {
    step: row.step,
    index: row.step_index,
    status: row.status as StepStatus,
    attempts: row.attempts,
    compensationAttempts: row.compensation_attempts,
    ...(row.result !== null ? { result: JSON.parse(row.result) } : {}),
    ...(row.error !== null ? { error: row.error } : {}),
    ...(row.ran_at !== null ? { ranAt: JSON.parse(row.ran_at) as SiteMark } : {}),
    ...(row.compensated_at !== null ? { compensatedAt: JSON.parse(row.compensated_at) as SiteMark } : {}),
  };
}

export interface SnapshotRow {
  version: number;
  state: string;
  sha256: string;
  writer: string;
  base_version: number;
  created_at: string;
}

export const toSnapshot = (row: SnapshotRow): Snapshot => ({
  version: row.version,
  state: row.state,
  sha256: row.sha256,
  createdAt: row.created_at,
  writer: row.writer,
  baseVersion: row.base_version,
});
