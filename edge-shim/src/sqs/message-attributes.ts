import { createHash } from 'node:crypto';
import { SqsError, invalidParameter } from './errors.js';

/** A message attribute as the JSON protocol carries it: binary values are base64 text. */
export interface MessageAttributeValue {
  DataType: string;
  StringValue?: string;
  BinaryValue?: string;
}

export type MessageAttributes = Record<string, MessageAttributeValue>;

const MAX_ATTRIBUTES = 10;
const MAX_NAME_LENGTH = 256;
const MAX_DATA_TYPE_LENGTH = 256;
const NAME_CHARACTERS = /^[A-Za-z0-9_.-]+$/;
const RESERVED_NAME_PREFIXES = ['aws.', 'amazon.'];
// A logical type, optionally followed by a custom label: `Number.int`, `Binary.png`.
const DATA_TYPE = /^(String|Number|Binary)(\..+)?$/s;
const NUMBER = /^[+-]?(?:(\d+)(?:\.(\d*))?|\.(\d+))(?:[eE]([+-]?\d+))?$/;
const MAX_NUMBER_DIGITS = 38;
// Binary values arrive as standard base64 with padding.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// A non-zero Number's magnitude lies between 10^-128 and 10^126.
const MIN_NUMBER_EXPONENT = -128;
const MAX_NUMBER_EXPONENT = 125;

