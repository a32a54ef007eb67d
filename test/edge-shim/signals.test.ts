import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  type SQSClient,
  SendMessageBatchCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { afterAll, expect, it } from 'vitest';
import { sqsClient } from '../helpers/shim.js';

// `npm start` as an operator runs it, stopped under load the two ways an operator stops it: SIGTERM
// to npm (a service manager, `kill`) and SIGINT to the whole process group (Ctrl-C in a terminal).
// The shim must get the signal itself and drain: exit 0, log that it stopped, answer the long polls
// that were waiting, and keep every send it acknowledged. Several rounds on one database, each
// round's restart checking the round before, because a process that dies mid-drain does not fail
// every time.
const ROUNDS = 4;
const SENDERS = 32;
const LONG_POLLS = 20;
// Sends acknowledged after the long polls were issued before the signal goes: by then the shim has
// long since read the polls' requests (it serves requests in the order its event loop reads them).
const SENDS_BEFORE_SIGNAL = 400;

const REPO = fileURLToPath(new URL('../..', import.meta.url));

interface NpmStart {
  readonly child: ChildProcess;
  readonly url: string;
  /** Messages the shim logged, in order. */
  readonly messages: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function npmStart(dbFile: string): Promise<NpmStart> {
  // A process group of its own, so that a signal to the group reaches npm and the shim only.
  const child = spawn('npm', ['start', '--', '--port', '0', '--db', dbFile], { cwd: REPO, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
  const messages: string[] = [];
  return new Promise((resolve, reject) => {
    void exited.then(({ code }) => reject(new Error(`npm start exited (code ${code}) before listening: ${stderr}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      // npm prints its own lines ("> holdfast@0.1.0 start") before the shim's JSON ones.
      if (!line.startsWith('{')) return;
      const entry = JSON.parse(line) as { msg: string; url?: string };
      messages.push(entry.msg);
      if (entry.url && entry.msg.startsWith('edge shim listening')) resolve({ child, url: entry.url, messages, exited });
    });
  });
}

/** Senders that send until their first failure and remember what was acknowledged. */
class SendLoad extends EventEmitter {
  readonly acknowledged = new Map<string, string>();
  private readonly clients: SQSClient[] = [];
  readonly done: Promise<unknown>;

  constructor(url: string, queueUrl: string, round: number) {
    super();
    const workers = Array.from({ length: SENDERS }, async (_, sender) => {
      const sqs = sqsClient(url);
      this.clients.push(sqs);
      for (let n = 0; ; n++) {
        const body = `r${round}-s${sender}-${n}`;
        if (n % 4 === 3) {
          const entries = Array.from({ length: 5 }, (_, index) => ({ Id: `e${index}`, MessageBody: `${body}-${index}` }));
          const { Successful = [] } = await sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
          for (const { Id, MessageId } of Successful) this.acknowledged.set(MessageId!, `${body}-${Id!.slice(1)}`);
        } else {
          const { MessageId } = await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
          this.acknowledged.set(MessageId!, body);
        }
        this.emit('acknowledged');
      }
    });
    // Every sender ends with an error once the shim is gone; what failed was not acknowledged.
    this.done = Promise.allSettled(workers);
  }

  until(count: number): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.acknowledged.size < count) return;
        this.off('acknowledged', check);
        resolve();
      };
      this.on('acknowledged', check);
      check();
    });
  }

  destroy(): void {
    for (const client of this.clients) client.destroy();
  }
}

/** Receives and deletes everything in a queue; MessageId → body. */
async function drain(sqs: SQSClient, queueUrl: string): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (;;) {
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 300 }));
    if (Messages.length === 0) return found;
    for (const { MessageId, Body } of Messages) found.set(MessageId!, Body!);
    const entries = Messages.map(({ ReceiptHandle }, index) => ({ Id: `d${index}`, ReceiptHandle }));
    await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
  }
}

const dir = mkdtempSync(join(tmpdir(), 'holdfast-signals-'));
const started: ChildProcess[] = [];
afterAll(() => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

it(`npm start drains on SIGTERM and on Ctrl-C under load, ${ROUNDS} rounds`, { timeout: 240_000 }, async () => {
  const dbFile = join(dir, 'shim.db');
  let previous: Map<string, string> | undefined;
  for (let round = 0; round <= ROUNDS; round++) {
    const shim = await npmStart(dbFile);
    started.push(shim.child);
    const admin = sqsClient(shim.url);
    const { QueueUrl: loadQueue } = await admin.send(new CreateQueueCommand({ QueueName: 'signals-load' }));
    const { QueueUrl: pollQueue } = await admin.send(new CreateQueueCommand({ QueueName: 'signals-polls' }));

    if (previous) {
      // Whatever the last round's shim acknowledged is here, after its stop.
      const found = await drain(admin, loadQueue!);
      for (const [messageId, body] of previous) expect(found.get(messageId), `round ${round - 1}: acknowledged ${body} lost`).toBe(body);
    }
    if (round === ROUNDS) {
      admin.destroy();
      process.kill(shim.child.pid!, 'SIGTERM');
      expect(await shim.exited).toEqual({ code: 0, signal: null });
      break;
    }

    const load = new SendLoad(shim.url, loadQueue!, round);
    await load.until(50);
    const pollClients = Array.from({ length: LONG_POLLS }, () => sqsClient(shim.url));
    const polls = pollClients.map((sqs) => sqs.send(new ReceiveMessageCommand({ QueueUrl: pollQueue, WaitTimeSeconds: 20 })));
    await load.until(load.acknowledged.size + SENDS_BEFORE_SIGNAL);

    const ctrlC = round % 2 === 1;
    if (ctrlC) process.kill(-shim.child.pid!, 'SIGINT');
    else process.kill(shim.child.pid!, 'SIGTERM');
    const exit = await shim.exited;
    const answered = await Promise.allSettled(polls);
    await load.done;
    load.destroy();
    for (const client of [admin, ...pollClients]) client.destroy();

    const how = ctrlC ? 'SIGINT to the process group' : 'SIGTERM to npm';
    expect(exit, `round ${round}, ${how}: npm's exit`).toEqual({ code: 0, signal: null });
    expect(shim.messages, `round ${round}, ${how}: the shim's log`).toContain('edge shim stopped');
    for (const poll of answered) {
      // Answered at once, empty, rather than cut off with the connection.
      expect(poll.status === 'rejected' ? String(poll.reason) : 'answered', `round ${round}, ${how}: a long poll`).toBe('answered');
      if (poll.status === 'fulfilled') expect(poll.value.Messages ?? []).toEqual([]);
    }
    previous = new Map(load.acknowledged);
    expect(previous.size).toBeGreaterThanOrEqual(SENDS_BEFORE_SIGNAL);
  }
});
