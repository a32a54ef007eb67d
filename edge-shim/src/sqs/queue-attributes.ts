import { SqsError } from './errors.js';

/**
 * The settable queue attributes, their defaults and bounds, as the SQS API Reference documents
 * them for CreateQueue and SetQueueAttributes. Values are kept as SQS strings, exactly as clients
 * send and read them.
 */
export type QueueAttributes = Record<string, string>;

const invalidValue = (name: string, reason?: string) =>
  new SqsError('InvalidAttributeValue', `Invalid value for the parameter ${name}.${reason ? ` Reason: ${reason}` : ''}`);

// Each check returns the value as the queue keeps it: integers in canonical form ("030" is 30).
const integer = (min: number, max: number) => (name: string, value: string) => {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw invalidValue(name);
  return String(Number(value));
};
const oneOf = (...allowed: string[]) => (name: string, value: string) => {
  if (!allowed.includes(value)) throw invalidValue(name);
  return value;
};
const boolean = oneOf('true', 'false');
// An empty string removes a policy; anything else must be a JSON object.
const jsonDocument = (name: string, value: string) => {
  if (value === '') return value;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw invalidValue(name, 'The value is not valid JSON.');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalidValue(name, 'The value must be a JSON object.');
  return value;
};
// SQS policy quotas (Developer Guide, "Amazon SQS policy quotas").
export const MAX_POLICY_BYTES = 8192;
export const MAX_POLICY_STATEMENTS = 20;

// A policy's Statement is one statement object or a list of them (AddPermission reads their Sid).
const policyDocument = (name: string, value: string) => {
  jsonDocument(name, value);
  const statement: unknown = value === '' ? undefined : (JSON.parse(value) as Record<string, unknown>).Statement;
  const isObject = (item: unknown) => typeof item === 'object' && item !== null && !Array.isArray(item);
  if (statement !== undefined && !(Array.isArray(statement) ? statement.every(isObject) : isObject(statement))) {
    throw invalidValue(name, 'Each policy statement must be a JSON object.');
  }
  if (Buffer.byteLength(value) > MAX_POLICY_BYTES) throw invalidValue(name, `A policy can be at most ${MAX_POLICY_BYTES} bytes long.`);
  if (Array.isArray(statement) && statement.length > MAX_POLICY_STATEMENTS) {
    throw invalidValue(name, `A policy can have at most ${MAX_POLICY_STATEMENTS} statements.`);
  }
  return value;
};
// A KMS key id, key ARN, alias name or alias ARN: KMS takes key identifiers of at most 2,048 characters.
// SQS checks the key itself only when it uses it (on a send), which the shim, without KMS, never does.
const MAX_KMS_KEY_ID_LENGTH = 2048;
const kmsKeyId = (name: string, value: string) => {
  if (value.length > MAX_KMS_KEY_ID_LENGTH) throw invalidValue(name, `A KMS key identifier can be at most ${MAX_KMS_KEY_ID_LENGTH} characters long.`);
  return value;
};

interface AttributeSpec {
  readonly validate: (name: string, value: string) => string;
  /** The value a new queue gets when the request does not give one. */
  readonly default?: string;
  readonly fifoOnly?: boolean;
  /** The queue's type (FifoQueue): chosen by CreateQueue, never changed by SetQueueAttributes. */
  readonly queueType?: boolean;
}

const SETTABLE: Record<string, AttributeSpec> = {
  DelaySeconds: { validate: integer(0, 900), default: '0' },
  MaximumMessageSize: { validate: integer(1024, 1_048_576), default: '1048576' },
  MessageRetentionPeriod: { validate: integer(60, 1_209_600), default: '345600' },
  ReceiveMessageWaitTimeSeconds: { validate: integer(0, 20), default: '0' },
  VisibilityTimeout: { validate: integer(0, 43_200), default: '30' },
  Policy: { validate: policyDocument },
  RedrivePolicy: { validate: jsonDocument },
  RedriveAllowPolicy: { validate: jsonDocument },
  KmsMasterKeyId: { validate: kmsKeyId },
  KmsDataKeyReusePeriodSeconds: { validate: integer(60, 86_400) },
  // New queues are encrypted with SQS-owned keys unless they name a KMS key.
  SqsManagedSseEnabled: { validate: boolean, default: 'true' },
  FifoQueue: { validate: boolean, queueType: true },
  ContentBasedDeduplication: { validate: boolean, fifoOnly: true, default: 'false' },
  DeduplicationScope: { validate: oneOf('messageGroup', 'queue'), fifoOnly: true, default: 'queue' },
  FifoThroughputLimit: { validate: oneOf('perQueue', 'perMessageGroupId'), fifoOnly: true, default: 'perQueue' },
};

