import type { Logger } from 'pino';
import type { CallOptions, Health, SqsBackend } from '../backend.js';
import { withoutAccountDetails } from '../observability/redaction.js';
import { SqsError } from '../sqs/errors.js';
import { isShimReceiptHandle } from '../sqs/receipt-handles.js';
import type { LocalQueues } from './local-queues.js';
import type { ModeMachine, Transition } from './mode.js';
import { RegionUnavailable } from './region/client.js';
import type { QueueMirror } from './region/mirror.js';
import { type Region, queueNameOf } from './region/region.js';
import type { QueueView } from './site/ports.js';

type Input = Record<string, unknown>;
type Output = Record<string, unknown>;

/**
 * How an operation is routed between the region and the edge's own queues:
 * - `send`: to the region, else stored at the edge for the replay;
 * - `receive`: where the mode says, following it through a long poll;
 * - `by-receipt`: where the receipt handle came from;
 * - `create`: in the region and mirrored, else at the edge and created in the region later;
 * - `lookup`: in the region, else answered from the mirror;
 * - `region-only`: in the region, else refused as retryable.
 */
type Route = 'send' | 'receive' | 'by-receipt' | 'create' | 'lookup' | 'region-only';

const ROUTES: Readonly<Record<string, Route>> = {
  SendMessage: 'send',
  SendMessageBatch: 'send',
  ReceiveMessage: 'receive',
  DeleteMessage: 'by-receipt',
  DeleteMessageBatch: 'by-receipt',
  ChangeMessageVisibility: 'by-receipt',
  ChangeMessageVisibilityBatch: 'by-receipt',
  CreateQueue: 'create',
  GetQueueUrl: 'lookup',
  GetQueueAttributes: 'lookup',
  ListQueues: 'lookup',
};

const COUNTS = ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'];

const unreachable = (what: string) =>
  new SqsError('ServiceUnavailable', `${what} can only be carried out by the region, which the edge cannot reach now. Retry later.`);
// A queue the edge does not know may well be in the region: a retryable error, not QueueDoesNotExist.
const unknownAtEdge = (name: string) =>
  new SqsError('ServiceUnavailable', `The region cannot be reached and the queue ${name} is not known at the edge (declare it in the queues file). Retry later.`);

export interface RouterParts {
  readonly local: LocalQueues;
  readonly region: Region;
  readonly mirror: QueueMirror;
  /** The site's queues and what they hold, read without a transaction. */
  readonly view: QueueView;
  readonly mode: ModeMachine;
  /** Messages were stored at the edge: the replay looks again. */
  readonly stored: (queueName: string, count: number) => void;
  readonly logger: Logger;
  readonly clock?: () => number;
}

/**
 * The hybrid edge's SQS operations: each carried out in the region while it is there and at the
 * edge while it is not, by the route its action takes (ROUTES). Clients only ever see the edge's
 * queue URLs and ARNs; the region's answers and errors pass through otherwise unchanged.
 */
export class HybridRouter implements SqsBackend {
  /** Ends every receive waiting on the region or at the edge: the shim is stopping. */
  private readonly ending = new AbortController();
  private readonly local: LocalQueues;
  private readonly region: Region;
  private readonly mode: ModeMachine;
  private readonly clock: () => number;

  constructor(private readonly parts: RouterParts) {
    ({ local: this.local, region: this.region, mode: this.mode } = parts);
    this.clock = parts.clock ?? Date.now;
  }

  /** Answers every waiting receive now (with what it has), as the local store does when it closes. */
  endWaits(): void {
    this.ending.abort();
  }

  health(): Health {
    // Sends are taken online (the region) and offline (the store): only a store that cannot take them
    // makes the edge unhealthy. What an operator must see to (the edge's credentials refused) is said,
    // without the account's ARNs: /health answers anyone who reaches the SQS port.
    const refused = this.region.identityProblem;
    return { ...this.local.health(), mode: this.mode.mode, ...(refused ? { attention: `${withoutAccountDetails(refused.message)}: renew the credentials the shim runs with (its profile, role or keys), or set the site server's clock right` } : {}) };
  }

  call(action: string, input: Input, options: CallOptions): Promise<Output> {
    switch (ROUTES[action] ?? 'region-only') {
      case 'send':
        return this.send(action as 'SendMessage' | 'SendMessageBatch', input, options);
      case 'receive':
        return this.receive(input, options);
      case 'by-receipt':
        return this.byReceipt(action, input, options);
      case 'create':
        return this.createQueue(input, options);
      case 'lookup':
        return this.lookup(action, input, options);
      case 'region-only':
        return this.regionOnly(action, input, options);
    }
  }

