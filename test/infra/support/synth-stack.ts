import { fileURLToPath } from 'node:url';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { HoldfastStack, type HoldfastStackProps } from '../../../infra/lib/holdfast-stack.js';

export const REPOSITORY_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * Synthesizes the stack in process, fast: asset bundling skipped (the template is the same but for
 * asset hashes) and CDK's built-in template validation off (cfn-lint checks the template instead;
 * `cdk synth` and the deploy test run it).
 */
export function synthStack(props: Omit<HoldfastStackProps, 'root'>): { stack: HoldfastStack; template: Template } {
  const app = new App({ builtinCloudFormationValidation: false, context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new HoldfastStack(app, 'HoldfastTest', { root: REPOSITORY_ROOT, ...props });
  return { stack, template: Template.fromStack(stack) };
}