const KMS_DATA_KEY_REUSE_DEFAULT = '300';
// Attributes that an empty value removes instead of setting.
const REMOVABLE = ['Policy', 'RedrivePolicy', 'RedriveAllowPolicy', 'KmsMasterKeyId'];

/** Attributes SQS computes; GetQueueAttributes returns them, Create/Set reject them. */
export const COMPUTED_ATTRIBUTES = [
  'ApproximateNumberOfMessages',
  'ApproximateNumberOfMessagesNotVisible',
  'ApproximateNumberOfMessagesDelayed',
  'CreatedTimestamp',
  'LastModifiedTimestamp',
  'QueueArn',
] as const;

export const ALL_ATTRIBUTE_NAMES: readonly string[] = [...Object.keys(SETTABLE), ...COMPUTED_ATTRIBUTES];

export function isKnownAttribute(name: string): boolean {
  return name === 'All' || ALL_ATTRIBUTE_NAMES.includes(name);
}

const unknownAttribute = (name: string) => new SqsError('InvalidAttributeName', `Unknown Attribute ${name}.`);

/**
 * Checks the names GetQueueAttributes asks for: SQS knows the FIFO attributes (FifoQueue
 * included) only on FIFO queues, and answers InvalidAttributeName for them on a standard queue.
 */
export function checkRequestedAttribute(name: string, fifo: boolean): void {
  const known = isKnownAttribute(name) && (fifo || !(name === 'FifoQueue' || SETTABLE[name]?.fifoOnly));
  if (!known) throw unknownAttribute(name);
}

/**
 * Checks each attribute a CreateQueue (`creating`) or SetQueueAttributes request gives against the
 * queue type and the attribute's bounds, and returns them as the queue keeps them. Throws the SQS
 * error for the first offending one.
 */
export function validateAttributes(attributes: QueueAttributes, fifo: boolean, creating: boolean): QueueAttributes {
  const valid: QueueAttributes = {};
  for (const [name, value] of Object.entries(attributes)) {
    const spec = Object.hasOwn(SETTABLE, name) ? SETTABLE[name] : undefined;
    if (!spec || (spec.fifoOnly && !fifo)) throw unknownAttribute(name);
    valid[name] = spec.validate(name, value);
    if (spec.queueType && !creating) {
      // A standard queue does not know FifoQueue (GetQueueAttributes neither); a FIFO queue knows it
      // is one, and takes being told so, but its type cannot change.
      if (!fifo) throw unknownAttribute(name);
      if (value !== 'true') throw invalidValue(name, 'The queue type cannot be changed.');
    }
  }
  if (attributes.SqsManagedSseEnabled === 'true' && attributes.KmsMasterKeyId) {
    throw invalidValue('SqsManagedSseEnabled', 'Only one server-side encryption option is supported per queue: SSE-SQS or SSE-KMS.');
  }
  return valid;
}

/**
 * The attributes a queue has after a request changes `current` (a new queue starts from the
 * defaults for its type). Keeps the rules that span attributes: one encryption option at a time,
 * and per-message-group throughput only with per-message-group deduplication.
 */
export function applyAttributes(current: QueueAttributes, changes: QueueAttributes): QueueAttributes {
  const next: QueueAttributes = { ...current, ...changes };
  delete next.FifoQueue;
  if (current.FifoQueue === 'true' || changes.FifoQueue === 'true') next.FifoQueue = 'true';
  for (const name of REMOVABLE) if (next[name] === '') delete next[name];

  if (changes.KmsMasterKeyId) {
    if (changes.SqsManagedSseEnabled === undefined) next.SqsManagedSseEnabled = 'false';
    next.KmsDataKeyReusePeriodSeconds ??= KMS_DATA_KEY_REUSE_DEFAULT;
  } else if (changes.SqsManagedSseEnabled === 'true' || changes.KmsMasterKeyId === '') {
    delete next.KmsMasterKeyId;
    delete next.KmsDataKeyReusePeriodSeconds;
  }
  if (next.FifoThroughputLimit === 'perMessageGroupId' && next.DeduplicationScope !== 'messageGroup') {
    throw invalidValue('FifoThroughputLimit', 'perMessageGroupId is allowed only when DeduplicationScope is messageGroup.');
  }
  return next;
}

/** The attributes a new queue of this type has before its request applies. */
export function defaultAttributes(fifo: boolean): QueueAttributes {
  const result: QueueAttributes = {};
  for (const [name, spec] of Object.entries(SETTABLE)) {
    if (spec.default !== undefined && (fifo || !spec.fifoOnly)) result[name] = spec.default;
  }
  if (fifo) result.FifoQueue = 'true';
  return result;
}
