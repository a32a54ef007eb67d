import type { PostgresDatabase } from './postgres-database.js';
import { type SagaRow, type StepRow, toSaga, toStep } from './sql-rows.js';
import type { SagaRecord, SagaStatus, StepLogStore, StepRecord, StepStatus, StepUpdate } from './types.js';


/** The columns of a StepRow. */
export const STEP_COLUMNS = 'step_index, step, status, attempts, compensation_attempts, result, error, ran_at, compensated_at';

/**
 * The step log in PostgreSQL (tables `saga` and `step`), with the DynamoDB one's conditions: each
 * write is one statement whose WHERE (or ON CONFLICT) is the condition, so concurrent writers on any
 * number of processes are decided by the row's lock.
 */
export class PostgresStepLog implements StepLogStore {
  constructor(private readonly db: PostgresDatabase) {}

  async load(workflowId: string) {
    // One statement, one snapshot: the saga and its steps as they stood together.
    const { rows } = await this.db.query<{ saga: SagaRow | null; steps: StepRow[] }>(
      `SELECT (SELECT row_to_json(saga) FROM saga WHERE workflow_id = $1) AS saga,
              coalesce((SELECT json_agg(s ORDER BY s.step_index) FROM (SELECT ${STEP_COLUMNS} FROM step WHERE workflow_id = $1) s), '[]') AS steps`,
      [workflowId],
    );
    const { saga, steps } = rows[0]!;
    return { saga: saga ? toSaga(saga) : undefined, steps: steps.map(toStep) };
  }

  async startSaga(workflowId: string, workflow: string, input: unknown): Promise<SagaRecord> {
    await this.db.query("INSERT INTO saga (workflow_id, workflow, status, input) VALUES ($1, $2, 'running', $3) ON CONFLICT DO NOTHING", [
      workflowId,
      workflow,
      JSON.stringify(input),
    ]);
    // A separate statement: it sees a row that a concurrent start committed after this one's insert began.
    const { rows } = await this.db.query<SagaRow>('SELECT workflow_id, workflow, status, input FROM saga WHERE workflow_id = $1', [workflowId]);
    return toSaga(rows[0]!);
  }

  async setSagaStatus(workflowId: string, from: readonly SagaStatus[], next: SagaStatus): Promise<boolean> {
    const { rowCount } = await this.db.query('UPDATE saga SET status = $1, updated_at = now() WHERE workflow_id = $2 AND status = ANY($3::text[])', [
      next,
      workflowId,
      from,
    ]);
    return rowCount! > 0;
  }

  async transitionStep(
    workflowId: string,
    step: { name: string; index: number },
    from: readonly (StepStatus | 'absent')[],
    update: StepUpdate,
  ): Promise<StepRecord | undefined> {
    const values = [
      workflowId,
      step.index,
      step.name,
      update.status,
      update.status === 'started' ? 1 : 0,
      update.status === 'compensating' ? 1 : 0,
      update.result !== undefined ? JSON.stringify(update.result) : null,
      update.error ?? null,
      update.ranAt ? JSON.stringify(update.ranAt) : null,
      update.compensatedAt ? JSON.stringify(update.compensatedAt) : null,
    ];
    if (from.includes('absent')) {
      const { rows } = await this.db.query<StepRow>(
        `INSERT INTO step (workflow_id, step_index, step, status, attempts, compensation_attempts, result, error, ran_at, compensated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING RETURNING ${STEP_COLUMNS}`,
        values,
      );
      if (rows[0]) return toStep(rows[0]);
    }
    // The step exists (records are never deleted): moved only if it is in one of the states named.
    const { rows } = await this.db.query<StepRow>(
      `UPDATE step SET step = $3, status = $4, attempts = attempts + $5, compensation_attempts = compensation_attempts + $6,
         result = coalesce($7, result), error = coalesce($8, error), ran_at = coalesce($9, ran_at), compensated_at = coalesce($10, compensated_at),
         updated_at = now()
       WHERE workflow_id = $1 AND step_index = $2 AND status = ANY($11::text[])
       RETURNING ${STEP_COLUMNS}`,
      [...values, from.filter((state) => state !== 'absent')],
    );
    return rows[0] && toStep(rows[0]);
  }
}
