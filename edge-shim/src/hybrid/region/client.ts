import * as sqs from '@aws-sdk/client-sqs';
import type { AwsCredentialIdentity } from '@smithy/types';
import { OPERATIONS, type Shape } from '../../protocol/operations.js';
import { agentsFor } from '../link/proxy.js';
import { SqsError } from '../../sqs/errors.js';

export interface RegionClientOptions {
  /** The region's SQS endpoint, e.g. https://sqs.eu-west-1.amazonaws.com. */
  readonly endpoint: string;
  readonly region: string;
  /** Fixed credentials (tests); otherwise the AWS SDK's default provider chain. */
  readonly credentials?: AwsCredentialIdentity;
  /** How long a connection may take to open. */
  readonly connectTimeoutMs: number;
  /** How long a live request may take, retries included; a long poll gets its wait on top. */
  readonly requestTimeoutMs: number;
  /** Attempts per live request, the first included (the SDK's retry strategy spaces them). */
  readonly maxAttempts: number;
  /** Most transfers (replay batches, sync writes) in flight at once: the transfer pool's sockets. */
  readonly maxTransfers: number;
}

/**
 * What a request to the region is. Each kind has its own connection pool, so that none starves
 * another: a clients' requests (`live`), waiting receives (`long-poll`, up to one socket each), the
 * probe, and the replay's batches (`transfer`, retried by the replayer itself, never by the SDK).
 */
export type RequestKind = 'live' | 'long-poll' | 'probe' | 'transfer';

/**
 * Why the region did not carry out a request. `unreachable`: it could not be reached (refused,
 * reset, DNS, TLS); `timeout`: no answer in time; `server`: it answered a server error; `throttled`:
 * it answered a throttling error beyond the retries; `garbled`: its answer could not be read;
 * `identity`: it refused the edge's own credentials (expired, unknown, or signed with a skewed clock).
 */
export type FailureKind = 'unreachable' | 'timeout' | 'server' | 'throttled' | 'garbled' | 'identity';

/**
 * The region did not carry out a request, and why (`kind`). `maybeDone` tells whether the request
 * may have been carried out all the same (an answer lost on its way back), which for a send means
 * it may be in the region. `answer` is what the region said, for kinds where it said something.
 */
export class RegionUnavailable extends Error {
  override readonly name = 'RegionUnavailable';
  constructor(
    message: string,
    readonly kind: FailureKind,
    readonly maybeDone: boolean,
    options?: { cause?: unknown; answer?: SqsError },
  ) {
    super(message, options);
    this.answer = options?.answer;
  }

  readonly answer: SqsError | undefined;

  /** Whether the region answered this request at all (server errors, throttling, garbled answers). */
  get answered(): boolean {
    return this.kind === 'server' || this.kind === 'throttled' || this.kind === 'garbled';
  }

  /** The error to give a client for this request, as the region answered it. */
  toClientError(): SqsError {
    return this.answer ?? new SqsError('ServiceUnavailable', `${this.message}. Retry later.`);
  }
}

// Errors the region answers that say "not now" rather than "not this": retried, then passed on.
const THROTTLING = new Set(['RequestThrottled', 'ThrottlingException', 'Throttling', 'TooManyRequestsException', 'KmsThrottled', 'RequestThrottledException']);
// Errors that say the region refuses the edge's own identity: its credentials, or its clock.
const IDENTITY = new Set([
  'ExpiredToken',
  'ExpiredTokenException',
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidSignatureException',
  'RequestExpired',
  'RequestTimeTooSkewed',
  'MissingAuthenticationToken',
  'IncompleteSignature',
  'AuthFailure',
]);
// Network errors that prove the request never reached the region.
const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
// Waiting receives answer after their wait: the region is given that much more.
const LONG_POLL_MARGIN_MS = 5_000;
// Sockets per pool: a waiting receive holds one for its wait; the probe needs one.
const POOL_SOCKETS: Record<Exclude<RequestKind, 'transfer'>, number> = { live: 64, 'long-poll': 256, probe: 2 };

type Command = new (input: never) => Parameters<sqs.SQSClient['send']>[0];
// The SDK's command classes by name: `SendMessageCommand` and so on, one per SQS action.
const COMMANDS = sqs as unknown as Record<string, Command | undefined>;

export interface CallOptions {
  readonly kind: RequestKind;
  /** Ends the request early: its client went away, or the shim stops. */
  readonly signal?: AbortSignal;
  /** How long it may take, instead of the kind's usual time. */
  readonly timeoutMs?: number;
}

/**
 * The region's SQS, called by action name with inputs and outputs in the AWS JSON protocol's shape
 * (what the shim's actions take), through @aws-sdk/client-sqs: it signs with the SDK's credential
 * chain, retries live requests with its standard strategy, and turns binary values between base64
 * text and bytes. What the region answers as the client's fault comes back as an SqsError to pass
 * on as it is; anything else is a RegionUnavailable saying why.
 */
export class RegionClient {
  readonly endpoint: string;
  readonly region: string;
  private readonly clients: Record<RequestKind, sqs.SQSClient>;

