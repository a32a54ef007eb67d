import type { EdgeDatabase } from './sqlite-database.js';
import { type SagaRow, type StepRow, toSaga, toStep } from './sql-rows.js';
import type { SagaRecord, SagaStatus, StepLogStore, StepRecord, StepStatus, StepUpdate } from './types.js';


/** The step log in the edge database (tables `saga` and `step`), with the DynamoDB one's conditions. */
export class SqliteStepLog implements StepLogStore {
  constructor(private readonly db: EdgeDatabase) {}

  async load(workflowId: string): Promise<{ saga: SagaRecord | undefined; steps: StepRecord[] }> {
    const saga = this.db.prepare<[string], SagaRow>('SELECT * FROM saga WHERE workflow_id = ?').get(workflowId);
    const steps = this.db.prepare<[string], StepRow>('SELECT * FROM step WHERE workflow_id = ? ORDER BY step_index').all(workflowId);
    return { saga: saga && toSaga(saga), steps: steps.map(toStep) };
  }

  async startSaga(workflowId: string, workflow: string, input: unknown): Promise<SagaRecord> {
    const now = new Date().toISOString();
    return this.db
      .transaction(() => {
        this.db
          .prepare("INSERT INTO saga (workflow_id, workflow, status, input, created_at, updated_at) VALUES (?, ?, 'running', ?, ?, ?) ON CONFLICT DO NOTHING")
          .run(workflowId, workflow, JSON.stringify(input), now, now);
        return toSaga(this.db.prepare<[string], SagaRow>('SELECT * FROM saga WHERE workflow_id = ?').get(workflowId)!);
      })
      .immediate();
  }

  async setSagaStatus(workflowId: string, from: readonly SagaStatus[], next: SagaStatus): Promise<boolean> {
    const { changes } = this.db
      .prepare(`UPDATE saga SET status = ?, updated_at = ? WHERE workflow_id = ? AND status IN (${from.map(() => '?').join(', ')})`)
      .run(next, new Date().toISOString(), workflowId, ...from);
    return changes > 0;
  }

  async transitionStep(
    workflowId: string,
    step: { name: string; index: number },
    from: readonly (StepStatus | 'absent')[],
    update: StepUpdate,
  ): Promise<StepRecord | undefined> {
    return this.db
      .transaction(() => {
        const select = this.db.prepare<[string, number], StepRow>('SELECT * FROM step WHERE workflow_id = ? AND step_index = ?');
        const current = select.get(workflowId, step.index);
        if (!from.includes(current ? (current.status as StepStatus) : 'absent')) return undefined;
        const row = {
          workflow_id: workflowId,
          step_index: step.index,
          step: step.name,
          status: update.status,
          attempts: (current?.attempts ?? 0) + (update.status === 'started' ? 1 : 0),
          compensation_attempts: (current?.compensation_attempts ?? 0) + (update.status === 'compensating' ? 1 : 0),
          result: update.result !== undefined ? JSON.stringify(update.result) : (current?.result ?? null),
          error: update.error ?? current?.error ?? null,
          ran_at: update.ranAt ? JSON.stringify(update.ranAt) : (current?.ran_at ?? null),
          compensated_at: update.compensatedAt ? JSON.stringify(update.compensatedAt) : (current?.compensated_at ?? null),
          updated_at: new Date().toISOString(),
        };
        this.db
          .prepare(
            `INSERT OR REPLACE INTO step (workflow_id, step_index, step, status, attempts, compensation_attempts, result, error, ran_at, compensated_at, updated_at)
             VALUES (:workflow_id, :step_index, :step, :status, :attempts, :compensation_attempts, :result, :error, :ran_at, :compensated_at, :updated_at)`,
          )
          .run(row);
        return toStep(row);
      })
      .immediate();
  }
}
