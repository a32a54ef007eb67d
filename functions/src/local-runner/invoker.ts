import type { Context, SQSEvent } from 'aws-lambda';
import { lambdaContext, type InvocationInfo } from './context.js';

/** A Lambda handler for SQS events; it may return a partial batch response. */
export type SqsHandler = (event: SQSEvent, context: Context) => unknown;

/** Runs one stage's handler; `invoke` resolves to the handler's JSON-serialized response. */
export interface Invoker {
  invoke(event: SQSEvent, info: InvocationInfo): Promise<string | undefined>;
  close(): Promise<void>;
}

/** Lambda serializes a handler's response as JSON; `undefined` stays absent. */
export function serializeResponse(response: unknown): string | undefined {
  return response === undefined ? undefined : JSON.stringify(response);
}

/** Runs a handler given as a function in this process (tests and embedding). */
export function inProcessInvoker(handler: SqsHandler): Invoker {
  return {
    invoke: async (event, info) => serializeResponse(await handler(event, lambdaContext(info))),
    close: async () => {},
  };
}
