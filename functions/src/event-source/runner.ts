/**
 * Runs a workflow's agents against any SQS endpoint (AWS, the emulator, the edge shim) with the
 * semantics of Lambda's SQS event source mapping: long polling, batches of up to `batchSize`, partial
 * batch responses, a maximum concurrency per stage, and the queue's own visibility timeout and
 * redrive policy deciding when a failed message is retried or dead-lettered. Unlike Lambda it does
 * not scale its polling down after function errors.
 */
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { Logger } from 'pino';
import { holdfastLogger } from '../runtime/log.js';
import type { StageDefinition, WorkflowDefinition } from '../workflow-definition.js';
import type { AwsConnection, StageQueues } from './connection.js';
import { functionIdentity, invocationInfo, type FunctionIdentity } from './context.js';
import { inProcessInvoker, type Invoker, type SqsHandler } from './invoker.js';
import { stageEnvironment } from './lambda-environment.js';
import { failedMessageIds, sqsEvent, type EventSource } from './sqs-event.js';
import { workerInvoker } from './worker-invoker.js';

export type { AwsConnection, StageQueues } from './connection.js';
export type { SqsHandler } from './invoker.js';

export interface LocalRunnerOptions {
  readonly workflow: WorkflowDefinition;
  /** Where the queues are; handlers run from their entry get it through their environment too. */
  readonly aws: AwsConnection;
  /** Client to poll with instead of one built from `aws`; the caller keeps ownership of it. */
  readonly sqs?: SQSClient;
  /** Queue URLs by stage name. */
  readonly queues: Readonly<Record<string, StageQueues>>;
  /**
   * Handlers given as functions, by stage name; they run in this process. Any other stage loads
   * `handler` from its entry in a worker thread of its own, with `environment` as its process.env.
   */
  readonly handlers?: Readonly<Record<string, SqsHandler>>;
  /** Variables every stage's function gets (tables, gateway URL, ...); NEXT_QUEUE_URL is set per stage. */
  readonly environment?: Readonly<Record<string, string>>;
  /** Directory the stage entries are relative to; the repository root by default. */
  readonly root?: string;
  /** Long-poll wait; 20 s (the maximum, as Lambda polls) by default. */
  readonly waitTimeSeconds?: number;
  readonly logger?: Logger;
  /**
   * Loads every stage's handler before returning, as Lambda initializes a provisioned execution
   * environment: a handler that cannot load fails the start, and the first batch does not wait.
   */
  readonly initialize?: boolean;
  /** Sets everything up but polls only once `resume()` is called (a warm standby). */
  readonly paused?: boolean;
  /** Told what the runner does, for a supervisor: its polls, the batches it holds, timeouts. */
  readonly onEvent?: (event: RunnerEvent) => void;
}

/** A message a batch holds: enough to give it back to its queue. */
export interface HeldMessage {
  readonly messageId: string;
  readonly receiptHandle: string;
}

export type RunnerEvent =
  /** The stage's first ReceiveMessage is about to be sent. */
  | { readonly type: 'polling'; readonly stage: string }
  /** Messages received; their invocation's in-progress work expires at `deadline` (epoch ms). */
  | { readonly type: 'batch-received'; readonly stage: string; readonly batchId: string; readonly deadline: number; readonly messages: readonly HeldMessage[] }
  /** The batch is over: `done` messages handled and deleted, `deadLettered` moved, `left` still in flight. */
  | {
      readonly type: 'batch-done';
      readonly stage: string;
      readonly batchId: string;
      readonly done: number;
      readonly deadLettered: number;
      readonly left: readonly HeldMessage[];
    }
  /** The handler outran the stage's timeout; unlike Lambda the runner cannot stop it. */
  | { readonly type: 'timed-out'; readonly stage: string; readonly batchId: string; readonly timeoutSeconds: number };

export interface StopOptions {
  /**
   * Tells the invocations in flight that their deadline is this (epoch ms) if it is earlier: a
   * handler that honours its remaining time (as the agent runtime does) starts no further record
   * and answers the rest as batch item failures.
   */
  readonly invocationDeadline?: number;
}

export interface LocalRunner {
  /** Starts polling a runner started `paused`. */
  resume(): void;
  /** Stops polling, lets in-flight batches finish (deleting what succeeded), then releases workers. */
  stop(options?: StopOptions): Promise<void>;
}

const REPOSITORY_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const RECEIVE_RETRY_DELAY_MS = 1000;

interface StageRuntime {
  readonly stage: StageDefinition;
  readonly queues: StageQueues;
  readonly source: EventSource;
  readonly identity: FunctionIdentity;
  readonly invoker: Invoker;
  /** Set when the queue has no redrive policy of its own: the runner moves exhausted messages. */
  readonly redriveByRunner: boolean;
}

