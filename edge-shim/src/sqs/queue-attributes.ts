import { SqsError } from './errors.js';

/**
 * The settable queue attributes, their defaults and bounds, as the SQS API Reference documents
 * them for CreateQueue and SetQueueAttributes. Values are kept as SQS strings, exactly as clients
 * send and read them.
 */
export type QueueAttributes = Record<string, string>;

const integer = (min: number, max: number) => (name: string, value: string) => {
  if (!/^-?\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new SqsError('InvalidAttributeValue', `Invalid value for the parameter ${name}.`);
  }
};
const oneOf = (...allowed: string[]) => (name: string, value: string) => {
  if (!allowed.includes(value)) {
    throw new SqsError('InvalidAttributeValue', `Invalid value for the parameter ${name}.`);
  }
};
const boolean = oneOf('true', 'false');
const jsonDocument = (name: string, value: string) => {
  if (value === '') return;
  try {
    const parsed: unknown = JSON.parse(value);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
  } catch {
    throw new SqsError('InvalidAttributeValue', `Invalid value for the parameter ${name}.`);
  }
};
const anyString = () => {};

interface AttributeSpec {
  readonly validate: (name: string, value: string) => void;
  readonly standardDefault?: string;
  readonly fifoDefault?: string;
  readonly fifoOnly?: boolean;
  readonly createOnly?: boolean;
}

const SETTABLE: Record<string, AttributeSpec> = {
  DelaySeconds: { validate: integer(0, 900), standardDefault: '0', fifoDefault: '0' },
  MaximumMessageSize: { validate: integer(1024, 1_048_576), standardDefault: '1048576', fifoDefault: '1048576' },
  MessageRetentionPeriod: { validate: integer(60, 1_209_600), standardDefault: '345600', fifoDefault: '345600' },
  ReceiveMessageWaitTimeSeconds: { validate: integer(0, 20), standardDefault: '0', fifoDefault: '0' },
  VisibilityTimeout: { validate: integer(0, 43_200), standardDefault: '30', fifoDefault: '30' },
  Policy: { validate: jsonDocument },
  RedrivePolicy: { validate: jsonDocument },
  RedriveAllowPolicy: { validate: jsonDocument },
  KmsMasterKeyId: { validate: anyString },
  KmsDataKeyReusePeriodSeconds: { validate: integer(60, 86_400) },
  SqsManagedSseEnabled: { validate: boolean, standardDefault: 'true', fifoDefault: 'true' },
  FifoQueue: { validate: boolean, createOnly: true },
  ContentBasedDeduplication: { validate: boolean, fifoOnly: true, fifoDefault: 'false' },
  DeduplicationScope: { validate: oneOf('messageGroup', 'queue'), fifoOnly: true, fifoDefault: 'queue' },
  FifoThroughputLimit: { validate: oneOf('perQueue', 'perMessageGroupId'), fifoOnly: true, fifoDefault: 'perQueue' },
};

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

/**
 * Checks attributes given to CreateQueue (`creating`) or SetQueueAttributes against the queue type.
 * Throws the SQS error for the first offending one.
 */
export function validateAttributes(attributes: QueueAttributes, fifo: boolean, creating: boolean): void {
  for (const [name, value] of Object.entries(attributes)) {
    const spec = SETTABLE[name];
    if (!spec) throw new SqsError('InvalidAttributeName', `Unknown Attribute ${name}.`);
    if (spec.createOnly && !creating) throw new SqsError('InvalidAttributeName', `Unknown Attribute ${name}.`);
    if (spec.fifoOnly && !fifo) throw new SqsError('InvalidAttributeName', `Unknown Attribute ${name}.`);
    spec.validate(name, value);
  }
  const scope = attributes.DeduplicationScope;
  const limit = attributes.FifoThroughputLimit;
  if (limit === 'perMessageGroupId' && scope === 'queue') {
    throw new SqsError(
      'InvalidAttributeValue',
      'Invalid value for the parameter FifoThroughputLimit. Reason: perMessageGroupId is allowed only when DeduplicationScope is messageGroup.',
    );
  }
}

/** The attributes a new queue starts with: the defaults for its type, overridden by the request. */
export function withDefaults(attributes: QueueAttributes, fifo: boolean): QueueAttributes {
  const result: QueueAttributes = {};
  for (const [name, spec] of Object.entries(SETTABLE)) {
    const fallback = fifo ? spec.fifoDefault : spec.standardDefault;
    if (fallback !== undefined) result[name] = fallback;
  }
  if (fifo) result.FifoQueue = 'true';
  if (attributes.KmsMasterKeyId !== undefined && attributes.SqsManagedSseEnabled === undefined) {
    result.SqsManagedSseEnabled = 'false';
  }
  if (attributes.KmsMasterKeyId !== undefined) result.KmsDataKeyReusePeriodSeconds = '300';
  return { ...result, ...attributes };
}
