import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { pino } from 'pino';
import { type AwsConnection, type LocalRunner, startLocalRunner } from '../functions/src/event-source/runner.js';
import { type FakeGateway, startFakeGateway } from '../functions/src/fake-gateway/server.js';
import { checkAwsEndpoint } from '../functions/src/local-pipeline/endpoint-check.js';
import { startMoto } from '../functions/src/local-pipeline/moto.js';
import { createWorkflowResources, resourceEnvironment, type WorkflowResources } from '../functions/src/local-pipeline/resources.js';
import { payments } from '../functions/src/workflows/payments.js';
import { ENV } from '../functions/src/workflow-definition.js';

/**
 * The drill's region: an AWS emulator (a moto server of its own, or the endpoint given, e.g.
 * LocalStack), the payments workflow's queues and tables in it, and its agents running there (the
 * local runner, each stage in a worker thread, talking to the emulator directly: an outage cuts
 * the edge off from the region, not the region from itself). Also the outside world both sides
 * call: the fake payment gateway and the notifier.
 */
export interface DrillRegion {
  readonly aws: AwsConnection & { readonly endpoint: string; readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string } };
  /** Whether the emulator was started for this drill (moto) or given. */
  readonly emulator: 'moto' | 'given';
  /** The moto server's process id; null when the emulator was given. */
  readonly emulatorPid: number | null;
  readonly resources: WorkflowResources;
  readonly gateway: FakeGateway;
  readonly notifier: FakeGateway;
  readonly sqs: SQSClient;
  readonly documents: DynamoDBDocumentClient;
  /** Messages in each of the workflow's queues (visible, in flight, delayed), by queue URL. */
  queueDepths(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

export interface RegionOptions {
  /** An emulator to use instead of starting moto (AWS_ENDPOINT_URL, or the one a test suite shares). */
  readonly endpoint?: string;
  /**
   * Messages per invocation of the region's agents: 1 by default, not the stack's 10. moto answers
   * a call in tens of milliseconds on a busy machine (and copies a whole table for every
   * TransactWriteItems), so a task takes a second or more there; ten in one invocation would outrun
   * the stage's timeout (15 s) and wait out the queue's visibility timeout (90 s) before they are
   * tried again, which measures the emulator, not the edge.
   */
  readonly batchSize?: number;
  /** Where the region's runner logs (its warnings and errors: failed invocations, dead-lettered messages); stdout without. */
  readonly logFile?: string;
}

const REGION_NAME = 'us-east-1';
const EMULATOR_CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };

export async function startRegion(options: RegionOptions = {}): Promise<DrillRegion> {
  const moto = options.endpoint ? undefined : await startMoto();
  const aws = { endpoint: options.endpoint ?? moto!.endpoint, region: REGION_NAME, credentials: EMULATOR_CREDENTIALS };
  const closers: Array<() => Promise<void> | void> = [async () => moto?.stop()];
  const close = async () => {
    for (const closer of closers.reverse()) await closer();
  };
  try {
    await checkAwsEndpoint(aws);
    const gateway = await startFakeGateway();
    closers.push(() => gateway.close());
    const notifier = await startFakeGateway();
    closers.push(() => notifier.close());
    const resources = await createWorkflowResources(aws, payments);
    const batchSize = options.batchSize ?? 1;
    const runner: LocalRunner = await startLocalRunner({
      workflow: { ...payments, stages: payments.stages.map((stage) => ({ ...stage, batchSize })) },
      aws,
      queues: resources.queues,
      environment: { ...resourceEnvironment(resources), [ENV.gatewayUrl]: gateway.url, [ENV.notifierUrl]: notifier.url, POWERTOOLS_LOG_LEVEL: 'ERROR' },
      initialize: true,
      logger: pino({ name: 'region', level: 'warn' }, options.logFile ? pino.destination({ dest: options.logFile, sync: true }) : undefined),
    });
    closers.push(() => runner.stop());
    const sqs = new SQSClient(aws);
    const documents = DynamoDBDocumentClient.from(new DynamoDBClient(aws));
    closers.push(() => {
      sqs.destroy();
      documents.destroy();
    });
    const queueUrls = [...Object.values(resources.queues).flatMap((queues) => [queues.queueUrl, queues.deadLetterQueueUrl])];
    return {
      aws,
      emulator: moto ? 'moto' : 'given',
      emulatorPid: moto?.pid ?? null,
      resources,
      gateway,
      notifier,
      sqs,
      documents,
      async queueDepths() {
        const depths = await Promise.all(
          queueUrls.map(async (QueueUrl) => {
            const { Attributes = {} } = await sqs.send(
              new GetQueueAttributesCommand({
                QueueUrl,
                AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
              }),
            );
            const count = Number(Attributes.ApproximateNumberOfMessages ?? 0) + Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0) + Number(Attributes.ApproximateNumberOfMessagesDelayed ?? 0);
            return [QueueUrl, count] as const;
          }),
        );
        return Object.fromEntries(depths);
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
