import type { Context, SQSEvent } from 'aws-lambda';
import { lambdaContext, type InvocationInfo } from './context.js';

/** A Lambda handler for SQS events; it may return a partial batch response. */
export type SqsHandler = (event: SQSEvent, context: Context) => unknown;

/** Runs one stage's handler; `invoke` resolves to the handler's JSON-serialized response. */
export interface Invoker {
  invoke(event: SQSEvent, info: InvocationInfo): Promise<string | undefined>;
  /**
   * Moves an invocation's deadline earlier while it runs: its context reports less time left from
   * then on, so a handler that honours it starts no further work (a runner being stopped).
   */
  shortenDeadline(awsRequestId: string, deadline: number): void;
  /** Loads the handler now rather than at the first invocation; rejects if it cannot be loaded. */
  initialize(): Promise<void>;
  close(): Promise<void>;
}

/** Invocation info whose deadline can be moved while the handler runs; its context reads it live. */
export type LiveInvocationInfo = Omit<InvocationInfo, 'deadline'> & { deadline: number };

/** The invocations of one invoker in flight, by request id, with deadlines that can be shortened. */
export class LiveInvocations {
  private readonly running = new Map<string, LiveInvocationInfo>();

  begin(info: InvocationInfo): LiveInvocationInfo {
    const live = { ...info };
    this.running.set(info.awsRequestId, live);
    return live;
  }

  end(awsRequestId: string): void {
    this.running.delete(awsRequestId);
  }

  shorten(awsRequestId: string, deadline: number): void {
    const live = this.running.get(awsRequestId);
    if (live) live.deadline = Math.min(live.deadline, deadline);
  }
}

/** Lambda serializes a handler's response as JSON; `undefined` stays absent. */
export function serializeResponse(response: unknown): string | undefined {
  return response === undefined ? undefined : JSON.stringify(response);
}

/** Runs a handler given as a function in this process (tests and embedding). */
export function inProcessInvoker(handler: SqsHandler): Invoker {
  const invocations = new LiveInvocations();
  return {
    async invoke(event, info) {
      const live = invocations.begin(info);
      try {
        return serializeResponse(await handler(event, lambdaContext(live)));
      } finally {
        invocations.end(info.awsRequestId);
      }
    },
    shortenDeadline: (awsRequestId, deadline) => invocations.shorten(awsRequestId, deadline),
    initialize: async () => {},
    close: async () => {},
  };
}
