import { invalidParameter, missingParameter } from './errors.js';

/**
 * Readers for a request's parameters in their JSON-protocol shape. Requests are untrusted: every
 * reader checks the type. The JSON protocol has already refused wrong types (SerializationException,
 * protocol/json-types.ts); what these readers refuse is Query text that is not of its type (the Query
 * decoder passes a non-integer on as text), answered with the Query protocol's InvalidParameterValue.
 */
export type Input = Record<string, unknown>;

export function optionalString(input: Input, name: string): string | undefined {
  const value = input[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalidParameter(`Value for parameter ${name} is invalid. Reason: must be a string.`);
  return value;
}

export function requiredString(input: Input, name: string): string {
  const value = optionalString(input, name);
  if (value === undefined) throw missingParameter(name);
  return value;
}

export function optionalInteger(input: Input, name: string, min: number, max: number): number | undefined {
  const value = input[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw invalidParameter(`Value ${String(value)} for parameter ${name} is invalid. Reason: must be an integer.`);
  }
  if (value < min || value > max) {
    throw invalidParameter(`Value ${value} for parameter ${name} is invalid. Reason: must be between ${min} and ${max}.`);
  }
  return value;
}

export function optionalList(input: Input, name: string): unknown[] | undefined {
  const value = input[name];
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw invalidParameter(`Value for parameter ${name} is invalid. Reason: must be a list.`);
  return value;
}

export function optionalStringList(input: Input, name: string): string[] | undefined {
  const list = optionalList(input, name);
  if (list?.some((item) => typeof item !== 'string')) {
    throw invalidParameter(`Value for parameter ${name} is invalid. Reason: must be a list of strings.`);
  }
  return list as string[] | undefined;
}

export function optionalMap(input: Input, name: string): Record<string, unknown> | undefined {
  const value = input[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw invalidParameter(`Value for parameter ${name} is invalid. Reason: must be a map.`);
  }
  return value as Record<string, unknown>;
}

export function optionalStringMap(input: Input, name: string): Record<string, string> | undefined {
  const map = optionalMap(input, name);
  if (map && Object.values(map).some((item) => typeof item !== 'string')) {
    throw invalidParameter(`Value for parameter ${name} is invalid. Reason: values must be strings.`);
  }
  return map as Record<string, string> | undefined;
}

export function asInput(value: unknown, name: string): Input {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidParameter(`Value for parameter ${name} is invalid. Reason: must be a structure.`);
  }
  return value as Input;
}
