import { SqsError } from '../sqs/errors.js';
import { isBase64 } from '../sqs/message-attributes.js';
import type { Shape, StructureShape } from './operations.js';

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function mismatch(path: string, expected: string): SqsError {
  return new SqsError('SerializationException', `The value of ${path} must be ${expected}.`);
}

/**
 * Checks that every member of an AWS JSON request has the JSON type its shape wants, as the AWS JSON
 * protocol's framework does before any operation runs: a mismatch anywhere (a string for an integer,
 * malformed base64 for a blob, a wrong field in one batch entry) fails the whole request with
 * SerializationException. A member set to null counts as absent; members the model does not know are
 * left to the operation. Ranges and other constraints are the operation's to check.
 */
export function checkJsonTypes(shape: StructureShape, input: Record<string, unknown>): void {
  checkStructure(shape, input, '');
}

function checkStructure(shape: StructureShape, value: Record<string, unknown>, path: string): void {
  for (const member of shape.members) {
    const item = Object.hasOwn(value, member.name) ? value[member.name] : undefined;
    if (item !== undefined && item !== null) checkValue(member.shape, item, path === '' ? member.name : `${path}.${member.name}`);
  }
}

function checkValue(shape: Shape, value: unknown, path: string): void {
  switch (shape.kind) {
    case 'string':
      if (typeof value !== 'string') throw mismatch(path, 'a string');
      return;
    case 'blob':
      if (typeof value !== 'string' || !isBase64(value)) throw mismatch(path, 'base64-encoded binary data');
      return;
    case 'integer':
      // Whole or not, a number is left for the operation to judge against its range.
      if (typeof value !== 'number') throw mismatch(path, 'a number');
      return;
    case 'boolean':
      if (typeof value !== 'boolean') throw mismatch(path, 'a boolean');
      return;
    case 'list':
      if (!Array.isArray(value)) throw mismatch(path, 'a list');
      value.forEach((item, index) => checkValue(shape.member, item, `${path}[${index}]`));
      return;
    case 'map':
      if (!isObject(value)) throw mismatch(path, 'a map');
      for (const [key, item] of Object.entries(value)) checkValue(shape.value, item, `${path}.${key}`);
      return;
    case 'structure':
      if (!isObject(value)) throw mismatch(path, 'a structure');
      checkStructure(shape, value, path);
  }
}
