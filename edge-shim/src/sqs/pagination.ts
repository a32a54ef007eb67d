import { invalidParameter } from './errors.js';

// Without MaxResults, the list operations return at most 1,000 items and no token.
export const UNPAGED_LIMIT = 1000;

/** Opaque NextToken values: the last key of the page, bound to the operation that issued it. */
export function encodePageToken(lastKey: string, operation: string): string {
  return Buffer.from(JSON.stringify([operation, lastKey])).toString('base64url');
}

export function decodePageToken(token: string, operation: string): string {
  try {
    const [issuedBy, lastKey] = JSON.parse(Buffer.from(token, 'base64url').toString()) as unknown[];
    if (issuedBy === operation && typeof lastKey === 'string') return lastKey;
  } catch {
    // fall through to the error below
  }
  throw invalidParameter('Invalid NextToken value.');
}
