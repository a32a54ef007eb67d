/**
 * The CDK app: the payments workflow's stack. Context (cdk.json or `-c key=value`):
 *   eventSources=disabled  deploy the SQS event source mappings disabled (emulators without Docker)
 *   alarmTopic=disabled  no SNS topic for the alarms (they then only change state)
 *   gatewayUrl, notifierUrl  where the agents reach the payment gateway and the notifier
 *   stackName, workflowName  to deploy another copy side by side (its queues are named after the workflow)
 */
import { fileURLToPath } from 'node:url';
import { App } from 'aws-cdk-lib';
import { payments } from '../../functions/src/workflows/payments.js';
import { ENV } from '../../functions/src/workflow-definition.js';
import { HoldfastStack } from '../lib/holdfast-stack.js';

const app = new App();
const context = (key: string): string | undefined => app.node.tryGetContext(key) as string | undefined;
const gatewayUrl = context('gatewayUrl');
const notifierUrl = context('notifierUrl');

new HoldfastStack(app, context('stackName') ?? 'Holdfast', {
  description: 'Holdfast: fault-tolerant multi-agent payments workflow',
  workflow: { ...payments, name: context('workflowName') ?? payments.name },
  root: fileURLToPath(new URL('../../', import.meta.url)),
  eventSourcesEnabled: context('eventSources') !== 'disabled',
  alarmTopic: context('alarmTopic') !== 'disabled',
  environment: {
    ...(gatewayUrl && { [ENV.gatewayUrl]: gatewayUrl }),
    ...(notifierUrl && { [ENV.notifierUrl]: notifierUrl }),
  },
});
app.synth();
