import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, createServer, get as httpGet } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CreateQueueCommand, ListQueuesCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../edge-shim/src/config.js';
import { startShim } from '../../edge-shim/src/shim.js';
import { exchange, parseAnswer, sqsError } from '../helpers/raw-http.js';
import { sendQuery } from '../helpers/raw-request.js';
import { TEST_CREDENTIALS, type TestShim, sqsClient, startTestShim, testEngine } from '../helpers/shim.js';

// The HTTP front: health, limits, malformed HTTP of every kind, logging, and the real CLI's lifecycle.

const JSON_HEADERS = 'Content-Type: application/x-amz-json-1.0\r\nX-Amz-Target: AmazonSQS.ListQueues\r\n';

/** Log lines the shim writes, kept to look at. */
function capturingLogger() {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(line) });
  return { logger, lines };
}

let t: TestShim;
let open: TestShim;
/** The Host of hand-written requests: one of the shim's own names, which a shim without credentials requires. */
let openHost: string;
const log = capturingLogger();
beforeAll(async () => {
  t = await startTestShim({ logger: log.logger });
  // No credentials (loopback only), short timeouts: hand-written HTTP reaches the protocols.
  open = await startTestShim({ credentials: [], httpTimeouts: { headersMs: 500, requestMs: 1000 } });
  openHost = new URL(open.shim.url).host;
});
afterAll(async () => {
  await t.close();
  await open.close();
});

describe('health', () => {
  it('answers 200 on GET and HEAD /health, unauthenticated', async () => {
    const response = await fetch(`${t.shim.url}/health`);
    expect(response.status).toBe(200);
    // A store on PostgreSQL has no disk of the shim's to report.
    expect(await response.json()).toMatchObject({ status: 'ok', storage: testEngine() === 'sqlite' ? { state: 'ok' } : null });
    expect((await fetch(`${t.shim.url}/health`, { method: 'HEAD' })).status).toBe(200);
  });

  // On PostgreSQL, test/postgres/nodes.test.ts stops the database's server under a running node.
  it.runIf(testEngine() === 'sqlite')('answers 503 once the database is unusable', async () => {
    const shim = await startTestShim();
    try {
      // The handle, closed under the running server: nothing else can make SQLite fail on demand.
      shim.shim.sqlite!.engine.storage.db.close();
      const response = await fetch(`${shim.shim.url}/health`);
      expect(response.status).toBe(503);
      expect(await response.json()).toMatchObject({ status: 'unavailable', reason: expect.stringMatching(/database/) });
    } finally {
      await shim.close();
    }
  });
});