  /**
   * A send goes to the region unless the edge is offline or the queue still holds messages at the
   * edge (a new message must not overtake them). If the region fails to answer, the message is
   * stored at the edge and acknowledged from there: the replay sends it with its deduplication id,
   * so a FIFO queue drops it if the region had taken it after all.
   */
  private async send(action: 'SendMessage' | 'SendMessageBatch', input: Input, options: CallOptions): Promise<Output> {
    const name = queueNameOf(input);
    let maybeSent = false;
    // A send must not overtake what the site still holds of its queue (another node's, stored a moment ago, included).
    if (this.mode.mode !== 'offline' && !(await this.parts.view.holdsMessagesNow(name))) {
      try {
        return await this.sendUntilOffline(action, input, options);
      } catch (error) {
        // The region's own answers (a server error, throttling) are the client's to retry, as without the edge.
        if (!(error instanceof RegionUnavailable)) throw error;
        if (error.answered) throw error.toClientError();
        maybeSent = error.maybeDone;
        this.parts.logger.info({ queue: name, action, reason: error.message, maybeSent }, 'the region did not take a send: stored at the edge for replay');
      }
    }
    if (!(await this.knownAtEdge(name))) throw unknownAtEdge(name);
    let output: Output;
    if (maybeSent) {
      // The region may run this task already: it waits for the replay, where the region's
      // deduplication decides, rather than run at the edge too.
      output = await this.local.sendHeldForReplay(action, input, options);
    } else {
      output = await this.local.call(action, input, options);
    }
    this.parts.stored(name, action === 'SendMessage' ? 1 : ((output.Successful as unknown[] | undefined)?.length ?? 0));
    return output;
  }

  /**
   * Carries out a send in the region until the edge goes offline: a send under way then (its SDK
   * retrying after the cut) is left to the edge, rather than reaching a region that may come back
   * changed (its queues lost) and answering its client from there.
   */
  private async sendUntilOffline(action: string, input: Input, options: CallOptions): Promise<Output> {
    const wentOffline = new AbortController();
    const onChange = (transition: Transition) => {
      if (transition.to === 'offline') wentOffline.abort();
    };
    this.mode.on('change', onChange);
    try {
      return await this.region.carryOut(action, input, { ...options, signal: options.signal ? AbortSignal.any([options.signal, wentOffline.signal]) : wentOffline.signal });
    } catch (error) {
      if (wentOffline.signal.aborted && !options.signal?.aborted) throw new RegionUnavailable('the edge went offline while the region carried out the send', 'unreachable', true, { cause: error });
      throw error;
    } finally {
      this.mode.off('change', onChange);
    }
  }

  /**
   * A receive is served where the mode says, and follows a change of mode during its long poll: a
   * wait on the region that sees the edge go offline goes on at the edge for the rest of its time,
   * and the other way round.
   */
  private async receive(input: Input, options: CallOptions): Promise<Output> {
    const name = queueNameOf(input);
    const waitSeconds = typeof input.WaitTimeSeconds === 'number' ? input.WaitTimeSeconds : Number(this.parts.view.queue(name)?.attributes.ReceiveMessageWaitTimeSeconds ?? 0);
    const deadline = this.clock() + waitSeconds * 1000;
    // The wait ends when the client goes away or the shim stops, answering what it has.
    const ended = options.signal ? AbortSignal.any([options.signal, this.ending.signal]) : this.ending.signal;
    for (;;) {
      const mode = this.mode.mode;
      const switched = new AbortController();
      const onChange = () => switched.abort();
      this.mode.once('change', onChange);
      const signal = AbortSignal.any([ended, switched.signal]);
      const remaining = { ...input, WaitTimeSeconds: Math.max(0, Math.ceil((deadline - this.clock()) / 1000)) };
      let output: Output;
      try {
        if (mode === 'offline') {
          output = await this.local.call('ReceiveMessage', remaining, { ...options, signal });
        } else {
          try {
            output = await this.region.carryOut('ReceiveMessage', remaining, { ...options, signal });
          } catch (error) {
            if (ended.aborted) return {};
            if (!switched.signal.aborted && !(error instanceof RegionUnavailable)) throw error;
            if (!switched.signal.aborted && error instanceof RegionUnavailable && error.answered) throw error.toClientError();
            // The region failed or the mode changed under the wait: what the edge holds is served meanwhile.
            output = switched.signal.aborted ? {} : await this.local.call('ReceiveMessage', remaining, { ...options, signal });
          }
        }
      } finally {
        this.mode.off('change', onChange);
      }
      if (output.Messages || ended.aborted || !switched.signal.aborted || this.clock() >= deadline) return output;
    }
  }

