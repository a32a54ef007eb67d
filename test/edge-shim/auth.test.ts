import { Sha256 } from '@aws-crypto/sha256-js';
import { CreateQueueCommand, ListQueuesCommand, SQSClient, type ServiceInputTypes, type ServiceOutputTypes } from '@aws-sdk/client-sqs';
import { HttpRequest } from '@smithy/protocol-http';
import type { FinalizeRequestMiddleware } from '@smithy/types';
import { SignatureV4 } from '@smithy/signature-v4';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifySignature } from '../../edge-shim/src/auth/sigv4.js';
import { SqsError } from '../../edge-shim/src/sqs/errors.js';
import { expectSqsError } from '../helpers/sqs-errors.js';
import { TEST_CREDENTIALS, type TestShim, sqsClient, startTestShim } from '../helpers/shim.js';

// SigV4 verification, seen by the AWS SDK and by hand-built HTTP requests in both wire protocols.

const MINUTE = 60_000;
const JSON_TYPE = 'application/x-amz-json-1.0';
const FORM_TYPE = 'application/x-www-form-urlencoded; charset=utf-8';

let t: TestShim;
let url: URL;
beforeAll(async () => {
  t = await startTestShim();
  url = new URL(t.shim.url);
});
afterAll(() => t.close());

function signer(options: { credentials?: typeof TEST_CREDENTIALS; region?: string; service?: string; applyChecksum?: boolean } = {}) {
  return new SignatureV4({
    credentials: options.credentials ?? TEST_CREDENTIALS,
    region: options.region ?? 'us-east-1',
    service: options.service ?? 'sqs',
    sha256: Sha256,
    // true: the signature covers an x-amz-content-sha256 header; false: the body itself, by its hash.
    applyChecksum: options.applyChecksum ?? true,
  });
}

/** An unsigned ListQueues request in the JSON protocol, or in the Query protocol as a form post. */
function listQueues(protocol: 'json' | 'query'): HttpRequest {
  const json = protocol === 'json';
  return new HttpRequest({
    method: 'POST',
    protocol: 'http:',
    hostname: url.hostname,
    port: Number(url.port),
    path: '/',
    headers: json
      ? { host: url.host, 'content-type': JSON_TYPE, 'x-amz-target': 'AmazonSQS.ListQueues' }
      : { host: url.host, 'content-type': FORM_TYPE },
    body: json ? '{}' : 'Action=ListQueues&Version=2012-11-05',
  });
}

interface Answer {
  readonly status: number;
  readonly code: string | undefined;
  readonly message: string | undefined;
}

const xml = new XMLParser({ parseTagValue: false });

interface Sendable {
  readonly method: string;
  readonly path: string;
  readonly query?: Record<string, unknown>;
  readonly headers: Record<string, string>;
  readonly body?: unknown;
}

/** Sends a request as is and reads the SQS error code from whichever protocol it answered in. */
async function send(request: Sendable): Promise<Answer> {
  const query = new URLSearchParams(Object.entries(request.query ?? {}).map(([k, v]): [string, string] => [k, String(v)]));
  const queryString = query.size > 0 ? `?${query.toString().replace(/\+/g, '%20')}` : '';
  const response = await fetch(`${t.shim.url}${request.path}${queryString}`, {
    method: request.method,
    headers: Object.fromEntries(Object.entries(request.headers).filter(([name]) => name !== 'host')),
    body: request.body as string | undefined,
  });
  const text = await response.text();
  if (response.headers.get('content-type') === JSON_TYPE) {
    const body = JSON.parse(text) as { __type?: string; message?: string };
    const queryError = response.headers.get('x-amzn-query-error');
    return { status: response.status, code: queryError?.split(';')[0] ?? body.__type?.split('#')[1], message: body.message };
  }
  const parsed = xml.parse(text) as { ErrorResponse?: { Error: { Code: string; Message: string } } };
  return { status: response.status, code: parsed.ErrorResponse?.Error.Code, message: parsed.ErrorResponse?.Error.Message };
}

/** An SDK client whose requests are changed after they are signed. */
function tamperingClient(tamper: (request: HttpRequest) => void): SQSClient {
  const client = sqsClient(t.shim.url);
  client.middlewareStack.addRelativeTo(
    ((next) => (args) => {
      tamper(args.request as HttpRequest);
      return next(args);
    }) satisfies FinalizeRequestMiddleware<ServiceInputTypes, ServiceOutputTypes>,
    { relation: 'after', toMiddleware: 'httpSigningMiddleware', name: 'tamper' },
  );
  return client;
}

