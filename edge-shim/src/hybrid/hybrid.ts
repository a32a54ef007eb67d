import type { Logger } from 'pino';
import type { CallOptions, Health, SqsBackend } from '../backend.js';
import type { MetricsRecorder } from '../observability/metrics.js';
import { SqsError } from '../sqs/errors.js';
import { parseQueueUrl } from '../sqs/queues.js';
import type { SqsService } from '../sqs/service.js';
import type { QueueMirror } from './mirror.js';
import type { ModeMachine } from './mode.js';
import type { Replayer } from './replayer.js';
import { type Upstream, UpstreamUnavailable } from './upstream.js';

type Input = Record<string, unknown>;
type Output = Record<string, unknown>;

/** Operations the edge can carry out without the region, on its own store. */
const SERVED_LOCALLY_WHEN_OFFLINE = new Set(['GetQueueAttributes', 'GetQueueUrl', 'ListQueues']);
const RECEIPT_ACTIONS = new Set(['DeleteMessage', 'ChangeMessageVisibility', 'DeleteMessageBatch', 'ChangeMessageVisibilityBatch']);
// The shim's own receipt handles (see sqs/receipt-handles.ts); any other came from the region.
const LOCAL_HANDLE = /^hf1\./;
const COUNTS = ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'];

const unreachable = (what: string) =>
  new SqsError('ServiceUnavailable', `${what} can only be carried out by the region, which the edge cannot reach now. Retry later.`);
// A queue the edge does not know may well be in the region: a retryable error, not QueueDoesNotExist.
const unknownAtEdge = (name: string) =>
  new SqsError('ServiceUnavailable', `The region cannot be reached and the queue ${name} is not known at the edge (declare it in the queues file). Retry later.`);

/**
 * The hybrid edge: the SQS operations of the local store, carried out in the region while it is
 * there and at the edge while it is not. Clients only ever see the edge's queue URLs and ARNs; the
 * region's answers and errors pass through otherwise unchanged. Sends go to the region, or are
 * stored locally (while offline, when the region failed to answer, or behind a backlog the queue
 * still holds) and replayed later; receives go where the queue's messages are, following the mode
 * through a long poll; deletes and visibility changes go where their receipt handle came from.
 */
export class HybridBackend implements SqsBackend {
  /** Ends every receive waiting on the region or at the edge: the shim is stopping. */
  private readonly ending = new AbortController();

  constructor(
    private readonly local: SqsService,
    private readonly upstream: Upstream,
    private readonly mirror: QueueMirror,
    private readonly mode: ModeMachine,
    private readonly replayer: Replayer,
    private readonly metrics: MetricsRecorder,
    private readonly logger: Logger,
  ) {}

  /** Answers every waiting receive now (with what it has), as the local store does when it closes. */
  endWaits(): void {
    this.ending.abort();
  }

  health(): Health {
    const local = this.local.health();
    // Sends are taken online (the region) and offline (the store): only a store that cannot take them makes the edge unhealthy.
    return { ...local, mode: this.mode.mode };
  }

  async call(action: string, input: Input, options: CallOptions): Promise<Output> {
    if (action === 'SendMessage' || action === 'SendMessageBatch') return this.send(action, input, options);
    if (action === 'ReceiveMessage') return this.receive(input, options);
    if (RECEIPT_ACTIONS.has(action)) return this.byReceipt(action, input, options);
    if (action === 'CreateQueue') return this.createQueue(input, options);
    if (action === 'GetQueueUrl' && this.mode.mode !== 'offline' && input.QueueOwnerAWSAccountId === undefined) return this.getQueueUrl(input, options);
    if (this.mode.mode === 'offline') {
      if (SERVED_LOCALLY_WHEN_OFFLINE.has(action)) return this.atEdge(action, input, options);
      throw unreachable(action);
    }
    try {
      return await this.inRegion(action, input, options);
    } catch (error) {
      if (error instanceof UpstreamUnavailable) {
        if (SERVED_LOCALLY_WHEN_OFFLINE.has(action)) return this.atEdge(action, input, options);
        throw unreachable(action);
      }
      throw error;
    }
  }

