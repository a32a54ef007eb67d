import type { AgentStatus, ConflictStatus, EdgeStatus, ModeTransition, QueueStatus } from '../../edge-shim/src/observability/status.js';
import { edgeStatus, queueStatus } from '../helpers/edge-status.js';
import type { DrillState } from './scenario.js';

// A stand-in for the hybrid edge's status (it is being built): the document of an edge going
// through an outage. Each read moves the story on by one step (producers sent some more, the replay
// sent some more), so what the page sees changes with every poll, whatever the machine's speed.

const SENT_PER_READ = { 'payments.fifo': 30, notices: 7 };
// The replay and the sync each take as many reads, so that the sync runs for as long as the replay.
const REPLAY_STEPS = 12;
const SYNC_ITEMS_PER_READ = 2;

export class ScriptedEdge {
  private mode: EdgeStatus['mode'] = 'online';
  private since = new Date().toISOString();
  private readonly transitions: ModeTransition[] = [];
  private readonly backlog = new Map<string, number>(Object.keys(SENT_PER_READ).map((name) => [name, 0]));
  private readonly replayed = new Map<string, number>(Object.keys(SENT_PER_READ).map((name) => [name, 0]));
  private replayedPerRead = 0;
  private offlineSince: number | undefined;
  private lastFailureAt: string | null = null;
  private requests = { upstream: 0, local: 0 };
  private readsInMode = 0;
  private readonly agents: AgentStatus[] = ['authorize', 'post'].map((stage) => ({
    stage,
    state: 'stopped',
    pid: null,
    restarts: 0,
    lastRestartAt: null,
    lastRestartReason: null,
    lastHeartbeatAt: null,
    tasksDone: 0,
  }));
  private sync: NonNullable<EdgeStatus['sync']> = { state: 'idle', done: 0, total: 0, written: 0, identical: 0, conflicts: 0, skipped: 0, lastError: null, finishedAt: null };
  private readonly conflicts: ConflictStatus[] = [];

  /** Brings the scripted edge to a state of the drill, as the region's outage and return would. */
  step(state: DrillState): void {
    switch (state) {
      case 'online':
        if (this.mode === 'replaying') {
          this.finishReplay();
          this.transition('online', 'the backlog is replayed');
        }
        return;
      case 'offline':
        this.offlineSince = Date.now();
        this.lastFailureAt = new Date(this.offlineSince).toISOString();
        this.transition('offline', 'upstream timed out on 5 requests in a row');
        for (const [index, agent] of this.agents.entries()) Object.assign(agent, { state: 'running', pid: 4100 + index });
        return;
      case 'replaying': {
        this.transition('replaying', 'the region answered 3 probes in a row over 5 s');
        for (const agent of this.agents) Object.assign(agent, { state: 'stopped', pid: null });
        const total = [...this.backlog.values()].reduce((sum, count) => sum + count, 0);
        this.replayedPerRead = Math.ceil(total / REPLAY_STEPS);
        this.sync = { ...this.sync, state: 'running', total: REPLAY_STEPS * SYNC_ITEMS_PER_READ };
        return;
      }
    }
  }

