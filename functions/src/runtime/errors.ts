import { BrokenCircuitError, TaskCancelledError } from 'cockatiel';

/**
 * Errors are either transient (worth retrying: throttling, timeouts, 5xx, broken connections) or
 * permanent (validation, authorization, not found: retrying gives the same answer).
 */
export class PermanentError extends Error {
  override readonly name: string = 'PermanentError';
}

export class TransientError extends Error {
  override readonly name: string = 'TransientError';
}

/** A non-2xx answer from a downstream HTTP service. */
export class HttpStatusError extends Error {
  override readonly name = 'HttpStatusError';
  constructor(
    readonly service: string,
    readonly status: number,
    readonly body: string,
  ) {
    super(`${service} answered HTTP ${status}${body ? `: ${body.slice(0, 200)}` : ''}`);
  }
}

const TRANSIENT_HTTP_STATUS = new Set([408, 425, 429]);

const TRANSIENT_NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

const TRANSIENT_AWS_ERRORS = new Set([
  'ThrottlingException',
  'Throttling',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'InternalServerError',
  'ServiceUnavailable',
  'TransactionInProgressException',
  'RequestTimeout',
  'TimeoutError',
]);

/**
 * PostgreSQL's SQLSTATEs worth retrying: a lost or refused connection (class 08), a transaction that
 * lost to another (serialization failure, deadlock), too many connections, a lock not available, a
 * server shutting down or starting up, and a read-only standby (met during a failover).
 */
const TRANSIENT_SQLSTATE = /^(08...|40001|40P01|53300|55P03|57P0[123]|25006)$/;

/** Whether the PostgreSQL server failed the work for a passing reason (node-postgres' DatabaseError: a SQLSTATE and a severity). */
function isTransientDatabaseError(error: Error): boolean {
  const { code, severity } = error as { code?: unknown; severity?: unknown };
  return typeof severity === 'string' && typeof code === 'string' && TRANSIENT_SQLSTATE.test(code);
}

function networkCode(error: unknown): string | undefined {
  for (let current = error, depth = 0; current && typeof current === 'object' && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && TRANSIENT_NETWORK_CODES.has(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Whether retrying the failed operation may succeed. */
export function isTransient(error: unknown): boolean {
  if (error instanceof TransientError || error instanceof TaskCancelledError) return true;
  if (error instanceof PermanentError || error instanceof BrokenCircuitError) return false;
  if (error instanceof HttpStatusError) return error.status >= 500 || TRANSIENT_HTTP_STATUS.has(error.status);
  if (networkCode(error) !== undefined) return true;
  if (error instanceof Error) {
    const aws = error as Error & { $retryable?: unknown; $metadata?: { httpStatusCode?: number } };
    if (aws.$retryable) return true;
    if (TRANSIENT_AWS_ERRORS.has(aws.name) || isTransientDatabaseError(error)) return true;
    const status = aws.$metadata?.httpStatusCode;
    if (status !== undefined && status >= 500) return true;
  }
  return false;
}

/**
 * Whether the operation failed for good because of what was asked (validation, authorization, not
 * found). Errors that are neither transient nor permanent (bugs, unknown failures) are neither
 * retried in place nor compensated: the message goes back to the queue and, in the end, to the DLQ.
 */
export function isPermanent(error: unknown): boolean {
  if (error instanceof PermanentError) return true;
  if (isTransient(error)) return false;
  if (error instanceof HttpStatusError) return error.status >= 400 && error.status < 500;
  return error instanceof Error && (error as { $fault?: unknown }).$fault === 'client';
}
