import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateQueueCommand, ReceiveMessageCommand, SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startShim } from '../../edge-shim/src/shim.js';
import { type ShimProcess, spawnShim } from '../../testkit/shim-process.js';
import { TEST_CREDENTIALS } from '../helpers/shim.js';
import { waitForState } from '../helpers/wait.js';
import { type CertificateFiles, getOverTls, makeCertificate } from './support.js';

// Issue 16, TLS: `--tls-cert` and `--tls-key` make the SQS port speak HTTPS, so that bodies and
// receipt handles do not cross the site's network in clear, and a renewed certificate is taken on
// SIGHUP without the listener going away. The shim runs as `npm start` runs it, certificates from
// openssl made here: the first and the renewed one are each their own CA.

let dir: string;
let shim: ShimProcess;
/** The files the shim is given; the certificates are copied over them. */
let given: CertificateFiles;
let first: CertificateFiles;
let renewed: CertificateFiles;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'holdfast-tls-'));
  first = makeCertificate(dir, 'holdfast-first', ['IP:127.0.0.1', 'DNS:localhost']);
  renewed = makeCertificate(dir, 'holdfast-renewed', ['IP:127.0.0.1', 'DNS:localhost']);
  given = { certFile: join(dir, 'edge.crt'), keyFile: join(dir, 'edge.key') };
  copyFileSync(first.certFile, given.certFile);
  copyFileSync(first.keyFile, given.keyFile);
  shim = await spawnShim({
    dbFile: join(dir, 'shim.db'),
    logFile: join(dir, 'shim.log'),
    credentials: [`${TEST_CREDENTIALS.accessKeyId}:${TEST_CREDENTIALS.secretAccessKey}`],
    args: ['--tls-cert', given.certFile, '--tls-key', given.keyFile, '--disk-reserve', '1MiB'],
  });
}, 60_000);

afterAll(async () => {
  await shim?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** An SDK client that trusts one certificate, through a custom HTTPS agent. */
function trusting(certificate: CertificateFiles): SQSClient {
  return new SQSClient({
    endpoint: shim.url,
    region: 'us-east-1',
    credentials: TEST_CREDENTIALS,
    maxAttempts: 1,
    requestHandler: { httpsAgent: new Agent({ ca: readFileSync(certificate.certFile), keepAlive: true }) },
  });
}

it('speaks HTTPS on the SQS port: an SDK client trusting the certificate works, with https queue URLs', async () => {
  expect(shim.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  // The admin listener stays on loopback, in plain HTTP for the tools there.
  expect(shim.adminUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  const sqs = trusting(first);
  try {
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'over-tls' }));
    expect(QueueUrl).toBe(`${shim.url}/000000000000/over-tls`);
    await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'sealed' }));
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 1 }));
    expect(Messages.map((message) => message.Body)).toEqual(['sealed']);
  } finally {
    sqs.destroy();
  }
});

it('is not spoken to in plain HTTP, nor by a client that does not trust the certificate', async () => {
  await expect(fetch(`${shim.url.replace('https:', 'http:')}/health`)).rejects.toThrow();
  const stranger = trusting(renewed);
  try {
    await expect(stranger.send(new CreateQueueCommand({ QueueName: 'untrusted' }))).rejects.toThrow(/self[- ]signed|certificate/i);
  } finally {
    stranger.destroy();
  }
});

it('takes a renewed certificate on SIGHUP for new connections, the listener and the connections open staying up', async () => {
  const sqs = trusting(first);
  try {
    // A connection opened before the renewal, kept alive across it.
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'renewal' }));
    copyFileSync(renewed.keyFile, given.keyFile);
    copyFileSync(renewed.certFile, given.certFile);
    process.kill(shim.pid, 'SIGHUP');
    const answer = await waitForState(async () => {
      const fresh = await getOverTls(`${shim.url}/health`, renewed.certFile);
      if (fresh.certificate.subject.CN !== 'holdfast-renewed') throw new Error('not renewed yet');
      return fresh;
    });
    expect(answer.status).toBe(200);
    await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'after the renewal' }));
    expect(shim.child.exitCode).toBeNull();
  } finally {
    sqs.destroy();
  }
});

it('keeps the certificate it has when the files given on SIGHUP are not usable', async () => {
  copyFileSync(first.keyFile, given.keyFile); // the renewed certificate with another's key
  process.kill(shim.pid, 'SIGHUP');
  // Still the renewed one, and still listening: a connection made after the signal was handled.
  await waitForState(async () => {
    if (!readFileSync(join(dir, 'shim.log'), 'utf8').includes('cannot reload the TLS certificate')) throw new Error('not handled yet');
  });
  expect((await getOverTls(`${shim.url}/health`, renewed.certFile)).certificate.subject.CN).toBe('holdfast-renewed');
});

it('refuses to start with files that are not a certificate and its key', async () => {
  const start = (tlsCert: string, tlsKey: string) => startShim({ port: 0, adminPort: 0, dbFile: ':memory:', logLevel: 'silent', tlsCert, tlsKey });
  await expect(start(first.certFile, renewed.keyFile)).rejects.toThrow(/cannot use the TLS certificate/);
  await expect(start(first.certFile, join(dir, 'missing.key'))).rejects.toThrow(/cannot use the TLS certificate .*ENOENT/);
});