describe('accepts', () => {
  it('requests the SDK signs with configured credentials', async () => {
    const { QueueUrl } = await t.sqs.send(new CreateQueueCommand({ QueueName: 'signed' }));
    const { QueueUrls } = await t.sqs.send(new ListQueuesCommand({}));
    expect(QueueUrls).toContain(QueueUrl);
  });

  it('any of several configured credentials', async () => {
    const other = { accessKeyId: 'AKIDSECOND', secretAccessKey: 'second-secret' };
    const shim = await startTestShim({ credentials: [TEST_CREDENTIALS, other] });
    const client = sqsClient(shim.shim.url, other);
    try {
      await expect(client.send(new ListQueuesCommand({}))).resolves.toBeDefined();
    } finally {
      client.destroy();
      await shim.close();
    }
  });

  it.each(['json', 'query'] as const)('hand-signed %s requests', async (protocol) => {
    const answer = await send(await signer().sign(listQueues(protocol)));
    expect(answer.status).toBe(200);
  });

  it('signed header values with runs of spaces and tabs, canonicalized as SigV4 says', async () => {
    const request = listQueues('json');
    request.headers['x-amz-meta-note'] = 'two  spaces,\ta tab and \t both';
    const signed = await signer().sign(request);
    expect(await send(signed)).toMatchObject({ status: 200 });
    // Single spaces are the same canonical value; another word is not.
    signed.headers['x-amz-meta-note'] = 'two spaces, a tab and both';
    expect(await send(signed)).toMatchObject({ status: 200 });
    signed.headers['x-amz-meta-note'] = 'two spaces, a tab and neither';
    expect(await send(signed)).toMatchObject({ status: 403, code: 'SignatureDoesNotMatch' });
  });

  it.each(['/000000000000/signed', '/000000000000/./x/../signed', '/000000000000/%73igned'])('Query requests signed for the path %s', async (path) => {
    const request = listQueues('query');
    request.path = path;
    const answer = await send(await signer().sign(request));
    expect(answer).toMatchObject({ status: 200 });
  });

  it('presigned URLs (query-string authentication)', async () => {
    const unsigned = new HttpRequest({
      method: 'GET',
      protocol: 'http:',
      hostname: url.hostname,
      port: Number(url.port),
      path: '/',
      query: { Action: 'ListQueues', Version: '2012-11-05', QueueNamePrefix: 'sig ned' },
      headers: { host: url.host },
    });
    const presigned = await signer().presign(unsigned, { expiresIn: 300 });
    expect(presigned.query?.['X-Amz-Signature']).toMatch(/^[0-9a-f]{64}$/);
    const answer = await send(presigned);
    expect(answer.status).toBe(200);
  });

  it('unsigned requests when no credentials are configured (loopback only)', async () => {
    const open = await startTestShim({ credentials: [] });
    try {
      const response = await fetch(open.shim.url, { method: 'POST', headers: { 'content-type': JSON_TYPE, 'x-amz-target': 'AmazonSQS.ListQueues' }, body: '{}' });
      expect(response.status).toBe(200);
    } finally {
      await open.close();
    }
  });
});

