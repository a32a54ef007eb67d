/**
 * Runs a workflow's edge stages as fallback agents while the shim is offline, each in a child
 * process of its own, and keeps them working: heartbeats over IPC, a dead or hung agent restarted
 * (from a warm standby when there is one) as its restart policy says, and on stop the agents finish
 * what they are doing and give back what they hold, before the replay.
 */
import { EventEmitter } from 'node:events';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { type AwsConnection, type StageQueues, type WorkflowDefinition, edgeAgentEnvironment, holdfastLogger, isPostgresLocation } from '../../../../functions/src/edge/index.js';
import type { FromAgent } from '../protocol.js';
import { edgeStages } from '../workflow.js';
import { AgentHandle } from './agent-handle.js';
import type { AgentUp, RestartScheduled, SupervisorEvents } from './events.js';
import { GiveBack, secondsToDeadline } from './give-back.js';
import { RestartPolicy } from './restart-policy.js';
import { type SupervisedAgent, StageSlot } from './stage-slot.js';

export interface SupervisorOptions {
  /** The workflow (loadWorkflowModule gives it); only its stages marked `runsAtEdge` are run. */
  readonly workflow: WorkflowDefinition;
  /** The directory the stages' entries are relative to. */
  readonly entryRoot: string;
  /** This edge site's id: its writer id in counters and checkpoints, and the mark on every step. */
  readonly siteId: string;
  /** The edge database the agents share: a file (SQLite, WAL) next to the shim's, or a PostgreSQL URL. */
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
  /**
   * The time, as Date.now (the default) gives it, wherever time decides what happens: hangs, start
   * timeouts, stable runs, downtime, restart times, and held batches' deadlines (set by the agents'
   * own clocks). The timers are Node's.
   */
  readonly clock?: () => number;
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

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/**
 * Supervises the fallback agents of one workflow at an edge site. `start()` when the shim goes
 * offline; `stop()` when the region is back, before the replay: it resolves once every agent is
 * gone and every message they held is finished or visible again.
 */
export class Supervisor extends EventEmitter<SupervisorEvents> {
  private readonly logger: Logger;
  private readonly settings: typeof DEFAULTS;
  private readonly clock: () => number;
  private readonly slots: StageSlot[];
  /** While agents run (from start() to the end of stop()): gives back what they held. */
  private giveBack: GiveBack | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
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
    this.logger = options.logger ?? holdfastLogger('fallback-supervisor', 'info');
    this.clock = options.clock ?? Date.now;
    const { workflow } = options;
    const queueUrls = Object.fromEntries(Object.entries(options.queues).map(([stage, queues]) => [stage, queues.queueUrl]));
    // A file is handed to the agents as an absolute path, a URL as it is.
    const database = isPostgresLocation(options.database) ? options.database : resolve(options.database);
    const { restartDelayMs, maxRestartDelayMs, stableRunMs } = this.settings;
    this.slots = edgeStages(workflow, options.entryRoot).map((stage) => {
      const queues = options.queues[stage.name];
      if (!queues) throw new Error(`no queues given for stage ${stage.name} of ${workflow.name}`);
      // The site's own variables last: an agent environment cannot move an agent to another site or database.
      const environment = {
        ...options.environment,
        ...edgeAgentEnvironment({ workflow, stage: stage.name, siteId: options.siteId, database, queueUrls, humanReviewQueueUrl: options.humanReviewQueueUrl }),
      };
      const config = {
        workflowName: workflow.name,
        stage,
        queues,
        aws: options.shim,
        environment,
        entryRoot: options.entryRoot,
        waitTimeSeconds: this.settings.waitTimeSeconds,
        heartbeatIntervalMs: this.settings.heartbeatIntervalMs,
        logLevel: options.agentLogLevel ?? this.logger.level,
      };
      return new StageSlot(stage, config, new RestartPolicy({ restartDelayMs, maxRestartDelayMs, stableRunMs }));
    });
  }

  /** Whether agents run (start() was called and stop() has not been). */
  get started(): boolean {
    return this.giveBack !== undefined && this.stopping === undefined;
  }

  /**
   * Readies a standby per edge stage ahead of an outage (with warmStandby): it loads its handler and
   * waits, so that start() puts agents to work at once instead of starting processes then (seconds
   * on a busy machine). Nothing while the agents run.
   */
  prepare(): void {
    if (!this.settings.warmStandby || this.giveBack) return;
    for (const slot of this.slots) slot.standby ??= this.spawn(slot, true);
    this.logger.debug({ stages: this.slots.map((slot) => slot.stage.name) }, 'fallback agents ready on standby');
  }