  /** The status document as of this read; every read is one step further. */
  status(): EdgeStatus {
    this.readsInMode += 1;
    const now = new Date().toISOString();
    if (this.mode === 'online') this.requests.upstream += 20;
    if (this.mode === 'offline') this.sendLocally(now);
    if (this.mode === 'replaying') this.replayOneStep(now);
    const backlog = [...this.backlog.values()].reduce((sum, count) => sum + count, 0);
    const waiting = backlog > 0 && this.offlineSince !== undefined ? (Date.now() - this.offlineSince) / 1000 : null;
    const queues: QueueStatus[] = [...this.backlog].map(([name, count]) =>
      queueStatus(name, {
        local: { visible: count, inFlight: 0, delayed: 0 },
        backlog: count,
        oldestBacklogAgeSeconds: count > 0 ? waiting : null,
        replayed: this.replayed.get(name)!,
        replayRate: this.mode === 'replaying' && count > 0 ? this.replayedPerRead / 2 : 0,
        path: this.mode === 'online' ? 'upstream' : 'local',
      }),
    );
    const replayed = [...this.replayed.values()].reduce((sum, count) => sum + count, 0);
    const replayRate = this.mode === 'replaying' && backlog > 0 ? this.replayedPerRead : 0;
    return edgeStatus({
      mode: this.mode,
      since: this.since,
      reason: this.transitions[0]?.reason ?? 'the region answers',
      transitions: [...this.transitions],
      breaker: this.mode === 'offline' ? 'open' : 'closed',
      upstream: {
        url: 'http://127.0.0.1:4566',
        region: 'eu-west-1',
        lastSuccessAt: this.mode === 'offline' ? this.transitions[0]!.at : now,
        lastFailureAt: this.lastFailureAt,
        lastFailure: this.lastFailureAt === null ? null : 'connect ETIMEDOUT 127.0.0.1:4566',
        recovery: { successes: this.mode === 'replaying' ? 3 : 0, needed: 3, sinceFirstSuccessSeconds: this.mode === 'replaying' ? 5 : null, neededSeconds: 5 },
      },
      backlog,
      oldestBacklogAgeSeconds: waiting,
      replay: {
        state: this.mode === 'replaying' ? 'running' : 'idle',
        replayed,
        rate: replayRate,
        etaSeconds: replayRate > 0 ? backlog / replayRate : null,
        lastError: null,
      },
      sync: { ...this.sync },
      agents: this.agents.map((agent) => ({ ...agent })),
      conflicts: [...this.conflicts],
      conflictCount: this.conflicts.length,
      queues,
      storage: { state: 'ok', storeBytes: 2_000_000 + 600 * backlog, maxStoreBytes: 64 * 2 ** 20, diskFreeBytes: 40 * 2 ** 30, diskReserveBytes: 64 * 2 ** 20, reserveHeld: true },
      requests: { ...this.requests },
    });
  }

  private transition(to: EdgeStatus['mode'], reason: string): void {
    const at = new Date().toISOString();
    this.transitions.unshift({ at, from: this.mode, to, reason });
    this.mode = to;
    this.since = at;
    this.readsInMode = 0;
  }

  private sendLocally(now: string): void {
    for (const [name, count] of Object.entries(SENT_PER_READ)) this.backlog.set(name, this.backlog.get(name)! + count);
    this.requests.local += 40;
    for (const agent of this.agents) Object.assign(agent, { tasksDone: agent.tasksDone + 3, lastHeartbeatAt: now });
    // The post agent falls over once during the outage, and the supervisor brings it back.
    if (this.readsInMode === 3) Object.assign(this.agents[1]!, { restarts: 1, lastRestartAt: now, lastRestartReason: 'exited with code 1', pid: 4200 });
  }

  private replayOneStep(now: string): void {
    this.requests.upstream += 10;
    let budget = this.replayedPerRead;
    for (const [name, count] of this.backlog) {
      const sent = Math.min(count, budget);
      budget -= sent;
      this.backlog.set(name, count - sent);
      this.replayed.set(name, this.replayed.get(name)! + sent);
    }
    if (this.sync.state === 'running') {
      const done = Math.min(this.sync.total, this.sync.done + SYNC_ITEMS_PER_READ);
      // Its first item is in conflict; the others are written.
      this.sync = { ...this.sync, done, written: done - 1, conflicts: 1, finishedAt: done === this.sync.total ? now : null, state: done === this.sync.total ? 'done' : 'running' };
      if (this.conflicts.length === 0) {
        this.conflicts.unshift({ kind: 'ledger-entry', key: 'payment#p-1042', detectedAt: now, region: { amount: 1250, status: 'posted' }, edge: { amount: 1250, status: 'authorized' } });
      }
    }
  }

  private finishReplay(): void {
    for (const [name, count] of this.backlog) {
      this.replayed.set(name, this.replayed.get(name)! + count);
      this.backlog.set(name, 0);
    }
    this.offlineSince = undefined;
    this.sync = { ...this.sync, state: 'done', done: this.sync.total, written: this.sync.total - 1, finishedAt: new Date().toISOString() };
  }
}
