import type { CallOptions, Health, SqsBackend } from '../backend.js';
import { SqsError } from '../sqs/errors.js';
import { parseQueueUrl, queueReference } from '../sqs/queues.js';
import { type AccessPolicy, type ActionGroup, type KnownQueues, groupOf } from './policy.js';

type Input = Record<string, unknown>;
type Output = Record<string, unknown>;

const queueOfArn = (arn: unknown) => (typeof arn === 'string' ? arn.split(':').pop() : undefined);

/** The queue a request is about, by its QueueUrl, QueueName or the ARN a move task names. */
function queueOf(action: string, input: Input): string | undefined {
  if (typeof input.QueueUrl === 'string') return queueReference(input.QueueUrl)?.name ?? input.QueueUrl;
  if (typeof input.QueueName === 'string') return input.QueueName;
  if (action === 'StartMessageMoveTask' || action === 'ListMessageMoveTasks') return queueOfArn(input.SourceArn);
  return undefined;
}

const hasPolicy = (input: Input) => typeof input.Attributes === 'object' && input.Attributes !== null && 'Policy' in input.Attributes;

/**
 * The edge's access policy in front of whatever carries the operations out (the local store, or
 * the hybrid edge and through it the region): a request its key is not granted gets SQS's
 * AccessDenied, in the client's protocol, online and offline alike, before anything is done. What
 * lists queues shows only those the key may read. In front of a region, a queue owner other than
 * the edge's own account is refused: a client may not point the edge at another account's queues.
 */
export class AuthorizingBackend implements SqsBackend {
  constructor(
    private readonly inner: SqsBackend,
    private readonly policy: AccessPolicy,
    private readonly known: KnownQueues,
    /** The edge's own account, when queues of other accounts lie beyond it (a region): a client may name no other owner. */
    private readonly ownAccount: string | undefined,
  ) {}

  health(): Health {
    return this.inner.health();
  }

  async call(action: string, input: Input, options: CallOptions): Promise<Output> {
    const group = groupOf(action);
    // Not an SQS action: the backend answers it as such (InvalidAction).
    if (!group) return this.inner.call(action, input, options);
    const owner = input.QueueOwnerAWSAccountId;
    if (this.ownAccount !== undefined && owner !== undefined && owner !== this.ownAccount) {
      throw denied(options.principal, action, `queues of account ${String(owner)}`, 'the edge reaches only its own account\'s queues');
    }
    const queue = queueOf(action, input);
    // A queue another node of the site made a moment ago: the known queues are read again before a refusal.
    if (this.known.refresh && queue !== undefined && !this.known.knows(queue) && !this.policy.allows(options.principal, group, queue, this.known)) await this.known.refresh();
    this.check(options.principal, group, action, queue);
    if (action === 'CreateQueue' && queue !== undefined) await this.checkAdoption(options.principal, queue);
    // Setting a queue's policy is changing who may use it.
    if ((action === 'SetQueueAttributes' || action === 'CreateQueue') && hasPolicy(input)) this.check(options.principal, 'permissions', action, queue);
    if (action === 'StartMessageMoveTask' && input.DestinationArn !== undefined) this.check(options.principal, 'send', action, queueOfArn(input.DestinationArn));
    const output = await this.inner.call(action, input, options);
    if (action === 'ListQueues' || action === 'ListDeadLetterSourceQueues') return this.readableOnly(output, options.principal);
    return output;
  }

  private check(principal: string | undefined, group: ActionGroup, action: string, queue: string | undefined): void {
    if (!this.policy.allows(principal, group, queue, this.known)) {
      throw denied(principal, action, queue ?? 'any queue', `no grant of the edge's access policy allows ${group} there`);
    }
  }

  /**
   * Creating a queue that the edge does not know but the region has is adopting it (another
   * team's queue, say): only a grant that names it allows that, not one on the known queues.
   */
  private async checkAdoption(principal: string | undefined, queue: string): Promise<void> {
    if (this.known.knows(queue) || this.policy.names(principal, 'create', queue)) return;
    if ((await this.known.existsBeyond?.(queue)) === true) {
      throw denied(principal, 'CreateQueue', queue, 'a queue of that name exists in the region and the edge was not told of it (declare it, or grant create on it by name)');
    }
  }

  /** A listing with only the queues the key may read. */
  private readableOnly(output: Output, principal: string | undefined): Output {
    const answer: Output = { ...output };
    for (const key of ['QueueUrls', 'queueUrls']) {
      if (!Array.isArray(answer[key])) continue;
      answer[key] = (answer[key] as string[]).filter((url) => {
        const name = parseQueueUrl(url)?.name;
        return name !== undefined && this.policy.allows(principal, 'read', name, this.known);
      });
    }
    return answer;
  }
}

function denied(principal: string | undefined, action: string, resource: string, because: string): SqsError {
  return new SqsError('AccessDenied', `User: ${principal ?? 'the loopback client'} is not authorized to perform: sqs:${action} on resource: ${resource} because ${because}.`);
}
