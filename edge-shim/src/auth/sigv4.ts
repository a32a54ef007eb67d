import type { WireRequest } from '../protocol/wire.js';

export interface Credential {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

export interface VerifyOptions {
  readonly credentials: readonly Credential[];
  readonly region: string;
  readonly now: number;
}

/** Verifies a request's SigV4 signature; throws the SQS error for a bad, missing or stale one. */
export function verifySignature(_request: WireRequest, _options: VerifyOptions): void {
  throw new Error('not yet implemented');
}
