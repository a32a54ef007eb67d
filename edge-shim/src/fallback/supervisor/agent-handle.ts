import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { HeldMessage } from '../../../../functions/src/edge/index.js';
import { inheritedEnvironment } from '../environment.js';
import type { ToAgent } from '../protocol.js';

// The agent process (agent-process.ts) runs from source (under tsx, as the shim does with `npm start`) or compiled.
const AGENT_MODULE = fileURLToPath(new URL(`../agent-process${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));
const AGENT_EXEC_ARGV = AGENT_MODULE.endsWith('.ts') ? ['--import', import.meta.resolve('tsx')] : [];

/** A batch an agent received and has not finished. */
export interface HeldBatch {
  /** When its invocation's time runs out (and its in-progress idempotency records expire). */
  readonly deadline: number;
  readonly messages: readonly HeldMessage[];
}

/** The supervisor's side of one agent process: an active agent or a standby. */
export class AgentHandle {
  lastHeartbeatAt: number | undefined;
  /** Its handler is loaded. */
  ready = false;
  /** Its first receive has gone out: from then on it may hold messages. */
  polling = false;
  /** Stopped on purpose (stop()), so its end is no failure. */
  stopRequested = false;
  killReason: string | undefined;
  startFailure: string | undefined;
  /** Batches it holds, by batch id. */
  readonly held = new Map<string, HeldBatch>();
  /** Batches whose handler outran its timeout: still at work on them until the process is killed. */
  readonly timedOut = new Set<string>();
  readonly closed: Promise<void>;
  markClosed!: () => void;

  /** Starts an agent process; it waits for its configuration (`configure`). */
  static launch(standby: boolean, clock: () => number): AgentHandle {
    const child = fork(AGENT_MODULE, [], {
      execArgv: AGENT_EXEC_ARGV,
      env: inheritedEnvironment(),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
    });
    return new AgentHandle(child, standby, clock());
  }

  private constructor(
    readonly child: ChildProcess,
    public standby: boolean,
    readonly spawnedAt: number,
  ) {
    this.closed = new Promise((resolve) => (this.markClosed = resolve));
  }

  get pid(): number | null {
    return this.child.pid ?? null;
  }

  send(message: ToAgent): void {
    // A child that just died cannot be told anything (the callback takes the error); its 'close' handles it.
    if (this.child.connected) this.child.send(message, () => {});
  }
}
