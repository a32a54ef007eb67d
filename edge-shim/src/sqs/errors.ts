/**
 * SQS errors, independent of the wire protocol. Each error knows both names SQS gives it:
 * `code` is the short name of the AWS JSON protocol (`__type`), `queryCode` the legacy code the
 * Query protocol puts in `<Code>` and the JSON protocol repeats in the `x-amzn-query-error` header,
 * which is what lets the SDKs map an error to its exception class on either protocol.
 */
export type Fault = 'Sender' | 'Receiver';

export interface ErrorSpec {
  readonly queryCode: string;
  readonly status: number;
  readonly fault?: Fault;
}

const ERRORS = {
  AccessDenied: { queryCode: 'AccessDenied', status: 403 },
  BatchEntryIdsNotDistinct: { queryCode: 'AWS.SimpleQueueService.BatchEntryIdsNotDistinct', status: 400 },
  BatchRequestTooLong: { queryCode: 'AWS.SimpleQueueService.BatchRequestTooLong', status: 400 },
  EmptyBatchRequest: { queryCode: 'AWS.SimpleQueueService.EmptyBatchRequest', status: 400 },
  IncompleteSignature: { queryCode: 'IncompleteSignature', status: 400 },
  InternalFailure: { queryCode: 'InternalFailure', status: 500, fault: 'Receiver' },
  InvalidAction: { queryCode: 'InvalidAction', status: 400 },
  InvalidAttributeName: { queryCode: 'InvalidAttributeName', status: 400 },
  InvalidAttributeValue: { queryCode: 'InvalidAttributeValue', status: 400 },
  InvalidBatchEntryId: { queryCode: 'AWS.SimpleQueueService.InvalidBatchEntryId', status: 400 },
  InvalidClientTokenId: { queryCode: 'InvalidClientTokenId', status: 403 },
  InvalidMessageContents: { queryCode: 'InvalidMessageContents', status: 400 },
  InvalidParameterValue: { queryCode: 'InvalidParameterValue', status: 400 },
  InvalidQueryParameter: { queryCode: 'InvalidQueryParameter', status: 400 },
  MalformedQueryString: { queryCode: 'MalformedQueryString', status: 400 },
  MessageNotInflight: { queryCode: 'AWS.SimpleQueueService.MessageNotInflight', status: 400 },
  MissingAction: { queryCode: 'MissingAction', status: 400 },
  MissingAuthenticationToken: { queryCode: 'MissingAuthenticationToken', status: 403 },
  MissingParameter: { queryCode: 'MissingParameter', status: 400 },
  OverLimit: { queryCode: 'OverLimit', status: 403 },
  PurgeQueueInProgress: { queryCode: 'AWS.SimpleQueueService.PurgeQueueInProgress', status: 403 },
  QueueDeletedRecently: { queryCode: 'AWS.SimpleQueueService.QueueDeletedRecently', status: 400 },
  QueueDoesNotExist: { queryCode: 'AWS.SimpleQueueService.NonExistentQueue', status: 400 },
  QueueNameExists: { queryCode: 'QueueAlreadyExists', status: 400 },
  ReceiptHandleIsInvalid: { queryCode: 'ReceiptHandleIsInvalid', status: 400 },
  RequestExpired: { queryCode: 'RequestExpired', status: 400 },
  ResourceNotFoundException: { queryCode: 'ResourceNotFoundException', status: 400 },
  // SerializationException and UnknownOperationException come from the AWS JSON protocol layer (protocol/json.ts).
  SerializationException: { queryCode: 'SerializationException', status: 400 },
  ServiceUnavailable: { queryCode: 'ServiceUnavailable', status: 503, fault: 'Receiver' },
  SignatureDoesNotMatch: { queryCode: 'SignatureDoesNotMatch', status: 403 },
  TooManyEntriesInBatchRequest: { queryCode: 'AWS.SimpleQueueService.TooManyEntriesInBatchRequest', status: 400 },
  UnsupportedOperation: { queryCode: 'AWS.SimpleQueueService.UnsupportedOperation', status: 400 },
  UnknownOperationException: { queryCode: 'UnknownOperationException', status: 404 },
} satisfies Record<string, ErrorSpec>;

export type SqsErrorCode = keyof typeof ERRORS;

export class SqsError extends Error {
  /** One of SqsErrorCode for the shim's own errors; any code for an error relayed from the region. */
  readonly code: string;
  readonly queryCode: string;
  readonly status: number;
  readonly fault: Fault;

  constructor(code: SqsErrorCode, message: string);
  constructor(code: string, message: string, spec: ErrorSpec);
  constructor(code: string, message: string, spec: ErrorSpec = ERRORS[code as SqsErrorCode]) {
    super(message);
    this.name = 'SqsError';
    this.code = code;
    this.queryCode = spec.queryCode;
    this.status = spec.status;
    this.fault = spec.fault ?? 'Sender';
  }

  /** An error the region answered, passed on to the client as it came: its code, status and fault. */
  static relayed(code: string, message: string, spec: ErrorSpec): SqsError {
    return new SqsError(code, message, spec);
  }
}

/** The error for an input that breaks a documented constraint of a parameter. */
export const invalidParameter = (message: string): SqsError => new SqsError('InvalidParameterValue', message);

export const missingParameter = (name: string): SqsError =>
  new SqsError('MissingParameter', `The request must contain the parameter ${name}.`);
