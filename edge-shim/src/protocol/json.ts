import { SqsError } from '../sqs/errors.js';
import type { Call, WireProtocol, WireRequest, WireResponse } from './wire.js';

const CONTENT_TYPE = 'application/x-amz-json-1.0';
const TARGET_PREFIX = 'AmazonSQS.';

/** True when a request is in the AWS JSON 1.0 protocol (what SDK v3 and current boto3 send). */
export function isJsonRequest(request: WireRequest): boolean {
  return request.headers['x-amz-target'] !== undefined;
}

/**
 * AWS JSON 1.0 for SQS. SQS is `awsQueryCompatible`: errors carry their JSON type in `__type` and
 * their legacy Query code in the `x-amzn-query-error` header, from which SDKs pick the exception.
 */
export const jsonProtocol: WireProtocol = {
  name: 'json',

  decode(request: WireRequest): Call {
    const target = String(request.headers['x-amz-target']);
    if (!target.startsWith(TARGET_PREFIX) || target.length === TARGET_PREFIX.length) {
      throw new SqsError('UnknownOperation', `Unknown operation ${target}.`);
    }
    let input: unknown;
    try {
      input = request.body.length === 0 ? {} : JSON.parse(request.body.toString('utf8'));
    } catch {
      throw new SqsError('InvalidParameterValue', 'The request body is not valid JSON.');
    }
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      throw new SqsError('InvalidParameterValue', 'The request body must be a JSON object.');
    }
    return { action: target.slice(TARGET_PREFIX.length), input: input as Record<string, unknown> };
  },

  encodeResult(_action: string, output: Record<string, unknown>, requestId: string): WireResponse {
    return { status: 200, headers: { 'content-type': CONTENT_TYPE, 'x-amzn-requestid': requestId }, body: JSON.stringify(output) };
  },

  encodeError(error: SqsError, requestId: string): WireResponse {
    return {
      status: error.status,
      headers: {
        'content-type': CONTENT_TYPE,
        'x-amzn-requestid': requestId,
        'x-amzn-query-error': `${error.queryCode};${error.fault}`,
      },
      body: JSON.stringify({ __type: `com.amazonaws.sqs#${error.code}`, message: error.message }),
    };
  },
};
