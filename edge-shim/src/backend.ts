/**
 * What the HTTP front needs from whatever carries out SQS operations: the local store
 * (`SqsService`), or the hybrid edge in front of a region. Inputs and outputs are in the shape of
 * the AWS JSON protocol; errors are `SqsError`s.
 */
export interface SqsBackend {
  call(action: string, input: Record<string, unknown>, options: CallOptions): Promise<Record<string, unknown>>;
  /** Whether the backend can take messages now, and why not; `GET /health`. */
  health(): Health;
}

export interface CallOptions {
  /** Scheme and authority the client used, for the queue URLs in responses. */
  readonly baseUrl: string;
  /** Ends a long poll early when the client has gone. */
  readonly signal?: AbortSignal;
  /** Who asks: the access key id that signed the request, or undefined when signatures are not checked (the loopback client). */
  readonly principal?: string;
}

export interface Health {
  readonly status: 'ok' | 'unavailable';
  /** Why sends are refused, when they are. */
  readonly reason?: string;
  readonly [detail: string]: unknown;
}
