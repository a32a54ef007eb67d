/**
 * The SQS operations and the shapes of their inputs and outputs: both wire protocols check requests
 * by them (the Query one also reads and writes its wire names by them), and the upstream client
 * converts blobs by them. Members carry their JSON-protocol names (what the actions read and
 * return); `xmlName` is the Query name on the wire where it differs, taken from the xmlName traits
 * of the SQS Smithy model (API version 2012-11-05). Every list and map in SQS is flattened: a list
 * is `Name.1`, `Name.2`, ... and a map entry `Name.N.Key` / `Name.N.Value` (with the key and value
 * names of that map), in requests and in XML responses alike.
 */
export type Shape = Scalar | ListShape | MapShape | StructureShape;

/**
 * Query values are text; integers are typed so that they reach the actions as numbers. Binary
 * values (blobs) travel as base64 text in both protocols, so they reach the actions as strings.
 */
export interface Scalar {
  readonly kind: 'string' | 'blob' | 'integer' | 'boolean';
}

export interface ListShape {
  readonly kind: 'list';
  readonly member: Shape;
}

export interface MapShape {
  readonly kind: 'map';
  readonly keyName: string;
  readonly valueName: string;
  readonly value: Shape;
}

export interface Member {
  readonly name: string;
  readonly xmlName: string;
  readonly shape: Shape;
}

export interface StructureShape {
  readonly kind: 'structure';
  /** In the order SQS writes them in XML. */
  readonly members: readonly Member[];
}

export interface Operation {
  readonly input: StructureShape;
  /** Absent for operations that answer with nothing but the request id. */
  readonly output?: StructureShape;
}

const string: Scalar = { kind: 'string' };
const integer: Scalar = { kind: 'integer' };
const boolean: Scalar = { kind: 'boolean' };
const blob: Scalar = { kind: 'blob' };

const list = (member: Shape): ListShape => ({ kind: 'list', member });
const map = (keyName: string, valueName: string, value: Shape): MapShape => ({ kind: 'map', keyName, valueName, value });

/** Members by JSON name; `[shape, xmlName]` where the wire name differs. */
function structure(members: Record<string, Shape | readonly [Shape, string]>): StructureShape {
  return {
    kind: 'structure',
    members: Object.entries(members).map(([name, spec]) =>
      Array.isArray(spec) ? { name, shape: spec[0] as Shape, xmlName: spec[1] as string } : { name, shape: spec as Shape, xmlName: name },
    ),
  };
}

const queueAttributes = map('Name', 'Value', string);
const tags = map('Key', 'Value', string);
const messageAttributeValue = structure({
  StringValue: string,
  BinaryValue: blob,
  StringListValues: [list(string), 'StringListValue'],
  BinaryListValues: [list(blob), 'BinaryListValue'],
  DataType: string,
});
const messageAttributes = map('Name', 'Value', messageAttributeValue);
const batchResultError = structure({ Id: string, SenderFault: boolean, Code: string, Message: string });
const idOnly = structure({ Id: string });

const sendMessageFields = {
  MessageBody: string,
  DelaySeconds: integer,
  MessageAttributes: [messageAttributes, 'MessageAttribute'],
  MessageSystemAttributes: [messageAttributes, 'MessageSystemAttribute'],
  MessageDeduplicationId: string,
  MessageGroupId: string,
} as const;

const sendMessageResultFields = {
  MD5OfMessageBody: string,
  MD5OfMessageAttributes: string,
  MD5OfMessageSystemAttributes: string,
  MessageId: string,
  SequenceNumber: string,
} as const;

const message = structure({
  MessageId: string,
  ReceiptHandle: string,
  MD5OfBody: string,
  Body: string,
  Attributes: [map('Name', 'Value', string), 'Attribute'],
  MD5OfMessageAttributes: string,
  MessageAttributes: [messageAttributes, 'MessageAttribute'],
});

const messageMoveTask = structure({
  TaskHandle: string,
  Status: string,
  SourceArn: string,
  DestinationArn: string,
  MaxNumberOfMessagesPerSecond: integer,
  ApproximateNumberOfMessagesMoved: integer,
  ApproximateNumberOfMessagesToMove: integer,
  FailureReason: string,
  StartedTimestamp: integer,
});

