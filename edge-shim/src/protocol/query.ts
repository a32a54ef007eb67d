import { SqsError } from '../sqs/errors.js';
import type { WireProtocol } from './wire.js';

export const queryProtocol: WireProtocol = {
  name: 'query',
  decode() {
    throw new SqsError('InvalidAction', 'not yet implemented');
  },
  encodeResult() {
    throw new Error('not yet implemented');
  },
  encodeError(error, requestId) {
    return { status: error.status, headers: { 'content-type': 'text/xml', 'x-amzn-requestid': requestId }, body: `<ErrorResponse><Error><Type>${error.fault}</Type><Code>${error.queryCode}</Code><Message>${error.message}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>` };
  },
};