  /** A lookup answered from the mirror while the region is away. */
  private atEdge(action: string, input: Input, options: CallOptions): Promise<Output> {
    const name = typeof input.QueueName === 'string' ? input.QueueName : typeof input.QueueUrl === 'string' ? queueName(input) : undefined;
    if (name !== undefined && !this.local.queues.byName(name)) throw unknownAtEdge(name);
    return this.locally(action, input, options);
  }

  /**
   * A send goes to the region unless the edge is offline or the queue still holds messages at the
   * edge (a new message must not overtake them). If the region fails to answer, the message is
   * stored at the edge and acknowledged from there: the replay sends it with its deduplication id,
   * so a FIFO queue drops it if the region had taken it after all.
   */
  private async send(action: 'SendMessage' | 'SendMessageBatch', input: Input, options: CallOptions): Promise<Output> {
    const name = queueName(input);
    let maybeSent = false;
    if (this.mode.mode !== 'offline' && !this.replayer.holdsBacklog(name)) {
      try {
        return await this.inRegion(action, input, options);
      } catch (error) {
        if (!(error instanceof UpstreamUnavailable)) throw error;
        maybeSent = error.maybeDone;
        this.logger.info({ queue: name, action, reason: error.message, maybeSent }, 'the region did not take a send: stored at the edge for replay');
      }
    }
    if (!this.local.queues.byName(name)) throw unknownAtEdge(name);
    let output: Output;
    if (maybeSent) {
      // The region may run this task already: it waits for the replay, where the region's
      // deduplication decides, rather than run at the edge too.
      this.metrics.requestCarriedOut(action, 'local');
      output = await this.local.sendHeldForReplay(action, input, options);
    } else {
      output = await this.locally(action, input, options);
    }
    this.replayer.wake();
    return output;
  }

  /**
   * A receive is served where the mode says, and follows a change of mode during its long poll: a
   * wait on the region that sees the edge go offline goes on at the edge for the rest of its time,
   * and the other way round.
   */
  private async receive(input: Input, options: CallOptions): Promise<Output> {
    const name = queueName(input);
    const waitSeconds = typeof input.WaitTimeSeconds === 'number' ? input.WaitTimeSeconds : Number(this.local.queues.byName(name)?.attributes.ReceiveMessageWaitTimeSeconds ?? 0);
    const deadline = Date.now() + waitSeconds * 1000;
    // The wait ends when the client goes away or the shim stops, answering what it has.
    const ended = options.signal ? AbortSignal.any([options.signal, this.ending.signal]) : this.ending.signal;
    for (;;) {
      const mode = this.mode.mode;
      const switched = new AbortController();
      const onChange = () => switched.abort();
      this.mode.once('change', onChange);
      const signal = AbortSignal.any([ended, switched.signal]);
      const remaining = { ...input, WaitTimeSeconds: Math.max(0, Math.ceil((deadline - Date.now()) / 1000)) };
      let output: Output;
      try {
        if (mode === 'offline') {
          output = await this.locally('ReceiveMessage', remaining, { ...options, signal });
        } else {
          try {
            output = await this.inRegion('ReceiveMessage', remaining, { ...options, signal });
          } catch (error) {
            if (ended.aborted) return {};
            if (!(error instanceof UpstreamUnavailable) && !switched.signal.aborted) throw error;
            // The region failed or the mode changed under the wait: what the edge holds is served meanwhile.
            output = switched.signal.aborted ? {} : await this.locally('ReceiveMessage', remaining, { ...options, signal });
          }
        }
      } finally {
        this.mode.off('change', onChange);
      }
      if (output.Messages || ended.aborted || !switched.signal.aborted || Date.now() >= deadline) return output;
    }
  }

