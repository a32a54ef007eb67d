import { readFileSync } from 'node:fs';

/**
 * What a client may do, in groups of SQS actions as SQS's own IAM actions group them. The last
 * four touch what others rely on (who may use a queue, whether it and its messages exist): they are
 * never granted by a wildcard or by default, only by name.
 */
export const ACTION_GROUPS = {
  send: ['SendMessage', 'SendMessageBatch'],
  receive: ['ReceiveMessage', 'DeleteMessage', 'DeleteMessageBatch', 'ChangeMessageVisibility', 'ChangeMessageVisibilityBatch'],
  read: ['GetQueueUrl', 'GetQueueAttributes', 'ListQueues', 'ListQueueTags', 'ListDeadLetterSourceQueues', 'ListMessageMoveTasks'],
  create: ['CreateQueue'],
  manage: ['SetQueueAttributes', 'TagQueue', 'UntagQueue'],
  permissions: ['AddPermission', 'RemovePermission'],
  delete: ['DeleteQueue'],
  purge: ['PurgeQueue'],
  move: ['StartMessageMoveTask', 'CancelMessageMoveTask'],
} as const satisfies Record<string, readonly string[]>;

export type ActionGroup = keyof typeof ACTION_GROUPS;

const GROUPS = Object.keys(ACTION_GROUPS) as ActionGroup[];
/** Groups granted only by name: changing who may use a queue, deleting or purging it, moving its messages. */
export const NAMED_ONLY: ReadonlySet<ActionGroup> = new Set(['permissions', 'delete', 'purge', 'move']);
const GROUP_OF = new Map<string, ActionGroup>(GROUPS.flatMap((group) => ACTION_GROUPS[group].map((action) => [action, group] as const)));

/** The group an SQS action belongs to; undefined for a name that is not an SQS action. */
export function groupOf(action: string): ActionGroup | undefined {
  return GROUP_OF.get(action);
}

/** Which queues a grant covers: names with `*` for any characters, or the queues the edge knows. */
type QueueMatcher = { readonly kind: 'patterns'; readonly patterns: readonly RegExp[] } | { readonly kind: 'known' };

interface Grant {
  readonly groups: ReadonlySet<ActionGroup>;
  readonly queues: QueueMatcher;
}

/** The key that stands for the client when signatures are not checked (loopback, no credentials). */
export const ANONYMOUS = 'anonymous';

export class PolicyError extends Error {
  override readonly name = 'PolicyError';
}

/** The queues the edge knows: declared, created through it, the workflow's (all of them queues of its own store). */
export interface KnownQueues {
  knows(queueName: string): boolean;
  /** Reads the known queues again, where other nodes of a site may have made one since (PostgreSQL). */
  refresh?(): Promise<void>;
  /**
   * Whether a queue the edge does not know exists beyond it (in the region): creating it through
   * the edge would adopt it. Undefined when that cannot be told now (the region is away).
   */
  existsBeyond?(queueName: string): Promise<boolean | undefined>;
}

/**
 * Who may do what to which queue through the edge. A key not in the policy may do nothing; a
 * request is allowed when one of its key's grants covers the action's group and the queue.
 */
export class AccessPolicy {
  private constructor(private readonly grants: ReadonlyMap<string, readonly Grant[]> | readonly Grant[]) {}

  /**
   * The default of a hybrid edge, which acts in the region with an AWS identity of its own: every
   * key (the loopback client's when none is configured) may send, receive, read and create, on the
   * queues the edge knows; nothing else.
   */
  static defaultForEdge(): AccessPolicy {
    return new AccessPolicy([{ groups: new Set<ActionGroup>(['send', 'receive', 'read', 'create']), queues: { kind: 'known' } }]);
  }

  /** The default of a standalone shim, the queue server itself with no AWS identity behind it: every key may do everything. */
  static defaultForStandalone(): AccessPolicy {
    return new AccessPolicy([{ groups: new Set(GROUPS), queues: { kind: 'patterns', patterns: [/^/] } }]);
  }

