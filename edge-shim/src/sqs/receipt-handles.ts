import { type KeyObject, createHmac, createSecretKey, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from './database.js';
import { SqsError, invalidParameter } from './errors.js';
import type { MessagePort } from './storage/ports.js';
import { type RetentionCutoff, isDead } from './messages.js';
import { type Step, call } from './storage/step.js';
import type { MessageRow, Queue } from './storage/records.js';

/**
 * A receipt handle names one receive of one message: the queue, the message row and a nonce that
 * changes at every receive, so a handle from an earlier receive can be told from the current one.
 */
export interface ReceiptHandle {
  readonly queueId: number;
  readonly messageId: number;
  readonly nonce: string;
}

const PREFIX = 'hf1';
// HMAC-SHA256 cut to 16 bytes: forging one takes 2^128 tries, and a handle stays short.
const MAC_BYTES = 16;
const MAC_TEXT = /^[A-Za-z0-9_-]{22}$/;
export const KEY_BYTES = 32;

// The key that signs receipt handles: drawn once per database, kept in it (so that handles outlive
// a restart), and read by nothing but ReceiptHandles.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS receipt_key (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  secret BLOB NOT NULL
) STRICT;
`;

// Random bytes are drawn 12 KiB at a time: one call to the CSPRNG per thousand receives, not per message.
const NONCE_BYTES = 12;
let noncePool = Buffer.alloc(0);
let nonceOffset = 0;

export function newNonce(): string {
  if (nonceOffset + NONCE_BYTES > noncePool.length) {
    noncePool = randomBytes(NONCE_BYTES * 1024);
    nonceOffset = 0;
  }
  nonceOffset += NONCE_BYTES;
  return noncePool.toString('base64url', nonceOffset - NONCE_BYTES, nonceOffset);
}

/** Whether a receipt handle is of this shim's making (one from a region's SQS is not). */
export function isShimReceiptHandle(text: unknown): boolean {
  return typeof text === 'string' && text.startsWith(`${PREFIX}.`);
}

const invalidReceiptHandle = (text: string) => new SqsError('ReceiptHandleIsInvalid', `The input receipt handle "${text}" is not a valid receipt handle.`);

/**
 * Receipt handles that only this store can make: `hf1.<queue:row:nonce>.<MAC>`, the MAC an
 * HMAC-SHA256 of the rest under the database's key. A handle made up or altered by anyone without
 * the key is refused as malformed, before it can name any message.
 */
export class ReceiptHandles {
  private constructor(private readonly key: KeyObject) {}

  /** The handles of a database: its key, drawn and stored the first time. */
  static of(db: Db): ReceiptHandles {
    db.exec(SCHEMA);
    db.prepare('INSERT OR IGNORE INTO receipt_key (id, secret) VALUES (1, ?)').run(randomBytes(KEY_BYTES));
    return ReceiptHandles.withKey(db.prepare<[], Buffer>('SELECT secret FROM receipt_key WHERE id = 1').pluck().get()!);
  }

  /** The handles under a key read from where it is kept; the buffer is wiped once the key is made. */
  static withKey(secret: Buffer): ReceiptHandles {
    const key = createSecretKey(secret);
    secret.fill(0);
    return new ReceiptHandles(key);
  }

  encode(handle: ReceiptHandle): string {
    const payload = Buffer.from(`${handle.queueId}:${handle.messageId}:${handle.nonce}`).toString('base64url');
    return `${PREFIX}.${payload}.${this.mac(payload)}`;
  }

  /** The receive a handle names; ReceiptHandleIsInvalid for anything this store did not make. */
  decode(text: string): ReceiptHandle {
    const [prefix, payload, mac, ...rest] = text.split('.');
    if (prefix !== PREFIX || payload === undefined || mac === undefined || rest.length > 0 || !MAC_TEXT.test(mac)) throw invalidReceiptHandle(text);
    // Compared as text, so that no other spelling of the same bytes passes.
    if (!timingSafeEqual(Buffer.from(mac), Buffer.from(this.mac(payload)))) throw invalidReceiptHandle(text);
    const match = /^(\d{1,15}):(\d{1,15}):([A-Za-z0-9_-]{16})$/.exec(Buffer.from(payload, 'base64url').toString());
    if (!match) throw invalidReceiptHandle(text);
    return { queueId: Number(match[1]), messageId: Number(match[2]), nonce: match[3]! };
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest().toString('base64url', 0, MAC_BYTES);
  }
}


export type ReceiptState =
  | { kind: 'gone' }
  | { kind: 'current'; message: MessageRow }
  | { kind: 'stale'; message: MessageRow }
  | { kind: 'unknown' };

/**
 * What a receipt handle given to DeleteMessage or ChangeMessageVisibility refers to now: a message
 * that is gone, the message as last received with this handle, a message received again since (or
 * whose visibility timeout ran out) so that this handle is no longer its latest, or a message the
 * store holds as never received, so that no receive it knows of gave this handle out (a store
 * restored from before that receive, or a receive lost with the power before its WAL was synced).
 */
/** What resolving a receipt needs of an operation's context (an SqsContext). */
export interface ReceiptLookup {
  readonly receipts: ReceiptHandles;
  readonly messages: MessagePort;
  readonly now: number;
  readonly retentionCutoff: RetentionCutoff;
}

export function* resolveReceipt(context: ReceiptLookup, queue: Queue, receiptHandle: string): Step<ReceiptState> {
  const handle = context.receipts.decode(receiptHandle);
  if (handle.queueId !== queue.id) throw invalidReceiptHandle(receiptHandle);
  const message = yield* call(context.messages.byId(handle.messageId));
  // A purged message or one past retention is gone for every operation, even before the sweeper deletes it.
  if (!message || message.queue_id !== queue.id || isDead(context, queue, message)) return { kind: 'gone' };
  if (message.receive_count === 0) return { kind: 'unknown' };
  return message.receipt_nonce === handle.nonce && message.visible_at > context.now ? { kind: 'current', message } : { kind: 'stale', message };
}

export const expiredReceipt = (receiptHandle: string) =>
  invalidParameter(`Value ${receiptHandle} for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired.`);
