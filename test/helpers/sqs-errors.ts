import { SQSServiceException } from '@aws-sdk/client-sqs';
import { expect } from 'vitest';

export interface ExpectedSqsError {
  /** The SDK exception's name, e.g. QueueDoesNotExist or InvalidParameterValue. */
  readonly name: string;
  /** The legacy Query code the SDK takes from x-amzn-query-error; defaults to `name`. */
  readonly code?: string;
  readonly status?: number;
  readonly message?: string | RegExp;
}

/** Awaits a call that must fail with an SQS error, and returns that error. */
export async function rejectionOf(call: Promise<unknown>): Promise<SQSServiceException & { Code?: string }> {
  const error = await call.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error, 'expected an SQS error').toBeInstanceOf(SQSServiceException);
  return error as SQSServiceException & { Code?: string };
}

/** Awaits a call that must fail and checks the error as an SDK v3 client sees it. */
export async function expectSqsError(call: Promise<unknown>, expected: ExpectedSqsError): Promise<SQSServiceException> {
  const failure = await rejectionOf(call);
  expect(failure.name).toBe(expected.name);
  expect(failure.Code).toBe(expected.code ?? expected.name);
  const status = expected.status ?? 400;
  expect(failure.$fault).toBe(status >= 500 ? 'server' : 'client');
  expect(failure.$metadata.httpStatusCode).toBe(status);
  if (typeof expected.message === 'string') expect(failure.message).toBe(expected.message);
  else if (expected.message) expect(failure.message).toMatch(expected.message);
  return failure;
}
