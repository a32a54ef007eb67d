import { randomBytes } from 'node:crypto';
import type { SqsContext } from './context.js';
import { SqsError, invalidParameter } from './errors.js';
import type { MessageRow } from './messages.js';
import type { Queue } from './queues.js';

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

export function encodeReceiptHandle(handle: ReceiptHandle): string {
  return `${PREFIX}.${Buffer.from(`${handle.queueId}:${handle.messageId}:${handle.nonce}`).toString('base64url')}`;
}

const invalidReceiptHandle = (text: string) => new SqsError('ReceiptHandleIsInvalid', `The input receipt handle "${text}" is not a valid receipt handle.`);

export function decodeReceiptHandle(text: string): ReceiptHandle {
  const [prefix, payload, ...rest] = text.split('.');
  if (prefix !== PREFIX || payload === undefined || rest.length > 0 || !/^[A-Za-z0-9_-]+$/.test(payload)) throw invalidReceiptHandle(text);
  const match = /^(\d{1,15}):(\d{1,15}):([A-Za-z0-9_-]{16})$/.exec(Buffer.from(payload, 'base64url').toString());
  if (!match) throw invalidReceiptHandle(text);
  return { queueId: Number(match[1]), messageId: Number(match[2]), nonce: match[3]! };
}

export type ReceiptState = { kind: 'gone' } | { kind: 'current'; message: MessageRow } | { kind: 'stale'; message: MessageRow };

/**
 * What a receipt handle given to DeleteMessage or ChangeMessageVisibility refers to now: a message
 * that is gone, the message as last received with this handle, or a message received again since
 * (or whose visibility timeout ran out) so that this handle is no longer its latest.
 */
export function resolveReceipt(context: SqsContext, queue: Queue, receiptHandle: string): ReceiptState {
  const handle = decodeReceiptHandle(receiptHandle);
  if (handle.queueId !== queue.id) throw invalidReceiptHandle(receiptHandle);
  const message = context.messages.byId(handle.messageId);
  // A purged message or one past retention is gone for every operation, even before the sweeper deletes it.
  if (!message || message.queue_id !== queue.id || context.messages.isDead(queue, message, context.now)) return { kind: 'gone' };
  return message.receipt_nonce === handle.nonce && message.visible_at > context.now ? { kind: 'current', message } : { kind: 'stale', message };
}

export const expiredReceipt = (receiptHandle: string) =>
  invalidParameter(`Value ${receiptHandle} for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired.`);