describe('rejects, through the SDK,', () => {
  it('a request without a signature: MissingAuthenticationToken', async () => {
    const client = tamperingClient((request) => {
      delete request.headers.authorization;
    });
    await expectSqsError(client.send(new ListQueuesCommand({})), { name: 'MissingAuthenticationToken', status: 403 });
    client.destroy();
  });

  it('an unknown access key: InvalidClientTokenId', async () => {
    const client = sqsClient(t.shim.url, { accessKeyId: 'AKIDUNKNOWN', secretAccessKey: TEST_CREDENTIALS.secretAccessKey });
    await expectSqsError(client.send(new ListQueuesCommand({})), { name: 'InvalidClientTokenId', status: 403 });
    client.destroy();
  });

  it('a wrong secret: SignatureDoesNotMatch', async () => {
    const client = sqsClient(t.shim.url, { ...TEST_CREDENTIALS, secretAccessKey: 'not-the-secret' });
    await expectSqsError(client.send(new ListQueuesCommand({})), { name: 'SignatureDoesNotMatch', status: 403, message: /signature we calculated does not match/ });
    client.destroy();
  });

  it('a body changed after signing: SignatureDoesNotMatch', async () => {
    const client = tamperingClient((request) => {
      request.body = '{"QueueNamePrefix":"x"}';
      request.headers['content-length'] = String(request.body.length);
    });
    await expectSqsError(client.send(new ListQueuesCommand({})), { name: 'SignatureDoesNotMatch', status: 403 });
    client.destroy();
  });

  it.each([
    ['past', -20 * MINUTE, /^Signature expired: \d{8}T\d{6}Z is now earlier than/],
    ['future', 20 * MINUTE, /^Signature not yet current: \d{8}T\d{6}Z is still later than/],
  ])('a signature dated more than 15 minutes in the %s: SignatureDoesNotMatch', async (_when, offset, message) => {
    const client = new SQSClient({ endpoint: t.shim.url, region: 'us-east-1', credentials: TEST_CREDENTIALS, maxAttempts: 1, systemClockOffset: offset });
    await expectSqsError(client.send(new ListQueuesCommand({})), { name: 'SignatureDoesNotMatch', status: 403, message });
    client.destroy();
  });

  it('a signature scoped to another region: SignatureDoesNotMatch', async () => {
    const client = new SQSClient({ endpoint: t.shim.url, region: 'eu-west-1', credentials: TEST_CREDENTIALS, maxAttempts: 1 });
    await expectSqsError(client.send(new ListQueuesCommand({})), { name: 'SignatureDoesNotMatch', status: 403, message: /region/ });
    client.destroy();
  });

  it('a malformed Authorization header: IncompleteSignature', async () => {
    const client = tamperingClient((request) => {
      request.headers.authorization = String(request.headers.authorization).replace(/, Signature=.*$/, '');
    });
    await expectSqsError(client.send(new ListQueuesCommand({})), { name: 'IncompleteSignature', status: 400, message: /'Signature'/ });
    client.destroy();
  });
});

describe.each(['json', 'query'] as const)('rejects, in the %s protocol,', (protocol) => {
  it('a request without a signature: MissingAuthenticationToken 403', async () => {
    expect(await send(listQueues(protocol))).toMatchObject({ status: 403, code: 'MissingAuthenticationToken' });
  });

  it('an unknown access key: InvalidClientTokenId 403', async () => {
    const signed = await signer({ credentials: { accessKeyId: 'AKIDUNKNOWN', secretAccessKey: 'x' } }).sign(listQueues(protocol));
    expect(await send(signed)).toMatchObject({ status: 403, code: 'InvalidClientTokenId' });
  });

  it('a wrong signature: SignatureDoesNotMatch 403', async () => {
    const signed = await signer().sign(listQueues(protocol));
    signed.headers.authorization = String(signed.headers.authorization).replace(/Signature=(.)/, (_, c: string) => `Signature=${c === '0' ? '1' : '0'}`);
    expect(await send(signed)).toMatchObject({ status: 403, code: 'SignatureDoesNotMatch' });
  });

  it.each([true, false])('a body changed after signing (x-amz-content-sha256 sent: %s): SignatureDoesNotMatch 403', async (applyChecksum) => {
    const signed = await signer({ applyChecksum }).sign(listQueues(protocol));
    expect('x-amz-content-sha256' in signed.headers).toBe(applyChecksum);
    expect(await send(signed)).toMatchObject({ status: 200 });
    signed.body = protocol === 'json' ? '{"QueueNamePrefix":"x"}' : 'Action=ListQueues&Version=2012-11-05&QueueNamePrefix=x';
    expect(await send(signed)).toMatchObject({ status: 403, code: 'SignatureDoesNotMatch' });
  });

  it('a signature more than 15 minutes old: SignatureDoesNotMatch 403', async () => {
    const signed = await signer().sign(listQueues(protocol), { signingDate: new Date(Date.now() - 16 * MINUTE) });
    expect(await send(signed)).toMatchObject({ status: 403, code: 'SignatureDoesNotMatch', message: expect.stringMatching(/^Signature expired/) });
  });

  it('a signature for another service: SignatureDoesNotMatch 403', async () => {
    const signed = await signer({ service: 's3' }).sign(listQueues(protocol));
    expect(await send(signed)).toMatchObject({ status: 403, code: 'SignatureDoesNotMatch', message: expect.stringMatching(/service: 'sqs'/) });
  });

  it.each([
    ['an unknown algorithm', (auth: string) => auth.replace('AWS4-HMAC-SHA256', 'AWS4-HMAC-SHA512')],
    ['a credential scope of the wrong shape', (auth: string) => auth.replace('/aws4_request', '')],
    ['no SignedHeaders', (auth: string) => auth.replace(/SignedHeaders=[^,]*, /, '')],
  ])('%s: IncompleteSignature 400', async (_case, change) => {
    const signed = await signer().sign(listQueues(protocol));
    signed.headers.authorization = change(String(signed.headers.authorization));
    expect(await send(signed)).toMatchObject({ status: 400, code: 'IncompleteSignature' });
  });

  it('a request whose content type, x-amz-* headers or host are not signed: IncompleteSignature 400', async () => {
    const unsignable = protocol === 'json' ? ['x-amz-target', 'content-type'] : ['content-type'];
    for (const header of [...unsignable, 'host']) {
      const signed = await signer().sign(listQueues(protocol), { unsignableHeaders: new Set([header]) });
      expect(String(signed.headers.authorization)).not.toMatch(new RegExp(`[=;]${header}[;,]`));
      expect(await send(signed), header).toMatchObject({ status: 400, code: 'IncompleteSignature', message: expect.stringContaining(header) });
    }
  });
});

