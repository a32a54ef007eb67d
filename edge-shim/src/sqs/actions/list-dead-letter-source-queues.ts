import { type SqsContext, queueUrl } from '../context.js';
import { invalidParameter } from '../errors.js';
import { type Input, optionalInteger, optionalString, requiredString } from '../input.js';
import { UNPAGED_LIMIT, decodePageToken, encodePageToken } from '../pagination.js';
import { deadLetterSources } from '../redrive.js';
import { queueByUrl } from '../queues.js';

const OPERATION = 'ListDeadLetterSourceQueues';

/** The queues whose RedrivePolicy names this queue as their dead-letter queue, by name, in pages. */
export function* listDeadLetterSourceQueues(context: SqsContext, input: Input) {
  const queue = yield* queueByUrl(context.queues, requiredString(input, 'QueueUrl'));
  const maxResults = optionalInteger(input, 'MaxResults', 1, 1000);
  const nextToken = optionalString(input, 'NextToken');
  if (nextToken !== undefined && maxResults === undefined) {
    throw invalidParameter('MaxResults is a mandatory parameter when you provide a value for NextToken.');
  }
  const after = nextToken === undefined ? undefined : decodePageToken(nextToken, OPERATION);
  const names = (yield* deadLetterSources(context, queue))
    .map((source) => source.name)
    .filter((name) => after === undefined || name > after)
    .sort();
  const page = names.slice(0, maxResults ?? UNPAGED_LIMIT);
  const more = maxResults !== undefined && names.length > page.length;
  return {
    queueUrls: page.map((name) => queueUrl(context, { name })),
    ...(more ? { NextToken: encodePageToken(page.at(-1)!, OPERATION) } : {}),
  };
}
