import { checkIncrements } from './counter-increments.js';
import { type PostgresDatabase, transaction } from './postgres-database.js';
import type { CounterIncrement, CounterStore, IncrementOutcome } from './types.js';

/** Thrown inside the transaction to roll an operation back that passed a limit. */
class OverLimit extends Error {}

/** G-counters in PostgreSQL (tables `counter` and `counter_operation`), with the DynamoDB one's conditions. */
export class PostgresCounters implements CounterStore {
  constructor(private readonly db: PostgresDatabase) {}

  /**
   * One transaction: the operation's record first (a concurrent repeat waits on it, then finds it),
   * then each count added and checked against its limit under the row's lock, so that concurrent
   * operations cannot both pass a limit that only one fits under. Rows are locked in key order, so
   * two operations never wait on each other.
   */
  async increment(operationId: string, writer: string, increments: readonly CounterIncrement[]): Promise<IncrementOutcome> {
    checkIncrements(operationId, increments);
    try {
      return await transaction(this.db, async (client): Promise<IncrementOutcome> => {
        const { rowCount } = await client.query('INSERT INTO counter_operation (operation_id, writer, increments, at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING', [
          operationId,
          writer,
          JSON.stringify(increments.map(({ key, delta }) => ({ key, delta }))),
          new Date().toISOString(),
        ]);
        if (rowCount === 0) return 'already-applied';
        for (const { key, delta, limit } of [...increments].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
          const { rows } = await client.query<{ unsettled: number }>(
            `INSERT INTO counter (key, writer, count) VALUES ($1, $2, $3) ON CONFLICT (key, writer) DO UPDATE SET count = counter.count + excluded.count
             RETURNING count - settled AS unsettled`,
            [key, writer, delta],
          );
          if (limit !== undefined && rows[0]!.unsettled > limit) throw new OverLimit();
        }
        return 'applied';
      });
    } catch (error) {
      if (error instanceof OverLimit) return 'over-limit';
      throw error;
    }
  }

  async read(key: string): Promise<Record<string, number>> {
    const { rows } = await this.db.query<{ writer: string; count: number }>('SELECT writer, count FROM counter WHERE key = $1', [key]);
    return Object.fromEntries(rows.map((row) => [row.writer, row.count]));
  }
}
