import { join } from 'node:path';
import { CreateQueueCommand, DeleteQueueCommand } from '@aws-sdk/client-sqs';
import Database from 'better-sqlite3';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type TestShim, startTestShim, testEngine } from '../helpers/shim.js';

// A background sweep that fails must say so in the log: otherwise purged and deleted queues'
// messages, deduplication ids and receive attempts silently pile up.
const lines: string[] = [];
let t: TestShim;
beforeAll(async () => {
  t = await startTestShim({ logger: pino({ level: 'error' }, { write: (line: string) => lines.push(line) }), sweepIntervalMs: 20 });
});
afterAll(() => t?.close());

// The sweep is made to fail by dropping one of SQLite's tables under it.
it.runIf(testEngine() === 'sqlite')('logs a failed sweep as an error', { timeout: 5_000 }, async () => {
  const { QueueUrl } = await t.sqs.send(new CreateQueueCommand({ QueueName: 'sweep-fails' }));
  await t.sqs.send(new DeleteQueueCommand({ QueueUrl }));
  // A fault injected into the real database, from a second connection: forgetting the deletion fails.
  const file = join(t.dir, 'shim.db');
  const other = new Database(file);
  other.exec(`CREATE TRIGGER injected_fault BEFORE DELETE ON deleted_queues BEGIN SELECT RAISE(ABORT, 'injected fault'); END`);
  t.clock.advance(61_000);
  try {
    while (!lines.some((line) => line.includes('injected fault'))) await new Promise((resolve) => setTimeout(resolve, 10));
    const entry = JSON.parse(lines.find((line) => line.includes('injected fault'))!) as { level: number; msg: string };
    expect(entry.level).toBe(50);
    expect(entry.msg).toMatch(/sweep/);
  } finally {
    other.exec('DROP TRIGGER injected_fault');
    other.close();
  }
});
