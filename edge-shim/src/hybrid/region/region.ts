import { BrokenCircuitError, type CircuitBreakerPolicy, CircuitState } from 'cockatiel';
import type { Logger } from 'pino';
import type { CallOptions } from '../../backend.js';
import type { MetricsRecorder } from '../../observability/metrics.js';
import { SqsError } from '../../sqs/errors.js';
import { parseQueueUrl } from '../../sqs/queues.js';
import { type BreakerOptions, regionBreaker } from './breaker.js';
import { type RegionClient, RegionUnavailable } from './client.js';
import type { QueueMirror } from './mirror.js';

type Input = Record<string, unknown>;
type Output = Record<string, unknown>;

export interface RegionOptions {
  readonly client: RegionClient;
  readonly mirror: QueueMirror;
  readonly breaker: BreakerOptions;
  /** How long a probe may take. */
  readonly probeTimeoutMs: number;
  readonly metrics: MetricsRecorder;
  readonly logger: Logger;
  readonly clock?: () => number;
}

/**
 * The region as the edge sees it, in one face: its SQS client, the circuit breaker every request
 * to it runs through (whose opening takes the edge offline), and the translation between the
 * edge's queue URLs and ARNs and the region's, with the mirror kept in step with what the region
 * answers. Whatever fails to reach the region is a RegionUnavailable; the region's answers of the
 * client's fault pass through as SqsErrors.
 */
export class Region {
  readonly endpoint: string;
  readonly name: string;
  lastSuccessAt: number | undefined;
  lastFailureAt: number | undefined;
  lastFailure: string | undefined;
  private readonly client: RegionClient;
  private readonly mirror: QueueMirror;
  private readonly breaker: CircuitBreakerPolicy;
  private readonly clock: () => number;

  constructor(private readonly options: RegionOptions) {
    this.client = options.client;
    this.mirror = options.mirror;
    this.endpoint = options.client.endpoint;
    this.name = options.client.region;
    this.clock = options.clock ?? Date.now;
    this.breaker = regionBreaker(options.breaker);
  }

  /** Calls `listener` with the cause each time the breaker opens. */
  onBreak(listener: (cause: string) => void): void {
    this.breaker.onBreak((reason) => listener('error' in reason ? (reason.error as Error).message : 'the breaker was opened'));
  }

  get breakerState(): 'closed' | 'open' | 'half-open' | 'isolated' {
    return (['closed', 'open', 'half-open', 'isolated'] as const)[this.breaker.state]!;
  }

  get breakerClosed(): boolean {
    return this.breaker.state === CircuitState.Closed;
  }

  /**
   * Runs a request to the region through the breaker: its failures (RegionUnavailable) count
   * towards opening it; while it is open, the request fails at once with RegionUnavailable.
   */
  async execute<T>(work: () => Promise<T>): Promise<T> {
    try {
      const result = await this.breaker.execute(work);
      this.lastSuccessAt = this.clock();
      return result;
    } catch (error) {
      if (error instanceof BrokenCircuitError) throw new RegionUnavailable('the region is cut off (circuit open)', false, { cause: error });
      if (error instanceof RegionUnavailable) {
        this.lastFailureAt = this.clock();
        this.lastFailure = error.message;
      }
      throw error;
    }
  }

  /** The breaker's test of the region: a cheap request through it. */
  probe(): Promise<void> {
    return this.execute(() => this.ask(this.options.probeTimeoutMs));
  }

  /** Whether the region answers at all within `timeoutMs`, outside the breaker (at start). */
  answers(timeoutMs: number): Promise<boolean> {
    return this.ask(timeoutMs).then(
      () => true,
      () => false,
    );
  }

  /**
   * Carries out an operation in the region: the edge's queue URLs and ARNs in the request become
   * the region's, the region's in the answer become the edge's, and what the operation changes is
   * mirrored at the edge.
   */
  async carryOut(action: string, input: Input, options: CallOptions): Promise<Output> {
    const request: Input = { ...input };
    const name = typeof input.QueueUrl === 'string' ? queueNameOf(input) : undefined;
    if (name !== undefined) request.QueueUrl = await this.resolve(name);
    if (action === 'CreateQueue' || action === 'SetQueueAttributes') {
      if (input.Attributes) request.Attributes = this.mirror.toUpstreamAttributes(input.Attributes as Record<string, string>);
    }
    for (const key of ['SourceArn', 'DestinationArn'] as const) {
      if (typeof input[key] === 'string') request[key] = this.mirror.toUpstreamArn(input[key]);
    }
    this.options.metrics.requestCarriedOut(action, 'upstream');
    const output = await this.execute(() => this.client.call(action, request, options.signal));
    const answer = this.toEdge(action, output, options.baseUrl);
    if (name !== undefined) await this.keepMirror(action, name, output);
    return answer;
  }

  /** The edge's URL of a queue, once the region has it (a queue created at the edge while offline is created there now). */
  async queueUrl(name: string, baseUrl: string): Promise<string> {
    this.options.metrics.requestCarriedOut('GetQueueUrl', 'upstream');
    await this.resolve(name);
    if (this.mirror.stale(name)) this.mirrorInBackground(name);
    return this.mirror.edgeUrl(name, baseUrl);
  }

