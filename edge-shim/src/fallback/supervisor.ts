/**
 * Runs a workflow's edge stages as fallback agents while the shim is offline, each in a child
 * process of its own, and keeps them working: heartbeats over IPC, a dead or hung agent restarted
 * (from a warm standby when there is one), exponential backoff on a crash loop, and on stop the
 * agents finish what they are doing and give back what they hold, before the replay.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChangeMessageVisibilityBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { ExponentialBackoff, type IBackoff, noJitterGenerator } from 'cockatiel';
import { pino, type Logger } from 'pino';
import { edgeAgentEnvironment } from '../../../functions/src/edge/index.js';
import type { AwsConnection, HeldMessage, StageQueues } from '../../../functions/src/edge/index.js';
import type { StageDefinition, WorkflowDefinition } from '../../../functions/src/edge/index.js';
import { inheritedEnvironment } from './environment.js';
import type { AgentConfig, FromAgent, ToAgent } from './protocol.js';
import { edgeStages } from './workflow.js';

export interface SupervisorOptions {
  /** The workflow (loadWorkflowModule gives it); only its stages marked `runsAtEdge` are run. */
  readonly workflow: WorkflowDefinition;
  /** The directory the stages' entries are relative to. */
  readonly entryRoot: string;
  /** This edge site's id: its writer id in counters and checkpoints, and the mark on every step. */
  readonly siteId: string;
  /** The edge database file (SQLite, WAL) the agents share, next to the shim's. */
  readonly database: string;
  /** The shim the agents poll: its URL, region, and a credential it accepts. */
  readonly shim: AwsConnection & { readonly endpoint: string };
  /** The workflow's queues at the shim, by stage: each edge stage's own and the one it hands to. */
  readonly queues: Readonly<Record<string, StageQueues>>;
  readonly humanReviewQueueUrl: string;
  /** More variables for every agent: gateway URLs, the edge limits, log levels. */
  readonly environment?: Readonly<Record<string, string>>;
  /** How often an agent reports that it is alive; 1 s by default. */
  readonly heartbeatIntervalMs?: number;
  /** An agent silent this long is hung and is killed; 10 s by default. */
  readonly hangTimeoutMs?: number;
  /** An agent must have loaded its handler this long after it was started, or it is killed; 60 s by default. */
  readonly startTimeoutMs?: number;
  /** How long stop() lets agents finish what they are doing before killing them; 10 s by default. */
  readonly stopGraceMs?: number;
  /** Delay before the second restart in a row (the first is immediate); it doubles each time. 500 ms by default. */
  readonly restartDelayMs?: number;
  /** Longest delay between restarts; 30 s by default. */
  readonly maxRestartDelayMs?: number;
  /** A run this long ends a crash loop: the next death restarts at once again. 60 s by default. */
  readonly stableRunMs?: number;
  /** Keep one loaded, idle agent per stage to take over at once when the agent dies; on by default. */
  readonly warmStandby?: boolean;
  /** Long-poll wait of the agents' receives; 20 s (as Lambda polls) by default. */
  readonly waitTimeSeconds?: number;
  readonly logger?: Logger;
  /** The agents' own log level (their runners); the logger's level by default. */
  readonly agentLogLevel?: string;
}

export type AgentState = 'starting' | 'running' | 'stopping' | 'stopped' | 'restarting' | 'crashed';

/** One edge stage's agent, as GET /status shows it. */
export interface AgentStatus {
  readonly stage: string;
  readonly state: AgentState;
  readonly pid: number | null;
  readonly restarts: number;
  readonly lastRestartAt: string | null;
  readonly lastRestartReason: string | null;
  readonly lastHeartbeatAt: string | null;
  readonly tasksDone: number;
}

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

const DEFAULTS = {
  heartbeatIntervalMs: 1_000,
  hangTimeoutMs: 10_000,
  startTimeoutMs: 60_000,
  stopGraceMs: 10_000,
  restartDelayMs: 500,
  maxRestartDelayMs: 30_000,
  stableRunMs: 60_000,
  warmStandby: true,
  waitTimeSeconds: 20,
};

