import { type SqsContext, queueUrl } from '../context.js';
import { invalidParameter } from '../errors.js';
import { type Input, optionalInteger, optionalString } from '../input.js';
import { UNPAGED_LIMIT, decodePageToken, encodePageToken } from '../pagination.js';
import { call } from '../storage/step.js';


export function* listQueues(context: SqsContext, input: Input) {
  const prefix = optionalString(input, 'QueueNamePrefix') ?? '';
  const maxResults = optionalInteger(input, 'MaxResults', 1, 1000);
  const nextToken = optionalString(input, 'NextToken');
  if (nextToken !== undefined && maxResults === undefined) {
    throw invalidParameter('MaxResults is a mandatory parameter when you provide a value for NextToken.');
  }
  const names = (yield* call(context.queues.all()))
    .map((queue) => queue.name)
    .filter((name) => name.startsWith(prefix))
    .sort();
  const after = nextToken === undefined ? undefined : decodePageToken(nextToken, 'ListQueues');
  const remaining = after === undefined ? names : names.filter((name) => name > after);
  const page = remaining.slice(0, maxResults ?? UNPAGED_LIMIT);
  const urls = page.map((name) => queueUrl(context, { name }));
  const more = maxResults !== undefined && remaining.length > page.length;
  return {
    ...(urls.length > 0 ? { QueueUrls: urls } : {}),
    ...(more ? { NextToken: encodePageToken(page.at(-1)!, 'ListQueues') } : {}),
  };
}
