/**
 * The IPC messages between the supervisor and its agent processes (JSON over the channel `fork`
 * opens): the supervisor configures, promotes and stops an agent; the agent heartbeats and reports
 * what its runner does.
 */
import type { AwsConnection, RunnerEvent, StageQueues } from '../../../functions/src/edge/index.js';
import type { StageDefinition } from '../../../functions/src/edge/index.js';

/** What an agent process needs to run one stage. */
export interface AgentConfig {
  readonly workflowName: string;
  readonly stage: StageDefinition;
  readonly queues: StageQueues;
  readonly aws: AwsConnection;
  /** The handler's environment (on top of the runner's Lambda variables). */
  readonly environment: Readonly<Record<string, string>>;
  /** Directory the stage's entry is relative to. */
  readonly entryRoot: string;
  readonly waitTimeSeconds: number;
  readonly heartbeatIntervalMs: number;
  readonly logLevel: string;
  /** Load the handler, then wait for `resume` before polling (a warm standby). */
  readonly standby: boolean;
}

export type ToAgent =
  | { readonly type: 'configure'; readonly config: AgentConfig }
  /** A standby takes over: it starts polling. */
  | { readonly type: 'resume' }
  /** Poll no more, start nothing new, finish what is in hand, exit. */
  | { readonly type: 'stop' };

export type FromAgent =
  | { readonly type: 'heartbeat' }
  /** The handler is loaded and the runner set up. */
  | { readonly type: 'ready' }
  /** A stop was applied: polling ends, and invocations in flight were told they have no time left. */
  | { readonly type: 'stopping' }
  /** What it held is finished or returned; it exits next. */
  | { readonly type: 'stopped' }
  /** The agent could not start; it exits next. */
  | { readonly type: 'failed'; readonly error: string }
  | { readonly type: 'runner'; readonly event: RunnerEvent };
