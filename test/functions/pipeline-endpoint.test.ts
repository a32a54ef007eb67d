import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ListQueuesCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkAwsEndpoint } from '../../functions/src/local-pipeline/endpoint-check.js';
import { TEST_CREDENTIALS, type TestShim, startTestShim } from '../helpers/shim.js';
import { emulator } from '../helpers/emulator.js';

// `npm run pipeline` with AWS_ENDPOINT_URL left pointing at the edge shim, a new user's mistake:
// it must say so before it creates anything, instead of creating queues on the shim and failing
// at the first table.

const REPO = fileURLToPath(new URL('../..', import.meta.url));
let shim: TestShim;

beforeAll(async () => {
  shim = await startTestShim();
});
afterAll(() => shim.close());

describe('the AWS endpoint check', () => {
  it('passes the emulator, which speaks SQS and DynamoDB', async () => {
    await expect(checkAwsEndpoint(emulator())).resolves.toBeUndefined();
  });

  it('stops at the edge shim, which speaks SQS only, and says what to do', async () => {
    const check = checkAwsEndpoint({ endpoint: shim.shim.url, region: 'us-east-1', credentials: TEST_CREDENTIALS });
    await expect(check).rejects.toThrow(/It speaks SQS but not DynamoDB: is AWS_ENDPOINT_URL pointing at the edge shim\?/);
    await expect(check).rejects.toThrow(/DynamoDB \(ListTables\) answered/);
  });
});

it('npm run pipeline against the shim fails with that message and creates nothing', { timeout: 120_000 }, async () => {
  const run = promisify(execFile)('npm', ['run', 'pipeline'], {
    cwd: REPO,
    env: {
      ...process.env,
      AWS_ENDPOINT_URL: shim.shim.url,
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    },
  });
  const failure = (await run.then(
    () => undefined,
    (error: unknown) => error,
  )) as { code: number; stderr: string } | undefined;
  expect(failure?.code).toBe(1);
  expect(failure?.stderr).toMatch(/It speaks SQS but not DynamoDB/);
  expect(failure?.stderr).toMatch(/Nothing was created\./);
  const { QueueUrls } = await shim.sqs.send(new ListQueuesCommand({}));
  expect(QueueUrls ?? []).toEqual([]);
});
