/** Where a workflow's queues are: the endpoint that serves them, and each stage's queue URLs. */
export interface AwsConnection {
  /** Omitted for AWS itself. */
  readonly endpoint?: string;
  readonly region: string;
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string };
}

export interface StageQueues {
  readonly queueUrl: string;
  readonly deadLetterQueueUrl: string;
}
