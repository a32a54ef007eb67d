import { setTimeout as sleep } from 'node:timers/promises';
import { BrokenCircuitError, type CircuitBreakerPolicy, CircuitState } from 'cockatiel';
import type { Logger } from 'pino';
import type { CallOptions } from '../../backend.js';
import { SqsError } from '../../sqs/errors.js';
import { payloadSize } from '../../sqs/message-attributes.js';
import { parseQueueUrl, queueReference } from '../../sqs/queues.js';
import type { LinkEstimates } from '../link/estimates.js';
import { type BreakerOptions, OutageSignal, regionBreaker } from './breaker.js';
import { BrownoutDetector } from './brownout.js';
import { type RegionClient, RegionUnavailable, type RequestKind } from './client.js';
import type { QueueMirror } from './mirror.js';

type Input = Record<string, unknown>;
type Output = Record<string, unknown>;

export interface RegionOptions {
  readonly client: RegionClient;
  readonly mirror: QueueMirror;
  readonly breaker: BreakerOptions;
  /** How long a probe may take. */
  readonly probeTimeoutMs: number;
  /** How long a small live request may take; a large one gets what its bytes need on the link on top. */
  readonly requestTimeoutMs: number;
  /** The path to the region, learnt from the probe, live requests and transfers. */
  readonly link: LinkEstimates;
  readonly logger: Logger;
  readonly clock?: () => number;
}

/** The region refuses the edge's own credentials (or its clock): the edge cannot act there until an operator acts. */
export interface IdentityProblem {
  readonly code: string;
  readonly message: string;
  readonly since: number;
}

/** What a request is, for judging its failure: whom it concerns, and whether its failure says the region is away. */
interface RequestFacts {
  /** The queue it concerns, or its action when it concerns none: brownouts are told across these. */
  readonly source: string;
  /** Small enough that its timeout says the region did not answer, not that its bytes were slow. */
  readonly small: boolean;
  /** The probe: any failure of it says the region is away. */
  readonly probe?: boolean;
}

/** The tag on a queue the edge created again in the region, with when. */
export const RECREATED_TAG = 'holdfast:recreated-by-edge';

// However slowly the region answers, a probe is given up after this.
const PROBE_PATIENCE_MS = 10_000;