/** Characters SQS allows in bodies and attribute strings (XML 1.0 characters). */
// eslint-disable-next-line no-control-regex
const INVALID_CHARACTER = /[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

export function isBase64(text: string): boolean {
  return BASE64.test(text);
}

export function hasInvalidCharacters(text: string): boolean {
  return INVALID_CHARACTER.test(text);
}

function checkName(name: string): void {
  if (name === '') throw invalidParameter('The request must contain non-empty message attribute name.');
  const reason =
    name.length > MAX_NAME_LENGTH ? `It can be at most ${MAX_NAME_LENGTH} characters long.`
    : !NAME_CHARACTERS.test(name) ? 'It can only contain alphanumeric characters, hyphens, underscores and periods.'
    : name.startsWith('.') || name.endsWith('.') || name.includes('..') ? 'It must not start or end with a period, nor have periods in sequence.'
    : RESERVED_NAME_PREFIXES.some((prefix) => name.toLowerCase().startsWith(prefix)) ? 'The prefixes AWS. and Amazon. are reserved.'
    : undefined;
  if (reason) throw invalidParameter(`Message (user) attribute name '${name}' is invalid. ${reason}`);
}

/** A Number holds up to 38 significant digits (leading and trailing zeros do not count). */
function isValidNumber(value: string): boolean {
  const match = NUMBER.exec(value);
  if (!match) return false;
  const [, whole = '', fraction = '', fractionOnly, exponent = '0'] = match;
  const digits = fractionOnly === undefined ? whole + fraction : fractionOnly;
  const pointAt = fractionOnly === undefined ? whole.length : 0;
  const first = digits.search(/[1-9]/);
  if (first === -1) return true; // zero
  const significant = digits.slice(first).replace(/0+$/, '');
  const magnitude = pointAt - first - 1 + Number(exponent);
  return significant.length <= MAX_NUMBER_DIGITS && magnitude >= MIN_NUMBER_EXPONENT && magnitude <= MAX_NUMBER_EXPONENT;
}

/** The one value of an attribute, checked against its data type. Returns its size in bytes. */
function checkValue(name: string, attribute: Record<string, unknown>, dataType: string): number {
  const { StringValue: stringValue, BinaryValue: binaryValue } = attribute;
  const logicalType = dataType.split('.')[0]!;
  if (attribute.StringListValues !== undefined || attribute.BinaryListValues !== undefined) {
    throw invalidParameter(`Message (user) attribute '${name}': list values are not supported.`);
  }
  const binary = logicalType === 'Binary';
  const value = binary ? binaryValue : stringValue;
  const other = binary ? stringValue : binaryValue;
  if (typeof value !== 'string' || value === '' || other !== undefined) {
    throw invalidParameter(`Message (user) attribute '${name}' must contain a non-empty value of type '${logicalType}'.`);
  }
  if (binary) {
    if (!isBase64(value)) throw invalidParameter(`Message (user) attribute '${name}': the binary value is not valid base64.`);
    return Buffer.from(value, 'base64').length;
  }
  if (hasInvalidCharacters(value)) {
    throw new SqsError('InvalidMessageContents', `Message (user) attribute '${name}' contains characters outside the allowed set.`);
  }
  if (logicalType === 'Number' && !isValidNumber(value)) {
    throw invalidParameter(`Can't cast the value of message (user) attribute '${name}' to a number.`);
  }
  return Buffer.byteLength(value);
}

/**
 * Validates the MessageAttributes of a message and returns them as they are stored (only the
 * fields SQS keeps) with their size in bytes, as SQS counts it toward the maximum message size:
 * each name, data type and value.
 */
export function readMessageAttributes(raw: Record<string, unknown>): { attributes: MessageAttributes; size: number } {
  const names = Object.keys(raw);
  if (names.length > MAX_ATTRIBUTES) {
    throw invalidParameter(`Number of message attributes [${names.length}] exceeds the allowed maximum [${MAX_ATTRIBUTES}].`);
  }
  const stored: Array<[string, MessageAttributeValue]> = [];
  let size = 0;
  for (const name of names) {
    checkName(name);
    const attribute = raw[name];
    if (typeof attribute !== 'object' || attribute === null || Array.isArray(attribute)) {
      throw invalidParameter(`Message (user) attribute '${name}' must be a structure.`);
    }
    const fields = attribute as Record<string, unknown>;
    const dataType = fields.DataType;
    if (typeof dataType !== 'string' || dataType === '') {
      throw invalidParameter(`The message (user) attribute '${name}' must contain a non-empty message attribute type.`);
    }
    if (dataType.length > MAX_DATA_TYPE_LENGTH || !DATA_TYPE.test(dataType) || hasInvalidCharacters(dataType)) {
      throw invalidParameter(
        `The type of message (user) attribute '${name}' is invalid. You must use only the following supported type prefixes: Binary, Number, String.`,
      );
    }
    size += Buffer.byteLength(name) + Buffer.byteLength(dataType) + checkValue(name, fields, dataType);
    const valueField = dataType.startsWith('Binary') ? 'BinaryValue' : 'StringValue';
    stored.push([name, { DataType: dataType, [valueField]: fields[valueField] as string }]);
  }
  // fromEntries defines own properties: a name such as __proto__ stays an attribute, not a prototype.
  return { attributes: Object.fromEntries(stored), size };
}

/**
 * What a message counts toward SQS's size limits: its body and its attributes' names, data types
 * and values (binary values as bytes). Takes a request's raw fields, valid or not, so that a batch's
 * total can be checked before its entries are.
 */
export function payloadSize(body: unknown, attributes: unknown): number {
  let size = typeof body === 'string' ? Buffer.byteLength(body) : 0;
  if (typeof attributes !== 'object' || attributes === null) return size;
  for (const [name, attribute] of Object.entries(attributes as Record<string, unknown>)) {
    const { DataType, StringValue, BinaryValue } = (attribute ?? {}) as Record<string, unknown>;
    size += Buffer.byteLength(name);
    if (typeof DataType === 'string') size += Buffer.byteLength(DataType);
    if (typeof StringValue === 'string') size += Buffer.byteLength(StringValue);
    if (typeof BinaryValue === 'string') size += Buffer.from(BinaryValue, 'base64').length;
  }
  return size;
}

export function md5OfBody(body: string): string {
  return createHash('md5').update(body, 'utf8').digest('hex');
}

/**
 * MD5OfMessageAttributes as the SQS Developer Guide defines it: attributes sorted by name, each
 * encoded as length-prefixed name, length-prefixed data type, a transport byte (1 for String and
 * Number, 2 for Binary) and the length-prefixed value (UTF-8 text, or the raw bytes of a binary),
 * every length 4 bytes big-endian. Custom type labels are part of the data type.
 */
export function md5OfAttributes(attributes: MessageAttributes): string {
  const hash = createHash('md5');
  const lengthPrefixed = (bytes: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    hash.update(length);
    hash.update(bytes);
  };
  // Names are ASCII (see checkName), so code unit order is byte order.
  for (const name of Object.keys(attributes).sort()) {
    const { DataType: dataType, StringValue: stringValue, BinaryValue: binaryValue } = attributes[name]!;
    lengthPrefixed(Buffer.from(name, 'utf8'));
    lengthPrefixed(Buffer.from(dataType, 'utf8'));
    if (dataType.startsWith('Binary')) {
      hash.update(Buffer.from([2]));
      lengthPrefixed(Buffer.from(binaryValue ?? '', 'base64'));
    } else {
      hash.update(Buffer.from([1]));
      lengthPrefixed(Buffer.from(stringValue ?? '', 'utf8'));
    }
  }
  return hash.digest('hex');
}
