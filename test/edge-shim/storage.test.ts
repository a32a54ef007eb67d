import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueUrlCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../edge-shim/src/sqs/database.js';
import { givenClock } from '../../edge-shim/src/sqs/engine-clock.js';
import { MessageStore, retentionCutoff } from '../../edge-shim/src/sqs/messages.js';
import { QueueRegistry } from '../../edge-shim/src/sqs/queues.js';
import { defaultAttributes } from '../../edge-shim/src/sqs/queue-attributes.js';
import { counts, createQueue, receive } from '../helpers/sqs-queues.js';
import { type TestShim, startTestShim, testEngine } from '../helpers/shim.js';

// How messages are stored: a receive rewrites a small state row, never the body; the approximate
// counts come from running totals and per-second tallies, and agree with counting the messages one
// by one at every instant; a database of the first schema version opens with its messages intact.

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-storage-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('a receive', () => {
  it('writes the message state, not the body: tens of bytes, not the message', () => {
    const dir = tempDir();
    const db = openDatabase(join(dir, 'shim.db'), 'process');
    try {
      const queues = new QueueRegistry(db, 'us-east-1', '000000000000');
      const store = new MessageStore(db, retentionCutoff(true, givenClock(Date.now)));
      const queue = queues.create('large', false, defaultAttributes(false), {}, 1_000);
      const body = 'b'.repeat(256 * 1024);
      db.transaction(() => {
        for (let i = 0; i < 10; i++) {
          store.insert(
            queue,
            {
              message_id: `m${i}`,
              body,
              body_md5: 'unchecked',
              attributes: null,
              attributes_md5: null,
              trace_header: null,
              deduplication_id: null,
              sequence_number: null,
              dead_letter_source: null,
              group_id: null,
              sent_at: 1_000,
              enqueued_at: 1_000,
              visible_at: 1_000,
            },
            1_000,
          );
        }
      })();
      db.pragma('wal_checkpoint(TRUNCATE)');
      const wal = join(dir, 'shim.db-wal');
      expect(statSync(wal).size).toBe(0);
      db.transaction(() => {
        for (const message of store.visible(queue, 2_000, 10)) store.markReceived(message, 2_000, 32_000, 'nonce-0123456789');
      })();
      // Ten 256 KiB bodies are 2.5 MiB; their receive writes a few pages of states and index entries.
      expect(statSync(wal).size).toBeLessThan(64 * 1024);
      expect(store.visible(queue, 2_000, 10)).toEqual([]);
    } finally {
      db.close();
    }
  });
});

describe('the approximate counts', () => {
  let t: TestShim | undefined;
  afterEach(() => t?.close());

  // SQLite's counts come from tallies kept beside the messages; PostgreSQL counts the messages.
  it.runIf(testEngine() === 'sqlite')('agree with counting message by message, at every step of a random run across seconds', async () => {
    let now = Date.UTC(2026, 0, 1);
    t = await startTestShim({ clock: () => now, sweepIntervalMs: 3_600_000 });
    const queueUrl = await createQueue(t.sqs, 'counted', { MessageRetentionPeriod: '60' });
    const db = new Database(join(t.dir, 'shim.db'), { readonly: true });
    // Counted one message at a time, as version 1 of the store did.
    const bruteForce = () =>
      db
        .prepare<{ now: number; cutoff: number }, { visible: number; inFlight: number; delayed: number }>(
          `SELECT coalesce(sum(s.visible_at <= @now), 0) AS visible,
                  coalesce(sum(s.visible_at > @now AND s.receive_count > 0), 0) AS inFlight,
                  coalesce(sum(s.visible_at > @now AND s.receive_count = 0), 0) AS delayed
           FROM message_states s JOIN queues q ON q.id = s.queue_id
           WHERE q.name LIKE 'counted-%' AND s.epoch = q.purged_through AND s.enqueued_at > @cutoff`,
        )
        .get({ now, cutoff: now - 60_000 })!;
    let seed = 7;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const inFlight: Message[] = [];
    try {
      for (let step = 0; step < 300; step++) {
        const choice = random();
        if (choice < 0.35) {
          await t.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: `m${step}`, DelaySeconds: random() < 0.5 ? 0 : random() < 0.9 ? Math.floor(random() * 5) : 90 }));
        } else if (choice < 0.6) {
          inFlight.push(...(await receive(t.sqs, queueUrl, { MaxNumberOfMessages: 3, VisibilityTimeout: random() < 0.9 ? Math.floor(random() * 4) : 100 })));
        } else if (choice < 0.7 && inFlight.length > 0) {
          const message = inFlight.splice(Math.floor(random() * inFlight.length), 1)[0]!;
          await t.sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle })).catch(() => {});
        } else if (choice < 0.8 && inFlight.length > 0) {
          const message = inFlight[Math.floor(random() * inFlight.length)]!;
          await t.sqs
            .send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle, VisibilityTimeout: Math.floor(random() * 3) }))
            .catch(() => {});
        } else if (choice < 0.85) {
          // The sweeper drops tallies of seconds gone by and deletes expired messages.
          await t.shim.service.sweep();
        } else {
          // Moves of less than a second, and now and then towards the retention period: messages
          // delayed or in flight for longer than it expire while invisible.
          now += random() < 0.05 ? 30_000 : Math.floor(random() * 1_500);
        }
        const expected = bruteForce();
        expect(await counts(t.sqs, queueUrl), `step ${step}`).toEqual({ visible: expected.visible, notVisible: expected.inFlight, delayed: expected.delayed });
      }
    } finally {
      db.close();
    }
  });
});