  /**
   * The region's URL of a queue, asking the region for it (and creating a pending or declared queue
   * there) when the edge does not have it yet. Throws the region's QueueDoesNotExist for a queue
   * it has never had.
   */
  async resolve(name: string): Promise<string> {
    const known = this.mirror.upstreamUrl(name);
    if (known) return known;
    let url: string;
    try {
      url = (await this.execute(() => this.client.call('GetQueueUrl', { QueueName: name }))).QueueUrl as string;
    } catch (error) {
      const Attributes = this.mirror.createWith(name);
      if (!(Attributes && error instanceof SqsError && error.code === 'QueueDoesNotExist')) throw error;
      url = (await this.execute(() => this.client.call('CreateQueue', { QueueName: name, Attributes }))).QueueUrl as string;
      this.options.logger.info({ queue: name }, 'created in the region a queue the edge created or was told of');
    }
    this.mirror.link(name, url);
    return this.mirror.upstreamUrl(name)!;
  }

  /**
   * Mirrors a queue of the region into the local store: its attributes as the region answered them
   * (in the region's terms), or fetched now; its dead-letter queue first, so that its redrive
   * policy can name it.
   */
  async refreshMirror(name: string, regionAttributes?: Record<string, string>, visiting = new Set<string>()): Promise<void> {
    visiting.add(name);
    const url = await this.resolve(name);
    const attributes = regionAttributes?.QueueArn
      ? regionAttributes
      : ((await this.execute(() => this.client.call('GetQueueAttributes', { QueueUrl: url, AttributeNames: ['All'] }))).Attributes as Record<string, string>);
    const deadLetter = this.mirror.deadLetterOf(attributes);
    if (deadLetter && !visiting.has(deadLetter) && !this.mirror.hasLocally(deadLetter)) await this.refreshMirror(deadLetter, undefined, visiting);
    await this.mirror.apply(name, attributes);
  }

  /** Hands messages to a queue of the region (the replay): SendMessageBatch to the region's URL. */
  async sendBatch(url: string, entries: readonly Input[], signal: AbortSignal): Promise<Output> {
    return this.execute(() => this.client.call('SendMessageBatch', { QueueUrl: url, Entries: entries }, signal));
  }

  destroy(): void {
    this.client.destroy();
  }

  /** A cheap call any principal may make; a refusal (access denied) proves the region answers too. */
  private async ask(timeoutMs: number): Promise<void> {
    await this.client.call('ListQueues', { MaxResults: 1 }, undefined, timeoutMs).catch((error: unknown) => {
      if (!(error instanceof SqsError)) throw error;
    });
  }

  /** Keeps the mirror in step with what an operation did in the region. */
  private async keepMirror(action: string, name: string, output: Output): Promise<void> {
    const attributes = output.Attributes as Record<string, string> | undefined;
    if (action === 'DeleteQueue') {
      await this.mirror.deleted(name);
    } else if (action === 'PurgeQueue') {
      await this.mirror.purged(name);
    } else if (action === 'SetQueueAttributes' || (action === 'GetQueueAttributes' && attributes?.QueueArn)) {
      await this.refreshMirror(name, action === 'GetQueueAttributes' ? attributes : undefined);
    } else if (this.mirror.stale(name)) {
      // A queue met for the first time (or long ago): mirrored in the background, the answer does not wait.
      this.mirrorInBackground(name);
    }
  }

  private mirrorInBackground(name: string): void {
    this.refreshMirror(name).catch((error: unknown) => this.options.logger.warn({ queue: name, err: error }, 'cannot mirror a queue of the region yet'));
  }

  /** The region's answer in the edge's terms: queue URLs and ARNs of the edge. */
  private toEdge(action: string, output: Output, baseUrl: string): Output {
    const answer: Output = { ...output };
    const edgeUrl = (url: string) => {
      const parsed = parseQueueUrl(url);
      if (!parsed) return url;
      this.mirror.link(parsed.name, url);
      return this.mirror.edgeUrl(parsed.name, baseUrl);
    };
    if (typeof answer.QueueUrl === 'string') answer.QueueUrl = edgeUrl(answer.QueueUrl);
    for (const key of ['QueueUrls', 'queueUrls']) if (Array.isArray(answer[key])) answer[key] = (answer[key] as string[]).map(edgeUrl);
    if (answer.Attributes && action === 'GetQueueAttributes') answer.Attributes = this.mirror.toLocalAttributes(answer.Attributes as Record<string, string>);
    if (Array.isArray(answer.Messages)) {
      answer.Messages = (answer.Messages as Array<{ Attributes?: Record<string, string> }>).map((message) => {
        const source = message.Attributes?.DeadLetterQueueSourceArn;
        return source ? { ...message, Attributes: { ...message.Attributes, DeadLetterQueueSourceArn: this.mirror.toLocalArn(source) } } : message;
      });
    }
    if (Array.isArray(answer.Results)) {
      answer.Results = (answer.Results as Array<Record<string, unknown>>).map((task) => ({
        ...task,
        ...(typeof task.SourceArn === 'string' ? { SourceArn: this.mirror.toLocalArn(task.SourceArn) } : {}),
        ...(typeof task.DestinationArn === 'string' ? { DestinationArn: this.mirror.toLocalArn(task.DestinationArn) } : {}),
      }));
    }
    return answer;
  }
}

/** The queue a request names by its QueueUrl, as the edge's queues are named. */
export function queueNameOf(input: Input): string {
  const parsed = typeof input.QueueUrl === 'string' ? parseQueueUrl(input.QueueUrl) : undefined;
  if (!parsed) throw new SqsError(input.QueueUrl === undefined ? 'MissingParameter' : 'QueueDoesNotExist', input.QueueUrl === undefined ? 'The request must contain the parameter QueueUrl.' : 'The specified queue does not exist.');
  return parsed.name;
}
