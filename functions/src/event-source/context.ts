import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';

/** What identifies the function an invocation runs as; plain data, so it can cross to a worker thread. */
export interface FunctionIdentity {
  readonly functionName: string;
  readonly invokedFunctionArn: string;
  readonly memoryLimitInMB: string;
  readonly logGroupName: string;
  readonly logStreamName: string;
}

export interface InvocationInfo extends FunctionIdentity {
  readonly awsRequestId: string;
  /** Epoch milliseconds at which the invocation times out. */
  readonly deadline: number;
}

export function functionIdentity(options: { functionName: string; region: string; accountId: string; memoryMb: number }): FunctionIdentity {
  const date = new Date().toISOString().slice(0, 10).replaceAll('-', '/');
  return {
    functionName: options.functionName,
    invokedFunctionArn: `arn:aws:lambda:${options.region}:${options.accountId}:function:${options.functionName}`,
    memoryLimitInMB: String(options.memoryMb),
    logGroupName: `/aws/lambda/${options.functionName}`,
    logStreamName: `${date}/[$LATEST]${randomUUID().replaceAll('-', '')}`,
  };
}

export function invocationInfo(identity: FunctionIdentity, timeoutSeconds: number): InvocationInfo {
  return { ...identity, awsRequestId: randomUUID(), deadline: Date.now() + timeoutSeconds * 1000 };
}

function unsupported(name: string): never {
  throw new Error(`context.${name}() is not supported by the local runner: return a value or a promise from the handler`);
}

/** The Lambda context object handed to a handler; it reads `info.deadline` at each call, as a runner being stopped may move it. */
export function lambdaContext(info: InvocationInfo): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: info.functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: info.invokedFunctionArn,
    memoryLimitInMB: info.memoryLimitInMB,
    awsRequestId: info.awsRequestId,
    logGroupName: info.logGroupName,
    logStreamName: info.logStreamName,
    getRemainingTimeInMillis: () => Math.max(0, info.deadline - Date.now()),
    done: () => unsupported('done'),
    fail: () => unsupported('fail'),
    succeed: () => unsupported('succeed'),
  };
}