  /**
   * Reads a policy file:
   * `{ "keys": { "AKID...": [ { "allow": ["send", "receive"], "queues": ["payments-*"] } ] } }`.
   * `allow` names groups of actions (`*` for all but the named-only ones); `queues` names queues,
   * `*` matching any characters, or `"known"` for the queues the edge knows. The key `anonymous`
   * is the loopback client when the shim checks no signatures.
   */
  static fromFile(file: string): AccessPolicy {
    let document: unknown;
    try {
      document = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new PolicyError(`cannot read the access policy ${file}: ${(error as Error).message}`);
    }
    const keys = (document as { keys?: unknown } | null)?.keys;
    if (typeof keys !== 'object' || keys === null || Array.isArray(keys)) throw new PolicyError(`the access policy ${file} must hold {"keys": {"ACCESS_KEY_ID": [grants]}}`);
    const grants = new Map<string, Grant[]>();
    for (const [key, list] of Object.entries(keys)) {
      if (!Array.isArray(list)) throw new PolicyError(`${file}: the grants of ${key} must be a list`);
      grants.set(key, list.map((grant, index) => readGrant(grant, `${file}: grant ${index + 1} of ${key}`)));
    }
    return new AccessPolicy(grants);
  }

  /**
   * Whether `principal` may do an action of `group` on `queue` (undefined: an action of no one
   * queue, ListQueues). A grant on the known queues also covers creating a new one: a queue
   * created through the edge is known from then on.
   */
  allows(principal: string | undefined, group: ActionGroup, queue: string | undefined, known: KnownQueues): boolean {
    return this.grantsOf(principal).some(
      (grant) => grant.groups.has(group) && (queue === undefined || (grant.queues.kind === 'known' ? group === 'create' || known.knows(queue) : named(grant.queues, queue))),
    );
  }

  /** Whether any grant covers the queues the edge knows (which asks the store, from memory). */
  coversKnownQueues(): boolean {
    const all = Array.isArray(this.grants) ? this.grants : [...(this.grants as ReadonlyMap<string, readonly Grant[]>).values()].flat();
    return all.some((grant) => grant.queues.kind === 'known');
  }

  /** Whether a grant of `principal` names `queue` itself (by name or pattern), not only as one the edge knows. */
  names(principal: string | undefined, group: ActionGroup, queue: string): boolean {
    return this.grantsOf(principal).some((grant) => grant.groups.has(group) && grant.queues.kind === 'patterns' && named(grant.queues, queue));
  }

  private grantsOf(principal: string | undefined): readonly Grant[] {
    return Array.isArray(this.grants) ? this.grants : ((this.grants as ReadonlyMap<string, readonly Grant[]>).get(principal ?? ANONYMOUS) ?? []);
  }
}

function named(matcher: { readonly patterns: readonly RegExp[] }, queue: string): boolean {
  return matcher.patterns.some((pattern) => pattern.test(queue));
}

function readGrant(value: unknown, where: string): Grant {
  const { allow, queues } = (value ?? {}) as { allow?: unknown; queues?: unknown };
  if (!Array.isArray(allow) || allow.length === 0 || !allow.every((name) => typeof name === 'string')) {
    throw new PolicyError(`${where}: "allow" must list groups of actions (${GROUPS.join(', ')}, or * for all but ${[...NAMED_ONLY].join(', ')})`);
  }
  const groups = new Set<ActionGroup>();
  for (const name of allow as string[]) {
    if (name === '*') {
      for (const group of GROUPS) if (!NAMED_ONLY.has(group)) groups.add(group);
    } else if ((GROUPS as string[]).includes(name)) {
      groups.add(name as ActionGroup);
    } else {
      throw new PolicyError(`${where}: "${name}" is not a group of actions (${GROUPS.join(', ')}, or *)`);
    }
  }
  if (queues === 'known') return { groups, queues: { kind: 'known' } };
  if (!Array.isArray(queues) || queues.length === 0 || !queues.every((name) => typeof name === 'string' && name !== '')) {
    throw new PolicyError(`${where}: "queues" must list queue names (* matches any characters) or be "known"`);
  }
  return { groups, queues: { kind: 'patterns', patterns: (queues as string[]).map(toPattern) } };
}

/** A queue name with `*` wildcards as a whole-name pattern. */
function toPattern(name: string): RegExp {
  return new RegExp(`^${name.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}
