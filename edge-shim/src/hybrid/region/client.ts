import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import * as sqs from '@aws-sdk/client-sqs';
import type { AwsCredentialIdentity } from '@smithy/types';
import { OPERATIONS, type Shape } from '../../protocol/operations.js';
import { SqsError } from '../../sqs/errors.js';

export interface RegionClientOptions {
  /** The region's SQS endpoint, e.g. https://sqs.eu-west-1.amazonaws.com. */
  readonly endpoint: string;
  readonly region: string;
  /** Fixed credentials (tests); otherwise the AWS SDK's default provider chain. */
  readonly credentials?: AwsCredentialIdentity;
  /** How long a connection may take to open. */
  readonly connectTimeoutMs: number;
  /** How long a request may take, retries included; a long poll gets its wait on top. */
  readonly requestTimeoutMs: number;
  /** Attempts per request, the first included (the SDK's retry strategy spaces them). */
  readonly maxAttempts: number;
}

/**
 * The region could not carry out a request: refused, reset, timed out, a server error, or
 * throttled beyond the retries. `maybeDone` tells whether the request may have been carried out
 * all the same (an answer lost on its way back), which for a send means it may be in the region.
 */
export class RegionUnavailable extends Error {
  override readonly name = 'RegionUnavailable';
  constructor(
    message: string,
    readonly maybeDone: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

// Errors the region answers that say "not now" rather than "not this": retried, then counted as unavailability.
const THROTTLING = new Set(['RequestThrottled', 'ThrottlingException', 'Throttling', 'TooManyRequestsException', 'KmsThrottled', 'RequestThrottledException']);
// Network errors that prove the request never reached the region.
const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
// Waiting receives answer after their wait: the region is given that much more.
const LONG_POLL_MARGIN_MS = 5_000;

type Command = new (input: never) => Parameters<sqs.SQSClient['send']>[0];
// The SDK's command classes by name: `SendMessageCommand` and so on, one per SQS action.
const COMMANDS = sqs as unknown as Record<string, Command | undefined>;

/**
 * The region's SQS, called by action name with inputs and outputs in the AWS JSON protocol's shape
 * (what the shim's actions take), through @aws-sdk/client-sqs: it signs with the SDK's credential
 * chain, retries with its standard strategy, and turns binary values between base64 text and bytes.
 * What the region answers as the client's fault comes back as an SqsError to pass on as it is;
 * anything else is a RegionUnavailable.
 */
export class RegionClient {
  readonly endpoint: string;
  readonly region: string;
  private readonly client: sqs.SQSClient;

  constructor(private readonly options: RegionClientOptions) {
    this.endpoint = options.endpoint.replace(/\/+$/, '');
    this.region = options.region;
    const agent = { keepAlive: true, maxSockets: 256 };
    this.client = new sqs.SQSClient({
      endpoint: this.endpoint,
      region: options.region,
      ...(options.credentials ? { credentials: options.credentials } : {}),
      maxAttempts: options.maxAttempts,
      requestHandler: { connectionTimeout: options.connectTimeoutMs, httpAgent: new HttpAgent(agent), httpsAgent: new HttpsAgent(agent) },
    });
  }

  /**
   * Carries out one SQS action in the region; `signal` ends it early (its client went away), and
   * `timeoutMs` replaces the usual time allowed.
   */
  async call(action: string, input: Record<string, unknown>, signal?: AbortSignal, timeoutMs?: number): Promise<Record<string, unknown>> {
    const operation = OPERATIONS[action];
    const Command = COMMANDS[`${action}Command`];
    if (!operation || !Command) throw new SqsError('InvalidAction', `The action ${action} is not valid for this endpoint.`);
    const wait = action === 'ReceiveMessage' && typeof input.WaitTimeSeconds === 'number' ? input.WaitTimeSeconds * 1000 + LONG_POLL_MARGIN_MS : 0;
    const deadline = AbortSignal.timeout(timeoutMs ?? this.options.requestTimeoutMs + wait);
    const abortSignal = signal ? AbortSignal.any([signal, deadline]) : deadline;
    let output: Record<string, unknown>;
    try {
      output = (await this.client.send(new Command(convert(operation.input, input, toBytes) as never), { abortSignal })) as unknown as Record<string, unknown>;
    } catch (error) {
      if (signal?.aborted) throw error;
      throw classify(error, deadline.aborted);
    }
    const { $metadata: _metadata, ...answer } = output;
    return operation.output ? (convert(operation.output, answer, toBase64) as Record<string, unknown>) : {};
  }

  destroy(): void {
    this.client.destroy();
  }
}

/** What a failed call means: the client's fault (passed on), or the region unavailable. */
function classify(error: unknown, timedOut: boolean): Error {
  if (timedOut) return new RegionUnavailable('the region did not answer in time', true, { cause: error });
  const failure = error as { name?: string; message?: string; code?: string; Code?: string; $fault?: string; $metadata?: { httpStatusCode?: number } };
  const status = failure.$metadata?.httpStatusCode;
  if (status !== undefined && failure.$fault !== undefined && failure.name !== undefined) {
    if (THROTTLING.has(failure.name) || status === 429) return new RegionUnavailable(`the region throttles: ${failure.name}`, false, { cause: error });
    if (failure.$fault === 'server' || status >= 500) return new RegionUnavailable(`the region failed: ${failure.name} (${status})`, true, { cause: error });
    return SqsError.relayed(failure.name, failure.message ?? failure.name, { queryCode: failure.Code ?? failure.name, status, fault: 'Sender' });
  }
  const code = failure.code ?? failure.name ?? 'unknown';
  return new RegionUnavailable(`the region cannot be reached: ${code}${failure.message ? ` (${failure.message})` : ''}`, !NEVER_SENT.has(code), { cause: error });
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
