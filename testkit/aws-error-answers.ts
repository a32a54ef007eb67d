import { randomUUID } from 'node:crypto';
import type { ErrorAnswer } from './fault-modes.js';
import type { RequestHead } from './http-requests.js';

/**
 * The answers of the fault proxy's `errors` mode: a 500, a 503 or a throttling error, each as the
 * service the request was for answers it, so that an SDK takes it for what it is.
 *
 * - SQS in the AWS JSON 1.0 protocol (`X-Amz-Target: AmazonSQS.*`): `__type` and `message` in the
 *   body, and the legacy Query code and fault in `x-amzn-query-error` (SQS is awsQueryCompatible:
 *   https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-json-api-responses.html).
 * - SQS in the Query protocol (a form post, or `?Action=`): an XML `ErrorResponse` with Type, Code
 *   and Message.
 * - DynamoDB (`X-Amz-Target: DynamoDB_20120810.*`): `__type` and `message` in the body
 *   (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html).
 * - Anything else: the status with a line of text.
 *
 * The codes and statuses: InternalFailure (500) and ServiceUnavailable (503) are the common errors
 * of SQS's API reference; RequestThrottled is SQS's throttling error, 403 with the Query code
 * RequestThrottled in its Smithy model (what @aws-sdk/client-sqs decodes). DynamoDB answers
 * InternalServerError (500) and a 503 for its own failures, and throttles data-plane calls with
 * ProvisionedThroughputExceededException (400).
 */
interface ErrorShape {
  readonly status: number;
  readonly code: string;
  readonly message: string;
}

/** SQS names the side at fault too: Sender (the caller) or Receiver (the service). */
interface SqsErrorShape extends ErrorShape {
  readonly fault: 'Sender' | 'Receiver';
}

const SQS: Record<ErrorAnswer, SqsErrorShape> = {
  'internal-error': { status: 500, code: 'InternalFailure', fault: 'Receiver', message: 'The request processing has failed because of an unknown error, exception or failure.' },
  unavailable: { status: 503, code: 'ServiceUnavailable', fault: 'Receiver', message: 'The request has failed due to a temporary failure of the server.' },
  throttling: { status: 403, code: 'RequestThrottled', fault: 'Sender', message: 'The request was denied due to request throttling.' },
};

const DYNAMODB: Record<ErrorAnswer, ErrorShape> = {
  'internal-error': { status: 500, code: 'InternalServerError', message: 'Internal server error' },
  unavailable: { status: 503, code: 'ServiceUnavailable', message: 'DynamoDB is currently unavailable. (This should be a temporary state.)' },
  throttling: {
    status: 400,
    code: 'ProvisionedThroughputExceededException',
    message: 'The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.',
  },
};

const REASONS: Record<number, string> = { 400: 'Bad Request', 403: 'Forbidden', 500: 'Internal Server Error', 503: 'Service Unavailable' };
const JSON_1_0 = 'application/x-amz-json-1.0';
const SQS_NAMESPACE = 'http://queue.amazonaws.com/doc/2012-11-05/';

type Protocol = 'sqs-json' | 'sqs-query' | 'dynamodb' | 'other';

function protocolOf(head: RequestHead): Protocol {
  const target = head.headers.get('x-amz-target') ?? '';
  if (target.startsWith('AmazonSQS.')) return 'sqs-json';
  if (target.startsWith('DynamoDB_20120810.')) return 'dynamodb';
  const form = (head.headers.get('content-type') ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded');
  if (target === '' && (form || /[?&]Action=/.test(head.target))) return 'sqs-query';
  return 'other';
}

function response(status: number, headers: Record<string, string>, body: string): Buffer {
  const lines = [`HTTP/1.1 ${status} ${REASONS[status]}`, ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`), `content-length: ${Buffer.byteLength(body)}`];
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

/** The whole HTTP/1.1 response to `head` for `answer`, in the request's protocol. */
export function errorResponse(answer: ErrorAnswer, head: RequestHead): Buffer {
  const requestId = randomUUID();
  switch (protocolOf(head)) {
    case 'sqs-json': {
      const error = SQS[answer];
      return response(
        error.status,
        { 'content-type': JSON_1_0, 'x-amzn-requestid': requestId, 'x-amzn-query-error': `${error.code};${error.fault}` },
        JSON.stringify({ __type: `com.amazonaws.sqs#${error.code}`, message: error.message }),
      );
    }
    case 'sqs-query': {
      const error = SQS[answer];
      const xml =
        `<?xml version="1.0"?><ErrorResponse xmlns="${SQS_NAMESPACE}"><Error><Type>${error.fault}</Type><Code>${error.code}</Code>` +
        `<Message>${error.message}</Message><Detail/></Error><RequestId>${requestId}</RequestId></ErrorResponse>`;
      return response(error.status, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId }, xml);
    }
    case 'dynamodb': {
      const error = DYNAMODB[answer];
      return response(error.status, { 'content-type': JSON_1_0, 'x-amzn-requestid': requestId }, JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${error.code}`, message: error.message }));
    }
    case 'other': {
      const { status, code } = SQS[answer];
      return response(status, { 'content-type': 'text/plain' }, `${code} (from the fault proxy)\n`);
    }
  }
}
