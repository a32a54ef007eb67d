import Database from 'better-sqlite3';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CreateQueueCommand, GetQueueAttributesCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { EDGE_SCHEMA_VERSION, openEdgeDatabase } from '../../functions/src/edge/index.js';
import { SCHEMA_VERSION } from '../../edge-shim/src/sqs/database.js';
import { type ShimProcess, spawnShim } from '../../testkit/shim-process.js';
import { parseExposition } from '../helpers/prometheus.js';
import { sqsClient } from '../helpers/shim.js';

// The operator's basics: what runs (--version, build_info), a backup of both databases while the
// shim serves and a restore from it, and a database that a newer holdfast wrote refused.

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(REPO, 'edge-shim', 'src', 'main.ts');
const { version } = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };

/** `holdfast ARGS` as npm start runs it; resolves to its exit code and output, whatever the code. */
async function holdfast(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const result = await promisify(execFile)(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: REPO }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => error,
  );
  return { code: result.code, stdout: result.stdout, stderr: result.stderr };
}

const dirs: string[] = [];
const shims: ShimProcess[] = [];
afterEach(async () => {
  for (const shim of shims.splice(0)) await shim.stop();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function directory(): string {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-operations-'));
  dirs.push(dir);
  return dir;
}

describe('what runs', () => {
  it('holdfast --version prints the package version and Node', async () => {
    const { code, stdout } = await holdfast(['--version']);
    expect(code).toBe(0);
    expect(stdout.trim()).toBe(`holdfast ${version} (Node ${process.versions.node})`);
  });

  it('/metrics has holdfast_edge_build_info with the version and Node', async () => {
    const shim = await spawnShim({ dbFile: join(directory(), 'shim.db') });
    shims.push(shim);
    const families = parseExposition(await (await fetch(`${shim.adminUrl}/metrics`)).text());
    expect(families.get('holdfast_edge_build_info')?.metrics).toEqual([{ labels: { version, node: process.versions.node }, value: '1' }]);
  });
});

describe('holdfast backup', () => {
  it('copies both databases while the shim serves and writes, and the copy serves after a restore', { timeout: 120_000 }, async () => {
    const dir = directory();
    const dbFile = join(dir, 'data', 'holdfast.db');
    const shim = await spawnShim({ dbFile });
    shims.push(shim);
    // The fallback agents' database, beside the shim's as by default, with a record in it.
    const agents = openEdgeDatabase(join(dir, 'data', 'edge-agents.db'));
    agents.prepare(`INSERT INTO idempotency (id, expiration, status, data) VALUES ('task-1', 0, 'COMPLETED', '{}')`).run();
    agents.close();

    const sqs = sqsClient(shim.url);
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'backed-up' }));
    const sent: number[] = [];
    // Sends go on during the backup: it must neither wait for them nor start over because of them.
    let sending = true;
    const writer = (async () => {
      for (let batch = 0; sending || batch < 5; batch += 1) {
        await sqs.send(new SendMessageBatchCommand({ QueueUrl, Entries: Array.from({ length: 10 }, (_, i) => ({ Id: `m${i}`, MessageBody: `${batch}-${i}` })) }));
        sent.push(10);
      }
    })();
    const target = join(dir, 'backup', 'holdfast.db');
    mkdirSync(join(dir, 'backup'));
    const backup = await holdfast(['backup', target, '--db', dbFile]);
    sending = false;
    await writer;
    sqs.destroy();
    expect(backup.stderr).toBe('');
    expect(backup.code).toBe(0);
    expect(backup.stdout).toContain(`backed up ${dbFile} to ${target}`);
    expect(backup.stdout).toContain(`to ${join(dir, 'backup', 'holdfast.edge-agents.db')}`);
    // A second backup to the same file is refused: a backup never writes over a database.
    expect((await holdfast(['backup', target, '--db', dbFile])).stderr).toMatch(/exists: back up to a new file/);

    // Restore: a shim on the copy (and its agents' copy beside it) has the queue and a prefix of the sends.
    const restored = await spawnShim({ dbFile: target });
    shims.push(restored);
    const client = sqsClient(restored.url);
    const { Attributes } = await client.send(
      new GetQueueAttributesCommand({ QueueUrl: `${restored.url}/000000000000/backed-up`, AttributeNames: ['ApproximateNumberOfMessages'] }),
    );
    client.destroy();
    const copied = Number(Attributes?.ApproximateNumberOfMessages);
    expect(copied % 10).toBe(0);
    expect(copied).toBeLessThanOrEqual(sent.length * 10);
    const agentsCopy = new Database(join(dir, 'backup', 'holdfast.edge-agents.db'), { readonly: true });
    expect(agentsCopy.prepare('SELECT id FROM idempotency').all()).toEqual([{ id: 'task-1' }]);
    agentsCopy.close();
  });

  it('says what is missing without a database to copy', async () => {
    const dir = directory();
    const result = await holdfast(['backup', join(dir, 'copy.db'), '--db', join(dir, 'none.db')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/there is no database .*none\.db to back up/);
    expect(existsSync(join(dir, 'copy.db'))).toBe(false);
  });
});

describe('a database a newer holdfast wrote', () => {
  it('is refused with exit code 5 and left as it was: the shim\'s', async () => {
    const dbFile = join(directory(), 'shim.db');
    const db = new Database(dbFile);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    const result = await holdfast(['--port', '0', '--admin-port', '0', '--db', dbFile]);
    expect(result.code).toBe(5);
    expect(result.stderr).toContain(`the database ${dbFile} has schema version ${SCHEMA_VERSION + 1}, newer than this holdfast knows (${SCHEMA_VERSION})`);
    const after = new Database(dbFile, { readonly: true });
    expect(after.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION + 1);
    expect(after.prepare(`SELECT count(*) AS tables FROM sqlite_master`).get()).toEqual({ tables: 0 });
    after.close();
  });

  it("is refused with exit code 5 before anything starts: the fallback agents'", async () => {
    const dir = directory();
    const edgeDb = join(dir, 'edge-agents.db');
    const db = new Database(edgeDb);
    db.pragma(`user_version = ${EDGE_SCHEMA_VERSION + 1}`);
    db.close();
    // Nothing listens on port 9: the edge would start offline with its agents at work.
    const result = await holdfast([
      '--port', '0', '--admin-port', '0', '--db', join(dir, 'shim.db'),
      '--upstream', 'http://127.0.0.1:9', '--upstream-region', 'us-east-1', '--site-id', 'site-1',
    ]);
    expect(result.code).toBe(5);
    expect(result.stderr).toContain(`the database ${edgeDb} has schema version ${EDGE_SCHEMA_VERSION + 1}`);
  });
});
