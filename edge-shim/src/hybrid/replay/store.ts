import { changeVisibilityOne } from '../../sqs/actions/change-message-visibility.js';
import { deleteOne } from '../../sqs/actions/delete-message.js';
import { takeMessages } from '../../sqs/actions/receive-message.js';
import { SqsError } from '../../sqs/errors.js';
import { type MessageAttributes, payloadSize } from '../../sqs/message-attributes.js';
import type { SqsContext } from '../../sqs/context.js';
import { type Step, call } from '../../sqs/storage/step.js';
import type { LocalQueues } from '../local-queues.js';
import type { Queue } from '../../sqs/storage/records.js';
import type { ReplayLedger } from '../site/ports.js';

/** A message taken for the replay: what the region is sent, as it was sent to the edge. */
export interface ReplayMessage {
  /** Its row at the edge. */
  readonly id: number;
  readonly messageId: string;
  readonly body: string;
  readonly attributes: MessageAttributes | undefined;
  readonly traceHeader: string | undefined;
  readonly groupId: string | undefined;
  /** FIFO: the id given, or the content hash the edge computed. */
  readonly deduplicationId: string | undefined;
  /** What it counts toward a batch's 1 MiB: body and attributes. */
  readonly size: number;
  /**
   * When the region may first have taken it without the edge learning so: a replay batch that got
   * no answer, or the client's send the message was held for. Undefined: never sent before.
   */
  readonly mayBeInRegionSince: number | undefined;
  /** The receipt of this take, which hands it over or gives it back. */
  readonly receipt: string;
}

/**
 * The replay's view of the edge's store: it takes messages as a receive would (FIFO groups in order
 * and locked while taken, messages in flight left alone) but without counting towards
 * dead-lettering, and messages held for the replay are offered to it alone; it deletes those the
 * region acknowledged, and gives back the others. Every step is one transaction of the engine.
 * What it took is leased (see `releaseLeases`); a batch sent without an answer is remembered with
 * the time of its first attempt, since the region's deduplication drops a twin only within 5 minutes.
 */
export class ReplayStore {
  constructor(
    private readonly engine: Pick<LocalQueues, 'transact'>,
    /** Where the replay keeps its leases and unanswered attempts, in the engine's transaction. */
    private readonly ledgerOf: (context: SqsContext) => ReplayLedger,
  ) {}

  /**
   * Takes up to `limit` messages of a queue, invisible at the edge for `leaseSeconds`. Held
   * messages come first; those the take leaves stay held.
   */
  take(queueName: string, limit: number, leaseSeconds: number): Promise<ReplayMessage[]> {
    return this.engine.transact('', (context) => this.taken(context, queueName, limit, leaseSeconds));
  }

  private *taken(context: SqsContext, queueName: string, limit: number, leaseSeconds: number): Step<ReplayMessage[]> {
    const queue = yield* call(context.queues.byName(queueName));
    if (!queue) return [];
    const anyHeld = yield* call(context.messages.anyHeldForReplay());
    // Held messages first (a FIFO group's all together, in its order); what the take leaves is held again.
    if (anyHeld) yield* call(context.messages.offerHeld(queue, limit, context.now));
    const { messages } = yield* takeMessages(context, { queue, limit, visibleFor: leaseSeconds * 1000, attemptId: undefined, deadLetters: false });
    if (anyHeld) yield* call(context.messages.holdUntaken(queue, context.now));
    const ledger = this.ledgerOf(context);
    const taken: ReplayMessage[] = [];
    for (const message of messages) {
      yield* call(ledger.lease(message.id));
      const content = yield* call(context.messages.content(message));
      const attempt = yield* call(ledger.attempt(message.id));
      const attributes = content.attributes === null ? undefined : (JSON.parse(content.attributes) as MessageAttributes);
      taken.push({
        id: message.id,
        messageId: content.message_id,
        body: content.body,
        attributes,
        traceHeader: content.trace_header ?? undefined,
        groupId: message.group_id ?? undefined,
        deduplicationId: content.deduplication_id ?? undefined,
        size: payloadSize(content.body, attributes),
        // A held message is a client's send the region may have taken when it was stored.
        mayBeInRegionSince: attempt.unansweredAt ?? (attempt.held ? content.sent_at : undefined),
        receipt: context.receipts.encode({ queueId: queue.id, messageId: message.id, nonce: message.receipt_nonce! }),
      });
    }
    return taken;
  }

  /** Deletes messages the region acknowledged, as DeleteMessage would with their receipts. */
  handedOver(queueName: string, messages: readonly ReplayMessage[]): Promise<void> {
    return this.eachReceipt(queueName, messages, (context, queue, message) => deleteOne(context, queue, message.receipt));
  }

  /**
   * Makes messages visible again after `seconds` (0: at once), as ChangeMessageVisibility would with
   * their receipts; held messages given back stay held. A message no longer in this take's hands is
   * left as it is.
   */
  giveBack(queueName: string, messages: readonly ReplayMessage[], seconds = 0): Promise<void> {
    return this.eachReceipt(queueName, messages, (context, queue, message) => changeVisibilityOne(context, queue, message.receipt, seconds));
  }

  /**
   * The region may have taken these messages without answering: remembered, with the first such
   * time, and held for the replay (no receive at the edge takes them; given back, they stay held).
   */
  unanswered(messages: readonly ReplayMessage[]): Promise<void> {
    return this.engine.transact('', (context) => this.remembered(context, messages));
  }

  /**
   * Makes the messages the replay had taken when it last stopped (the shim stopped or crashed, or
   * the node that replayed before this one is gone) visible again, so that the replay resumes at
   * once rather than after their visibility timeout. A message deleted ends its lease.
   */
  releaseLeases(): Promise<number> {
    return this.engine.transact('', (context) => this.released(context));
  }

  private *remembered(context: SqsContext, messages: readonly ReplayMessage[]): Step<void> {
    const ledger = this.ledgerOf(context);
    for (const message of messages) {
      yield* call(ledger.unanswered(message.id, context.now));
      yield* call(context.messages.holdForReplay(message.id));
    }
  }

  private *released(context: SqsContext): Step<number> {
    let released = 0;
    const ledger = this.ledgerOf(context);
    const queues = yield* call(context.queues.all());
    for (const id of yield* call(ledger.leased())) {
      const message = yield* call(context.messages.byId(id));
      const queue = message && queues.find((candidate) => candidate.id === message.queue_id);
      if (message && queue && message.visible_at > context.now) {
        yield* call(context.messages.setVisibleAt(queue, message, context.now, context.now));
        context.messagesAvailable(queue);
        released += 1;
      }
    }
    yield* call(ledger.clearLeases());
    return released;
  }

  /** Runs `work` for each message in one transaction; a message it refuses (gone, taken since) is skipped. */
  private async eachReceipt(queueName: string, messages: readonly ReplayMessage[], work: (context: SqsContext, queue: Queue, message: ReplayMessage) => Step<void>): Promise<void> {
    if (messages.length === 0) return;
    await this.engine.transact('', function* (context) {
      const queue = yield* call(context.queues.byName(queueName));
      if (!queue) return;
      for (const message of messages) {
        try {
          yield* work(context, queue, message);
        } catch (error) {
          if (!(error instanceof SqsError)) throw error;
        }
      }
    });
  }
}