// A request this small is answered within the live timeout on the thinnest link, or the region is away.
const SMALL_REQUEST_BYTES = 65_536;
// A brownout: half of 10 requests or more over 10 s failed, on two queues or more.
const BROWNOUT = { windowMs: 10_000, failureShare: 0.5, minimumRequests: 10, minimumSources: 2 };

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
  /** Set while the region refuses the edge's credentials; cleared by the next request it takes. */
  identityProblem: IdentityProblem | undefined;
  /** Requests started so far; each is numbered by it, so that a late answer cannot overrule a newer one. */
  private requestsStarted = 0;
  /** The number of the newest request whose answer decided whether the credentials are taken. */
  private identityDecidedBy = 0;
  private readonly identityListeners: Array<(problem: IdentityProblem) => void> = [];
  /** The queues being created again in the region (see recreate), by name. */
  private readonly recreating = new Map<string, Promise<string>>();
  private readonly brownout: BrownoutDetector;
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
    this.brownout = new BrownoutDetector({ ...BROWNOUT, clock: this.clock });
  }

  /** Calls `listener` with the cause each time the breaker opens. */
  onBreak(listener: (cause: string) => void): void {
    this.breaker.onBreak((reason) => listener('error' in reason ? (reason.error as Error).message : 'the breaker was opened'));
  }

  /** Calls `listener` each time the region refuses the edge's credentials. */
  onIdentityRefused(listener: (problem: IdentityProblem) => void): void {
    this.identityListeners.push(listener);
  }

  get breakerState(): 'closed' | 'open' | 'half-open' | 'isolated' {
    return (['closed', 'open', 'half-open', 'isolated'] as const)[this.breaker.state]!;
  }

  get breakerClosed(): boolean {
    return this.breaker.state === CircuitState.Closed;
  }

  /**
   * Runs a request to the region through the breaker. What counts towards opening it (and so
   * taking the edge offline) is what says the region is away: it cannot be reached, a probe or a
   * small request timed out, or requests fail across queues (a brownout). A throttled queue, a
   * large request slow on a thin link, or one client's request the region cannot answer are that
   * request's failure alone. While the breaker is open, a request fails at once.
   */
  private async guarded<T>(work: () => Promise<T>, facts: RequestFacts): Promise<T> {
    const request = ++this.requestsStarted;
    try {
      const result = await this.breaker.execute(async () => {
        try {
          return await work();
        } catch (error) {
          if (error instanceof RegionUnavailable && this.isOutage(error, facts)) throw new OutageSignal(error);
          throw error;
        }
      });
      this.answered(facts, request);
      return result;
    } catch (caught) {
      if (caught instanceof BrokenCircuitError) throw new RegionUnavailable('the region is cut off (circuit open)', 'unreachable', false, { cause: caught });
      const error = caught instanceof OutageSignal ? caught.failure : caught;
      if (error instanceof RegionUnavailable) this.failed(error, request);
      else if (error instanceof SqsError) this.answered(facts, request);
      throw error;
    }
  }

  /** Whether a failure says the region is away (see `guarded`); the brownout detector hears of every one. */
  private isOutage(error: RegionUnavailable, facts: RequestFacts): boolean {
    if (error.answered && !facts.probe) this.brownout.record(facts.source, true);
    switch (error.kind) {
      case 'identity':
        return false;
      case 'unreachable':
        return true;
      case 'timeout':
        return facts.small || facts.probe === true;
      default:
        return facts.probe === true || this.brownout.regionWide();
    }
  }

  /** The region answered (the client's own errors included): it is there, and takes the edge's credentials. */
  private answered(facts: RequestFacts, request: number): void {
    this.lastSuccessAt = this.clock();
    // The probe is a signal of its own: a brownout is told from clients' requests alone.
    if (!facts.probe) this.brownout.record(facts.source, false);
    // A request signed before the refusal and answered after it says nothing of the credentials now.
    if (request < this.identityDecidedBy) return;
    this.identityDecidedBy = request;
    if (this.identityProblem) {
      this.options.logger.info({ code: this.identityProblem.code }, 'the region takes the edge\'s credentials again');
      this.identityProblem = undefined;
    }
  }

  private failed(error: RegionUnavailable, request: number): void {
    this.lastFailureAt = this.clock();
    this.lastFailure = error.message;
    if (error.kind !== 'identity' || request < this.identityDecidedBy) return;
    this.identityDecidedBy = request;
    const code = error.answer?.code ?? 'AccessDenied';
    const problem = { code, message: error.message, since: this.identityProblem?.since ?? this.clock() };
    this.identityProblem = problem;
    for (const listener of this.identityListeners) listener(problem);
  }

  /**
   * The breaker's test of the region: a cheap request through it, failed if it takes longer than
   * the probe timeout, or three times the slowest answer to the last probes if the region answers
   * slowly now. The request itself waits longer (PROBE_PATIENCE_MS): a late answer is still learnt
   * from, so that a region that came back slow is told from one that is away.
   */
  async probe(): Promise<void> {
    const started = this.clock();
    const timeoutMs = this.answerTimeoutMs(this.options.probeTimeoutMs, PROBE_PATIENCE_MS);
    const answer = this.ask(PROBE_PATIENCE_MS).then(() => this.options.link.noteRoundTrip(this.clock() - started));
    answer.catch(() => {});
    const settled = new AbortController();
    const late = sleep(timeoutMs, undefined, { signal: settled.signal }).then(() => {
      throw new RegionUnavailable('the region did not answer the probe in time', 'timeout', false);
    });
    late.catch(() => {});
    try {
      await this.guarded(() => Promise.race([answer, late]), { source: 'probe', small: true, probe: true });
    } finally {
      settled.abort();
    }
  }

  /** At least `floorMs`, and three times the slowest recent answer when the region answers slowly now, up to `mostMs`. */
  private answerTimeoutMs(floorMs: number, mostMs = Number.POSITIVE_INFINITY): number {
    return Math.min(mostMs, Math.max(floorMs, 3 * this.options.link.slowestRecentAnswerMs));
  }

  /** Whether the region answers at all within `timeoutMs`, outside the breaker (at start); why not, if not. */
  async reachable(timeoutMs: number): Promise<{ readonly reachable: true } | { readonly reachable: false; readonly reason: string }> {
    const request = ++this.requestsStarted;
    try {
      await this.ask(timeoutMs);
      return { reachable: true };
    } catch (error) {
      if (error instanceof RegionUnavailable) this.failed(error, request);
      return { reachable: false, reason: error instanceof Error ? error.message : String(error) };
    }
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
    options.carriedOut?.('upstream');
    const kind: RequestKind = action === 'ReceiveMessage' && Number(input.WaitTimeSeconds ?? 0) > 0 ? 'long-poll' : 'live';
    const bytes = requestBytes(action, input);
    const small = bytes < SMALL_REQUEST_BYTES;
    // A request is given more when the region answers slowly now, a large send what its bytes need on
    // the link on top, and any request the time of what the way back has queued on the link ahead of it.
    const { link } = this.options;
    const timeoutMs = kind === 'live' ? this.answerTimeoutMs(this.options.requestTimeoutMs) + (small ? 0 : 2 * link.transferMs(bytes)) + link.wireMs(link.bytesInFlight) : undefined;
    const started = this.clock();
    const output = await this.guarded(() => this.client.call(action, request, { kind, signal: options.signal, timeoutMs }), { source: name ?? action, small: small && kind === 'live' });
    if (kind === 'live' && small) this.options.link.noteLive(this.clock() - started);
    const answer = await this.toEdge(action, output, options.baseUrl);
    if (name !== undefined) await this.keepMirror(action, name, input, output);
    return answer;
  }

  /** The edge's URL of a queue, once the region has it (a queue created at the edge while offline is created there now). */
  async queueUrl(name: string, baseUrl: string): Promise<string> {
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
      url = (await this.guarded(() => this.client.call('GetQueueUrl', { QueueName: name }, { kind: 'live' }), { source: name, small: true })).QueueUrl as string;
    } catch (error) {
      const Attributes = this.mirror.createWith(name);
      if (!(Attributes && error instanceof SqsError && error.code === 'QueueDoesNotExist')) throw error;
      url = (await this.guarded(() => this.client.call('CreateQueue', { QueueName: name, Attributes }, { kind: 'live' }), { source: name, small: true })).QueueUrl as string;
      this.options.logger.info({ queue: name }, 'created in the region a queue the edge created or was told of');
      return this.linked(name, url);
    }
    // A queue a client created at the edge while the region was away, which the region turns out
    // to have already: someone else's, which the edge does not adopt (its messages stay at the edge).
    if (this.mirror.stateOf(name) === 'pending') {
      throw new SqsError('AccessDenied', `a queue named ${name} already exists in the region, and the edge created its own while offline: declare it to the edge (the queues file) to adopt it`);
    }
    return this.linked(name, url);
  }

  /** Whether the region has a queue of this name; undefined when it cannot be asked now. */
  async exists(name: string): Promise<boolean | undefined> {
    try {
      await this.guarded(() => this.client.call('GetQueueUrl', { QueueName: name }, { kind: 'live' }), { source: name, small: true });
      return true;
    } catch (error) {
      if (error instanceof SqsError && error.code === 'QueueDoesNotExist') return false;
      if (error instanceof RegionUnavailable) return undefined;
      throw error;
    }
  }

  /** Links a queue to its URL in the region and gives that URL; the mirror refuses a URL of another account. */
  private async linked(name: string, url: string): Promise<string> {
    await this.mirror.link(name, url);
    const linked = this.mirror.upstreamUrl(name);
    if (!linked) throw new RegionUnavailable(`the region answered a URL of another account for the queue ${name}: ${url}`, 'garbled', false);
    return linked;
  }

  /**
   * Creates again in the region a queue it lost (a stack redeployed, a queue deleted by hand, an
   * emulator restarted) from the edge's copy, its dead-letter queue first when that is gone too;
   * tagged so that an operator can tell. Returns its new URL in the region. Throws the region's
   * refusal (AccessDenied, say) as it came. The replay's workers of one queue all meet its loss at
   * once: they share one creation, since two at once may each make the queue, the second replacing
   * the first and what was sent to it (as an emulator does).
   */
  recreate(name: string): Promise<string> {
    let creating = this.recreating.get(name);
    if (!creating) {
      creating = this.createAgain(name, new Set()).finally(() => this.recreating.delete(name));
      this.recreating.set(name, creating);
    }
    return creating;
  }

  private async createAgain(name: string, visiting: Set<string>): Promise<string> {
    visiting.add(name);
    const Attributes = this.mirror.recreateWith(name);
    if (!Attributes) throw new SqsError('QueueDoesNotExist', `The queue ${name} is not known at the edge either.`);
    const deadLetter = this.mirror.deadLetterOf(Attributes);
    if (deadLetter && !visiting.has(deadLetter)) {
      try {
        await this.guarded(() => this.client.call('GetQueueUrl', { QueueName: deadLetter }, { kind: 'live' }), { source: deadLetter, small: true });
      } catch (error) {
        if (!(error instanceof SqsError && error.code === 'QueueDoesNotExist')) throw error;
        await this.createAgain(deadLetter, visiting);
      }
    }
    const tags = { [RECREATED_TAG]: new Date(this.clock()).toISOString() };
    const url = (await this.guarded(() => this.client.call('CreateQueue', { QueueName: name, Attributes, tags }, { kind: 'live' }), { source: name, small: true })).QueueUrl as string;
    this.options.logger.warn({ queue: name, tag: RECREATED_TAG }, 'the region had lost a queue the edge holds messages for: created it again from the edge\'s copy');
    return this.linked(name, url);
  }

  /**
   * Mirrors a queue of the region into the local store: its attributes as the region answered a
   * request for all of them (in the region's terms), or fetched now; its dead-letter queue first,
   * so that its redrive policy can name it.
   */
  async refreshMirror(name: string, allRegionAttributes?: Record<string, string>, visiting = new Set<string>()): Promise<void> {
    visiting.add(name);
    const url = await this.resolve(name);
    const attributes =
      allRegionAttributes ??
      ((await this.guarded(() => this.client.call('GetQueueAttributes', { QueueUrl: url, AttributeNames: ['All'] }, { kind: 'live' }), { source: name, small: true }))
        .Attributes as Record<string, string>);
    const deadLetter = this.mirror.deadLetterOf(attributes);
    if (deadLetter && !visiting.has(deadLetter) && !this.mirror.hasLocally(deadLetter)) await this.refreshMirror(deadLetter, undefined, visiting);
    await this.mirror.apply(name, attributes);
  }

  /**
   * Hands messages to a queue of the region (the replay): SendMessageBatch to the region's URL, in
   * the transfer pool, outside the breaker: a batch that times out or is throttled is congestion
   * on the way back, which the replay's congestion control answers, not a sign the region is away.
   */
  async sendBatch(url: string, entries: readonly Input[], options: { readonly signal: AbortSignal; readonly timeoutMs: number }): Promise<Output> {
    const request = ++this.requestsStarted;
    try {
      const output = await this.client.call('SendMessageBatch', { QueueUrl: url, Entries: entries }, { kind: 'transfer', ...options });
      this.lastSuccessAt = this.clock();
      return output;
    } catch (error) {
      if (error instanceof RegionUnavailable) this.failed(error, request);
      throw error;
    }
  }

  destroy(): void {
    this.client.destroy();
  }

  /**
   * A cheap call any principal may make. A refusal of the client's kind proves the region answers,
   * except AccessDenied: the edge's own identity may not even list queues, so it cannot act there.
   */
  private async ask(timeoutMs: number): Promise<void> {
    await this.client.call('ListQueues', { MaxResults: 1 }, { kind: 'probe', timeoutMs }).catch((error: unknown) => {
      if (!(error instanceof SqsError)) throw error;
      if (/^AccessDenied/.test(error.code)) throw new RegionUnavailable(`the region refuses the edge's credentials: ${error.code} (${error.message})`, 'identity', false, { cause: error, answer: error });
    });
  }

  /** Keeps the mirror in step with what an operation did in the region. */
  private async keepMirror(action: string, name: string, input: Input, output: Output): Promise<void> {
    if (action === 'DeleteQueue') {
      await this.mirror.deleted(name);
    } else if (action === 'PurgeQueue') {
      await this.mirror.purged(name);
    } else if (action === 'SetQueueAttributes') {
      await this.refreshMirror(name);
    } else if (action === 'GetQueueAttributes' && asksForAll(input) && output.Attributes) {
      // Only a request for All answers every attribute the mirror keeps: another leaves out FifoQueue
      // (the event-source runner asks for QueueArn, RedrivePolicy and VisibilityTimeout), which
      // would read as a standard queue.
      await this.refreshMirror(name, output.Attributes as Record<string, string>);
    } else if (this.mirror.stale(name)) {
      // A queue met for the first time (or long ago): mirrored in the background, the answer does not wait.
      this.mirrorInBackground(name);
    }
  }

  private mirrorInBackground(name: string): void {
    this.refreshMirror(name).catch((error: unknown) => this.options.logger.warn({ queue: name, err: error }, 'cannot mirror a queue of the region yet'));
  }

  /** The region's answer in the edge's terms: queue URLs and ARNs of the edge. */
  private async toEdge(action: string, output: Output, baseUrl: string): Promise<Output> {
    const answer: Output = { ...output };
    const edgeUrl = async (url: string) => {
      const parsed = parseQueueUrl(url);
      if (!parsed) return url;
      await this.mirror.link(parsed.name, url);
      return this.mirror.edgeUrl(parsed.name, baseUrl);
    };
    if (typeof answer.QueueUrl === 'string') answer.QueueUrl = await edgeUrl(answer.QueueUrl);
    for (const key of ['QueueUrls', 'queueUrls']) if (Array.isArray(answer[key])) answer[key] = await Promise.all((answer[key] as string[]).map(edgeUrl));
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
  const parsed = typeof input.QueueUrl === 'string' ? queueReference(input.QueueUrl) : undefined;
  if (!parsed) throw new SqsError(input.QueueUrl === undefined ? 'MissingParameter' : 'QueueDoesNotExist', input.QueueUrl === undefined ? 'The request must contain the parameter QueueUrl.' : 'The specified queue does not exist.');
  return parsed.name;
}

/** Whether a GetQueueAttributes request asks for every attribute. */
function asksForAll(input: Input): boolean {
  return Array.isArray(input.AttributeNames) && input.AttributeNames.includes('All');
}

/** The bytes a request carries that matter on a thin link: the messages of a send. */
function requestBytes(action: string, input: Input): number {
  if (action === 'SendMessage') return payloadSize(input.MessageBody, input.MessageAttributes);
  if (action === 'SendMessageBatch' && Array.isArray(input.Entries)) {
    return (input.Entries as Input[]).reduce((sum, entry) => sum + payloadSize(entry.MessageBody, entry.MessageAttributes), 0);
  }
  return 0;
}
