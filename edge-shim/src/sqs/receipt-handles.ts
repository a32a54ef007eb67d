import { randomBytes } from 'node:crypto';
import { SqsError } from './errors.js';

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

export function encodeReceiptHandle(handle: ReceiptHandle): string {
  return `${PREFIX}.${Buffer.from(`${handle.queueId}:${handle.messageId}:${handle.nonce}`).toString('base64url')}`;
}

export function decodeReceiptHandle(text: string): ReceiptHandle {
  const invalid = () => new SqsError('ReceiptHandleIsInvalid', `The input receipt handle "${text}" is not a valid receipt handle.`);
  const [prefix, payload, ...rest] = text.split('.');
  if (prefix !== PREFIX || payload === undefined || rest.length > 0 || !/^[A-Za-z0-9_-]+$/.test(payload)) throw invalid();
  const match = /^(\d{1,15}):(\d{1,15}):([A-Za-z0-9_-]{16})$/.exec(Buffer.from(payload, 'base64url').toString());
  if (!match) throw invalid();
  return { queueId: Number(match[1]), messageId: Number(match[2]), nonce: match[3]! };
}
