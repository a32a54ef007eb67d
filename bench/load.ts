import { Worker } from 'node:worker_threads';
import type { Credentials } from './sign.js';

/** A request ready to send: signed once, sent many times (see README in run.ts on why). */
export interface PreparedRequest {
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** What one worker thread runs: closed-loop clients, each waiting for its answer before the next request. */
export interface ScenarioSpec {
  readonly origin: string;
  readonly clients: number;
  readonly durationMs?: number;
  /** Stop once this many messages were acknowledged. */
  readonly untilMessages?: number;
  /** Fixed requests, sent in rotation (or each once, with `once`). */
  readonly requests?: readonly PreparedRequest[];
  /** Send each fixed request once, in order, the clients taking the next one not yet sent; stop when all went. */
  readonly once?: boolean;
  /** Record when each request started and ended (see ScenarioResult.timeline). */
  readonly timeline?: boolean;
  /**
   * Send the fixed requests' inputs through an AWS SDK v3 client (`action` names the command), as
   * an application would, instead of sending the prepared requests themselves.
   */
  readonly sdk?: boolean;
  readonly messagesPerRequest?: number;
  /** Sign every fixed request anew, as a client would, instead of reusing its prepared signature. */
  readonly signEach?: boolean;
  readonly action?: string;
  /** ReceiveMessage then DeleteMessageBatch of what came back. */
  readonly receive?: { readonly request: PreparedRequest; readonly queueUrl: string; readonly measure: 'round-trip' | 'receive' };
  readonly region?: string;
  readonly credentials?: Credentials;
}

/** What a generator thread counts, and a scenario adds up. */
interface Totals {
  readonly requests: number;
  readonly messages: number;
  readonly errors: number;
  readonly errorSample?: string;
  readonly emptyReceives: number;
  readonly elapsedMs: number;
}

export interface WorkerResult extends Totals {
  readonly latencies: Float64Array;
  readonly elu: number;
  readonly timeline?: Float64Array;
}

export interface ScenarioResult extends Totals {
  readonly requestsPerSecond: number;
  readonly messagesPerSecond: number;
  /** Milliseconds. */
  readonly p50: number;
  readonly p99: number;
  /** Event-loop utilisation of the busiest generator thread: near 1, the generator was the limit. */
  readonly generatorLoad: number;
  /** Every latency, sorted, in milliseconds. */
  readonly latencies: Float64Array;
  /**
   * With `timeline`: every request in the order of its thread, as triples of start and end (epoch
   * milliseconds) and 1 if it succeeded, 0 if it failed.
   */
  readonly timeline?: Float64Array;
}

function percentile(sorted: Float64Array, fraction: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)]!;
}

/** One result from parts measured side by side (elapsed: the longest) or one after another (the sum). */
export function summarize(parts: readonly WorkerResult[], elapsedMs: number): ScenarioResult {
  const latencies = new Float64Array(parts.reduce((sum, part) => sum + part.latencies.length, 0));
  let offset = 0;
  for (const part of parts) {
    latencies.set(part.latencies, offset);
    offset += part.latencies.length;
  }
  latencies.sort();
  const sum = (pick: (part: WorkerResult) => number) => parts.reduce((total, part) => total + pick(part), 0);
  const requests = sum((part) => part.requests);
  const messages = sum((part) => part.messages);
  const timelines = parts.flatMap((part) => (part.timeline ? [part.timeline] : []));
  return {
    requests,
    messages,
    errors: sum((part) => part.errors),
    errorSample: parts.find((part) => part.errorSample)?.errorSample,
    emptyReceives: sum((part) => part.emptyReceives),
    elapsedMs,
    requestsPerSecond: (requests * 1000) / elapsedMs,
    messagesPerSecond: (messages * 1000) / elapsedMs,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    generatorLoad: Math.max(...parts.map((part) => part.elu)),
    latencies,
    ...(timelines.length > 0 ? { timeline: concat(timelines) } : {}),
  };
}

function concat(arrays: readonly Float64Array[]): Float64Array {
  const all = new Float64Array(arrays.reduce((sum, array) => sum + array.length, 0));
  let offset = 0;
  for (const array of arrays) {
    all.set(array, offset);
    offset += array.length;
  }
  return all;
}

/** The results of measurements taken one after another, as one. */
export function inSequence(results: readonly ScenarioResult[]): ScenarioResult {
  return summarize(
    results.map((result) => ({ ...result, elu: result.generatorLoad })),
    results.reduce((sum, result) => sum + result.elapsedMs, 0),
  );
}

/** Worker threads that generate load; clients are spread over them. */
export class LoadGenerator {
  private readonly workers: Worker[];

  constructor(threads: number) {
    this.workers = Array.from({ length: threads }, () => new Worker(new URL('./load-worker.mjs', import.meta.url)));
  }

  async run(spec: ScenarioSpec): Promise<ScenarioResult> {
    const shares = this.workers.map((_, index) => Math.floor(spec.clients / this.workers.length) + (index < spec.clients % this.workers.length ? 1 : 0));
    const results = await Promise.all(
      this.workers.flatMap((worker, index) => {
        const clients = shares[index]!;
        if (clients === 0) return [];
        const untilMessages = spec.untilMessages === undefined ? undefined : Math.ceil((spec.untilMessages * clients) / spec.clients);
        // Requests sent once are dealt out to the threads in proportion to their clients.
        const first = shares.slice(0, index).reduce((sum, share) => sum + share, 0);
        const requests = spec.once && spec.requests ? spec.requests.filter((_, request) => request % spec.clients >= first && request % spec.clients < first + clients) : spec.requests;
        return [
          new Promise<WorkerResult>((resolve, reject) => {
            const onError = (error: Error) => reject(error);
            worker.once('error', onError);
            worker.once('message', (result: WorkerResult) => {
              worker.off('error', onError);
              resolve(result);
            });
            worker.postMessage({ ...spec, clients, untilMessages, requests });
          }),
        ];
      }),
    );
    return summarize(results, Math.max(...results.map((result) => result.elapsedMs)));
  }

  /** Ends the scenario under way now: each client finishes the request it is waiting for, and no other. */
  stop(): void {
    for (const worker of this.workers) worker.postMessage({ stop: true });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.terminate()));
  }
}