// The agent process runs from source (under tsx, as the shim does with `npm start`) or compiled.
const AGENT_MODULE = fileURLToPath(new URL(`./agent-process${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));
const AGENT_EXEC_ARGV = AGENT_MODULE.endsWith('.ts') ? ['--import', import.meta.resolve('tsx')] : [];

/** ChangeMessageVisibility errors that mean the message is no longer held through that receipt. */
const NO_LONGER_HELD = new Set(['ReceiptHandleIsInvalid', 'MessageNotInflight', 'AWS.SimpleQueueService.MessageNotInflight']);

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** One agent process: an active agent or a standby. */
class AgentProcess {
  readonly spawnedAt = Date.now();
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
  readonly held = new Map<string, { readonly deadline: number; readonly messages: readonly HeldMessage[] }>();
  /** Batches whose handler outran its timeout: still at work on them until the process is killed. */
  readonly timedOut = new Set<string>();
  readonly closed: Promise<void>;
  markClosed!: () => void;

  constructor(
    readonly child: ChildProcess,
    public standby: boolean,
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

/** One edge stage: its agent, its standby, and what /status tells about it. */
class StageSlot {
  state: AgentState = 'stopped';
  active: AgentProcess | undefined;
  standby: AgentProcess | undefined;
  restarts = 0;
  lastRestartAt: number | undefined;
  lastRestartReason: string | undefined;
  lastHeartbeatAt: number | undefined;
  tasksDone = 0;
  consecutiveFailures = 0;
  backoff: IBackoff<unknown> | undefined;
  /** When the current agent began polling. */
  upSince: number | undefined;
  /** When the last agent died, until its replacement polls. */
  downSince: number | undefined;
  everUp = false;
  restartTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly stage: StageDefinition,
    readonly config: Omit<AgentConfig, 'standby'>,
  ) {}

  /** A new run (an outage): its counts of restarts and tasks go on, its crash loop starts afresh. */
  beginRun(): void {
    this.state = 'starting';
    this.consecutiveFailures = 0;
    this.backoff = undefined;
    this.upSince = undefined;
    this.downSince = undefined;
    this.everUp = false;
  }

  processes(): AgentProcess[] {
    return [this.active, this.standby].filter((agent): agent is AgentProcess => agent !== undefined);
  }
}

/**
 * Supervises the fallback agents of one workflow at an edge site. `start()` when the shim goes
 * offline; `stop()` when the region is back, before the replay: it resolves once every agent is
 * gone and every message they held is finished or visible again.
 */
export class Supervisor extends EventEmitter<SupervisorEvents> {
  private readonly logger: Logger;
  private readonly settings: typeof DEFAULTS;
  private readonly slots: StageSlot[];
  private readonly backoff: ExponentialBackoff<number>;
  private sqs: SQSClient | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  /** Messages being given back to their queues; stop() waits for them. */
  private readonly returns = new Set<Promise<void>>();
  /** Callers of running(). */
  private readonly waiters = new Set<{ resolve(): void; reject(error: Error): void }>();

  constructor(private readonly options: SupervisorOptions) {
    super();
    // An option given as undefined means its default.
    const given = Object.fromEntries(Object.keys(DEFAULTS).flatMap((key) => (options[key as keyof SupervisorOptions] === undefined ? [] : [[key, options[key as keyof SupervisorOptions]]])));
    this.settings = { ...DEFAULTS, ...(given as Partial<typeof DEFAULTS>) };
    for (const [name, value] of Object.entries(this.settings)) {
      if (typeof value === 'number' && !(Number.isFinite(value) && value >= 0)) throw new RangeError(`supervisor option ${name} must be a number of at least 0, not ${value}`);
    }
    if (this.settings.hangTimeoutMs <= this.settings.heartbeatIntervalMs) throw new RangeError('hangTimeoutMs must be longer than heartbeatIntervalMs');
    if (this.settings.heartbeatIntervalMs === 0) throw new RangeError('heartbeatIntervalMs must be more than 0');
    if (this.settings.waitTimeSeconds > 20) throw new RangeError('waitTimeSeconds must be 0 to 20, as ReceiveMessage takes it');
    this.logger = options.logger ?? pino({ name: 'fallback-supervisor' });
    this.backoff = new ExponentialBackoff({ generator: noJitterGenerator, initialDelay: this.settings.restartDelayMs, maxDelay: this.settings.maxRestartDelayMs });
    const { workflow } = options;
    const queueUrls = Object.fromEntries(Object.entries(options.queues).map(([stage, queues]) => [stage, queues.queueUrl]));
    const database = resolve(options.database);
    this.slots = edgeStages(workflow, options.entryRoot).map((stage) => {
      const queues = options.queues[stage.name];
      if (!queues) throw new Error(`no queues given for stage ${stage.name} of ${workflow.name}`);
      // The site's own variables last: an agent environment cannot move an agent to another site or database.
      const environment = {
        ...options.environment,
        ...edgeAgentEnvironment({ workflow, stage: stage.name, siteId: options.siteId, database, queueUrls, humanReviewQueueUrl: options.humanReviewQueueUrl }),
      };
      return new StageSlot(stage, {
        workflowName: workflow.name,
        stage,
        queues,
        aws: options.shim,
        environment,
        entryRoot: options.entryRoot,
        waitTimeSeconds: this.settings.waitTimeSeconds,
        heartbeatIntervalMs: this.settings.heartbeatIntervalMs,
        logLevel: options.agentLogLevel ?? this.logger.level,
      });
    });
  }

  /** Whether agents run (start() was called and stop() has not been). */
  get started(): boolean {
    return this.sqs !== undefined && this.stopping === undefined;
  }

  /**
   * Readies a standby per edge stage ahead of an outage (with warmStandby): it loads its handler and
   * waits, so that start() puts agents to work at once instead of starting processes then (seconds
   * on a busy machine). Nothing while the agents run.
   */
  prepare(): void {
    if (!this.settings.warmStandby || this.sqs) return;
    for (const slot of this.slots) slot.standby ??= this.spawn(slot, true);
    this.logger.debug({ stages: this.slots.map((slot) => slot.stage.name) }, 'fallback agents ready on standby');
  }

  /** Starts an agent per edge stage, from its standby if it has one; they poll within moments (events `agent-up`, or `running()`). */
  start(): void {
    if (this.sqs) throw new Error(this.stopping ? 'the fallback agents are still stopping: wait for stop() first' : 'the fallback agents are already running');
    const { shim } = this.options;
    this.sqs = new SQSClient({ endpoint: shim.endpoint, region: shim.region, ...(shim.credentials && { credentials: shim.credentials }) });
    this.stopping = undefined;
    this.watchdog = setInterval(() => this.checkHeartbeats(), Math.min(this.settings.heartbeatIntervalMs, 1_000));
    for (const slot of this.slots) {
      slot.beginRun();
      this.replace(slot);
    }
    this.logger.info({ workflow: this.options.workflow.name, stages: this.slots.map((slot) => slot.stage.name), site: this.options.siteId }, 'starting fallback agents');
  }

  /** Resolves once every agent polls its queue; rejects if stop() comes first. */
  running(): Promise<void> {
    if (!this.started) return Promise.reject(new Error('the fallback agents are not running'));
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject };
      this.waiters.add(waiter);
      this.settleWaiters();
    });
  }

  private settleWaiters(): void {
    if (!this.slots.every((slot) => slot.state === 'running')) return;
    for (const waiter of this.waiters) waiter.resolve();
    this.waiters.clear();
  }

  /**
   * Stops every agent: they poll no more, start nothing new, finish what they are doing within the
   * grace, and what they do not finish is made visible again at once (for the replay); an agent
   * still running after the grace is killed. Resolves when all are gone.
   */
  stop(): Promise<void> {
    if (!this.sqs) return this.dropStandbys();
    this.stopping ??= this.stopAll();
    return this.stopping;
  }

  /** Ends the standbys readied by prepare(): they hold nothing. */
  private async dropStandbys(): Promise<void> {
    const standbys = this.slots.flatMap((slot) => (slot.standby ? [slot.standby] : []));
    for (const agent of standbys) {
      agent.stopRequested = true;
      agent.killReason = 'stopped on standby';
      agent.child.kill('SIGKILL');
    }
    await Promise.all(standbys.map((agent) => agent.closed));
  }

  /** The agents as GET /status shows them (`agents`). */
  status(): AgentStatus[] {
    const iso = (time: number | undefined) => (time === undefined ? null : new Date(time).toISOString());
    return this.slots.map((slot) => ({
      stage: slot.stage.name,
      state: slot.state,
      pid: slot.active?.pid ?? null,
      restarts: slot.restarts,
      lastRestartAt: iso(slot.lastRestartAt),
      lastRestartReason: slot.lastRestartReason ?? null,
      lastHeartbeatAt: iso(slot.lastHeartbeatAt),
      tasksDone: slot.tasksDone,
    }));
  }

  private async stopAll(): Promise<void> {
    this.logger.info('stopping fallback agents');
    for (const waiter of this.waiters) waiter.reject(new Error('the fallback agents were stopped'));
    this.waiters.clear();
    const agents: AgentProcess[] = [];
    for (const slot of this.slots) {
      clearTimeout(slot.restartTimer);
      slot.restartTimer = undefined;
      for (const agent of slot.processes()) {
        agents.push(agent);
        agent.stopRequested = true;
        if (agent.polling) {
          agent.send({ type: 'stop' });
        } else {
          // It holds nothing: no need to wait for it.
          agent.killReason = 'stopped before it polled';
          agent.child.kill('SIGKILL');
        }
      }
      slot.state = slot.active?.polling ? 'stopping' : 'stopped';
    }
    const grace = setTimeout(() => {
      for (const agent of agents) this.kill(agent, `still running ${seconds(this.settings.stopGraceMs)} after it was told to stop`);
    }, this.settings.stopGraceMs);
    await Promise.all(agents.map((agent) => agent.closed));
    clearTimeout(grace);
    clearInterval(this.watchdog);
    while (this.returns.size > 0) await Promise.all(this.returns);
    this.sqs!.destroy();
    this.sqs = undefined;
    for (const slot of this.slots) slot.state = 'stopped';
    this.logger.info('fallback agents stopped');
  }

  private spawn(slot: StageSlot, standby: boolean): AgentProcess {
    const child = fork(AGENT_MODULE, [], {
      execArgv: AGENT_EXEC_ARGV,
      env: inheritedEnvironment(),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
    });
    const agent = new AgentProcess(child, standby);
    child.on('message', (message: FromAgent) => this.onMessage(slot, agent, message));
    // 'close' comes after every message the child sent has been read.
    child.on('close', (code, signal) => this.onClose(slot, agent, code, signal));
    child.on('error', (error) => this.logger.error({ stage: slot.stage.name, pid: agent.pid, err: error }, 'fallback agent process error'));
    agent.send({ type: 'configure', config: { ...slot.config, standby } });
    this.logger.debug({ stage: slot.stage.name, pid: agent.pid, standby }, 'fallback agent process started');
    return agent;
  }

  private onMessage(slot: StageSlot, agent: AgentProcess, message: FromAgent): void {
    switch (message.type) {
      case 'heartbeat':
        agent.lastHeartbeatAt = Date.now();
        if (agent === slot.active) slot.lastHeartbeatAt = agent.lastHeartbeatAt;
        return;
      case 'ready':
        agent.ready = true;
        if (agent === slot.standby) {
          this.logger.debug({ stage: slot.stage.name, pid: agent.pid }, 'standby fallback agent ready');
          this.emit('standby-ready', { stage: slot.stage.name, pid: agent.pid });
        }
        return;
      case 'failed':
        agent.startFailure = message.error;
        return;
      case 'stopping':
        this.emit('agent-stopping', { stage: slot.stage.name, pid: agent.pid });
        return;
      case 'stopped':
        this.logger.info({ stage: slot.stage.name, pid: agent.pid }, 'fallback agent stopped');
        return;
      case 'runner':
        break;
    }
    const { event } = message;
    switch (event.type) {
      case 'polling':
        agent.polling = true;
        if (agent === slot.active) this.onUp(slot, agent);
        return;
      case 'batch-received':
        agent.held.set(event.batchId, { deadline: event.deadline, messages: event.messages });
        return;
      case 'batch-done':
        slot.tasksDone += event.done;
        if (agent.timedOut.has(event.batchId)) return;
        agent.held.delete(event.batchId);
        // Nobody here will retry them: the region will, after the replay.
        if (this.stopping && event.left.length > 0) this.giveBack(slot, event.left, 0);
        return;
      case 'timed-out':
        // The runner cannot stop a handler that outran its timeout; killing its process does, and
        // its messages are then given back like those of any agent that died.
        agent.timedOut.add(event.batchId);
        this.kill(agent, `a handler ran past the stage's ${event.timeoutSeconds} s timeout`);
        return;
    }
  }

  private onUp(slot: StageSlot, agent: AgentProcess): void {
    const now = Date.now();
    const downtimeMs = slot.downSince === undefined ? null : now - slot.downSince;
    const up: AgentUp = { stage: slot.stage.name, pid: agent.pid!, restart: slot.everUp, fromStandby: agent.standby, downtimeMs };
    agent.standby = false;
    slot.everUp = true;
    slot.upSince = now;
    slot.downSince = undefined;
    if (!this.stopping) slot.state = 'running';
    this.logger.info(up, up.restart ? `fallback agent ${slot.stage.name} is back, ${downtimeMs} ms after the last one died` : `fallback agent ${slot.stage.name} is polling`);
    this.emit('agent-up', up);
    this.settleWaiters();
    if (this.settings.warmStandby && !slot.standby && !this.stopping) slot.standby = this.spawn(slot, true);
  }

  private onClose(slot: StageSlot, agent: AgentProcess, code: number | null, signal: NodeJS.Signals | null): void {
    const reason =
      agent.killReason ??
      (agent.startFailure && `could not start: ${agent.startFailure}`) ??
      (signal ? `killed by ${signal}` : agent.stopRequested && code === 0 ? 'stopped' : `exited with code ${code}`);
    this.giveBackHeld(slot, agent);
    if (agent === slot.standby) {
      slot.standby = undefined;
      if (!agent.stopRequested) this.logger.warn({ stage: slot.stage.name, pid: agent.pid, reason }, `standby fallback agent ${slot.stage.name} died: ${reason}`);
    } else if (agent === slot.active) {
      slot.active = undefined;
      const stopped = agent.stopRequested;
      this.emit('agent-down', { stage: slot.stage.name, pid: agent.pid, reason, stopped });
      if (stopped) slot.state = 'stopped';
      else this.restartLater(slot, reason);
    }
    agent.markClosed();
  }

  /**
   * Gives back what a dead agent held. Its in-progress idempotency records expire at each batch's
   * deadline: a message visible earlier would only be refused as in progress and then wait out its
   * whole visibility timeout, so each comes back at its batch's deadline (at once when stopping:
   * the region, which never saw those records, takes over).
   */
  private giveBackHeld(slot: StageSlot, agent: AgentProcess): void {
    const now = Date.now();
    for (const { deadline, messages } of agent.held.values()) {
      this.giveBack(slot, messages, this.stopping ? 0 : Math.max(0, Math.ceil((deadline - now) / 1000)));
    }
    agent.held.clear();
  }

  private giveBack(slot: StageSlot, messages: readonly HeldMessage[], visibleInSeconds: number): void {
    const queueUrl = slot.config.queues.queueUrl;
    const sqs = this.sqs!;
    const work = (async () => {
      let returned = 0;
      for (let start = 0; start < messages.length; start += 10) {
        const chunk = messages.slice(start, start + 10);
        try {
          const { Failed = [] } = await sqs.send(
            new ChangeMessageVisibilityBatchCommand({
              QueueUrl: queueUrl,
              Entries: chunk.map((message, index) => ({ Id: String(index), ReceiptHandle: message.receiptHandle, VisibilityTimeout: visibleInSeconds })),
            }),
          );
          returned += chunk.length - Failed.length;
          for (const failure of Failed.filter((entry) => !NO_LONGER_HELD.has(entry.Code ?? ''))) {
            this.logger.warn({ stage: slot.stage.name, code: failure.Code, message: failure.Message }, 'could not give a message back; it returns when its visibility timeout ends');
          }
        } catch (error) {
          this.logger.error({ stage: slot.stage.name, err: error }, 'could not give messages back; they return when their visibility timeout ends');
        }
      }
      if (returned > 0) {
        this.logger.info({ stage: slot.stage.name, count: returned, visibleInSeconds }, `gave ${returned} held message(s) back to the queue`);
        this.emit('messages-returned', { stage: slot.stage.name, count: returned, visibleInSeconds });
      }
    })();
    this.returns.add(work);
    void work.finally(() => this.returns.delete(work));
  }

  private restartLater(slot: StageSlot, reason: string): void {
    const now = Date.now();
    if (slot.upSince !== undefined && now - slot.upSince >= this.settings.stableRunMs) {
      slot.consecutiveFailures = 0;
      slot.backoff = undefined;
    }
    slot.upSince = undefined;
    slot.downSince = now;
    slot.consecutiveFailures += 1;
    // The first death after a stable run is restarted at once; a loop waits longer each time.
    let delayMs = 0;
    if (slot.consecutiveFailures > 1) {
      slot.backoff = slot.backoff ? slot.backoff.next(undefined) : this.backoff.next();
      delayMs = slot.backoff.duration;
    }
    slot.restarts += 1;
    slot.lastRestartAt = now;
    slot.lastRestartReason = reason;
    slot.state = delayMs > 0 ? 'crashed' : 'restarting';
    const restart: RestartScheduled = { stage: slot.stage.name, reason, restarts: slot.restarts, consecutiveFailures: slot.consecutiveFailures, delayMs };
    this.logger.warn(restart, `fallback agent ${slot.stage.name} died (${reason}); restarting ${delayMs > 0 ? `in ${delayMs} ms` : 'now'}`);
    this.emit('restart', restart);
    const replace = () => {
      slot.restartTimer = undefined;
      slot.state = 'restarting';
      this.replace(slot);
    };
    if (delayMs > 0) slot.restartTimer = setTimeout(replace, delayMs);
    else replace();
  }

  /** A new active agent: the standby if there is one (it polls at once), else a new process. */
  private replace(slot: StageSlot): void {
    const { standby } = slot;
    if (standby) {
      slot.standby = undefined;
      slot.active = standby;
      standby.send({ type: 'resume' });
    } else {
      slot.active = this.spawn(slot, false);
    }
  }

  private checkHeartbeats(): void {
    const now = Date.now();
    for (const slot of this.slots) {
      for (const agent of slot.processes()) {
        if (agent.killReason !== undefined) continue;
        if (agent.lastHeartbeatAt !== undefined && now - agent.lastHeartbeatAt > this.settings.hangTimeoutMs) {
          this.kill(agent, `hung: no heartbeat for ${seconds(now - agent.lastHeartbeatAt)}`);
        } else if (!agent.ready && now - agent.spawnedAt > this.settings.startTimeoutMs) {
          this.kill(agent, `not started ${seconds(now - agent.spawnedAt)} after it was launched`);
        }
      }
    }
  }

  private kill(agent: AgentProcess, reason: string): void {
    if (agent.killReason !== undefined || agent.child.exitCode !== null || agent.child.signalCode !== null) return;
    agent.killReason = reason;
    this.logger.warn({ pid: agent.pid, reason }, `killing fallback agent: ${reason}`);
    agent.child.kill('SIGKILL');
  }
}
