import { join } from 'node:path';
import { CreateQueueCommand, DeleteQueueCommand } from '@aws-sdk/client-sqs';
import Database from 'better-sqlite3';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type TestShim, startTestShim, testEngine } from '../helpers/shim.js';
import { eventually } from '../helpers/wait.js';

// A background sweep that fails must say so in the log: otherwise purged and deleted queues'
// messages, deduplication ids and receive attempts silently pile up. Failing again and again (a
// database away), it says so once a minute, not at every sweep, and says when it works again.
const lines: string[] = [];
let t: TestShim;
beforeAll(async () => {
  t = await startTestShim({ logger: pino({ level: 'debug' }, { write: (line: string) => lines.push(line) }), sweepIntervalMs: 20 });
});

interface Line {
  readonly level: number;
  readonly msg: string;
  readonly failures?: number;
}
const parsed = () => lines.map((line) => JSON.parse(line) as Line);
const injected = () => lines.filter((line) => line.includes('injected fault')).map((line) => JSON.parse(line) as Line);
const until = (check: () => boolean) => eventually(check, (done) => done);
afterAll(() => t?.close());

// The sweep is made to fail by dropping one of SQLite's tables under it.
it.runIf(testEngine() === 'sqlite')('logs a failed sweep as an error, its repeats only at debug level, and when it works again', { timeout: 10_000 }, async () => {
  const { QueueUrl } = await t.sqs.send(new CreateQueueCommand({ QueueName: 'sweep-fails' }));
  await t.sqs.send(new DeleteQueueCommand({ QueueUrl }));
  // A fault injected into the real database, from a second connection: forgetting the deletion fails.
  const file = join(t.dir, 'shim.db');
  const other = new Database(file);
  other.exec(`CREATE TRIGGER injected_fault BEFORE DELETE ON deleted_queues BEGIN SELECT RAISE(ABORT, 'injected fault'); END`);
  t.clock.advance(61_000);
  try {
    // The first failure and at least two repeats.
    await until(() => injected().length >= 3);
    const [first, ...repeats] = injected();
    expect(first!.level).toBe(50);
    expect(first!.msg).toMatch(/sweep/);
    expect(new Set(repeats.map((entry) => entry.level))).toEqual(new Set([20]));
  } finally {
    other.exec('DROP TRIGGER injected_fault');
    other.close();
  }
  await until(() => lines.some((line) => line.includes('the sweep works again')));
  const recovered = parsed().find((entry) => entry.msg === 'the sweep works again')!;
  expect(recovered.level).toBe(30);
  expect(recovered.failures).toBe(injected().length);
  expect(injected().filter((entry) => entry.level >= 50)).toHaveLength(1);
});