  constructor(private readonly options: RegionClientOptions) {
    this.endpoint = options.endpoint.replace(/\/+$/, '');
    this.region = options.region;
    const client = (maxSockets: number, maxAttempts: number) => {
      return new sqs.SQSClient({
        endpoint: this.endpoint,
        region: options.region,
        ...(options.credentials ? { credentials: options.credentials } : {}),
        maxAttempts,
        requestHandler: { connectionTimeout: options.connectTimeoutMs, ...agentsFor(this.endpoint, { keepAlive: true, maxSockets }) },
      });
    };
    this.clients = {
      live: client(POOL_SOCKETS.live, options.maxAttempts),
      'long-poll': client(POOL_SOCKETS['long-poll'], options.maxAttempts),
      // A probe is one attempt: its outcome is the region's state now.
      probe: client(POOL_SOCKETS.probe, 1),
      // A batch is sent again by the replayer, once its earlier attempt is surely over.
      transfer: client(options.maxTransfers, 1),
    };
  }

  /** Carries out one SQS action in the region. */
  async call(action: string, input: Record<string, unknown>, options: CallOptions): Promise<Record<string, unknown>> {
    const operation = OPERATIONS[action];
    const Command = COMMANDS[`${action}Command`];
    if (!operation || !Command) throw new SqsError('InvalidAction', `The action ${action} is not valid for this endpoint.`);
    const wait = action === 'ReceiveMessage' && typeof input.WaitTimeSeconds === 'number' ? input.WaitTimeSeconds * 1000 + LONG_POLL_MARGIN_MS : 0;
    // Whole milliseconds: AbortSignal.timeout refuses a fraction, and derived timeouts (sizes over rates) have them.
    const deadline = AbortSignal.timeout(Math.ceil(options.timeoutMs ?? this.options.requestTimeoutMs + wait));
    const abortSignal = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline;
    let output: Record<string, unknown>;
    try {
      output = (await this.clients[options.kind].send(new Command(convert(operation.input, input, toBytes) as never), { abortSignal })) as unknown as Record<string, unknown>;
    } catch (error) {
      if (options.signal?.aborted) throw error;
      throw classify(error, deadline.aborted);
    }
    const { $metadata: _metadata, ...answer } = output;
    return operation.output ? (convert(operation.output, answer, toBase64) as Record<string, unknown>) : {};
  }

  destroy(): void {
    for (const client of Object.values(this.clients)) client.destroy();
  }
}

/** What a failed call means: the client's fault (passed on), or why the region did not carry it out. */
function classify(error: unknown, timedOut: boolean): Error {
  if (timedOut) return new RegionUnavailable('the region did not answer in time', 'timeout', true, { cause: error });
  const failure = error as { name?: string; message?: string; code?: string; Code?: string; $fault?: string; $metadata?: { httpStatusCode?: number }; $response?: unknown };
  const status = failure.$metadata?.httpStatusCode;
  if (status !== undefined && failure.name !== undefined) {
    const name = failure.name;
    const answer = SqsError.relayed(name, failure.message ?? name, { queryCode: failure.Code ?? name, status, fault: status >= 500 ? 'Receiver' : 'Sender' });
    if (IDENTITY.has(name)) return new RegionUnavailable(`the region refuses the edge's credentials: ${name} (${failure.message ?? ''})`, 'identity', false, { cause: error, answer });
    if (THROTTLING.has(name) || status === 429) return new RegionUnavailable(`the region throttles: ${name}`, 'throttled', false, { cause: error, answer });
    if (status >= 500) return new RegionUnavailable(`the region failed: ${name} (${status})`, 'server', true, { cause: error, answer: failure.$fault === undefined ? undefined : answer });
    // An answer the SDK could not read, or one without an error the SDK knows (a proxy's page).
    if (name === 'SyntaxError' || name === 'Unknown' || failure.$fault === undefined) {
      return new RegionUnavailable(`the region's answer could not be read (${status})`, 'garbled', true, { cause: error });
    }
    return answer;
  }
  const code = failure.code ?? failure.name ?? 'unknown';
  return new RegionUnavailable(`the region cannot be reached: ${code}${failure.message ? ` (${failure.message})` : ''}`, 'unreachable', !NEVER_SENT.has(code), { cause: error });
}

const toBytes = (text: unknown) => (typeof text === 'string' ? Buffer.from(text, 'base64') : text);
const toBase64 = (bytes: unknown) => (bytes instanceof Uint8Array ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64') : bytes);

/** A copy of `value` with every blob of its shape passed through `blob`: base64 text to bytes for the SDK, and back. */
function convert(shape: Shape, value: unknown, blob: (value: unknown) => unknown): unknown {
  if (value === undefined || value === null) return value;
  switch (shape.kind) {
    case 'blob':
      return blob(value);
    case 'list':
      return Array.isArray(value) ? value.map((item) => convert(shape.member, item, blob)) : value;
    case 'map':
      return typeof value === 'object' ? Object.fromEntries(Object.entries(value).map(([key, item]) => [key, convert(shape.value, item, blob)])) : value;
    case 'structure': {
      if (typeof value !== 'object') return value;
      const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
      for (const member of shape.members) if (Object.hasOwn(copy, member.name)) copy[member.name] = convert(member.shape, copy[member.name], blob);
      return copy;
    }
    default:
      return value;
  }
}