describe('malformed HTTP gets an SQS error, and the server stays up', () => {
  const raw = async (text: string | Parameters<typeof exchange>[1], shim = open) => {
    const answer = parseAnswer(await exchange(shim.shim.url, text));
    return { answer, error: sqsError(answer) };
  };

  it.each(['PUT', 'DELETE', 'PATCH', 'OPTIONS'])('%s', async (method) => {
    const { error } = await raw(`${method} / HTTP/1.1\r\nHost: ${openHost}\r\nConnection: close\r\nContent-Length: 2\r\n\r\nab`);
    expect(error).toMatchObject({ status: 400, protocol: 'query', code: 'AWS.SimpleQueueService.UnsupportedOperation' });
  });

  it('GET in the JSON protocol, answered in JSON', async () => {
    const { error } = await raw(`GET / HTTP/1.1\r\nHost: ${openHost}\r\nConnection: close\r\n${JSON_HEADERS}\r\n`);
    expect(error).toMatchObject({ status: 400, protocol: 'json', code: 'AWS.SimpleQueueService.UnsupportedOperation' });
  });

  it('HEAD on an SQS path: the error status without a body', async () => {
    const answer = parseAnswer(await exchange(open.shim.url, `HEAD / HTTP/1.1\r\nHost: ${openHost}\r\nConnection: close\r\n\r\n`));
    expect(answer.status).toBe(400);
    expect(answer.body).toBe('');
  });

  it('an unparseable request line', async () => {
    const { error } = await raw('BLAH\x01 / HTTP/1.1\r\n\r\n');
    expect(error).toMatchObject({ status: 400, protocol: 'query', code: 'InvalidParameterValue' });
  });

  it('an invalid chunked body, answered in the protocol of its headers', async () => {
    const { error } = await raw(`POST / HTTP/1.1\r\nHost: ${openHost}\r\n${JSON_HEADERS}Transfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n`);
    expect(error).toMatchObject({ status: 400, protocol: 'json', code: 'InvalidParameterValue' });
  });

  it('headers larger than node takes (16 KiB)', async () => {
    const { error } = await raw(`POST / HTTP/1.1\r\nHost: ${openHost}\r\n${JSON_HEADERS}X-Padding: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(error).toMatchObject({ status: 400, protocol: 'json', code: 'InvalidParameterValue' });
  });

  it('a URL that is not one', async () => {
    const { answer } = await raw(`GET http://[ HTTP/1.1\r\nHost: ${openHost}\r\nConnection: close\r\n\r\n`);
    expect(answer.status).toBeGreaterThanOrEqual(400);
    expect(answer.status).toBeLessThan(500);
  });

  it('a body larger than the limit, declared or chunked', async () => {
    const declared = await raw(`POST / HTTP/1.1\r\nHost: ${openHost}\r\nConnection: close\r\n${JSON_HEADERS}Content-Length: ${64 * 1024 * 1024}\r\n\r\n{}`);
    expect(declared.error).toMatchObject({ status: 400, code: 'InvalidParameterValue', message: expect.stringMatching(/larger than/) });
    const chunk = Buffer.alloc(1024 * 1024, 'a');
    const chunked = await raw((socket) => {
      socket.write(`POST / HTTP/1.1\r\nHost: ${openHost}\r\nConnection: close\r\n${JSON_HEADERS}Transfer-Encoding: chunked\r\n\r\n`);
      for (let i = 0; i < 5; i++) socket.write(`${chunk.length.toString(16)}\r\n${chunk.toString()}\r\n`);
      socket.write('0\r\n\r\n');
    });
    expect(chunked.error).toMatchObject({ status: 400, code: 'InvalidParameterValue', message: expect.stringMatching(/larger than/) });
  });

  it('a body that stops arriving: an error when the request timeout passes', async () => {
    const { error } = await raw(`POST / HTTP/1.1\r\nHost: ${openHost}\r\n${JSON_HEADERS}Content-Length: 100\r\n\r\n{"Queue`);
    expect(error).toMatchObject({ status: 400, protocol: 'json', code: 'InvalidParameterValue', message: expect.stringMatching(/not received in full/) });
  });

  it('headers that stop arriving', async () => {
    const { error } = await raw(`POST / HTTP/1.1\r\nHost: ${openHost}\r\nX-Amz-Tar`);
    expect(error.status).toBe(400);
  });

  it('no Host header: answered, with queue URLs on the address the client reached', async () => {
    const { QueueUrl } = await open.sqs.send(new CreateQueueCommand({ QueueName: 'hostless' }));
    const body = '{"QueueNamePrefix":"hostless"}';
    const answer = parseAnswer(await exchange(open.shim.url, `POST / HTTP/1.0\r\n${JSON_HEADERS}Content-Length: ${body.length}\r\n\r\n${body}`));
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ QueueUrls: [QueueUrl] });
  });

  it('a Host header that is not a host: refused by a shim without credentials, as any name not its own', async () => {
    const { error } = await raw(`POST / HTTP/1.1\r\nHost: evil.example/<x>\r\nConnection: close\r\n${JSON_HEADERS}Content-Length: 2\r\n\r\n{}`);
    expect(error).toMatchObject({ status: 403, code: 'AccessDenied' });
  });

  it('a client that goes away mid-body: nothing logged as a failure, the next request served', async () => {
    await exchange(t.shim.url, (socket) => {
      socket.write(`POST / HTTP/1.1\r\nHost: ${openHost}\r\n${JSON_HEADERS}Content-Length: 1000\r\n\r\n{"Queue`, () => socket.destroy());
    });
    const { QueueUrls } = await t.sqs.send(new ListQueuesCommand({}));
    expect(QueueUrls ?? []).toBeInstanceOf(Array);
    expect(log.lines.filter((line) => JSON.parse(line).level >= 50)).toEqual([]);
  });

  it('afterwards, a normal request still works', async () => {
    const { QueueUrls } = await open.sqs.send(new ListQueuesCommand({}));
    expect(QueueUrls).toContain(`${open.shim.url}/000000000000/hostless`);
  });
});