describe('a database of schema version 1', () => {
  it('opens with every message, its state and the purge cut-off kept, and serves them', async () => {
    const dir = tempDir();
    const file = join(dir, 'shim.db');
    const legacy = new Database(file);
    legacy.pragma('journal_mode = WAL');
    legacy.exec(readFileSync(new URL('./fixtures/schema-v1.sql', import.meta.url), 'utf8'));
    const attributes = JSON.stringify(defaultAttributes(false));
    // A queue purged through row 5, whose newest message (row 9) was deleted since: new rows must be above 9.
    legacy.prepare(`INSERT INTO queues (id, name, fifo, attributes, created_at, modified_at, purged_through, purged_at) VALUES (1, 'kept', 0, ?, 0, 0, 5, 1)`).run(attributes);
    const insert = legacy.prepare(
      `INSERT INTO messages (id, queue_id, epoch, message_id, body, body_md5, sent_at, enqueued_at, visible_at, receive_count)
       VALUES (@id, 1, @epoch, @messageId, @body, @md5, @now, @now, @visibleAt, @receiveCount)`,
    );
    const now = Date.now();
    const message = (id: number, epoch: number, messageId: string, body: string, visibleAt: number, receiveCount: number) =>
      insert.run({ id, epoch, messageId, body, md5: createHash('md5').update(body).digest('hex'), now, visibleAt, receiveCount });
    message(4, 0, 'purged', 'purged body', now, 0);
    message(6, 5, 'visible', 'visible body', now, 0);
    message(7, 5, 'in-flight', 'in flight body', now + 600_000, 1);
    message(8, 5, 'delayed', 'delayed body', now + 600_000, 0);
    message(9, 5, 'deleted', 'deleted body', now, 0);
    legacy.prepare('DELETE FROM messages WHERE id = 9').run();
    legacy.close();

    const migrated = openDatabase(file, 'process');
    expect(migrated.pragma('user_version', { simple: true })).toBe(2);
    expect(migrated.prepare(`SELECT seq FROM sqlite_sequence WHERE name = 'messages'`).get()).toEqual({ seq: 9 });
    migrated.close();

    const t = await startTestShim({ dbFile: file, logger: pino({ level: 'silent' }) });
    try {
      const { QueueUrl } = await t.sqs.send(new GetQueueUrlCommand({ QueueName: 'kept' }));
      expect(await counts(t.sqs, QueueUrl!)).toEqual({ visible: 1, notVisible: 1, delayed: 1 });
      const received = await t.sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }));
      expect(received.Messages!.map((message) => [message.MessageId, message.Body])).toEqual([['visible', 'visible body']]);
      await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'new' }));
      const reader = new Database(file, { readonly: true });
      const [stored] = reader.prepare<[], { id: number }>(`SELECT id FROM messages WHERE body = 'new'`).all();
      reader.close();
      expect(stored!.id).toBeGreaterThan(9);
    } finally {
      await t.close();
    }
  });
});
