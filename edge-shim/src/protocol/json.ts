import { isUtf8 } from 'node:buffer';
import { SqsError, type SqsErrorCode } from '../sqs/errors.js';
import { checkJsonTypes } from './json-types.js';
import { OPERATIONS } from './operations.js';
import type { IncomingHttpHeaders } from 'node:http';
import type { Call, WireProtocol, WireRequest, WireResponse } from './wire.js';

const CONTENT_TYPE = 'application/x-amz-json-1.0';
const TARGET_PREFIX = 'AmazonSQS.';
// Errors raised by the protocol layer before any SQS operation runs; AWS names them in the
// namespace of its service framework, and they have no legacy Query code.
const FRAMEWORK_ERRORS: ReadonlySet<string> = new Set<SqsErrorCode>(['SerializationException', 'UnknownOperationException']);

const mediaType = (headers: IncomingHttpHeaders) => String(headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();

/**
 * True when a request is in the AWS JSON 1.0 protocol (what SDK v3 and current boto3 send): its
 * content type says so, or it names an X-Amz-Target without being a form post of the Query protocol.
 */
export function isJsonRequest(headers: IncomingHttpHeaders): boolean {
  const type = mediaType(headers);
  return type === CONTENT_TYPE || (headers['x-amz-target'] !== undefined && type !== 'application/x-www-form-urlencoded');
}

/**
 * AWS JSON 1.0 for SQS. SQS is `awsQueryCompatible`: errors carry their JSON type in `__type` and
 * their legacy Query code in the `x-amzn-query-error` header, from which SDKs pick the exception.
 */
export const jsonProtocol: WireProtocol = {
  name: 'json',

  decode(request: WireRequest): Call {
    const type = mediaType(request.headers);
    if (type !== CONTENT_TYPE) {
      throw new SqsError('UnknownOperationException', `Requests with an X-Amz-Target must have the content type ${CONTENT_TYPE}, not '${type}'.`);
    }
    // A JSON text is UTF-8 (RFC 8259); decoding other bytes would turn them into U+FFFD and store
    // something the client never sent.
    if (!isUtf8(request.body)) throw new SqsError('SerializationException', 'The request body is not valid UTF-8.');
    let input: unknown;
    try {
      input = request.body.length === 0 ? {} : JSON.parse(request.body.toString('utf8'));
    } catch {
      throw new SqsError('SerializationException', 'The request body is not valid JSON.');
    }
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      throw new SqsError('SerializationException', 'The request body must be a JSON object.');
    }
    const target = request.headers['x-amz-target'];
    const action = typeof target === 'string' && target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : undefined;
    const operation = action !== undefined && Object.hasOwn(OPERATIONS, action) ? OPERATIONS[action] : undefined;
    if (action === undefined || !operation) {
      throw new SqsError('UnknownOperationException', `Unknown operation ${String(target ?? '(no X-Amz-Target)')}.`);
    }
    checkJsonTypes(operation.input, input as Record<string, unknown>);
    return { action, input: input as Record<string, unknown> };
  },

  encodeResult(_action: string, output: Record<string, unknown>, requestId: string): WireResponse {
    return { status: 200, headers: { 'content-type': CONTENT_TYPE, 'x-amzn-requestid': requestId }, body: JSON.stringify(output) };
  },

  encodeError(error: SqsError, requestId: string): WireResponse {
    const framework = FRAMEWORK_ERRORS.has(error.code);
    return {
      status: error.status,
      headers: {
        'content-type': CONTENT_TYPE,
        'x-amzn-requestid': requestId,
        ...(framework ? {} : { 'x-amzn-query-error': `${error.queryCode};${error.fault}` }),
      },
      body: JSON.stringify({
        __type: framework ? `com.amazon.coral.service#${error.code}` : `com.amazonaws.sqs#${error.code}`,
        message: error.message,
      }),
    };
  },
};
