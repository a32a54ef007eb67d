import type { StageDefinition } from '../../../../functions/src/edge/index.js';
import type { AgentState, AgentStatus } from '../../observability/status.js';
import type { AgentConfig } from '../protocol.js';
import type { AgentHandle } from './agent-handle.js';
import type { RestartPolicy } from './restart-policy.js';

/** A stage's agent as the supervisor knows it: what /status shows, and its process, which /status does not show. */
export interface SupervisedAgent extends AgentStatus {
  readonly pid: number | null;
}

/** One edge stage: its agent, its standby, and what /status tells about it. */
export class StageSlot {
  state: AgentState = 'stopped';
  active: AgentHandle | undefined;
  standby: AgentHandle | undefined;
  restarts = 0;
  lastRestartAt: number | undefined;
  lastRestartReason: string | undefined;
  lastHeartbeatAt: number | undefined;
  tasksDone = 0;
  /** When the last agent died, until its replacement polls. */
  downSince: number | undefined;
  everUp = false;
  restartTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly stage: StageDefinition,
    readonly config: Omit<AgentConfig, 'standby'>,
    readonly restartPolicy: RestartPolicy,
  ) {}

  /** A new run (an outage): its counts of restarts and tasks go on, its crash loop starts afresh. */
  beginRun(): void {
    this.state = 'starting';
    this.restartPolicy.reset();
    this.downSince = undefined;
    this.everUp = false;
  }

  processes(): AgentHandle[] {
    return [this.active, this.standby].filter((agent): agent is AgentHandle => agent !== undefined);
  }

  /** This stage's agent, with its process id. */
  status(): SupervisedAgent {
    const iso = (time: number | undefined) => (time === undefined ? null : new Date(time).toISOString());
    return {
      stage: this.stage.name,
      state: this.state,
      pid: this.active?.pid ?? null,
      restarts: this.restarts,
      lastRestartAt: iso(this.lastRestartAt),
      lastRestartReason: this.lastRestartReason ?? null,
      lastHeartbeatAt: iso(this.lastHeartbeatAt),
      tasksDone: this.tasksDone,
    };
  }
}
