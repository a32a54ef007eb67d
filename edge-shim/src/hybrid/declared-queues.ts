import { readFileSync } from 'node:fs';
import { ConfigError } from '../config.js';
import { createQueue } from '../sqs/actions/create-queue.js';
import { setQueueAttributes } from '../sqs/actions/set-queue-attributes.js';
import type { QueueAttributes } from '../sqs/queue-attributes.js';
import { queueUrl } from '../sqs/context.js';
import type { SqsService } from '../sqs/service.js';
import { mapArns, queueNameOfArn } from './region/mirror.js';
import { call } from '../sqs/storage/step.js';

/** A queue to know at the edge before the region was ever reached. */
export interface DeclaredQueue {
  readonly name: string;
  readonly attributes: QueueAttributes;
  /** Its replay's priority: when the path to the region has room for only some, higher goes first (0 by default). */
  readonly priority?: number;
}

/**
 * Reads the queues file: `{ "queues": [{ "name": "orders.fifo", "attributes": { "FifoQueue": "true", ... }, "priority": 10 }] }`,
 * attributes as CreateQueue takes them; a redrive policy may name a dead-letter queue by its ARN in
 * any account and region (only the name counts), listed before or after it. `priority` (a whole
 * number, 0 by default) orders the replay when the path to the region is short of room.
 */
export function readQueuesFile(file: string): DeclaredQueue[] {
  let document: unknown;
  try {
    document = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`cannot read the queues file ${file}: ${(error as Error).message}`);
  }
  const list = (document as { queues?: unknown } | null)?.queues;
  if (!Array.isArray(list)) throw new Error(`the queues file ${file} must hold {"queues": [{"name": ..., "attributes": {...}}]}`);
  return list.map((entry, index) => {
    const { name, attributes = {}, priority } = (entry ?? {}) as { name?: unknown; attributes?: unknown; priority?: unknown };
    const valid = typeof attributes === 'object' && attributes !== null && Object.values(attributes).every((value) => typeof value === 'string');
    if (typeof name !== 'string' || name === '' || !valid) throw new Error(`queue ${index + 1} of ${file} needs a "name" and string "attributes"`);
    if (priority !== undefined && !(Number.isInteger(priority) && Math.abs(priority as number) <= 1000)) {
      throw new Error(`queue ${name} of ${file}: "priority" must be a whole number from -1000 to 1000`);
    }
    return { name, attributes: attributes as QueueAttributes, ...(priority === undefined ? {} : { priority: priority as number }) };
  });
}

/** Dead-letter queues first: a queue's redrive policy must find its dead-letter queue at the edge. */
export function deadLettersFirst(queues: readonly DeclaredQueue[]): DeclaredQueue[] {
  const targetOf = (queue: DeclaredQueue) => {
    try {
      return String((JSON.parse(queue.attributes.RedrivePolicy ?? '{}') as { deadLetterTargetArn?: string }).deadLetterTargetArn ?? '').split(':').pop();
    } catch {
      return undefined;
    }
  };
  const ordered: DeclaredQueue[] = [];
  const visit = (queue: DeclaredQueue, path: Set<string>) => {
    if (ordered.includes(queue) || path.has(queue.name)) return;
    path.add(queue.name);
    const target = queues.find((candidate) => candidate.name === targetOf(queue));
    if (target) visit(target, path);
    ordered.push(queue);
  };
  for (const queue of queues) visit(queue, new Set());
  return ordered;
}

/**
 * A standalone shim's declared queues, in its own store at start, as ElasticMQ creates the queues of
 * its configuration: each one missing is created (dead-letter queues first), each one there is
 * brought in line with the file's attributes. The ARNs in them, of any account and region, name this
 * shim's queues of those names. A queue the store has as the other type (FIFO or standard) fails the
 * start: only deleting it can change that.
 */
export async function createDeclaredQueues(local: Pick<SqsService, 'transact'>, queues: readonly DeclaredQueue[]): Promise<void> {
  for (const queue of deadLettersFirst(queues)) {
    await local.transact('', function* (context) {
      const attributes = mapArns(queue.attributes, (arn) => {
        const name = queueNameOfArn(arn);
        return name === undefined ? arn : context.queues.arnOf(name);
      });
      const existing = yield* call(context.queues.byName(queue.name));
      if (!existing) {
        yield* createQueue(context, { QueueName: queue.name, Attributes: attributes });
        return;
      }
      if ((attributes.FifoQueue === 'true') !== existing.fifo) {
        throw new ConfigError(`the queues file declares ${queue.name} ${existing.fifo ? 'standard' : 'FIFO'}, but this shim has it as a ${existing.fifo ? 'FIFO' : 'standard'} queue`);
      }
      const { FifoQueue: _type, ...settable } = attributes;
      if (Object.entries(settable).some(([key, value]) => existing.attributes[key] !== value)) {
        yield* setQueueAttributes(context, { QueueUrl: queueUrl(context, queue), Attributes: settable });
      }
    });
  }
}
