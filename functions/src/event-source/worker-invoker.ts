import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { SQSEvent } from 'aws-lambda';
import type { InvocationInfo } from './context.js';
import type { Invoker } from './invoker.js';
import { isTypeScript, tsxApiFor } from './typescript.js';

/** What the runner posts to a stage's worker: an invocation, or an earlier deadline for one in flight. */
export type WorkerRequest =
  | { readonly type: 'invoke'; readonly id: number; readonly event: SQSEvent; readonly info: InvocationInfo }
  | { readonly type: 'deadline'; readonly awsRequestId: string; readonly deadline: number };

export type InvocationReply =
  | { readonly id: number; readonly response: string | undefined }
  | { readonly id: number; readonly error: { name: string; message: string; stack?: string | undefined } };

/** What a stage's worker posts: `ready` once its handler is loaded, then one reply per invocation. */
export type WorkerReply = { readonly type: 'ready' } | InvocationReply;

// The worker starts as plain Node: it registers tsx first when it is to load TypeScript (a handler
// written in it, or this runner itself run from source), and only then.
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
const loader = workerData.tsxApi ? import(workerData.tsxApi).then(({ register }) => register()) : Promise.resolve();
loader.then(() => import(workerData.workerModule));
`;
// Beside this module, as TypeScript (run from source) or JavaScript (a build).
const workerModule = new URL(`./stage-worker.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url).href;

interface Pending {
  resolve(response: string | undefined): void;
  reject(error: Error): void;
}

interface StartedWorker {
  readonly worker: Worker;
  /** Settles when the handler is loaded, or the worker failed before that. */
  readonly ready: Promise<void>;
}

/**
 * Runs a handler module in a worker thread with its own environment. A worker that fails to start or
 * crashes fails its in-flight invocations and is started afresh on the next one, as Lambda replaces a
 * failed execution environment.
 */
export function workerInvoker(entry: string, env: Record<string, string>): Invoker {
  // Resolved now: a TypeScript handler without tsx to load it fails the runner's start, saying so.
  const typeScript = [entry, fileURLToPath(workerModule)].find(isTypeScript);
  const tsxApi = typeScript === undefined ? undefined : tsxApiFor(typeScript);
  let current: StartedWorker | undefined;
  let nextId = 0;
  const pending = new Map<number, Pending>();

  function failAll(error: Error): void {
    for (const { reject } of pending.values()) reject(error);
    pending.clear();
  }

  function start(): StartedWorker {
    const worker = new Worker(BOOTSTRAP, { eval: true, env, workerData: { entry, tsxApi, workerModule } });
    let loaded: () => void;
    let failed: (error: Error) => void;
    const ready = new Promise<void>((resolve, reject) => {
      loaded = resolve;
      failed = reject;
    });
    // Nobody may wait for it (a worker started by an invocation): its failure reaches the invocation.
    ready.catch(() => {});
    const started = { worker, ready };
    const gone = (error: Error) => {
      if (current === started) current = undefined;
      failed(error);
      failAll(error);
    };
    worker.on('message', (reply: WorkerReply) => {
      if ('type' in reply) return loaded();
      const waiter = pending.get(reply.id);
      if (!waiter) return;
      pending.delete(reply.id);
      if ('error' in reply) waiter.reject(Object.assign(new Error(reply.error.message), reply.error));
      else waiter.resolve(reply.response);
    });
    worker.on('error', gone);
    worker.on('exit', (code) => gone(new Error(`the worker running ${entry} exited with code ${code}`)));
    return started;
  }

  return {
    invoke(event, info) {
      current ??= start();
      const id = nextId++;
      const sent = new Promise<string | undefined>((resolve, reject) => pending.set(id, { resolve, reject }));
      current.worker.postMessage({ type: 'invoke', id, event, info } satisfies WorkerRequest);
      return sent;
    },
    shortenDeadline(awsRequestId, deadline) {
      current?.worker.postMessage({ type: 'deadline', awsRequestId, deadline } satisfies WorkerRequest);
    },
    initialize() {
      current ??= start();
      return current.ready;
    },
    async close() {
      const running = current;
      current = undefined;
      if (running) await running.worker.terminate();
    },
  };
}
