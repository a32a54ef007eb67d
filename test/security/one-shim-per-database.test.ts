import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateQueueCommand, ListQueuesCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { DatabaseInUse } from '../../edge-shim/src/sqs/database-lock.js';
import { startShim } from '../../edge-shim/src/shim.js';
import { type ShimProcess, spawnShim } from '../../testkit/shim-process.js';
import { sqsClient } from '../helpers/shim.js';
import { receive } from '../helpers/sqs-queues.js';

// One shim per database: a second one, in another process or this one, under the same path or
// another, is refused before it touches the database, with exit code 3 and the first one's pid;
// the first goes on serving. The lock goes with its holder, however the holder ends.

const dirs: string[] = [];
const shims: ShimProcess[] = [];
afterEach(async () => {
  for (const shim of shims.splice(0)) await shim.stop('SIGKILL');
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function databaseFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-lock-'));
  dirs.push(dir);
  return join(dir, 'shim.db');
}

async function spawned(dbFile: string): Promise<ShimProcess> {
  const shim = await spawnShim({ dbFile });
  shims.push(shim);
  return shim;
}

/** Starting a shim on the database must fail as the database in use: exit code 3, the holder named. */
async function expectRefused(dbFile: string, holder: ShimProcess): Promise<void> {
  const refusal = await spawnShim({ dbFile }).then(
    (shim) => {
      shims.push(shim);
      return undefined;
    },
    (error: Error) => error.message,
  );
  expect(refusal, 'a second shim started').toBeDefined();
  expect(refusal).toMatch(/\(code 3\)/);
  expect(refusal).toMatch(new RegExp(`in use by another edge shim \\(pid ${holder.pid} on `));
}

describe('a second shim on a database', () => {
  it('is refused with exit code 3 naming the first, which goes on serving', async () => {
    const dbFile = databaseFile();
    const first = await spawned(dbFile);
    const sqs = sqsClient(first.url);
    try {
      const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'only-one' }));
      await expectRefused(dbFile, first);
      await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'still served' }));
      expect((await receive(sqs, QueueUrl!)).map((message) => message.Body)).toEqual(['still served']);
    } finally {
      sqs.destroy();
    }
    await first.stop();
    // Once the first has stopped, the database is free, and its queues are all there.
    const next = await spawned(dbFile);
    const again = sqsClient(next.url);
    try {
      expect((await again.send(new ListQueuesCommand({}))).QueueUrls).toEqual([expect.stringMatching(/\/only-one$/)]);
    } finally {
      again.destroy();
    }
  });

  it('is refused under another path to the same file (a symbolic link to its directory)', async () => {
    const dbFile = databaseFile();
    const first = await spawned(dbFile);
    const link = join(mkdtempSync(join(tmpdir(), 'holdfast-lock-link-')), 'elsewhere');
    dirs.push(join(link, '..'));
    symlinkSync(join(dbFile, '..'), link);
    await expectRefused(join(link, 'shim.db'), first);
  });

  it('starts once the first was killed without a chance to let go (SIGKILL)', async () => {
    const dbFile = databaseFile();
    const first = await spawned(dbFile);
    await first.stop('SIGKILL');
    await spawned(dbFile);
  });

  it('in the same process is refused too, until the first is closed', async () => {
    const dbFile = databaseFile();
    const options = { port: 0, dbFile, logLevel: 'silent', diskReserveBytes: 2 ** 20 } as const;
    const first = await startShim(options);
    try {
      const refusal = await startShim(options).then(
        async (second) => {
          await second.close();
          return undefined;
        },
        (error: unknown) => error,
      );
      expect(refusal).toBeInstanceOf(DatabaseInUse);
      expect((refusal as DatabaseInUse).holder).toMatch(new RegExp(`^pid ${process.pid} on `));
    } finally {
      await first.close();
    }
    await (await startShim(options)).close();
  });
});
