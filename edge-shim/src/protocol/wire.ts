import type { IncomingHttpHeaders } from 'node:http';
import type { SqsError } from '../sqs/errors.js';

/** An HTTP request as the wire protocols see it, already read in full. */
export interface WireRequest {
  readonly method: string;
  /** Path without the query string, e.g. `/000000000000/orders.fifo`. */
  readonly path: string;
  /** The query string as sent, still percent-encoded, without its `?`; empty when there is none. */
  readonly queryString: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface WireResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export interface Call {
  readonly action: string;
  readonly input: Record<string, unknown>;
}

/**
 * One of the two ways SQS clients talk: it turns a request into an operation name and its input in
 * the JSON-protocol shape, and an operation's output or error back into what the client expects.
 */
export interface WireProtocol {
  readonly name: 'json' | 'query';
  decode(request: WireRequest): Call;
  encodeResult(action: string, output: Record<string, unknown>, requestId: string): WireResponse;
  encodeError(error: SqsError, requestId: string): WireResponse;
}
