/** What the supervisor tells about its agents, as events (`supervisor.on(...)`). */

export interface AgentUp {
  readonly stage: string;
  readonly pid: number;
  /** Whether this replaced an agent that died. */
  readonly restart: boolean;
  /** Whether a warm standby took over (else a process was started). */
  readonly fromStandby: boolean;
  /** From the death of the agent it replaces to this one polling; null for a first start. */
  readonly downtimeMs: number | null;
}

export interface AgentDown {
  readonly stage: string;
  readonly pid: number | null;
  readonly reason: string;
  /** Stopped by stop(), not a failure. */
  readonly stopped: boolean;
}

export interface RestartScheduled {
  readonly stage: string;
  readonly reason: string;
  /** Restarts of this stage's agent so far, this one included. */
  readonly restarts: number;
  /** Deaths in a row without a stable run between them. */
  readonly consecutiveFailures: number;
  readonly delayMs: number;
}

export interface MessagesReturned {
  readonly stage: string;
  readonly count: number;
  /** Seconds until they are visible again (0: at once). */
  readonly visibleInSeconds: number;
}

export interface SupervisorEvents {
  'agent-up': [AgentUp];
  'agent-down': [AgentDown];
  restart: [RestartScheduled];
  /** A stop reached the agent: it polls no more and its invocations were told they have no time left. */
  'agent-stopping': [{ readonly stage: string; readonly pid: number | null }];
  'messages-returned': [MessagesReturned];
  /** A standby has loaded its handler: the stage's next restart is a takeover. */
  'standby-ready': [{ readonly stage: string; readonly pid: number | null }];
}
