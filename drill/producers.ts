import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { stageTaskId, type Task } from '../functions/src/runtime/task.js';
import { payments } from '../functions/src/workflows/payments.js';
import type { PaymentMix, PlannedPayment } from './payments-mix.js';

/** One payment a producer sent, and how the send ended. */
export interface SentPayment {
  readonly payment: PlannedPayment;
  readonly sentAt: number;
  /** When the send was acknowledged or given up on; undefined while it is in flight. */
  settledAt?: number;
  acknowledged: boolean;
  /** Why it was not acknowledged, after the SDK's retries. */
  error?: string;
}

export interface ProducerTarget {
  /** An SQS endpoint: the edge shim, or (baseline) the region through the fault proxy. */
  readonly endpoint: string;
  readonly region: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** The payments workflow's first queue at that endpoint. */
  readonly queueUrl: string;
}

/**
 * How a shop's client talks to SQS: the SDK's default retries (3 attempts, standard mode) and a
 * 10 s request timeout, longer than the edge's own upstream timeout (5 s) so that the edge, not the
 * client, decides what happens to a send the region does not answer.
 */
const CLIENT_REQUEST_TIMEOUT_MS = 10_000;
const CLIENT_MAX_ATTEMPTS = 3;
/** Sends in flight at most; beyond it the schedule waits (a client's connection pool would). */
const MAX_IN_FLIGHT = 500;
const TICK_MS = 20;

/** The payments workflow's first task for a payment, as a shop submits it: grouped by account, deduplicated by task id. */
export function paymentTask(payment: PlannedPayment): Task {
  const stage = payments.stages[0]!.name;
  const { kind: _kind, ...request } = payment;
  return { taskId: stageTaskId(payment.paymentId, stage), workflow: payments.name, workflowId: payment.paymentId, stage, group: payment.account, input: request };
}

/**
 * Producers sending payments at a steady rate, open loop: payment n is sent at start + n / rate
 * whether or not the earlier ones were answered, as shops keep taking payments whatever the
 * network does. A send that fails after the SDK's retries is recorded, not sent again.
 */
export class Producers {
  readonly sent: SentPayment[] = [];
  private readonly client: SQSClient;
  private readonly inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private startedAt = 0;

  constructor(
    private readonly target: ProducerTarget,
    private readonly mix: PaymentMix,
    private readonly ratePerSecond: number,
  ) {
    if (!(ratePerSecond > 0)) throw new Error(`the send rate must be above 0, not ${ratePerSecond}`);
    this.client = new SQSClient({
      endpoint: target.endpoint,
      region: target.region,
      credentials: target.credentials,
      maxAttempts: CLIENT_MAX_ATTEMPTS,
      // This SDK only warns about a request past requestTimeout unless throwOnRequestTimeout is set.
      requestHandler: { requestTimeout: CLIENT_REQUEST_TIMEOUT_MS, connectionTimeout: CLIENT_REQUEST_TIMEOUT_MS, throwOnRequestTimeout: true },
    });
  }

  acknowledged = 0;

  start(): void {
    this.startedAt = Date.now();
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  /** Stops sending and waits for the sends in flight to be answered or given up on. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
  }

  close(): void {
    clearInterval(this.timer);
    this.client.destroy();
  }

  private tick(): void {
    const due = Math.floor(((Date.now() - this.startedAt) / 1000) * this.ratePerSecond) + 1;
    while (this.sent.length < due && this.inFlight.size < MAX_IN_FLIGHT) this.send(this.mix.next());
  }

  private send(payment: PlannedPayment): void {
    const record: SentPayment = { payment, sentAt: Date.now(), acknowledged: false };
    this.sent.push(record);
    const task = paymentTask(payment);
    const sending = this.client
      .send(new SendMessageCommand({ QueueUrl: this.target.queueUrl, MessageBody: JSON.stringify(task), MessageGroupId: task.group, MessageDeduplicationId: task.taskId }))
      .then(
        () => {
          record.acknowledged = true;
          this.acknowledged += 1;
        },
        (error: unknown) => {
          record.error = (error as Error).name === 'Error' ? (error as Error).message : `${(error as Error).name}: ${(error as Error).message}`;
        },
      )
      .finally(() => {
        record.settledAt = Date.now();
        this.inFlight.delete(sending);
      });
    this.inFlight.add(sending);
  }
}
