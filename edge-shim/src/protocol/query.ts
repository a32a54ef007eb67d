import { isUtf8 } from 'node:buffer';
import { XMLBuilder } from 'fast-xml-parser';
import { SqsError, missingParameter } from '../sqs/errors.js';
import { OPERATIONS, type Shape, type StructureShape } from './operations.js';
import type { Call, WireProtocol, WireRequest, WireResponse } from './wire.js';

const NAMESPACE = 'http://queue.amazonaws.com/doc/2012-11-05/';
const FORM_CONTENT_TYPE = 'application/x-www-form-urlencoded';
const INDEX = /^[1-9]\d*$/;
// Far more than any SQS request has (a full SendMessageBatch has a few hundred), and the deepest name
// SQS reads (SendMessageBatchRequestEntry.N.MessageAttribute.N.Value.StringListValue.N) has 7 parts:
// beyond these, a hostile body of many or deeply dotted names would cost seconds and gigabytes to decode.
const MAX_PARAMETERS = 10_000;
const MAX_NAME_PARTS = 8;
// Characters XML 1.0 cannot carry; only error messages echoing client input could contain them.
// eslint-disable-next-line no-control-regex
const NOT_XML = /[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** A request parameter's name split at its dots: `MessageAttribute.1.Value.DataType`. */
interface ParameterNode {
  value?: string;
  readonly children: Map<string, ParameterNode>;
}

// Decoded strictly, not with URLSearchParams: that keeps broken escapes as text and turns invalid
// UTF-8 into U+FFFD, which would store a different message body than the client sent. The same rule
// holds in the query string and the body.
function decodeFormComponent(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    throw new SqsError('MalformedQueryString', `The request has an invalid percent-encoding, or one of bytes that are not UTF-8, in '${text.slice(0, 100)}'.`);
  }
}

function addParameter(parameters: Map<string, string>, name: string, value: string): void {
  if (parameters.has(name)) throw new SqsError('MalformedQueryString', `The parameter ${name} appears more than once in the request.`);
  parameters.set(name, value);
}

/** Adds the parameters of a form-encoded text (`a=1&b=2`) to `parameters`. */
function addForm(parameters: Map<string, string>, form: string): void {
  const pairs = form.split('&');
  if (pairs.length + parameters.size > MAX_PARAMETERS) throw new SqsError('MalformedQueryString', `The request has more than ${MAX_PARAMETERS} parameters.`);
  for (const pair of pairs) {
    if (pair === '') continue;
    const equals = pair.indexOf('=');
    const name = decodeFormComponent(equals < 0 ? pair : pair.slice(0, equals));
    addParameter(parameters, name, equals < 0 ? '' : decodeFormComponent(pair.slice(equals + 1)));
  }
}

/** The parameters of the query string and, for a form POST, of the body; a name may appear once. */
function readParameters(request: WireRequest): Map<string, string> {
  const parameters = new Map<string, string>();
  addForm(parameters, request.queryString);
  if (request.body.length === 0) return parameters;
  const contentType = String(request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (contentType !== FORM_CONTENT_TYPE) {
    throw new SqsError('InvalidQueryParameter', `A request body must be sent as ${FORM_CONTENT_TYPE}, not '${contentType}'.`);
  }
  // Form encoding leaves bytes outside ASCII raw only by mistake; they must at least be UTF-8.
  if (!isUtf8(request.body)) throw new SqsError('MalformedQueryString', 'The request body is not valid UTF-8.');
  addForm(parameters, request.body.toString('utf8'));
  return parameters;
}

function parameterTree(parameters: Map<string, string>): ParameterNode {
  const root: ParameterNode = { children: new Map() };
  for (const [name, value] of parameters) {
    const parts = name.split('.', MAX_NAME_PARTS + 1);
    if (parts.length > MAX_NAME_PARTS) throw new SqsError('MalformedQueryString', `The parameter name '${name.slice(0, 100)}' has more than ${MAX_NAME_PARTS} parts.`);
    let node = root;
    for (const part of parts) {
      let child = node.children.get(part);
      if (!child) node.children.set(part, (child = { children: new Map() }));
      node = child;
    }
    node.value = value;
  }
  return root;
}

/** The numbered entries of a flattened list or map (`Name.1`, `Name.2`, ...) in their order. */
function entries(node: ParameterNode): Array<[string, ParameterNode]> {
  return [...node.children].filter(([index]) => INDEX.test(index)).sort(([a], [b]) => Number(a) - Number(b));
}

/** Turns flattened Query parameters into the JSON-protocol shape of the value. */
function readValue(shape: Shape, node: ParameterNode | undefined, path: string): unknown {
  if (!node) return undefined;
  switch (shape.kind) {
    case 'string':
    case 'blob':
    case 'boolean':
      return node.value;
    case 'integer':
      // A value that is not an integer goes on as text, for the action to refuse with its own message.
      return node.value !== undefined && /^-?\d+$/.test(node.value) ? Number(node.value) : node.value;
    case 'list': {
      const items = entries(node).map(([index, child]) => readValue(shape.member, child, `${path}.${index}`));
      return items.length > 0 ? items : undefined;
    }
    case 'map': {
      const pairs = entries(node).map(([index, child]) => {
        const key = child.children.get(shape.keyName)?.value;
        if (key === undefined) throw missingParameter(`${path}.${index}.${shape.keyName}`);
        const valuePath = `${path}.${index}.${shape.valueName}`;
        const value = readValue(shape.value, child.children.get(shape.valueName), valuePath);
        if (value === undefined) throw missingParameter(valuePath);
        return [key, value] as const;
      });
      // fromEntries defines own properties, so a key such as __proto__ stays an ordinary key.
      return pairs.length > 0 ? Object.fromEntries(pairs) : undefined;
    }
    case 'structure':
      return readStructure(shape, node, path);
  }
}

function readStructure(shape: StructureShape, node: ParameterNode, path: string): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const member of shape.members) {
    const value = readValue(member.shape, node.children.get(member.xmlName), path === '' ? member.xmlName : `${path}.${member.xmlName}`);
    if (value !== undefined) result[member.name] = value;
  }
  return result;
}

