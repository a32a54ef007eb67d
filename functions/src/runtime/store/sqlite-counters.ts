import { checkIncrements } from './counter-increments.js';
import type { EdgeDatabase } from './sqlite-database.js';
import type { CounterIncrement, CounterStore, IncrementOutcome } from './types.js';

/** G-counters in the edge database (tables `counter` and `counter_operation`), with the DynamoDB one's conditions. */
export class SqliteCounters implements CounterStore {
  constructor(private readonly db: EdgeDatabase) {}

  async increment(operationId: string, writer: string, increments: readonly CounterIncrement[]): Promise<IncrementOutcome> {
    checkIncrements(operationId, increments);
    return this.db
      .transaction((): IncrementOutcome => {
        if (this.db.prepare('SELECT 1 FROM counter_operation WHERE operation_id = ?').get(operationId)) return 'already-applied';
        const current = this.db.prepare<[string, string], { count: number; settled: number }>('SELECT count, settled FROM counter WHERE key = ? AND writer = ?');
        for (const { key, delta, limit } of increments) {
          if (limit === undefined) continue;
          const row = current.get(key, writer);
          const unsettled = row ? row.count - row.settled : 0;
          if (unsettled + delta > limit) return 'over-limit';
        }
        this.db
          .prepare('INSERT INTO counter_operation (operation_id, writer, increments, at) VALUES (?, ?, ?, ?)')
          .run(operationId, writer, JSON.stringify(increments.map(({ key, delta }) => ({ key, delta }))), new Date().toISOString());
        const add = this.db.prepare('INSERT INTO counter (key, writer, count) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET count = count + excluded.count');
        for (const { key, delta } of increments) add.run(key, writer, delta);
        return 'applied';
      })
      .immediate();
  }

  async read(key: string): Promise<Record<string, number>> {
    const rows = this.db.prepare<[string], { writer: string; count: number }>('SELECT writer, count FROM counter WHERE key = ?').all(key);
    return Object.fromEntries(rows.map((row) => [row.writer, row.count]));
  }
}