function queueAccountId(queueArn: string): string {
  const accountId = queueArn.split(':')[4];
  if (!accountId) throw new Error(`unexpected queue ARN ${queueArn}`);
  return accountId;
}

class InvocationTimeoutError extends Error {
  override readonly name = 'InvocationTimeoutError';
}

function withTimeout<T>(work: Promise<T>, timeoutSeconds: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new InvocationTimeoutError(`Task timed out after ${timeoutSeconds.toFixed(2)} seconds`)), timeoutSeconds * 1000);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export async function startLocalRunner(options: LocalRunnerOptions): Promise<LocalRunner> {
  const { workflow, aws } = options;
  for (const stage of workflow.stages) {
    if (!options.queues[stage.name]) throw new Error(`no queues given for stage ${stage.name} of workflow ${workflow.name}`);
    if (stage.batchSize < 1 || stage.batchSize > 10) throw new Error(`stage ${stage.name}: batchSize must be 1 to 10 for a FIFO queue`);
  }
  const logger = options.logger ?? holdfastLogger('local-runner', process.env.LOG_LEVEL ?? 'info');
  const sqs = options.sqs ?? new SQSClient({ region: aws.region, ...(aws.endpoint && { endpoint: aws.endpoint }), ...(aws.credentials && { credentials: aws.credentials }) });
  const polling = new AbortController();
  const report = options.onEvent ?? (() => {});
  /** Invocations in flight, by request id, and the latest deadline one may have. */
  const invocations = new Map<string, StageRuntime>();
  let deadlineCap = Infinity;

  const runtimes: StageRuntime[] = [];
  try {
    for (const stage of workflow.stages) {
      const queues = options.queues[stage.name]!;
      const { Attributes } = await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: queues.queueUrl, AttributeNames: ['QueueArn', 'RedrivePolicy', 'VisibilityTimeout'] }),
      );
      const queueArn = Attributes?.QueueArn;
      if (!queueArn) throw new Error(`GetQueueAttributes gave no QueueArn for ${queues.queueUrl}`);
      const visibilityTimeout = Number(Attributes?.VisibilityTimeout);
      if (visibilityTimeout < stage.timeoutSeconds) {
        // Lambda refuses such an event source mapping; the runner only warns, so that tests may retry fast.
        logger.warn(
          { stage: stage.name },
          `Queue visibility timeout: ${visibilityTimeout} seconds is less than Function timeout: ${stage.timeoutSeconds} seconds (Lambda would refuse this mapping)`,
        );
      }
      const identity = functionIdentity({ functionName: `${workflow.name}-${stage.name}`, region: aws.region, accountId: queueAccountId(queueArn), memoryMb: stage.memoryMb });
      const given = options.handlers?.[stage.name];
      runtimes.push({
        stage,
        queues,
        source: { queueArn, region: aws.region },
        identity,
        invoker: given
          ? inProcessInvoker(given)
          : workerInvoker(resolve(options.root ?? REPOSITORY_ROOT, stage.entry), stageEnvironment({ ...options, stage, identity })),
        redriveByRunner: !Attributes?.RedrivePolicy,
      });
    }
    if (options.initialize) await Promise.all(runtimes.map((runtime) => runtime.invoker.initialize()));
  } catch (error) {
    await Promise.all(runtimes.map((runtime) => runtime.invoker.close()));
    if (!options.sqs) sqs.destroy();
    throw error;
  }

  /** Moves a message that exhausted its receives to the dead-letter queue, as a redrive policy would. */
  async function redrive(runtime: StageRuntime, message: Message): Promise<void> {
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: runtime.queues.deadLetterQueueUrl,
        MessageBody: message.Body,
        MessageAttributes: message.MessageAttributes,
        MessageGroupId: message.Attributes?.MessageGroupId,
        MessageDeduplicationId: message.Attributes?.MessageGroupId && (message.Attributes.MessageDeduplicationId ?? message.MessageId),
      }),
    );
    await sqs.send(new DeleteMessageCommand({ QueueUrl: runtime.queues.queueUrl, ReceiptHandle: message.ReceiptHandle }));
    logger.warn({ stage: runtime.stage.name, messageId: message.MessageId }, 'moved a message to the dead-letter queue after maxReceiveCount receives');
  }

  /** Deletes what a batch processed; resolves to the ids deleted. */
  async function deleteMessages(runtime: StageRuntime, messages: readonly Message[]): Promise<string[]> {
    if (messages.length === 0) return [];
    const { Successful, Failed } = await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: runtime.queues.queueUrl,
        Entries: messages.map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle })),
      }),
    );
    for (const failure of Failed ?? []) {
      logger.error({ stage: runtime.stage.name, code: failure.Code, message: failure.Message }, 'could not delete a processed message; it will be delivered again');
    }
    return (Successful ?? []).map((entry) => messages[Number(entry.Id)]!.MessageId!);
  }

  async function processBatch(runtime: StageRuntime, received: readonly Message[]): Promise<void> {
    const { stage } = runtime;
    // Made at receipt, so the deadline reported with the batch bounds all of its work.
    const created = invocationInfo(runtime.identity, stage.timeoutSeconds);
    const info = { ...created, deadline: Math.min(created.deadline, deadlineCap) };
    const held = received.map((message) => ({ messageId: message.MessageId!, receiptHandle: message.ReceiptHandle! }));
    report({ type: 'batch-received', stage: stage.name, batchId: info.awsRequestId, deadline: info.deadline, messages: held });
    const done = new Set<string>();
    const deadLettered = new Set<string>();
    try {
      const exhausted = (message: Message) => runtime.redriveByRunner && Number(message.Attributes?.ApproximateReceiveCount) > stage.maxReceiveCount;
      for (const message of received.filter(exhausted)) {
        await redrive(runtime, message);
        deadLettered.add(message.MessageId!);
      }
      const messages = received.filter((message) => !exhausted(message));
      if (messages.length === 0) return;

      const event = sqsEvent(messages, runtime.source);
      let failed: Set<string>;
      invocations.set(info.awsRequestId, runtime);
      try {
        const response = await withTimeout(runtime.invoker.invoke(event, info), stage.timeoutSeconds);
        failed = failedMessageIds(response === undefined ? undefined : JSON.parse(response), event);
        if (failed.size > 0) logger.warn({ stage: stage.name, requestId: info.awsRequestId, failed: failed.size, of: messages.length }, 'batch item failures');
      } catch (error) {
        failed = new Set(messages.map((message) => message.MessageId!));
        if (error instanceof InvocationTimeoutError) report({ type: 'timed-out', stage: stage.name, batchId: info.awsRequestId, timeoutSeconds: stage.timeoutSeconds });
        logger.warn({ stage: stage.name, requestId: info.awsRequestId, err: error }, 'invocation failed; the whole batch returns to the queue');
      } finally {
        invocations.delete(info.awsRequestId);
      }
      for (const id of await deleteMessages(runtime, messages.filter((message) => !failed.has(message.MessageId!)))) done.add(id);
    } finally {
      const left = held.filter((message) => !done.has(message.messageId) && !deadLettered.has(message.messageId));
      report({ type: 'batch-done', stage: stage.name, batchId: info.awsRequestId, done: done.size, deadLettered: deadLettered.size, left });
    }
  }

  async function poll(runtime: StageRuntime): Promise<void> {
    const { stage } = runtime;
    const inFlight = new Set<Promise<void>>();
    report({ type: 'polling', stage: stage.name });
    while (!polling.signal.aborted) {
      while (inFlight.size >= stage.maxConcurrency) await Promise.race(inFlight);
      let messages: Message[];
      try {
        const received = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: runtime.queues.queueUrl,
            MaxNumberOfMessages: stage.batchSize,
            WaitTimeSeconds: options.waitTimeSeconds ?? 20,
            MessageSystemAttributeNames: ['All'],
            MessageAttributeNames: ['All'],
          }),
          { abortSignal: polling.signal },
        );
        messages = received.Messages ?? [];
      } catch (error) {
        if (polling.signal.aborted) break;
        logger.error({ stage: stage.name, err: error }, 'ReceiveMessage failed; retrying');
        await sleep(RECEIVE_RETRY_DELAY_MS, undefined, { signal: polling.signal }).catch(() => {});
        continue;
      }
      if (messages.length === 0) continue;
      const batch = processBatch(runtime, messages)
        .catch((error: unknown) => logger.error({ stage: stage.name, err: error }, 'batch handling failed'))
        .finally(() => inFlight.delete(batch));
      inFlight.add(batch);
    }
    await Promise.all(inFlight);
  }

  let pollers: Promise<void>[] | undefined;
  const resume = () => {
    if (!polling.signal.aborted) pollers ??= runtimes.map(poll);
  };
  if (!options.paused) resume();
  let stopped: Promise<void> | undefined;
  return {
    resume,
    stop(stopOptions = {}) {
      const { invocationDeadline } = stopOptions;
      if (invocationDeadline !== undefined) {
        deadlineCap = Math.min(deadlineCap, invocationDeadline);
        for (const [awsRequestId, runtime] of invocations) runtime.invoker.shortenDeadline(awsRequestId, deadlineCap);
      }
      stopped ??= (async () => {
        polling.abort();
        await Promise.all(pollers ?? []);
        await Promise.all(runtimes.map((runtime) => runtime.invoker.close()));
        if (!options.sqs) sqs.destroy();
      })();
      return stopped;
    },
  };
}