export const OPERATIONS: Readonly<Record<string, Operation>> = {
  AddPermission: {
    input: structure({
      QueueUrl: string,
      Label: string,
      AWSAccountIds: [list(string), 'AWSAccountId'],
      Actions: [list(string), 'ActionName'],
    }),
  },
  CancelMessageMoveTask: {
    input: structure({ TaskHandle: string }),
    output: structure({ ApproximateNumberOfMessagesMoved: integer }),
  },
  ChangeMessageVisibility: {
    input: structure({ QueueUrl: string, ReceiptHandle: string, VisibilityTimeout: integer }),
  },
  ChangeMessageVisibilityBatch: {
    input: structure({
      QueueUrl: string,
      Entries: [list(structure({ Id: string, ReceiptHandle: string, VisibilityTimeout: integer })), 'ChangeMessageVisibilityBatchRequestEntry'],
    }),
    output: structure({
      Successful: [list(idOnly), 'ChangeMessageVisibilityBatchResultEntry'],
      Failed: [list(batchResultError), 'BatchResultErrorEntry'],
    }),
  },
  CreateQueue: {
    input: structure({ QueueName: string, Attributes: [queueAttributes, 'Attribute'], tags: [tags, 'Tag'] }),
    output: structure({ QueueUrl: string }),
  },
  DeleteMessage: {
    input: structure({ QueueUrl: string, ReceiptHandle: string }),
  },
  DeleteMessageBatch: {
    input: structure({
      QueueUrl: string,
      Entries: [list(structure({ Id: string, ReceiptHandle: string })), 'DeleteMessageBatchRequestEntry'],
    }),
    output: structure({
      Successful: [list(idOnly), 'DeleteMessageBatchResultEntry'],
      Failed: [list(batchResultError), 'BatchResultErrorEntry'],
    }),
  },
  DeleteQueue: {
    input: structure({ QueueUrl: string }),
  },
  GetQueueAttributes: {
    input: structure({ QueueUrl: string, AttributeNames: [list(string), 'AttributeName'] }),
    output: structure({ Attributes: [queueAttributes, 'Attribute'] }),
  },
  GetQueueUrl: {
    input: structure({ QueueName: string, QueueOwnerAWSAccountId: string }),
    output: structure({ QueueUrl: string }),
  },
  ListDeadLetterSourceQueues: {
    input: structure({ QueueUrl: string, NextToken: string, MaxResults: integer }),
    output: structure({ queueUrls: [list(string), 'QueueUrl'], NextToken: string }),
  },
  ListMessageMoveTasks: {
    input: structure({ SourceArn: string, MaxResults: integer }),
    output: structure({ Results: [list(messageMoveTask), 'ListMessageMoveTasksResultEntry'] }),
  },
  ListQueueTags: {
    input: structure({ QueueUrl: string }),
    output: structure({ Tags: [tags, 'Tag'] }),
  },
  ListQueues: {
    input: structure({ QueueNamePrefix: string, NextToken: string, MaxResults: integer }),
    output: structure({ QueueUrls: [list(string), 'QueueUrl'], NextToken: string }),
  },
  PurgeQueue: {
    input: structure({ QueueUrl: string }),
  },
  ReceiveMessage: {
    input: structure({
      QueueUrl: string,
      AttributeNames: [list(string), 'AttributeName'],
      // The Smithy model names this list AttributeName on the wire too, which lands in AttributeNames
      // above; the action reads both lists alike, so either spelling asks for the same attributes.
      MessageSystemAttributeNames: [list(string), 'MessageSystemAttributeName'],
      MessageAttributeNames: [list(string), 'MessageAttributeName'],
      MaxNumberOfMessages: integer,
      VisibilityTimeout: integer,
      WaitTimeSeconds: integer,
      ReceiveRequestAttemptId: string,
    }),
    output: structure({ Messages: [list(message), 'Message'] }),
  },
  RemovePermission: {
    input: structure({ QueueUrl: string, Label: string }),
  },
  SendMessage: {
    input: structure({ QueueUrl: string, ...sendMessageFields }),
    output: structure(sendMessageResultFields),
  },
  SendMessageBatch: {
    input: structure({
      QueueUrl: string,
      Entries: [list(structure({ Id: string, ...sendMessageFields })), 'SendMessageBatchRequestEntry'],
    }),
    output: structure({
      Successful: [list(structure({ Id: string, ...sendMessageResultFields })), 'SendMessageBatchResultEntry'],
      Failed: [list(batchResultError), 'BatchResultErrorEntry'],
    }),
  },
  SetQueueAttributes: {
    input: structure({ QueueUrl: string, Attributes: [queueAttributes, 'Attribute'] }),
  },
  StartMessageMoveTask: {
    input: structure({ SourceArn: string, DestinationArn: string, MaxNumberOfMessagesPerSecond: integer }),
    output: structure({ TaskHandle: string }),
  },
  TagQueue: {
    input: structure({ QueueUrl: string, Tags: [tags, 'Tag'] }),
  },
  UntagQueue: {
    input: structure({ QueueUrl: string, TagKeys: [list(string), 'TagKey'] }),
  },
};
