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

/** Where a request was carried out: by the region (`upstream`) or by the edge's own store (`local`). */
export type RequestPath = 'upstream' | 'local';

export interface CallOptions {
  /** Scheme and authority the client used, for the queue URLs in responses. */
  readonly baseUrl: string;
  /** Ends a long poll early when the client has gone. */
  readonly signal?: AbortSignal;
  /** Who asks: the access key id that signed the request, or undefined when signatures are not checked (the loopback client). */
  readonly principal?: string;
  /**
   * Told each time the request is carried out somewhere, for the metrics: a send the region did not
   * take is carried out again at the edge, a batch of receipt handles of both in both.
   */
  readonly carriedOut?: (path: RequestPath) => void;
}

export interface Health {
  readonly status: 'ok' | 'unavailable';
  /** Why sends are refused, when they are. */
  readonly reason?: string;
  readonly [detail: string]: unknown;
}