  /** Deletes and visibility changes go to whoever issued the receipt handle: the edge or the region. */
  private async byReceipt(action: string, input: Input, options: CallOptions): Promise<Output> {
    if (action === 'DeleteMessage' || action === 'ChangeMessageVisibility') {
      if (LOCAL_HANDLE.test(String(input.ReceiptHandle))) return this.locally(action, input, options);
      if (this.mode.mode === 'offline') throw unreachable(`${action} of a message received from the region`);
      return this.inRegionOrUnreachable(action, input, options);
    }
    const entries = Array.isArray(input.Entries) ? (input.Entries as Input[]) : [];
    const ours = entries.filter((entry) => LOCAL_HANDLE.test(String(entry.ReceiptHandle)));
    const theirs = entries.filter((entry) => !LOCAL_HANDLE.test(String(entry.ReceiptHandle)));
    if (theirs.length === 0 || entries.length === 0) return this.locally(action, input, options);
    if (ours.length === 0 && this.mode.mode !== 'offline') return this.inRegionOrUnreachable(action, input, options);
    // A batch with handles of both: each part where it belongs, the answers merged.
    const [edge, region] = await Promise.all([
      ours.length > 0 ? this.locally(action, { ...input, Entries: ours }, options) : Promise.resolve<Output>({}),
      this.mode.mode === 'offline'
        ? Promise.resolve(failedEntries(theirs))
        : this.inRegion(action, { ...input, Entries: theirs }, options).catch((error: unknown) => {
            if (error instanceof UpstreamUnavailable) return failedEntries(theirs);
            throw error;
          }),
    ]);
    return {
      Successful: [...((edge.Successful as unknown[]) ?? []), ...((region.Successful as unknown[]) ?? [])],
      Failed: [...((edge.Failed as unknown[]) ?? []), ...((region.Failed as unknown[]) ?? [])],
    };
  }

  /**
   * CreateQueue in the region when it is there, mirrored at the edge before the answer; at the edge
   * alone while offline, and created in the region before anything is replayed to it.
   */
  private async createQueue(input: Input, options: CallOptions): Promise<Output> {
    const name = String(input.QueueName ?? '');
    if (this.mode.mode !== 'offline') {
      try {
        const output = await this.inRegion('CreateQueue', input, options);
        await this.mirror.mirror(name, (work) => this.mode.execute(work));
        return output;
      } catch (error) {
        if (!(error instanceof UpstreamUnavailable)) throw error;
      }
    }
    const output = await this.locally('CreateQueue', input, options);
    if (!this.mirror.stateOf(name)) await this.mirror.declare(name, (input.Attributes as Record<string, string>) ?? {}, 'pending');
    return output;
  }

  /** GetQueueUrl through the mirror: a queue created at the edge while offline is created in the region now. */
  private async getQueueUrl(input: Input, options: CallOptions): Promise<Output> {
    const name = typeof input.QueueName === 'string' ? input.QueueName : '';
    const execute = <T>(work: () => Promise<T>) => this.mode.execute(work);
    try {
      this.metrics.requestCarriedOut('GetQueueUrl', 'upstream');
      await this.mirror.resolve(name, execute);
    } catch (error) {
      if (error instanceof UpstreamUnavailable) return this.atEdge('GetQueueUrl', input, options);
      throw error;
    }
    if (this.mirror.stale(name)) this.mirror.mirror(name, execute).catch((error: unknown) => this.logger.warn({ queue: name, err: error }, 'cannot mirror a queue of the region yet'));
    return { QueueUrl: `${options.baseUrl}/${this.local.queues.accountId}/${encodeURIComponent(name)}` };
  }

  private locally(action: string, input: Input, options: CallOptions): Promise<Output> {
    this.metrics.requestCarriedOut(action, 'local');
    return this.local.call(action, input, options);
  }

  private async inRegionOrUnreachable(action: string, input: Input, options: CallOptions): Promise<Output> {
    try {
      return await this.inRegion(action, input, options);
    } catch (error) {
      if (error instanceof UpstreamUnavailable) throw unreachable(action);
      throw error;
    }
  }