  /** Deletes and visibility changes go to whoever issued the receipt handle: the edge or the region. */
  private async byReceipt(action: string, input: Input, options: CallOptions): Promise<Output> {
    if (action === 'DeleteMessage' || action === 'ChangeMessageVisibility') {
      if (isShimReceiptHandle(input.ReceiptHandle)) return this.local.call(action, input, options);
      if (this.mode.mode === 'offline') throw unreachable(`${action} of a message received from the region`);
      return this.inRegionOrUnreachable(action, input, options);
    }
    const entries = Array.isArray(input.Entries) ? (input.Entries as Input[]) : [];
    const ours = entries.filter((entry) => isShimReceiptHandle(entry.ReceiptHandle));
    const theirs = entries.filter((entry) => !isShimReceiptHandle(entry.ReceiptHandle));
    if (theirs.length === 0 || entries.length === 0) return this.local.call(action, input, options);
    if (ours.length === 0 && this.mode.mode !== 'offline') return this.inRegionOrUnreachable(action, input, options);
    // A batch with handles of both: each part where it belongs, the answers merged.
    const [edge, region] = await Promise.all([
      ours.length > 0 ? this.local.call(action, { ...input, Entries: ours }, options) : Promise.resolve<Output>({}),
      this.mode.mode === 'offline'
        ? Promise.resolve(failedEntries(theirs))
        : this.region.carryOut(action, { ...input, Entries: theirs }, options).catch((error: unknown) => {
            if (!(error instanceof RegionUnavailable)) throw error;
            return error.answered ? failedEntries(theirs, error.toClientError()) : failedEntries(theirs);
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
        const output = await this.region.carryOut('CreateQueue', input, options);
        await this.region.refreshMirror(name);
        return output;
      } catch (error) {
        if (!(error instanceof RegionUnavailable)) throw error;
        if (error.answered) throw error.toClientError();
      }
    }
    const output = await this.local.call('CreateQueue', input, options);
    if (!this.parts.mirror.stateOf(name)) await this.parts.mirror.declare(name, (input.Attributes as Record<string, string>) ?? {}, 'pending');
    return output;
  }

  /**
   * A lookup in the region, or answered from the mirror while the region is away. GetQueueUrl goes
   * through the mirror, so that a queue created at the edge while offline is created in the region.
   */
  private async lookup(action: string, input: Input, options: CallOptions): Promise<Output> {
    if (this.mode.mode === 'offline') return this.atEdge(action, input, options);
    try {
      // The edge's own account is the only owner a client may name (see authz/): the region's queue of that name.
      if (action === 'GetQueueUrl') {
        options.carriedOut?.('upstream');
        return { QueueUrl: await this.region.queueUrl(typeof input.QueueName === 'string' ? input.QueueName : '', options.baseUrl) };
      }
      const output = await this.region.carryOut(action, input, options);
      if (action === 'GetQueueAttributes' && output.Attributes) output.Attributes = this.withEdgeCounts(queueNameOf(input), output.Attributes as Record<string, string>);
      return output;
    } catch (error) {
      if (!(error instanceof RegionUnavailable)) throw error;
      if (error.answered) throw error.toClientError();
      return this.atEdge(action, input, options);
    }
  }

  /** What only the region can do: policies, tags, purges, deletions, move tasks. */
  private regionOnly(action: string, input: Input, options: CallOptions): Promise<Output> {
    if (this.mode.mode === 'offline') throw unreachable(action);
    return this.inRegionOrUnreachable(action, input, options);
  }

  /** A lookup answered from the mirror while the region is away. */
  private async atEdge(action: string, input: Input, options: CallOptions): Promise<Output> {
    const name = typeof input.QueueName === 'string' ? input.QueueName : typeof input.QueueUrl === 'string' ? queueNameOf(input) : undefined;
    if (name !== undefined && !(await this.knownAtEdge(name))) throw unknownAtEdge(name);
    return this.local.call(action, input, options);
  }

  /** Whether the site has the queue; another node may have created it since the view was read. */
  private async knownAtEdge(name: string): Promise<boolean> {
    if (this.parts.view.queue(name)) return true;
    await this.parts.view.refresh();
    return this.parts.view.queue(name) !== undefined;
  }

  private async inRegionOrUnreachable(action: string, input: Input, options: CallOptions): Promise<Output> {
    try {
      return await this.region.carryOut(action, input, options);
    } catch (error) {
      if (!(error instanceof RegionUnavailable)) throw error;
      throw error.answered ? error.toClientError() : unreachable(action);
    }
  }

  /** GetQueueAttributes answered by the region, plus what the edge still holds of the queue. */
  private withEdgeCounts(name: string, attributes: Record<string, string>): Record<string, string> {
    if (this.parts.view.storedMessages(name) === 0) return attributes;
    const counted = { ...attributes };
    const local = this.parts.view.counts(name);
    const extra = [local.visible, local.inFlight, local.delayed];
    COUNTS.forEach((key, index) => {
      if (counted[key] !== undefined) counted[key] = String(Number(counted[key]) + extra[index]!);
    });
    return counted;
  }
}

/** Every entry failed: the region could not be reached, or answered `error` for all of them. */
function failedEntries(entries: Input[], error?: SqsError): Output {
  const Code = error?.code ?? 'ServiceUnavailable';
  const Message = error?.message ?? 'The region that issued this receipt handle cannot be reached now. Retry later.';
  return { Successful: [], Failed: entries.map((entry) => ({ Id: entry.Id, SenderFault: error?.fault === 'Sender', Code, Message })) };
}