/** The JSON-protocol output value as fast-xml-parser builder input, flattened the way SQS writes it. */
function writeValue(shape: Shape, value: unknown): unknown {
  if (value === undefined || value === null) return undefined;
  switch (shape.kind) {
    case 'string':
    case 'blob':
    case 'integer':
    case 'boolean':
      return String(value);
    case 'list':
      return Array.isArray(value) ? value.map((item) => writeValue(shape.member, item)).filter((item) => item !== undefined) : undefined;
    case 'map':
      return Object.entries(value as Record<string, unknown>).map(([key, item]) => ({
        [shape.keyName]: key,
        [shape.valueName]: writeValue(shape.value, item),
      }));
    case 'structure': {
      const element: Record<string, unknown> = {};
      for (const member of shape.members) {
        const written = writeValue(member.shape, (value as Record<string, unknown>)[member.name]);
        if (written === undefined || (Array.isArray(written) && written.length === 0)) continue;
        element[member.xmlName] = written;
      }
      return element;
    }
  }
}

/** Escapes element text; a carriage return is written as a reference so that XML parsers keep it. */
function escapeText(text: string): string {
  return text.replace(NOT_XML, '\uFFFD').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#xD;');
}

const builder = new XMLBuilder({
  ignoreAttributes: false,
  processEntities: false,
  suppressEmptyNode: false,
  tagValueProcessor: (_name, value) => (typeof value === 'string' ? escapeText(value) : value),
});

function xmlResponse(status: number, document: Record<string, unknown>, requestId: string): WireResponse {
  return {
    status,
    headers: { 'content-type': 'text/xml', 'x-amzn-requestid': requestId },
    body: `<?xml version="1.0"?>${builder.build(document) as string}`,
  };
}

/**
 * The AWS Query protocol for SQS, which older SDKs and the AWS CLI v1 spoke: parameters form-encoded
 * in a POST body or a GET query string, results and errors as XML. A request may name its queue by
 * its path (`POST /000000000000/orders` with no QueueUrl), as the queue URL is the endpoint there.
 */
export const queryProtocol: WireProtocol = {
  name: 'query',

  decode(request: WireRequest): Call {
    const parameters = readParameters(request);
    const action = parameters.get('Action');
    if (action === undefined || action === '') throw new SqsError('MissingAction', 'The request must contain the parameter Action.');
    const operation = Object.hasOwn(OPERATIONS, action) ? OPERATIONS[action] : undefined;
    if (!operation) throw new SqsError('InvalidAction', `The action ${action} is not valid for this endpoint.`);
    const input = readStructure(operation.input, parameterTree(parameters), '');
    const takesQueueUrl = operation.input.members.some((member) => member.name === 'QueueUrl');
    if (takesQueueUrl && input.QueueUrl === undefined && request.path !== '/' && request.path !== '') input.QueueUrl = request.path;
    return { action, input };
  },

  encodeResult(action: string, output: Record<string, unknown>, requestId: string): WireResponse {
    const shape = OPERATIONS[action]?.output;
    return xmlResponse(
      200,
      {
        [`${action}Response`]: {
          '@_xmlns': NAMESPACE,
          ...(shape ? { [`${action}Result`]: writeValue(shape, output) } : {}),
          ResponseMetadata: { RequestId: requestId },
        },
      },
      requestId,
    );
  },

  encodeError(error: SqsError, requestId: string): WireResponse {
    return xmlResponse(
      error.status,
      {
        ErrorResponse: {
          '@_xmlns': NAMESPACE,
          Error: { Type: error.fault, Code: error.queryCode, Message: error.message, Detail: '' },
          RequestId: requestId,
        },
      },
      requestId,
    );
  },
};
