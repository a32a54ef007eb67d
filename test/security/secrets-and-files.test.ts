import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateQueueCommand, ListQueuesCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EdgeStatus } from '../../edge-shim/src/observability/status.js';
import { type ShimProcess, spawnShim } from '../../testkit/shim-process.js';
import { sqsClient } from '../helpers/shim.js';
import { eventually } from '../helpers/wait.js';

// Issue 16, secrets and files: credentials from a file (or from systemd's credentials directory),
// kept off the command line where `ps` shows them to every local user, and a warning when they are
// given there anyway; the database directory private to the shim's user and every file in it too
// (the SQLite database, its WAL and shared memory, the disk reserve, the fallback agents' database).
// Each shim runs as `npm start` runs it, started here under the umask most shells have, 022.

let dir: string;
const running: ShimProcess[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'holdfast-secrets-'));
});
afterAll(async () => {
  await Promise.all(running.map((shim) => shim.stop()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const KEYS = { accessKeyId: 'AKIDFROMFILE', secretAccessKey: 'secret-from-the-file' };

async function start(name: string, options: { args?: string[]; env?: Record<string, string>; credentials?: string[]; db?: string } = {}) {
  const logFile = join(dir, `${name}.log`);
  const previous = process.umask(0o022);
  try {
    const shim = await spawnShim({ dbFile: options.db ?? join(dir, name, 'shim.db'), logFile, credentials: options.credentials, args: ['--disk-reserve', '1MiB', ...(options.args ?? [])], env: options.env });
    running.push(shim);
    // The log file is written as the lines come: wait for the line looked for.
    const logLine = (text: string) =>
      eventually(() => readFileSync(logFile, 'utf8'), (log) => log.includes(text)).then((log) => JSON.parse(log.split('\n').find((line) => line.includes(text))!) as Record<string, unknown>);
    return { shim, log: () => readFileSync(logFile, 'utf8'), logLine };
  } finally {
    process.umask(previous);
  }
}

describe('credentials', () => {
  it('are read from --credentials-file, a KEY:SECRET line each; the log names the key, never the secret', async () => {
    const file = join(dir, 'credentials');
    writeFileSync(file, `# producers of the site\n${KEYS.accessKeyId}:${KEYS.secretAccessKey}\n`, { mode: 0o600 });
    const { shim, log, logLine } = await start('from-file', { args: ['--credentials-file', file] });
    const sqs = sqsClient(shim.url, KEYS);
    const stranger = sqsClient(shim.url, { accessKeyId: 'AKIDSTRANGER', secretAccessKey: 'guess' });
    try {
      await sqs.send(new CreateQueueCommand({ QueueName: 'filed' }));
      await expect(stranger.send(new ListQueuesCommand({}))).rejects.toMatchObject({ name: 'InvalidClientTokenId' });
    } finally {
      sqs.destroy();
      stranger.destroy();
    }
    expect(await logLine('edge shim listening')).toMatchObject({ accessKeyIds: [KEYS.accessKeyId] });
    expect(log()).not.toContain(KEYS.secretAccessKey);
    expect(log()).not.toMatch(/given on the command line/);
  });

  it('are read from systemd\'s credentials directory (LoadCredential=holdfast-credentials:...), enough to listen beyond loopback', async () => {
    const credentialsDirectory = join(dir, 'systemd-credentials');
    mkdirSync(credentialsDirectory);
    writeFileSync(join(credentialsDirectory, 'holdfast-credentials'), `${KEYS.accessKeyId}:${KEYS.secretAccessKey}\n`);
    const { shim } = await start('systemd', { args: ['--host', '0.0.0.0'], env: { CREDENTIALS_DIRECTORY: credentialsDirectory } });
    const sqs = sqsClient(shim.url.replace('0.0.0.0', '127.0.0.1'), KEYS);
    try {
      expect((await sqs.send(new ListQueuesCommand({}))).$metadata.httpStatusCode).toBe(200);
    } finally {
      sqs.destroy();
    }
  });

  it('given on the command line, still work, with a warning that does not repeat them', async () => {
    const { shim, log, logLine } = await start('command-line', { credentials: [`${KEYS.accessKeyId}:${KEYS.secretAccessKey}`] });
    const sqs = sqsClient(shim.url, KEYS);
    try {
      await sqs.send(new ListQueuesCommand({}));
    } finally {
      sqs.destroy();
    }
    expect(await logLine('given on the command line')).toMatchObject({ level: 'warn', msg: expect.stringContaining('--credentials given on the command line') });
    expect(log()).not.toContain(KEYS.secretAccessKey);
  });
});

describe('files', () => {
  const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);

  it('the database directory is made 0700 and everything in it 0600, the fallback agents\' database too', { timeout: 90_000 }, async () => {
    const data = join(dir, 'fresh', 'data');
    // Nothing listens on port 9: the edge starts offline, and its fallback agents start at once.
    const { shim } = await start('files', {
      db: join(data, 'holdfast.db'),
      credentials: [`${KEYS.accessKeyId}:${KEYS.secretAccessKey}`],
      args: ['--upstream', 'http://127.0.0.1:9', '--upstream-region', 'us-east-1', '--site-id', 'files', '--agent-standby', 'off'],
    });
    await eventually(
      async () => (await (await fetch(`${shim.adminUrl}/status`)).json()) as EdgeStatus,
      (status) => status.agents.length > 0 && status.agents.every((agent) => agent.state === 'running'),
      200,
    );
    const sqs = sqsClient(shim.url, KEYS);
    try {
      // A write, so that the WAL holds something.
      await sqs.send(new SendMessageCommand({ QueueUrl: `${shim.url}/000000000000/payments-notify.fifo`, MessageBody: '{}', MessageGroupId: 'g', MessageDeduplicationId: 'd' })).catch(() => {});
    } finally {
      sqs.destroy();
    }
    expect(mode(data)).toBe('700');
    const files = ['holdfast.db', 'holdfast.db-wal', 'holdfast.db-shm', 'holdfast.db.reserve', 'edge-agents.db', 'edge-agents.db-wal', 'edge-agents.db-shm'];
    for (const file of files) {
      expect(existsSync(join(data, file)), file).toBe(true);
      expect(mode(join(data, file)), file).toBe('600');
    }
  });

  it('a database directory others may read is warned about', async () => {
    const shared = join(dir, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o755);
    const { logLine } = await start('shared', { db: join(shared, 'shim.db') });
    expect(await logLine('other users may read')).toMatchObject({ level: 'warn', directory: shared, mode: '0755' });
  });
});