describe('limits', () => {
  it('a 1 MiB message fits in the Query protocol even when form encoding triples it', async () => {
    const { QueueUrl } = await t.sqs.send(new CreateQueueCommand({ QueueName: 'large' }));
    const body = '€'.repeat(349_525); // 1,048,575 bytes of UTF-8, each byte percent-encoded in the form
    const answer = await sendQuery(t.shim.url, { Action: 'SendMessage', QueueUrl: QueueUrl!, MessageBody: body });
    expect(answer.status, answer.body.slice(0, 300)).toBe(200);
    const { Messages } = await t.sqs.send(new ReceiveMessageCommand({ QueueUrl }));
    expect(Messages?.[0]?.Body).toBe(body);
  });

  it('a long poll outlasts the request timeout: the timeout covers receiving the request only', async () => {
    const { QueueUrl } = await open.sqs.send(new CreateQueueCommand({ QueueName: 'long-poll' }));
    const poll = open.sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 20 }));
    while (open.shim.service.waitingReceives < 1) await new Promise((resolve) => setTimeout(resolve, 5));
    // A request begun after the poll and never finished: once the shim has timed it out, the poll
    // has been open longer than the 1 s request timeout, and checked against it.
    const late = parseAnswer(await exchange(open.shim.url, `POST / HTTP/1.1\r\nHost: ${openHost}\r\n${JSON_HEADERS}Content-Length: 100\r\n\r\n{"Queue`));
    expect(sqsError(late).message).toMatch(/not received in full/);
    await open.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'late' }));
    const { Messages } = await poll;
    expect(Messages?.map((message) => message.Body)).toEqual(['late']);
  });
});

describe('keep-alive', () => {
  /** GET /health over `agent`, with the socket it went over. */
  function health(url: string, agent: Agent) {
    return new Promise<{ status: number; socket: Socket; reused: boolean; keepAlive: string | string[] | undefined }>((resolve, reject) => {
      const request = httpGet(`${url}/health`, { agent }, (response) => {
        response.resume();
        response.on('end', () => resolve({ status: response.statusCode!, socket: request.socket as Socket, reused: request.reusedSocket, keepAlive: response.headers['keep-alive'] }));
      });
      request.on('error', reject);
    });
  }

  it('keeps an idle connection open past the 5 s that Node servers keep by default, for a client reusing it then', async () => {
    // Node's default keep-alive, as the shim had: this server closing its idle connection marks the old boundary.
    const witness = createServer((_request, response) => response.end());
    await new Promise<void>((resolve) => witness.listen(0, '127.0.0.1', resolve));
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const witnessAgent = new Agent({ keepAlive: true });
    try {
      const first = await health(open.shim.url, agent);
      // Announced, for the pools that close idle connections on the server's word (undici, newer Node agents).
      expect(Number(/^timeout=(\d+)$/.exec(String(first.keepAlive))?.[1])).toBeGreaterThan(5);
      const witnessed = await health(`http://127.0.0.1:${(witness.address() as AddressInfo).port}`, witnessAgent);
      await new Promise((resolve) => witnessed.socket.once('close', resolve));
      // The shim's connection, idle since before the witness's, is still open and still served.
      expect(first.socket.destroyed).toBe(false);
      const second = await health(open.shim.url, agent);
      expect(second).toMatchObject({ status: 200, reused: true });
      expect(second.socket).toBe(first.socket);
    } finally {
      agent.destroy();
      witnessAgent.destroy();
      witness.close();
    }
  });

  it('closes idle connections at once, with a FIN, when the shim stops', async () => {
    // A grace period far beyond the test's timeout: closing must not wait for idle connections.
    const shim = await startTestShim({ credentials: [], shutdownGraceMs: 10 * 60_000 });
    const agent = new Agent({ keepAlive: true });
    try {
      const { socket } = await health(shim.shim.url, agent);
      const closed = new Promise<boolean>((resolve) => socket.once('close', resolve));
      await shim.close();
      expect(await closed, 'closed by an error (reset) rather than by the server ending it').toBe(false);
    } finally {
      agent.destroy();
    }
  });
});

describe('logging', () => {
  it('never writes secrets, signatures or presigned query strings', async () => {
    await t.sqs.send(new ListQueuesCommand({}));
    await fetch(`${t.shim.url}/?X-Amz-Signature=${'ab'.repeat(32)}&X-Amz-Credential=x`);
    const text = log.lines.join('');
    expect(text).toMatch(/request done/);
    expect(text).toContain(TEST_CREDENTIALS.accessKeyId);
    for (const secret of [TEST_CREDENTIALS.secretAccessKey, 'Signature=', 'ab'.repeat(32), 'authorization']) expect(text).not.toContain(secret);
  });
});

