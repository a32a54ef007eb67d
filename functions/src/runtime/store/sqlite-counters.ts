import { checkIncrements } from './counter-increments.js';
import type { EdgeDatabase } from './sqlite-database.js';
import type { CounterIncrement, CounterOperation, CounterStore, IncrementOutcome, WriterCount } from './types.js';

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

  /** Every writer's count of every counter (for the sync engine). */
  writerCounts(): WriterCount[] {
    return this.db.prepare<[], WriterCount>('SELECT key, writer, count FROM counter ORDER BY key, writer').all();
  }

  /** Every operation applied here (for the sync engine). */
  operations(): CounterOperation[] {
    return this.db
      .prepare<[], { operation_id: string; writer: string; increments: string; at: string }>('SELECT * FROM counter_operation ORDER BY at, operation_id')
      .all()
      .map((row) => ({ operationId: row.operation_id, writer: row.writer, increments: JSON.parse(row.increments), at: row.at }));
  }

  /** Marks `count` of a writer's counter as having reached the region: limits count only what it adds after. */
  settle({ key, writer, count }: WriterCount): void {
    this.db.prepare('UPDATE counter SET settled = MAX(settled, ?) WHERE key = ? AND writer = ?').run(count, key, writer);
  }
}