  /** Starts an agent per edge stage, from its standby if it has one; they poll within moments (events `agent-up`, or `running()`). */
  start(): void {
    if (this.giveBack) throw new Error(this.stopping ? 'the fallback agents are still stopping: wait for stop() first' : 'the fallback agents are already running');
    this.giveBack = new GiveBack(this.options.shim, this.logger, (returned) => this.emit('messages-returned', returned));
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
    if (!this.giveBack) return this.dropStandbys();
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

  /** The agents, each with its process id (which GET /status leaves out). */
  status(): SupervisedAgent[] {
    return this.slots.map((slot) => slot.status());
  }

  private async stopAll(): Promise<void> {
    this.logger.info('stopping fallback agents');
    for (const waiter of this.waiters) waiter.reject(new Error('the fallback agents were stopped'));
    this.waiters.clear();
    const agents: AgentHandle[] = [];
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
    await this.giveBack!.close();
    this.giveBack = undefined;
    for (const slot of this.slots) slot.state = 'stopped';
    this.logger.info('fallback agents stopped');
  }

  private spawn(slot: StageSlot, standby: boolean): AgentHandle {
    const agent = AgentHandle.launch(standby, this.clock);
    const { child } = agent;
    child.on('message', (message: FromAgent) => this.onMessage(slot, agent, message));
    // 'close' comes after every message the child sent has been read.
    child.on('close', (code, signal) => this.onClose(slot, agent, code, signal));
    child.on('error', (error) => this.logger.error({ stage: slot.stage.name, pid: agent.pid, err: error }, 'fallback agent process error'));
    agent.send({ type: 'configure', config: { ...slot.config, standby } });
    this.logger.debug({ stage: slot.stage.name, pid: agent.pid, standby }, 'fallback agent process started');
    return agent;
  }

  private onMessage(slot: StageSlot, agent: AgentHandle, message: FromAgent): void {
    switch (message.type) {
      case 'heartbeat':
        agent.lastHeartbeatAt = this.clock();
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
        if (this.stopping && event.left.length > 0) this.giveBack!.messages(slot.stage.name, slot.config.queues.queueUrl, event.left, 0);
        return;
      case 'timed-out':
        // The runner cannot stop a handler that outran its timeout; killing its process does, and
        // its messages are then given back like those of any agent that died.
        agent.timedOut.add(event.batchId);
        this.kill(agent, `a handler ran past the stage's ${event.timeoutSeconds} s timeout`);
        return;
    }
  }

  private onUp(slot: StageSlot, agent: AgentHandle): void {
    const now = this.clock();
    const downtimeMs = slot.downSince === undefined ? null : now - slot.downSince;
    const up: AgentUp = { stage: slot.stage.name, pid: agent.pid!, restart: slot.everUp, fromStandby: agent.standby, downtimeMs };
    agent.standby = false;
    slot.everUp = true;
    slot.restartPolicy.up(now);
    slot.downSince = undefined;
    if (!this.stopping) slot.state = 'running';
    this.logger.info(up, up.restart ? `fallback agent ${slot.stage.name} is back, ${downtimeMs} ms after the last one died` : `fallback agent ${slot.stage.name} is polling`);
    this.emit('agent-up', up);
    this.settleWaiters();
    if (this.settings.warmStandby && !slot.standby && !this.stopping) slot.standby = this.spawn(slot, true);
  }

  private onClose(slot: StageSlot, agent: AgentHandle, code: number | null, signal: NodeJS.Signals | null): void {
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
   * Gives back what a dead agent held: each batch at its deadline (secondsToDeadline), or at once
   * when stopping: the region, which never saw its in-progress records, takes over.
   */
  private giveBackHeld(slot: StageSlot, agent: AgentHandle): void {
    const now = this.clock();
    for (const { deadline, messages } of agent.held.values()) {
      this.giveBack!.messages(slot.stage.name, slot.config.queues.queueUrl, messages, this.stopping ? 0 : secondsToDeadline(deadline, now));
    }
    agent.held.clear();
  }

  private restartLater(slot: StageSlot, reason: string): void {
    const now = this.clock();
    const { consecutiveFailures, delayMs } = slot.restartPolicy.died(now);
    slot.downSince = now;
    slot.restarts += 1;
    slot.lastRestartAt = now;
    slot.lastRestartReason = reason;
    slot.state = delayMs > 0 ? 'crashed' : 'restarting';
    const restart: RestartScheduled = { stage: slot.stage.name, reason, restarts: slot.restarts, consecutiveFailures, delayMs };
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
    const now = this.clock();
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

  private kill(agent: AgentHandle, reason: string): void {
    if (agent.killReason !== undefined || agent.child.exitCode !== null || agent.child.signalCode !== null) return;
    agent.killReason = reason;
    this.logger.warn({ pid: agent.pid, reason }, `killing fallback agent: ${reason}`);
    agent.child.kill('SIGKILL');
  }
}
