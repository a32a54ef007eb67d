import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_CREDENTIALS, type TestShim, startTestShim } from '../helpers/shim.js';

// Real non-JavaScript clients against a running shim, as child processes: boto3 and the AWS CLI v1.
// botocore 1.43 ships SQS in the AWS JSON protocol only; each client also runs in the Query protocol
// through a botocore model rewritten to it (test/helpers/sqs_query_model.py), so that botocore's own
// Query serializer and XML parser check the shim's Query protocol.

const run = promisify(execFile);
const HELPERS = join(import.meta.dirname, '..', 'helpers');
const PROTOCOLS = ['json', 'query'] as const;
type Protocol = (typeof PROTOCOLS)[number];

let t: TestShim;
let queryModelDir: string;
beforeAll(async () => {
  t = await startTestShim();
  queryModelDir = join(t.dir, 'botocore-query-model');
  await run('python3', [join(HELPERS, 'sqs_query_model.py'), queryModelDir]);
});
afterAll(() => t.close());

/** The environment of a client process: test credentials, no user configuration, the protocol's model. */
function clientEnv(protocol: Protocol): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: t.dir,
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: join(t.dir, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(t.dir, 'no-aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_MAX_ATTEMPTS: '1',
  };
  if (protocol === 'query') env.AWS_DATA_PATH = queryModelDir;
  return env;
}

const CONTENT_TYPES: Record<Protocol, string> = {
  json: 'application/x-amz-json-1.0',
  query: 'application/x-www-form-urlencoded; charset=utf-8',
};

describe.each(PROTOCOLS)('boto3 in the %s protocol', (protocol) => {
  it('creates, sends, receives, batches and deletes, and gets the modelled exception for a missing queue', async () => {
    const name = `boto3-${protocol}`;
    const { stdout } = await run('python3', [join(HELPERS, 'boto3_roundtrip.py'), t.shim.url, name], { env: clientEnv(protocol), timeout: 20_000 });
    const report = JSON.parse(stdout);
    const url = `${t.shim.url}/000000000000/${name}`;

    expect(report.protocol).toBe(protocol);
    expect(report.contentTypes).toEqual([CONTENT_TYPES[protocol]]);
    expect(report).toMatchObject({ queueUrl: url, foundUrl: url, listed: [url] });
    expect(report.attributes).toEqual({ VisibilityTimeout: '40', QueueArn: `arn:aws:sqs:us-east-1:000000000000:${name}` });
    expect(report.tags).toEqual({ team: 'edge', env: 'test' });

    expect(report.sent.MD5OfMessageBody).toBe(report.bodyMd5);
    expect(report.sent.MD5OfMessageSystemAttributes).toMatch(/^[0-9a-f]{32}$/);
    expect(report.received).toEqual([
      {
        MessageId: report.sent.MessageId,
        bodyIntact: true,
        MD5OfBody: report.bodyMd5,
        MD5OfMessageAttributes: report.sent.MD5OfMessageAttributes,
        attributes: expect.objectContaining({ ApproximateReceiveCount: '1', AWSTraceHeader: 'Root=1-5759e988-bd862e3fe1be46a994272793' }),
        messageAttributes: {
          kind: { DataType: 'String', StringValue: 'a < b & c' },
          count: { DataType: 'Number', StringValue: '42' },
          blob: { DataType: 'Binary', BinaryValue: report.binaryBase64 },
        },
      },
    ]);

    expect(report.batch).toEqual({ successful: ['good'], failed: [{ Id: 'bad', SenderFault: true }] });
    expect(report.batchDeleted).toEqual(['e0']);
    expect(report.countAfter).toEqual({ ApproximateNumberOfMessages: '0' });
    expect(report.missingQueue).toEqual({ class: 'QueueDoesNotExist', code: 'AWS.SimpleQueueService.NonExistentQueue', status: 400 });
  });
});

describe.each(PROTOCOLS)('the AWS CLI in the %s protocol', (protocol) => {
  async function aws(...args: string[]): Promise<Record<string, any>> {
    const { stdout } = await run('aws', ['sqs', ...args, '--endpoint-url', t.shim.url, '--output', 'json'], {
      env: clientEnv(protocol),
      timeout: 20_000,
    });
    return stdout.trim() === '' ? {} : JSON.parse(stdout);
  }

  it('round-trips a message: create-queue, send-message, receive-message, delete-message', async () => {
    const body = `cli <${protocol}> & "quotes" \u00e9`;
    const { QueueUrl } = await aws('create-queue', '--queue-name', `cli-${protocol}`);
    expect(QueueUrl).toBe(`${t.shim.url}/000000000000/cli-${protocol}`);
    const sent = await aws('send-message', '--queue-url', QueueUrl, '--message-body', body);
    expect(sent.MD5OfMessageBody).toBe(createHash('md5').update(body, 'utf8').digest('hex'));
    const received = await aws('receive-message', '--queue-url', QueueUrl, '--attribute-names', 'All');
    expect(received.Messages).toHaveLength(1);
    expect(received.Messages[0]).toMatchObject({ MessageId: sent.MessageId, Body: body, Attributes: expect.objectContaining({ ApproximateReceiveCount: '1' }) });
    expect(await aws('delete-message', '--queue-url', QueueUrl, '--receipt-handle', received.Messages[0].ReceiptHandle)).toEqual({});
    t.clock.advance(60_000); // past any visibility timeout: a message not deleted would show again
    expect((await aws('receive-message', '--queue-url', QueueUrl)).Messages ?? []).toEqual([]);
  });

  it('reports an SQS error with its code and a failing exit status', async () => {
    const failure = await aws('get-queue-url', '--queue-name', `cli-${protocol}-absent`).catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: 255, stderr: expect.stringContaining('(AWS.SimpleQueueService.NonExistentQueue)') });
  });
});
