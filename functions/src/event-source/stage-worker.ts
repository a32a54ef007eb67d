/**
 * Runs inside a worker thread: the sandbox of one stage's function, with the stage's own environment
 * and module instances, as a Lambda execution environment has.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { lambdaContext } from './context.js';
import { LiveInvocations, serializeResponse, type SqsHandler } from './invoker.js';
import type { InvocationReply, WorkerReply, WorkerRequest } from './worker-invoker.js';

const { entry } = workerData as { entry: string };
const module = (await import(pathToFileURL(entry).href)) as { handler?: unknown };
if (typeof module.handler !== 'function') throw new Error(`${entry} does not export a function named handler`);
const handler = module.handler as SqsHandler;
const port = parentPort!;
const invocations = new LiveInvocations();

port.on('message', async (request: WorkerRequest) => {
  if (request.type === 'deadline') {
    invocations.shorten(request.awsRequestId, request.deadline);
    return;
  }
  const { id, event, info } = request;
  let reply: InvocationReply;
  try {
    reply = { id, response: serializeResponse(await handler(event, lambdaContext(invocations.begin(info)))) };
  } catch (error) {
    const { name, message, stack } = error instanceof Error ? error : new Error(String(error));
    reply = { id, error: { name, message, stack } };
  } finally {
    invocations.end(info.awsRequestId);
  }
  port.postMessage(reply);
});
port.postMessage({ type: 'ready' } satisfies WorkerReply);
