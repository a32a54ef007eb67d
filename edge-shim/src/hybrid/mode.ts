import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { OutageParticipant } from './outage.js';
import type { Region } from './region/region.js';

/**
 * Where the edge stands with the region. `online`: the region answers, requests go to it.
 * `offline`: it does not; the edge serves from its own store. `replaying`: it is back, and what the
 * edge stored meanwhile is being handed over.
 */
export type Mode = 'online' | 'offline' | 'replaying';

export interface ModeOptions {
  /** How often the region is probed, and the open breaker tested. */
  readonly probeIntervalMs: number;
  /** Successful probes in a row before the region counts as back... */
  readonly recoveryProbes: number;
  /** ...spread over at least this long, so that a flapping link does not flap the mode. */
  readonly recoveryMs: number;
}

export interface Transition {
  readonly at: number;
  readonly from: Mode;
  readonly to: Mode;
  readonly reason: string;
}

export interface ModeEvents {
  change: [Transition];
}

const KEPT_TRANSITIONS = 50;
// After a failed preparation of the replay (a sync the region refuses), the next try waits this
// long, doubling up to the most: the fallback agents are not stopped and started again and again.
const RETRY_MIN_MS = 10_000;
const RETRY_MAX_MS = 5 * 60_000;

/**
 * The mode machine: a health model of the region from two signals, the outcome of real requests and
 * an active probe, both run through the region's circuit breaker. The breaker opening takes the
 * edge offline. While offline the probe is the breaker's half-open test; the edge comes back only
 * after `recoveryProbes` successful probes in a row spread over `recoveryMs`, and only once the
 * outage's participant (the fallback agents and their sync) has run its `beforeReplay`; it goes
 * from replaying to online when the replay says the backlog is empty. Every transition is logged
 * with its reason and kept for the status page.
 */
export class ModeMachine extends EventEmitter<ModeEvents> {
  private current: Mode = 'online';
  private readonly history: Transition[] = [];
  private probeTimer: NodeJS.Timeout | undefined;
  private probing = false;
  private recovery: { successes: number; since: number } | undefined;
  private recovering = false;
  private stopped = false;
  /** Why the edge stays offline though the region answers again (the preparation of the replay failed). */
  private holding: string | undefined;
  private retryAt = 0;
  private retryDelayMs = RETRY_MIN_MS;

  constructor(
    private readonly options: ModeOptions,
    private readonly region: Pick<Region, 'probe' | 'onBreak' | 'onIdentityRefused' | 'breakerClosed'>,
    private readonly participant: OutageParticipant | undefined,
    private readonly logger: Logger,
    private readonly clock: () => number = Date.now,
  ) {
    super();
    // Every receive waiting on the region or the edge listens for a change of mode.
    this.setMaxListeners(0);
    region.onBreak((cause) => {
      if (this.current !== 'offline') this.transition('offline', `the circuit breaker opened: ${cause}`);
      this.recovery = undefined;
    });
    // The edge cannot act in the region with credentials it refuses: it stores and forwards meanwhile.
    region.onIdentityRefused((problem) => {
      if (this.current !== 'offline') this.transition('offline', `${problem.message}: renew the credentials the shim runs with (its profile, role or keys), or set the site server's clock right`);
      this.recovery = undefined;
    });
    this.history.unshift({ at: this.clock(), from: 'online', to: 'online', reason: 'started' });
  }

  get mode(): Mode {
    return this.current;
  }

  get transitions(): readonly Transition[] {
    return this.history;
  }

  /** Why the edge is where it is now: the last transition's reason, or what keeps it offline since. */
  get reason(): string {
    return this.holding ?? this.history[0]!.reason;
  }

  /** Progress of a recovery under way: probes in a row and since when. */
  get recoveryProgress(): { successes: number; needed: number; sinceFirstSuccessMs: number | undefined; neededMs: number } {
    return {
      successes: this.recovery?.successes ?? 0,
      needed: this.options.recoveryProbes,
      sinceFirstSuccessMs: this.recovery ? this.clock() - this.recovery.since : undefined,
      neededMs: this.options.recoveryMs,
    };
  }

  /** Starts probing; the edge begins offline when told so (a start during an outage). */
  start(initial: Mode = 'online', reason = 'started'): void {
    if (initial !== this.current) this.transition(initial, reason);
    this.scheduleProbe();
  }

  /** The replay found nothing left to hand over: the edge is fully back. */
  replayDone(): void {
    if (this.current === 'replaying') this.transition('online', 'the backlog is replayed');
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.probeTimer);
  }

  private transition(to: Mode, reason: string): void {
    const from = this.current;
    this.current = to;
    this.holding = undefined;
    const transition = { at: this.clock(), from, to, reason };
    this.history.unshift(transition);
    this.history.length = Math.min(this.history.length, KEPT_TRANSITIONS);
    const log = { from, to, reason };
    if (to === 'offline') this.logger.warn(log, `the edge is offline: ${reason}`);
    else this.logger.info(log, `the edge is ${to}: ${reason}`);
    this.emit('change', transition);
    if (to === 'offline') this.participant?.offline();
  }

  private scheduleProbe(): void {
    if (this.stopped) return;
    this.probeTimer = setTimeout(() => void this.runProbe(), this.options.probeIntervalMs);
    this.probeTimer.unref();
  }

  private async runProbe(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      await this.region.probe();
      this.probed(true);
    } catch (error) {
      this.probed(false, error);
    } finally {
      this.probing = false;
      this.scheduleProbe();
    }
  }

  private probed(succeeded: boolean, error?: unknown): void {
    if (this.current !== 'offline' || this.recovering) return;
    if (!succeeded) {
      if (this.recovery) this.logger.info({ err: error, after: this.recovery.successes }, 'a probe failed: the recovery starts over');
      this.recovery = undefined;
      return;
    }
    const now = this.clock();
    this.recovery ??= { successes: 0, since: now };
    this.recovery.successes += 1;
    if (this.recovery.successes < this.options.recoveryProbes || now - this.recovery.since < this.options.recoveryMs || now < this.retryAt) return;
    const { successes, since } = this.recovery;
    this.recovery = undefined;
    void this.recover(`${successes} probes in a row succeeded over ${Math.round((now - since) / 1000)} s`);
  }

  /** Back from offline: first what must happen before the replay, then replaying. */
  private async recover(reason: string): Promise<void> {
    this.recovering = true;
    try {
      this.logger.info({ reason }, 'the region is back: preparing the replay');
      await this.participant?.beforeReplay();
      this.retryDelayMs = RETRY_MIN_MS;
      if (this.region.breakerClosed) this.transition('replaying', reason);
    } catch (error) {
      this.retryAt = this.clock() + this.retryDelayMs;
      this.holding = `the region is back, but the edge stays offline until it can prepare the replay (next try in ${Math.round(this.retryDelayMs / 1000)} s): ${(error as Error).message}`;
      this.logger.error({ err: error, retryInSeconds: this.retryDelayMs / 1000 }, 'preparing the replay failed; the edge stays offline and tries again');
      this.retryDelayMs = Math.min(RETRY_MAX_MS, this.retryDelayMs * 2);
    } finally {
      this.recovering = false;
    }
  }
}
