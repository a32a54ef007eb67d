import type { Logger } from 'pino';

/** What the HTTP front tells the activity report about each SQS request it answers. */
export interface ActivityRecorder {
  answered(action: string, output: Record<string, unknown>): void;
  /** `action` is undefined when the request failed before its action was known (e.g. a bad signature). */
  failed(action: string | undefined, code: string): void;
}

/** One recorder that tells each of several (the activity report, the metrics). */
export function tellEach(...recorders: readonly ActivityRecorder[]): ActivityRecorder {
  return {
    answered: (action, output) => recorders.forEach((recorder) => recorder.answered(action, output)),
    failed: (action, code) => recorders.forEach((recorder) => recorder.failed(action, code)),
  };
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

  answered(action: string, output: Record<string, unknown>): void {
    this.requests.set(action, (this.requests.get(action) ?? 0) + 1);
    switch (action) {
      case 'SendMessage':
        this.sent += 1;
        break;
      case 'SendMessageBatch':
        this.sent += countOf(output.Successful);
        break;
      case 'ReceiveMessage':
        this.received += countOf(output.Messages);
        break;
      case 'DeleteMessage':
        this.deleted += 1;
        break;
      case 'DeleteMessageBatch':
        this.deleted += countOf(output.Successful);
        break;
    }
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
    answered: (action, output) => counter.answered(action, output),
    failed: (action, code) => counter.failed(action, code),
    stop() {
      clearInterval(timer);
      report();
    },
  };
}
