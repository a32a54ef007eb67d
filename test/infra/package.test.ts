import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { REPOSITORY_ROOT } from './support/synth-stack.js';

/**
 * `holdfast/infra` as a team's CDK app imports it: the package built (as `npm run build` does, into
 * a directory of its own) and installed beside the app, whose TypeScript is checked against the
 * package's declarations and run. The app deploys a workflow of its own with every choice the
 * construct offers, and grants its edge sites' role.
 */
const run = promisify(execFile);
const workdir = await mkdtemp(join(tmpdir(), 'holdfast-package-'));
afterAll(() => rm(workdir, { recursive: true, force: true }));

const CONSUMER_APP = `
import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { AccountPrincipal, Role } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Architecture, Tracing } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { Template } from 'aws-cdk-lib/assertions';
import { type WorkflowDefinition, WorkflowPipeline } from 'holdfast/infra';

const orders: WorkflowDefinition = {
  name: 'orders',
  stages: [{ name: 'pick', entry: 'agents/pick.mjs', maxReceiveCount: 3, timeoutSeconds: 10, memoryMb: 256, batchSize: 5, maxConcurrency: 2, runsAtEdge: true, tables: { idempotency: 'readwrite', workflow: 'readwrite' } }],
};
const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
const stack = new Stack(app, 'Orders');
const pipeline = new WorkflowPipeline(stack, 'Pipeline', {
  workflow: orders,
  root: process.cwd(),
  alarmTopic: new Topic(stack, 'OnCall'),
  encryptionKey: new Key(stack, 'DataKey'),
  stageFunctions: { pick: { architecture: Architecture.ARM_64, memorySize: 512, reservedConcurrentExecutions: 2, tracing: Tracing.ACTIVE } },
  removalPolicies: { tables: { ledger: RemovalPolicy.DESTROY }, queues: RemovalPolicy.RETAIN },
});
pipeline.grantEdge(new Role(stack, 'SiteRole', { assumedBy: new AccountPrincipal('210987654321') }));
const template = Template.fromStack(stack);
console.log(JSON.stringify({
  queues: Object.keys(template.findResources('AWS::SQS::Queue')).length,
  tables: Object.keys(template.findResources('AWS::DynamoDB::Table')).length,
  topics: Object.keys(template.findResources('AWS::SNS::Topic')).length,
  function: Object.values(template.findResources('AWS::Lambda::Function'))[0]!.Properties,
  siteRoleActions: Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((policy) => JSON.stringify(policy.Properties.Roles).includes('SiteRole'))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement.flatMap((statement: { Action: string | string[] }) => [statement.Action].flat())),
}));
`;

it('builds holdfast/infra for a team\'s CDK app: its declarations type the props, and the app synthesizes its own workflow with them', { timeout: 180_000 }, async () => {
  const packageDir = join(workdir, 'holdfast');
  await run(join(REPOSITORY_ROOT, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json', '--outDir', join(packageDir, 'dist')], { cwd: REPOSITORY_ROOT });
  await cp(join(REPOSITORY_ROOT, 'package.json'), join(packageDir, 'package.json'));
  await symlink(join(REPOSITORY_ROOT, 'node_modules'), join(packageDir, 'node_modules'));

  // The team's app: its own agent, lock file and TypeScript settings, holdfast and the CDK installed beside it.
  const appDir = join(workdir, 'app');
  await mkdir(join(appDir, 'node_modules'), { recursive: true });
  await mkdir(join(appDir, 'agents'));
  await symlink(packageDir, join(appDir, 'node_modules/holdfast'));
  for (const dependency of ['aws-cdk-lib', 'constructs', '@types', 'tsx']) await symlink(join(REPOSITORY_ROOT, 'node_modules', dependency), join(appDir, 'node_modules', dependency));
  await writeFile(join(appDir, 'package.json'), JSON.stringify({ name: 'orders-app', type: 'module', private: true }));
  await writeFile(join(appDir, 'package-lock.json'), JSON.stringify({ name: 'orders-app', lockfileVersion: 3, packages: {} }));
  await writeFile(join(appDir, 'agents/pick.mjs'), 'export const handler = async () => ({ batchItemFailures: [] });\n');
  await writeFile(join(appDir, 'app.ts'), CONSUMER_APP);
  await writeFile(
    join(appDir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { target: 'ES2023', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] }, include: ['app.ts'] }),
  );

  await run(join(REPOSITORY_ROOT, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], { cwd: appDir });
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'app.ts'], { cwd: appDir });
  const synthesized = JSON.parse(stdout) as { queues: number; tables: number; topics: number; function: Record<string, unknown>; siteRoleActions: string[] };
  expect(synthesized).toMatchObject({
    queues: 3,
    tables: 4,
    topics: 1,
    function: { Architectures: ['arm64'], MemorySize: 512, ReservedConcurrentExecutions: 2, TracingConfig: { Mode: 'Active' } },
  });
  expect(synthesized.siteRoleActions).toEqual(expect.arrayContaining(['sqs:ListQueues', 'sqs:SendMessage', 'dynamodb:PutItem', 'kms:Decrypt']));
});
