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
const NAME_PATTERN = /^[A-Za-z0-9_.-]{1,256}$/;
const DATA_TYPE_PATTERN = /^(String|Number|Binary)(\.[^\s]+)?$/;
// SQS accepts a number of up to 38 digits of precision between -10^128 and 10^126.
const NUMBER_PATTERN = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Characters SQS allows in bodies and attribute strings (XML 1.0 characters). */
// eslint-disable-next-line no-control-regex
const INVALID_CHARACTER = /[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

export function hasInvalidCharacters(text: string): boolean {
  return INVALID_CHARACTER.test(text);
}

function checkName(name: string): void {
  const lower = name.toLowerCase();
  if (
    !NAME_PATTERN.test(name) ||
    name.startsWith('.') ||
    name.endsWith('.') ||
    name.includes('..') ||
    lower.startsWith('aws.') ||
    lower.startsWith('amazon.')
  ) {
    throw invalidParameter(`Message attribute name '${name}' is invalid.`);
  }
}

function checkNumber(name: string, value: string): void {
  const trimmed = value.trim();
  const digits = trimmed.replace(/^[+-]/, '').replace(/[eE].*$/, '').replace('.', '').replace(/^0+/, '');
  const numeric = Number(trimmed);
  if (!NUMBER_PATTERN.test(trimmed) || digits.length > 38 || !(numeric >= -1e128 && numeric <= 1e126)) {
    throw invalidParameter(`Message attribute '${name}' has an invalid value for its Number data type.`);
  }
}

/**
 * Validates message attributes and returns their size in bytes as SQS counts it toward the message
 * size limit: each name, data type and value.
 */
export function validateMessageAttributes(attributes: MessageAttributes): number {
  const names = Object.keys(attributes);
  if (names.length > MAX_ATTRIBUTES) {
    throw invalidParameter(`Number of message attributes [${names.length}] exceeds the allowed maximum [${MAX_ATTRIBUTES}].`);
  }
  let size = 0;
  for (const name of names) {
    checkName(name);
    const attribute = attributes[name]!;
    if (typeof attribute !== 'object' || attribute === null) throw invalidParameter(`Message attribute '${name}' is invalid.`);
    const { DataType: dataType, StringValue: stringValue, BinaryValue: binaryValue } = attribute;
    if (typeof dataType !== 'string' || dataType === '') {
      throw invalidParameter(`The message attribute '${name}' must contain non-empty message attribute type.`);
    }
    if (dataType.length > 256 || !DATA_TYPE_PATTERN.test(dataType)) {
      throw invalidParameter(`The type of message attribute '${name}' is invalid. You must use only the following supported type prefixes: Binary, Number, String.`);
    }
    if ('StringListValues' in attribute || 'BinaryListValues' in attribute) {
      throw invalidParameter(`Message attribute list values in SendMessage operation are not supported.`);
    }
    size += Buffer.byteLength(name) + Buffer.byteLength(dataType);
    if (dataType.startsWith('Binary')) {
      if (typeof binaryValue !== 'string' || binaryValue === '' || stringValue !== undefined) {
        throw invalidParameter(`The message attribute '${name}' with type 'Binary' must use field 'Binary'.`);
      }
      size += Buffer.from(binaryValue, 'base64').length;
    } else {
      if (typeof stringValue !== 'string' || stringValue === '' || binaryValue !== undefined) {
        throw invalidParameter(`The message attribute '${name}' with type '${dataType.split('.')[0]}' must use field 'String'.`);
      }
      if (hasInvalidCharacters(stringValue)) {
        throw new SqsError('InvalidMessageContents', `Message attribute '${name}' contains invalid characters.`);
      }
      if (dataType.startsWith('Number')) checkNumber(name, stringValue);
      size += Buffer.byteLength(stringValue);
    }
  }
  return size;
}

export function md5OfBody(body: string): string {
  return createHash('md5').update(body, 'utf8').digest('hex');
}

/**
 * MD5OfMessageAttributes as SQS computes it: attributes sorted by name, each encoded as
 * length-prefixed name, length-prefixed data type, a transport byte (1 string, 2 binary) and
 * the length-prefixed value, all lengths 4-byte big-endian.
 */
export function md5OfAttributes(attributes: MessageAttributes): string {
  const hash = createHash('md5');
  const lengthPrefixed = (bytes: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    hash.update(length);
    hash.update(bytes);
  };
  for (const name of Object.keys(attributes).sort()) {
    const { DataType: dataType, StringValue: stringValue, BinaryValue: binaryValue } = attributes[name]!;
    lengthPrefixed(Buffer.from(name, 'utf8'));
    lengthPrefixed(Buffer.from(dataType, 'utf8'));
    if (binaryValue !== undefined) {
      hash.update(Buffer.from([2]));
      lengthPrefixed(Buffer.from(binaryValue, 'base64'));
    } else {
      hash.update(Buffer.from([1]));
      lengthPrefixed(Buffer.from(stringValue ?? '', 'utf8'));
    }
  }
  return hash.digest('hex');
}
