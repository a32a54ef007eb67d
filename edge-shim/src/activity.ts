import type { Logger } from 'pino';
import type { RequestPath } from './backend.js';
import { queueReference } from './sqs/queues.js';

/** What the HTTP front saw of one SQS request besides its answer. */
export interface RequestFacts {
  /** Where the backend carried it out, in order; none when it was refused before (a bad signature, the access policy). */
  readonly paths: readonly RequestPath[];
  /** From the request's arrival to its answer. */
  readonly seconds: number;
}

/** What the HTTP front tells the activity report and the metrics about each SQS request it answers. */
export interface ActivityRecorder {
  answered(action: string, input: Record<string, unknown>, output: Record<string, unknown>, facts: RequestFacts): void;
  /** `action` is undefined when the request failed before its action was known (e.g. a bad signature). */
  failed(action: string | undefined, code: string, facts: RequestFacts): void;
}

/** One recorder that tells each of several (the activity report, the metrics). */
export function tellEach(...recorders: readonly ActivityRecorder[]): ActivityRecorder {
  return {
    answered: (action, input, output, facts) => recorders.forEach((recorder) => recorder.answered(action, input, output, facts)),
    failed: (action, code, facts) => recorders.forEach((recorder) => recorder.failed(action, code, facts)),
  };
}

export interface MessagesMoved {
  /** The queue the request named; undefined for a request that names none. */
  readonly queue: string | undefined;
  readonly sent: number;
  readonly received: number;
  readonly deleted: number;
}

/** The messages an answered request sent, received or deleted: the one count of the activity line and the metrics. */
export function messagesMoved(action: string, input: Record<string, unknown>, output: Record<string, unknown>): MessagesMoved {
  const queue = typeof input.QueueUrl === 'string' ? queueReference(input.QueueUrl)?.name : undefined;
  switch (action) {
    case 'SendMessage':
      return { queue, sent: 1, received: 0, deleted: 0 };
    case 'SendMessageBatch':
      return { queue, sent: countOf(output.Successful), received: 0, deleted: 0 };
    case 'ReceiveMessage':
      return { queue, sent: 0, received: countOf(output.Messages), deleted: 0 };
    case 'DeleteMessage':
      return { queue, sent: 0, received: 0, deleted: 1 };
    case 'DeleteMessageBatch':
      return { queue, sent: 0, received: 0, deleted: countOf(output.Successful) };
    default:
      return { queue, sent: 0, received: 0, deleted: 0 };
  }
}

export interface ActivitySummary {
  /** Requests answered, by action (`unknown`: failed before the action was read). */
  readonly requests: Record<string, number>;
  /** Error answers, by error code. */
  readonly errors: Record<string, number>;
  readonly messages: { readonly sent: number; readonly received: number; readonly deleted: number };
}

const countOf = (list: unknown) => (Array.isArray(list) ? list.length : 0);

/** Counts requests, errors and messages between two reports. */
export class ActivityCounter implements ActivityRecorder {
  private requests = new Map<string, number>();
  private errors = new Map<string, number>();
  private sent = 0;
  private received = 0;
  private deleted = 0;

  answered(action: string, input: Record<string, unknown>, output: Record<string, unknown>): void {
    this.requests.set(action, (this.requests.get(action) ?? 0) + 1);
    const moved = messagesMoved(action, input, output);
    this.sent += moved.sent;
    this.received += moved.received;
    this.deleted += moved.deleted;
  }

  failed(action: string | undefined, code: string): void {
    const name = action ?? 'unknown';
    this.requests.set(name, (this.requests.get(name) ?? 0) + 1);
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  /** The counts since the last call, then starts again from zero; undefined when there was no request. */
  take(): ActivitySummary | undefined {
    if (this.requests.size === 0) return undefined;
    const summary = {
      requests: Object.fromEntries(this.requests),
      errors: Object.fromEntries(this.errors),
      messages: { sent: this.sent, received: this.received, deleted: this.deleted },
    };
    this.requests = new Map();
    this.errors = new Map();
    this.sent = this.received = this.deleted = 0;
    return summary;
  }
}

export interface ActivityReport extends ActivityRecorder {
  /** Stops the timer and logs what was counted since the last line. */
  stop(): void;
}

export const ACTIVITY_INTERVAL_MS = 60_000;

/**
 * One info line per interval (a minute by default) while the shim is used, none while it is idle,
 * so that an operator can see at the default log level that it is serving and how much.
 */
export function reportActivity(logger: Logger, intervalMs = ACTIVITY_INTERVAL_MS): ActivityReport {
  const counter = new ActivityCounter();
  const report = () => {
    const summary = counter.take();
    if (!summary) return;
    const requests = Object.values(summary.requests).reduce((sum, count) => sum + count, 0);
    const errors = Object.values(summary.errors).reduce((sum, count) => sum + count, 0);
    const { sent, received, deleted } = summary.messages;
    logger.info({ activity: summary }, `activity: ${requests} requests, ${errors} errors; messages ${sent} sent, ${received} received, ${deleted} deleted`);
  };
  const timer = setInterval(report, intervalMs);
  timer.unref();
  return {
    answered: (action, input, output) => counter.answered(action, input, output),
    failed: (action, code) => counter.failed(action, code),
    stop() {
      clearInterval(timer);
      report();
    },
  };
}
