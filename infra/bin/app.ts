/**
 * The CDK app: the payments workflow's stack. Context (cdk.json or `-c key=value`):
 *   gatewayUrl, notifierUrl  where the agents reach the payment gateway and the notifier: required,
 *                            unless serviceUrls=none (agents without them fail their tasks: for an
 *                            emulator that runs no functions)
 *   eventSources=disabled  deploy the SQS event source mappings disabled (emulators without Docker)
 *   alarmTopic=disabled  no SNS topic for the alarms (they then only change state)
 *   edgeRole=rolesanywhere|ec2|ARN  a role for edge sites, taken through IAM Roles Anywhere, by an
 *                            EC2 instance (with an instance profile), or by the principal of an ARN
 *   edgeTrustAnchorArn=ARN  with edgeRole=rolesanywhere: the site's trust anchor, the only one whose
 *                            sessions may take the role
 *   stackName, workflowName  to deploy another copy side by side (its queues are named after the workflow)
 */
import { fileURLToPath } from 'node:url';
import { App } from 'aws-cdk-lib';
import { ArnPrincipal } from 'aws-cdk-lib/aws-iam';
import { payments } from '../../functions/src/workflows/payments.js';
import { ENV } from '../../functions/src/workflow-definition.js';
import { type EdgeRoleTrust, HoldfastStack } from '../lib/holdfast-stack.js';

const app = new App();
const context = (key: string): string | undefined => app.node.tryGetContext(key) as string | undefined;

/** Context that is missing or wrong: said in one line, without a stack trace, and `cdk` stops. */
function contextError(message: string): never {
  console.error(`Holdfast CDK app: ${message}`);
  process.exit(1);
}

/** The agents' gateway and notifier URLs, or none when explicitly so; anything else is an error saying what to pass. */
function serviceUrls(): Record<string, string> {
  const gatewayUrl = context('gatewayUrl');
  const notifierUrl = context('notifierUrl');
  const none = context('serviceUrls') === 'none';
  if (none && (gatewayUrl || notifierUrl)) contextError('-c serviceUrls=none deploys the agents without a gateway and notifier: pass it or their URLs, not both');
  if (none) return {};
  if (!gatewayUrl || !notifierUrl) {
    contextError(
      'the payments agents need the payment gateway and the notifier: pass -c gatewayUrl=https://... -c notifierUrl=https://... ' +
        '(or -c serviceUrls=none to deploy them without, as for an emulator that runs no functions: their tasks fail until the URLs are set)',
    );
  }
  return { [ENV.gatewayUrl]: gatewayUrl, [ENV.notifierUrl]: notifierUrl };
}

function edgeRole(): EdgeRoleTrust | undefined {
  const trust = context('edgeRole');
  const trustAnchor = context('edgeTrustAnchorArn');
  if (trustAnchor !== undefined && trust !== 'rolesanywhere') contextError('-c edgeTrustAnchorArn goes with -c edgeRole=rolesanywhere');
  if (trust === 'rolesanywhere') {
    if (!trustAnchor?.startsWith('arn:')) contextError('-c edgeRole=rolesanywhere needs the site\'s trust anchor: -c edgeTrustAnchorArn=arn:aws:rolesanywhere:REGION:ACCOUNT:trust-anchor/ID');
    return { rolesAnywhereTrustAnchorArn: trustAnchor };
  }
  if (trust === undefined || trust === 'ec2') return trust;
  if (!trust.startsWith('arn:')) contextError(`-c edgeRole=${trust}: give rolesanywhere, ec2, or the ARN of the principal that takes the edge's role`);
  return new ArnPrincipal(trust);
}

new HoldfastStack(app, context('stackName') ?? 'Holdfast', {
  description: 'Holdfast: fault-tolerant multi-agent payments workflow',
  workflow: { ...payments, name: context('workflowName') ?? payments.name },
  root: fileURLToPath(new URL('../../', import.meta.url)),
  eventSourcesEnabled: context('eventSources') !== 'disabled',
  alarmTopic: context('alarmTopic') !== 'disabled',
  environment: serviceUrls(),
  edgeRole: edgeRole(),
});
app.synth();
