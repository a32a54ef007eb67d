import { request } from 'undici';
import { HttpStatusError, PermanentError } from './errors.js';

/**
 * POSTs JSON to a downstream service over undici and returns its JSON answer. Non-2xx answers throw
 * HttpStatusError (5xx and 429 count as transient); `idempotencyKey` lets the service drop repeats.
 */
export async function postJson<T>(
  service: string,
  url: string,
  body: unknown,
  options: { signal: AbortSignal; idempotencyKey: string },
): Promise<T> {
  const response = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': options.idempotencyKey },
    body: JSON.stringify(body),
    signal: options.signal,
  });
  const text = await response.body.text();
  if (response.statusCode < 200 || response.statusCode >= 300) throw new HttpStatusError(service, response.statusCode, text);
  try {
    return (text ? JSON.parse(text) : {}) as T;
  } catch {
    throw new PermanentError(`${service} answered with a body that is not JSON`);
  }
}