describe('configuration from code', () => {
  it('refuses to listen on a non-loopback address without credentials', async () => {
    await expect(startShim({ host: '0.0.0.0', port: 0, dbFile: ':memory:', logLevel: 'silent' })).rejects.toThrow(ConfigError);
  });
});

describe('the CLI (npm start)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'holdfast-cli-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /**
   * `npm start -- ...args` (or, quicker to start, node running main.ts as tsx would), with its JSON
   * log lines as they come. In a process group of its own, so that cleanup reaches every process.
   */
  function cli(args: string[], { env = {}, viaNpm = false }: { env?: Record<string, string>; viaNpm?: boolean } = {}) {
    const [command, commandArgs] = viaNpm ? ['npm', ['start', '--', ...args]] : [process.execPath, ['--import', 'tsx', 'edge-shim/src/main.ts', ...args]];
    const child = spawn(command, commandArgs, { env: { ...process.env, HOLDFAST_ADMIN_PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const lines: Array<Record<string, unknown>> = [];
    const waiters: Array<{ test: (line: Record<string, unknown>) => boolean; resolve: (line: Record<string, unknown>) => void }> = [];
    createInterface({ input: child.stdout! }).on('line', (text) => {
      if (!text.startsWith('{')) return;
      const line = JSON.parse(text) as Record<string, unknown>;
      lines.push(line);
      for (const waiter of [...waiters]) if (waiter.test(line)) waiter.resolve(line);
    });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const logged = (test: (line: Record<string, unknown>) => boolean) =>
      new Promise<Record<string, unknown>>((resolve) => {
        const found = lines.find(test);
        if (found) resolve(found);
        else waiters.push({ test, resolve });
      });
    return { child, lines, logged, exited, stderr: () => stderr };
  }

  const stop = (child: ChildProcess) => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // The whole group has exited already.
    }
  };

  it('logs its URL, and on SIGTERM (to npm) answers the long poll in flight, closes and exits 0', async () => {
    const run = cli(['--port', '0', '--db', join(dir, 'cli.db'), '--log-level', 'debug', '--credentials', 'AKIDCLI:cli-secret-value'], { viaNpm: true });
    try {
      const listening = await run.logged((line) => line.msg !== undefined && String(line.msg).startsWith('edge shim listening'));
      const url = String(listening.url);
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const sqs = sqsClient(url, { accessKeyId: 'AKIDCLI', secretAccessKey: 'cli-secret-value' });
      const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'cli' }));
      const poll = sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 20 }));
      await run.logged((line) => line.action === 'ReceiveMessage' && line.msg === 'request started');
      const signalledAt = Date.now();
      run.child.kill('SIGTERM');
      const { Messages } = await poll;
      // Answered by the shutdown, not by its 20 s wait running out.
      expect(Date.now() - signalledAt).toBeLessThan(10_000);
      expect(Messages ?? []).toEqual([]);
      expect(await run.exited).toBe(0);
      expect(run.lines.some((line) => line.msg === 'edge shim stopped')).toBe(true);
      expect(JSON.stringify(run.lines)).not.toContain('cli-secret-value');
      sqs.destroy();
    } finally {
      stop(run.child);
    }
  }, 40_000);

  it('exits 2 with a clear message when asked to listen on 0.0.0.0 without credentials', async () => {
    const run = cli(['--host', '0.0.0.0', '--port', '0', '--db', join(dir, 'refused.db')]);
    try {
      expect(await run.exited).toBe(2);
      expect(run.stderr()).toMatch(/refusing to listen on 0\.0\.0\.0 without credentials/);
    } finally {
      stop(run.child);
    }
  });

  it('exits 2, not 1, when a file the configuration names cannot be used (a supervisor must not restart it)', async () => {
    const run = cli(['--port', '0', '--admin-port', '0', '--db', join(dir, 'no-credentials.db'), '--credentials-file', join(dir, 'absent-credentials')]);
    try {
      expect(await run.exited).toBe(2);
      expect(run.stderr()).toContain('absent-credentials');
    } finally {
      stop(run.child);
    }
  });

  it('takes its options from HOLDFAST_* environment variables', async () => {
    const run = cli([], { env: { HOLDFAST_HOST: '0.0.0.0', HOLDFAST_PORT: '0', HOLDFAST_DB: join(dir, 'env.db') } });
    try {
      expect(await run.exited).toBe(2);
      expect(run.stderr()).toMatch(/refusing to listen on 0\.0\.0\.0/);
    } finally {
      stop(run.child);
    }
  });
});
