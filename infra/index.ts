/**
 * `holdfast/infra`: the CDK constructs for teams' own CDK apps. WorkflowPipeline turns a workflow
 * definition into its queues, tables, functions and alarms (and grants an edge site what it does in
 * the region: `grantEdge`); HoldfastStack is the stack of this repository's app, with its outputs.
 */
export {
  type PipelineRemovalPolicies,
  type PipelineStage,
  type StageFunctionSettings,
  WorkflowPipeline,
  type WorkflowPipelineProps,
} from './lib/workflow-pipeline.js';
export { type EdgeRoleTrust, HoldfastStack, type HoldfastStackProps } from './lib/holdfast-stack.js';
export {
  ENV,
  STACK_OUTPUTS,
  TABLES,
  humanReviewQueueName,
  stageQueueNames,
  type StageDefinition,
  type TableAccess,
  type TableKey,
  type WorkflowDefinition,
} from '../functions/src/workflow-definition.js';