  /**
   * Carries out an operation in the region: the edge's queue URLs and ARNs in the request become
   * the region's, the region's in the answer become the edge's, and what the operation changes is
   * mirrored at the edge.
   */
  private async inRegion(action: string, input: Input, options: CallOptions): Promise<Output> {
    const execute = <T>(work: () => Promise<T>) => this.mode.execute(work);
    const request: Input = { ...input };
    const name = typeof input.QueueUrl === 'string' ? queueName(input) : undefined;
    if (name !== undefined) request.QueueUrl = await this.mirror.resolve(name, execute);
    if (action === 'CreateQueue' || action === 'SetQueueAttributes') {
      if (input.Attributes) request.Attributes = this.mirror.toUpstreamAttributes(input.Attributes as Record<string, string>);
    }
    for (const key of ['SourceArn', 'DestinationArn'] as const) {
      if (typeof input[key] === 'string') request[key] = this.mirror.toUpstreamArn(input[key]);
    }
    this.metrics.requestCarriedOut(action, 'upstream');
    const output = await execute(() => this.upstream.call(action, request, options.signal));
    const answer = this.toEdge(action, output, options.baseUrl);
    if (name !== undefined) {
      await this.afterRegion(action, name, output, options);
      if (action === 'GetQueueAttributes' && answer.Attributes) answer.Attributes = this.withEdgeCounts(name, answer.Attributes as Record<string, string>);
    }
    return answer;
  }

  /** Keeps the mirror in step with what an operation did in the region. */
  private async afterRegion(action: string, name: string, output: Output, options: CallOptions): Promise<void> {
    const execute = <T>(work: () => Promise<T>) => this.mode.execute(work);
    if (action === 'DeleteQueue') {
      if (this.local.queues.byName(name)) await this.local.call('DeleteQueue', { QueueUrl: this.localUrl(name) }, options);
      this.mirror.forget(name);
    } else if (action === 'PurgeQueue') {
      if (this.local.queues.byName(name)) await this.local.call('PurgeQueue', { QueueUrl: this.localUrl(name) }, options).catch(() => {});
    } else if (action === 'SetQueueAttributes' || (action === 'GetQueueAttributes' && (output.Attributes as Record<string, string> | undefined)?.QueueArn)) {
      await this.mirror.mirror(name, execute, action === 'GetQueueAttributes' ? (output.Attributes as Record<string, string>) : undefined);
    } else if (this.mirror.stale(name)) {
      // A queue met for the first time (or long ago): mirrored in the background, the answer does not wait.
      this.mirror.mirror(name, execute).catch((error: unknown) => this.logger.warn({ queue: name, err: error }, 'cannot mirror a queue of the region yet'));
    }
  }

  /** The region's answer in the edge's terms: queue URLs and ARNs of the edge, counts including what the edge still holds. */
  private toEdge(action: string, output: Output, baseUrl: string): Output {
    const answer: Output = { ...output };
    const edgeUrl = (url: string) => {
      const parsed = parseQueueUrl(url);
      if (!parsed) return url;
      this.mirror.link(parsed.name, url);
      return `${baseUrl}/${this.local.queues.accountId}/${encodeURIComponent(parsed.name)}`;
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

  private localUrl(name: string): string {
    return `/${this.local.queues.accountId}/${encodeURIComponent(name)}`;
  }

  /** GetQueueAttributes answered by the region, plus what the edge still holds of the queue. */
  private withEdgeCounts(name: string, attributes: Record<string, string>): Record<string, string> {
    if (this.local.storedMessages(name) === 0) return attributes;
    const counted = { ...attributes };
    const local = this.local.counts(name);
    const extra = [local.visible, local.inFlight, local.delayed];
    COUNTS.forEach((key, index) => {
      if (counted[key] !== undefined) counted[key] = String(Number(counted[key]) + extra[index]!);
    });
    return counted;
  }
}

/** The queue a request names by its QueueUrl. */
function queueName(input: Input): string {
  const parsed = typeof input.QueueUrl === 'string' ? parseQueueUrl(input.QueueUrl) : undefined;
  if (!parsed) throw new SqsError(input.QueueUrl === undefined ? 'MissingParameter' : 'QueueDoesNotExist', input.QueueUrl === undefined ? 'The request must contain the parameter QueueUrl.' : 'The specified queue does not exist.');
  return parsed.name;
}

function failedEntries(entries: Input[]): Output {
  return {
    Successful: [],
    Failed: entries.map((entry) => ({ Id: entry.Id, SenderFault: false, Code: 'ServiceUnavailable', Message: 'The region that issued this receipt handle cannot be reached now. Retry later.' })),
  };
}
