import { SqsError, missingParameter } from './errors.js';
import { type Input, asInput, optionalList } from './input.js';
import type { Step } from './storage/step.js';

const MAX_ENTRIES = 10;
const ENTRY_ID = /^[A-Za-z0-9_-]{1,80}$/;

export interface BatchResultError {
  Id: string;
  SenderFault: boolean;
  Code: string;
  Message: string;
}

/**
 * The entries of a batch request, checked as SQS checks them before any entry is processed.
 * `entryName` is the entry's shape in the API (e.g. SendMessageBatchRequestEntry), for the errors.
 */
export function batchEntries(input: Input, listName: string, entryName = 'entry'): Array<Input & { Id: string }> {
  const entries = (optionalList(input, listName) ?? []).map((entry, index) => asInput(entry, `${listName}.${index + 1}`));
  if (entries.length === 0) {
    throw new SqsError('EmptyBatchRequest', `There should be at least one ${entryName} in the request.`);
  }
  if (entries.length > MAX_ENTRIES) {
    throw new SqsError('TooManyEntriesInBatchRequest', `Maximum number of entries per request are ${MAX_ENTRIES}. You have sent ${entries.length}.`);
  }
  const seen = new Set<string>();
  for (const [index, entry] of entries.entries()) {
    const id = entry.Id;
    if (id === undefined || id === null) throw missingParameter(`${entryName}.${index + 1}.Id`);
    if (typeof id !== 'string' || !ENTRY_ID.test(id)) {
      throw new SqsError('InvalidBatchEntryId', 'A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.');
    }
    if (seen.has(id)) throw new SqsError('BatchEntryIdsNotDistinct', `Id ${id} repeated.`);
    seen.add(id);
  }
  return entries as Array<Input & { Id: string }>;
}

/** Runs each entry on its own; an SQS error fails only its entry, anything else the whole request. */
export function* runEntries<R>(
  entries: Array<Input & { Id: string }>,
  run: (entry: Input & { Id: string }) => Step<R>,
): Step<{ Successful: R[]; Failed: BatchResultError[] }> {
  const Successful: R[] = [];
  const Failed: BatchResultError[] = [];
  for (const entry of entries) {
    try {
      Successful.push(yield* run(entry));
    } catch (error) {
      if (!(error instanceof SqsError)) throw error;
      Failed.push({ Id: entry.Id, SenderFault: error.fault === 'Sender', Code: error.code, Message: error.message });
    }
  }
  return { Successful, Failed };
}
