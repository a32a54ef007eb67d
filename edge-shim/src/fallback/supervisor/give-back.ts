import { ChangeMessageVisibilityBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from 'pino';
import type { AwsConnection, HeldMessage } from '../../../../functions/src/edge/index.js';
import type { MessagesReturned } from './events.js';

/** ChangeMessageVisibility errors that mean the message is no longer held through that receipt. */
const NO_LONGER_HELD = new Set(['ReceiptHandleIsInvalid', 'MessageNotInflight', 'AWS.SimpleQueueService.MessageNotInflight']);

/**
 * When a dead agent's batch should be visible again, in seconds: at the batch's deadline, when its
 * in-progress idempotency records expire. A message visible earlier would only be refused as in
 * progress and then wait out its whole visibility timeout.
 */
export function secondsToDeadline(deadline: number, now: number): number {
  return Math.max(0, Math.ceil((deadline - now) / 1000));
}

/**
 * Gives messages the agents held back to their queues at the shim, for one run of the agents. One
 * it cannot give back returns when its visibility timeout ends.
 */
export class GiveBack {
  private readonly sqs: SQSClient;
  /** Give-backs under way; close() waits for them. */
  private readonly pending = new Set<Promise<void>>();

  constructor(
    shim: AwsConnection & { readonly endpoint: string },
    private readonly logger: Logger,
    private readonly onReturned: (returned: MessagesReturned) => void,
  ) {
    this.sqs = new SQSClient({ endpoint: shim.endpoint, region: shim.region, ...(shim.credentials && { credentials: shim.credentials }) });
  }

  /** Makes a stage's messages visible on its queue again in `visibleInSeconds` (0: at once). */
  messages(stage: string, queueUrl: string, messages: readonly HeldMessage[], visibleInSeconds: number): void {
    const work = (async () => {
      let returned = 0;
      for (let start = 0; start < messages.length; start += 10) {
        const chunk = messages.slice(start, start + 10);
        try {
          const { Failed = [] } = await this.sqs.send(
            new ChangeMessageVisibilityBatchCommand({
              QueueUrl: queueUrl,
              Entries: chunk.map((message, index) => ({ Id: String(index), ReceiptHandle: message.receiptHandle, VisibilityTimeout: visibleInSeconds })),
            }),
          );
          returned += chunk.length - Failed.length;
          for (const failure of Failed.filter((entry) => !NO_LONGER_HELD.has(entry.Code ?? ''))) {
            this.logger.warn({ stage, code: failure.Code, message: failure.Message }, 'could not give a message back; it returns when its visibility timeout ends');
          }
        } catch (error) {
          this.logger.error({ stage, err: error }, 'could not give messages back; they return when their visibility timeout ends');
        }
      }
      if (returned > 0) {
        this.logger.info({ stage, count: returned, visibleInSeconds }, `gave ${returned} held message(s) back to the queue`);
        this.onReturned({ stage, count: returned, visibleInSeconds });
      }
    })();
    this.pending.add(work);
    void work.finally(() => this.pending.delete(work));
  }

  /** Waits for every give-back under way, those started meanwhile too, then closes the client. */
  async close(): Promise<void> {
    while (this.pending.size > 0) await Promise.all(this.pending);
    this.sqs.destroy();
  }
}
