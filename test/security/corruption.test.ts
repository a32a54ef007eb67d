import Database from 'better-sqlite3';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateQueueCommand, SendMessageBatchCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { type ShimProcess, spawnShim } from '../../testkit/shim-process.js';
import { sqsClient } from '../helpers/shim.js';
import { expectSqsError } from '../helpers/sqs-errors.js';
import { receive } from '../helpers/sqs-queues.js';

// A damaged database is found, not served as if whole: at start, the integrity check refuses it
// (exit code 4); while serving, the first request that meets the damage fails with an
// InternalFailure that says so, and from then on /health answers 503 with the reason, sends are
// refused, and no receive answers a message without its id or body.

const dirs: string[] = [];
const shims: ShimProcess[] = [];
const clients: SQSClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  for (const shim of shims.splice(0)) await shim.stop('SIGKILL');
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function started(dbFile: string, args: string[] = []): Promise<{ shim: ShimProcess; sqs: SQSClient }> {
  const shim = await spawnShim({ dbFile, args });
  shims.push(shim);
  const sqs = sqsClient(shim.url);
  clients.push(sqs);
  return { shim, sqs };
}

/** A database with a queue of 100 messages of 2 KiB, the shim stopped cleanly (all of it in the file); its queue URL's path. */
async function storeWithMessages(): Promise<{ dbFile: string; queuePath: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-corrupt-'));
  dirs.push(dir);
  const dbFile = join(dir, 'shim.db');
  const { shim, sqs } = await started(dbFile);
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'damaged' }));
  for (let batch = 0; batch < 10; batch++) {
    const Entries = Array.from({ length: 10 }, (_, entry) => ({ Id: `m${entry}`, MessageBody: `${batch}-${entry} ${'b'.repeat(2048)}` }));
    await sqs.send(new SendMessageBatchCommand({ QueueUrl, Entries }));
  }
  await shim.stop();
  return { dbFile, queuePath: new URL(QueueUrl!).pathname };
}

/** Overwrites the first page of message contents (the oldest messages') with garbage, as a failing disk might. */
function damageMessages(dbFile: string): void {
  const db = new Database(dbFile, { readonly: true });
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  const { pageno } = db.prepare<[], { pageno: number }>(`SELECT pageno FROM dbstat WHERE name = 'messages' AND pagetype = 'leaf' ORDER BY path LIMIT 1`).get()!;
  db.close();
  const fd = openSync(dbFile, 'r+');
  try {
    writeSync(fd, Buffer.alloc(pageSize, 0xa5), 0, pageSize, (pageno - 1) * pageSize);
  } finally {
    closeSync(fd);
  }
}

async function health(shim: ShimProcess): Promise<{ status: number; body: { status: string; reason?: string } }> {
  const response = await fetch(`${shim.url}/health`);
  return { status: response.status, body: (await response.json()) as never };
}

/** What a shim that has met the damage must do from then on. */
async function expectCorruptionKnown(shim: ShimProcess, sqs: SQSClient, queueUrl: string): Promise<void> {
  expect(await health(shim)).toMatchObject({ status: 503, body: { status: 'unavailable', reason: expect.stringMatching(/database is corrupt/) } });
  await expectSqsError(sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'not taken' })), { name: 'InternalFailure', status: 500, message: /database is corrupt/ });
  // For good: nothing makes it healthy again.
  await sqs.send(new CreateQueueCommand({ QueueName: 'elsewhere' })).catch(() => {});
  expect((await health(shim)).status).toBe(503);
}

describe('a damaged page', () => {
  it('found at start: the shim refuses the database with exit code 4 and says how to recover it', async () => {
    const { dbFile } = await storeWithMessages();
    damageMessages(dbFile);
    for (const check of ['quick', 'full']) {
      const refusal = await started(dbFile, ['--integrity-check', check]).then(
        () => undefined,
        (error: Error) => error.message,
      );
      expect(refusal, `--integrity-check ${check}`).toMatch(/\(code 4\)/);
      expect(refusal).toMatch(new RegExp(`the database ${dbFile} is corrupt: .*\\.recover`));
    }
  });

  // Started without the check, the shim has read none of the messages when the damage is done under
  // it: it meets the damage as a request reads the page, as it would damage done after its check.
  it('met while serving: the request fails with InternalFailure, /health says so for good, sends are refused', async () => {
    const { dbFile, queuePath } = await storeWithMessages();
    const { shim, sqs } = await started(dbFile, ['--integrity-check', 'off']);
    const queueUrl = `${shim.url}${queuePath}`;
    expect((await health(shim)).status).toBe(200);
    damageMessages(dbFile);
    await expectSqsError(receive(sqs, queueUrl, { MaxNumberOfMessages: 10 }), { name: 'InternalFailure', status: 500, message: /database is corrupt/ });
    await expectCorruptionKnown(shim, sqs, queueUrl);
  });
});

describe('a message state without its message', () => {
  // What the issue saw: a receive answering a message without id or body. SQLite finds nothing
  // wrong with a row that is simply missing; the engine does.
  it('fails the receive instead of answering a message without id or body, and the store is known corrupt', async () => {
    const { dbFile, queuePath } = await storeWithMessages();
    const db = new Database(dbFile);
    db.prepare('DELETE FROM messages WHERE id = (SELECT min(id) FROM messages)').run();
    db.close();
    const { shim, sqs } = await started(dbFile);
    const queueUrl = `${shim.url}${queuePath}`;
    await expectSqsError(receive(sqs, queueUrl, { MaxNumberOfMessages: 10 }), { name: 'InternalFailure', status: 500, message: /has a state but no content/ });
    await expectCorruptionKnown(shim, sqs, queueUrl);
  });
});