describe('rejects presigned URLs', () => {
  const presign = (query: Record<string, string>, options: { signingDate?: Date; expiresIn?: number } = {}) =>
    signer().presign(
      new HttpRequest({ method: 'GET', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: '/', query, headers: { host: url.host } }),
      { expiresIn: 60, ...options },
    );
  const listQueuesQuery = { Action: 'ListQueues', Version: '2012-11-05' };

  it('past their expiry: RequestExpired 400', async () => {
    const presigned = await presign(listQueuesQuery, { signingDate: new Date(Date.now() - 2 * MINUTE), expiresIn: 60 });
    expect(await send(presigned)).toMatchObject({ status: 400, code: 'RequestExpired' });
  });

  it('with a parameter changed after signing: SignatureDoesNotMatch 403', async () => {
    const presigned = await presign(listQueuesQuery);
    presigned.query!.QueueNamePrefix = 'other';
    expect(await send(presigned)).toMatchObject({ status: 403, code: 'SignatureDoesNotMatch' });
  });

  it('with an expiry beyond seven days, or missing parts: IncompleteSignature 400', async () => {
    const tooLong = await presign(listQueuesQuery);
    tooLong.query!['X-Amz-Expires'] = '604801';
    expect(await send(tooLong)).toMatchObject({ status: 400, code: 'IncompleteSignature' });
    const partial = await presign(listQueuesQuery);
    delete partial.query!['X-Amz-Credential'];
    expect(await send(partial)).toMatchObject({ status: 400, code: 'IncompleteSignature', message: expect.stringContaining('X-Amz-Credential') });
  });
});

describe('verifySignature', () => {
  // The function itself, to pin the 15-minute window to the millisecond with a chosen `now`.
  it('accepts a header signature up to 15 minutes either side of now, and no further', async () => {
    const signedAt = new Date('2026-01-02T03:04:05Z');
    const signed = await signer().sign(listQueues('json'), { signingDate: signedAt });
    const wire = {
      method: 'POST',
      path: '/',
      queryString: '',
      headers: Object.fromEntries(Object.entries(signed.headers).map(([name, value]) => [name.toLowerCase(), value])),
      body: Buffer.from(String(signed.body)),
    };
    const verify = (now: number) => () => verifySignature(wire, { credentials: [TEST_CREDENTIALS], region: 'us-east-1', now });
    const at = signedAt.getTime();
    for (const now of [at, at - 15 * MINUTE, at + 15 * MINUTE]) expect(verify(now)).not.toThrow();
    for (const now of [at - 15 * MINUTE - 1000, at + 15 * MINUTE + 1000]) {
      expect(verify(now)).toThrow(SqsError);
      expect(verify(now)).toThrow(/Signature (expired|not yet current)/);
    }
  });
});
