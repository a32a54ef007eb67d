import { invalidParameter } from './errors.js';

const MAX_TAGS = 50;

/** Tag keys and values as SQS allows them: at most 50 tags, keys 1-128 and values 0-256 characters. */
export function validateTags(tags: Record<string, string>, existing: Record<string, string> = {}): void {
  for (const [key, value] of Object.entries(tags)) {
    if (key.length < 1 || key.length > 128) throw invalidParameter(`Tag key '${key}' must be between 1 and 128 characters.`);
    if (key.toLowerCase().startsWith('aws:')) throw invalidParameter(`Tag key '${key}' uses the reserved prefix aws:.`);
    if (value.length > 256) throw invalidParameter(`Tag value for key '${key}' must be at most 256 characters.`);
  }
  if (Object.keys({ ...existing, ...tags }).length > MAX_TAGS) {
    throw invalidParameter(`Too many tags: a queue can have at most ${MAX_TAGS}.`);
  }
}
