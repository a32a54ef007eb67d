import { invalidParameter } from './errors.js';

const MAX_TAGS = 50;
// Unicode letters, digits, whitespace and _ . : / = + - @ (SQS quotas, "Queue tag").
const TAG_CHARACTERS = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

/** The length SQS counts: Unicode characters, not UTF-16 code units. */
const lengthOf = (text: string): number => [...text].length;

export function validateTagKey(key: string): void {
  if (lengthOf(key) < 1 || lengthOf(key) > 128) throw invalidParameter('Tag keys must be between 1 and 128 characters in length.');
  if (!TAG_CHARACTERS.test(key)) throw invalidParameter(`Tag key '${key}' contains characters that are not allowed.`);
  if (key.toLowerCase().startsWith('aws:')) throw invalidParameter(`Tag key '${key}' uses the reserved prefix aws:.`);
}

/**
 * Tags as SQS allows them: keys of 1 to 128 and values of 0 to 256 Unicode letters, digits, spaces
 * and `_ . : / = + - @`, no `aws:` prefix, and at most 50 on a queue once merged with `existing`.
 */
export function validateTags(tags: Record<string, string>, existing: Record<string, string> = {}): void {
  for (const [key, value] of Object.entries(tags)) {
    validateTagKey(key);
    if (lengthOf(value) > 256) throw invalidParameter(`Tag value for key '${key}' must be at most 256 characters.`);
    if (!TAG_CHARACTERS.test(value)) throw invalidParameter(`Tag value for key '${key}' contains characters that are not allowed.`);
    if (value.toLowerCase().startsWith('aws:')) throw invalidParameter(`Tag value for key '${key}' uses the reserved prefix aws:.`);
  }
  if (Object.keys({ ...existing, ...tags }).length > MAX_TAGS) {
    throw invalidParameter(`Too many tags: a queue can have at most ${MAX_TAGS}.`);
  }
}
