/**
 * Fallback agents at the edge: the workflow's stages marked `runsAtEdge`, run against the shim's
 * local queues while the region is down, each in its own process, under a supervisor.
 */
export { Supervisor, type SupervisorOptions } from './supervisor/supervisor.js';
export type { SupervisedAgent } from './supervisor/stage-slot.js';
export type { AgentDown, AgentUp, MessagesReturned, RestartScheduled, SupervisorEvents } from './supervisor/events.js';
export {
  checkWorkflowDefinition,
  DEFAULT_WORKFLOW_MODULE,
  edgeStages,
  loadWorkflowModule,
  resolveWorkflowQueues,
  WorkflowModuleError,
  type LoadedWorkflow,
  type WorkflowQueues,
} from './workflow.js';
export type { AgentState, AgentStatus } from '../observability/status.js';
export { AgentEnvironmentError, inheritedEnvironment, readAgentEnvironment } from './environment.js';
