import { EventEmitter } from 'node:events';
import { type AddressInfo, type Server, type Socket, connect, createServer } from 'node:net';
import { type Direction, type FaultMode, FlapSchedule, type SteadyMode, parseMode, treatment } from './fault-modes.js';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface FaultProxyOptions {
  /** Where to forward to: `host:port` or { host, port }. */
  readonly target: HostPort | string;
  /** Where to listen; default 127.0.0.1 on a free port. */
  readonly listen?: Partial<HostPort> | string;
  /** The mode to start in; default pass. */
  readonly mode?: FaultMode | string;
}

export interface DirectionStats {
  /** Bytes read from the sending side. */
  received: number;
  /** Bytes written to the receiving side. */
  forwarded: number;
  /** Bytes dropped: read and never forwarded (blackhole, lost answers, resets). */
  dropped: number;
  /** Bytes held by the proxy now, waiting for their time (latency, bandwidth) or for the target. */
  queued: number;
}

export interface FaultProxyStats {
  /** The mode in force now (under flapping: the current step's). */
  mode: SteadyMode;
  connections: {
    accepted: number;
    open: number;
    /** Reset by the proxy as the fault (refuse, reset, lost answers with reset, a mode change). */
    reset: number;
    /** Connections to the target that failed (refused, reset by the target). */
    targetFailed: number;
  };
  upstream: DirectionStats;
  downstream: DirectionStats;
  /** How many times the mode in force changed (each flapping step counts). */
  modeChanges: number;
}

export interface ModeChange {
  readonly mode: SteadyMode;
  /** The flapping step now in force, its index and how long it lasts. */
  readonly step?: number;
  readonly ms?: number;
}

// Past this many bytes held for a direction the proxy stops reading its sender (backpressure).
const HIGH_WATER_BYTES = 1024 * 1024;
// The bandwidth limit releases data in slices worth this long, so a big chunk does not burst.
const BANDWIDTH_SLICE_MS = 50;

export function parseHostPort(text: string, defaultHost = '127.0.0.1'): HostPort {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text) ?? /^(\d{1,5})$/.exec(text);
  if (!match) throw new Error(`expected host:port or a port, not ${JSON.stringify(text)}`);
  const port = Number(match.length === 2 ? match[1] : match[3]);
  if (port > 65535) throw new Error(`invalid port in ${JSON.stringify(text)}`);
  const host = match.length === 2 ? defaultHost : (match[1] ?? match[2]) || defaultHost;
  return { host, port };
}

type Item =
  | { readonly kind: 'data'; data: Buffer; releaseAt: number; readonly arrivedAt: number }
  | { readonly kind: 'end'; releaseAt: number; readonly arrivedAt: number }
  /** Reset the connection once everything before it has been forwarded (reset after N bytes). */
  | { readonly kind: 'reset'; releaseAt: number; readonly arrivedAt: number };

const sizeOf = (item: Item) => (item.kind === 'data' ? item.data.length : 0);

/** One direction of one connection: an ordered queue from a source socket to a sink socket. */
class Link {
  private readonly queue: Item[] = [];
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private waitingForDrain = false;
  /** The proxy dropped bytes or an end of this direction: its stream cannot be resumed. */
  damaged = false;
  ended = false;
  /** When the bandwidth limit next lets bytes through. */
  private nextFreeAt = 0;
  /** Bytes the reset mode still lets through before it resets (upstream only). */
  budget = 0;

  constructor(
    private readonly connection: ProxiedConnection,
    readonly direction: Direction,
    private readonly stats: DirectionStats,
  ) {}

  private get source(): Socket | undefined {
    return this.direction === 'upstream' ? this.connection.client : this.connection.target;
  }

  private get sink(): Socket | undefined {
    return this.direction === 'upstream' ? this.connection.targetIfConnected() : this.connection.client;
  }

  /** Data (or the end of the stream: null) read from the source. */
  push(data: Buffer | null): void {
    const mode = this.connection.mode();
    const now = Date.now();
    if (data === null) {
      this.enqueue({ kind: 'end', arrivedAt: now, releaseAt: now }, mode);
    } else {
      this.stats.received += data.length;
      if (this.direction === 'upstream' && mode.kind === 'reset') {
        const allowed = Math.min(this.budget, data.length);
        this.budget -= allowed;
        if (allowed > 0) this.enqueue({ kind: 'data', data: data.subarray(0, allowed), arrivedAt: now, releaseAt: now }, mode);
        if (allowed < data.length) {
          this.stats.dropped += data.length - allowed;
          this.enqueue({ kind: 'reset', arrivedAt: now, releaseAt: now }, mode);
        }
      } else {
        for (const slice of this.slices(data, mode)) this.enqueue({ kind: 'data', data: slice, arrivedAt: now, releaseAt: now }, mode);
      }
    }
    this.pump();
  }

  private slices(data: Buffer, mode: SteadyMode): Buffer[] {
    const rate = this.rate(mode);
    if (rate === undefined) return [data];
    const size = Math.max(1, Math.floor((rate * BANDWIDTH_SLICE_MS) / 1000));
    const slices: Buffer[] = [];
    for (let offset = 0; offset < data.length; offset += size) slices.push(data.subarray(offset, offset + size));
    return slices;
  }

  private rate(mode: SteadyMode): number | undefined {
    if (mode.kind !== 'bandwidth') return undefined;
    return this.direction === 'upstream' ? mode.upstreamBytesPerSecond : mode.downstreamBytesPerSecond;
  }

  private enqueue(item: Item, mode: SteadyMode): void {
    this.queue.push(item);
    this.queuedBytes += sizeOf(item);
    this.stats.queued += sizeOf(item);
    this.time(item, mode, Date.now());
  }

  /** Sets when an item may go under `mode`. */
  private time(item: Item, mode: SteadyMode, now: number): void {
    if (mode.kind === 'latency') {
      item.releaseAt = item.arrivedAt + ((this.direction === 'upstream' ? mode.upstreamMs : mode.downstreamMs) ?? 0);
      return;
    }
    const rate = this.rate(mode);
    if (rate === undefined) {
      item.releaseAt = now;
      return;
    }
    item.releaseAt = Math.max(now, this.nextFreeAt);
    this.nextFreeAt = item.releaseAt + (sizeOf(item) * 1000) / rate;
  }

  /** The mode changed: what is held goes by the new mode's timing. */
  retime(mode: SteadyMode): void {
    const now = Date.now();
    this.nextFreeAt = 0;
    for (const item of this.queue) this.time(item, mode, now);
    this.pump();
  }

  /** Forwards, drops or resets what is due, in order. */
  pump(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.queue.length > 0 && !this.connection.closed) {
      const what = treatment(this.connection.mode(), this.direction);
      if (what === 'reset') {
        this.connection.reset('fault');
        return;
      }
      const item = this.queue[0]!;
      if (what === 'drop') {
        this.take();
        this.stats.dropped += sizeOf(item);
        this.damaged = true;
        continue;
      }
      const wait = item.releaseAt - Date.now();
      if (wait > 0) {
        this.timer = setTimeout(() => this.pump(), wait);
        break;
      }
      if (item.kind === 'reset') {
        this.connection.reset('fault');
        return;
      }
      const sink = this.sink;
      if (!sink) {
        this.connection.connectTarget();
        break;
      }
      if (this.waitingForDrain) break;
      this.take();
      if (item.kind === 'end') {
        this.ended = true;
        sink.end();
        continue;
      }
      this.stats.forwarded += item.data.length;
      if (!sink.write(item.data)) {
        this.waitingForDrain = true;
        sink.once('drain', () => {
          this.waitingForDrain = false;
          this.pump();
        });
      }
    }
    this.flowControl();
    this.connection.changed();
  }

  private take(): void {
    const item = this.queue.shift()!;
    this.queuedBytes -= sizeOf(item);
    this.stats.queued -= sizeOf(item);
  }

  /** Reads from the source while what is held stays small, or while the mode drops (blackhole reads on). */
  private flowControl(): void {
    const source = this.source;
    if (!source || source.destroyed) return;
    const dropping = treatment(this.connection.mode(), this.direction) !== 'forward';
    if (this.queuedBytes > HIGH_WATER_BYTES && !dropping) source.pause();
    else if (source.isPaused()) source.resume();
  }

  /** Gives up what is held (the connection is gone). */
  discard(): void {
    clearTimeout(this.timer);
    for (const item of this.queue) {
      this.stats.queued -= sizeOf(item);
      this.stats.dropped += sizeOf(item);
    }
    this.queue.length = 0;
    this.queuedBytes = 0;
  }
}

/** A client connection and its connection to the target, with one link each way. */
class ProxiedConnection {
  target: Socket | undefined;
  private targetConnected = false;
  closed = false;
  readonly upstream: Link;
  readonly downstream: Link;

  constructor(
    readonly client: Socket,
    private readonly internals: ProxyInternals,
  ) {
    client.setNoDelay(true);
    this.upstream = new Link(this, 'upstream', internals.stats.upstream);
    this.downstream = new Link(this, 'downstream', internals.stats.downstream);
    this.upstream.budget = this.resetBudget();
    client.on('data', (data: Buffer) => this.upstream.push(data));
    client.on('end', () => this.upstream.push(null));
    client.on('error', () => this.reset('peer'));
    client.on('close', () => this.finishIfDone());
  }

  mode(): SteadyMode {
    return this.internals.stats.mode;
  }

  changed(): void {
    this.internals.changed();
  }

  private resetBudget(): number {
    const mode = this.mode();
    return mode.kind === 'reset' ? (mode.afterBytes ?? 0) : 0;
  }

  targetIfConnected(): Socket | undefined {
    return this.targetConnected ? this.target : undefined;
  }

  connectTarget(): void {
    if (this.target || this.closed) return;
    const target = connect({ ...this.internals.target, allowHalfOpen: true, noDelay: true });
    this.target = target;
    target.on('connect', () => {
      this.targetConnected = true;
      this.upstream.pump();
    });
    target.on('data', (data: Buffer) => this.downstream.push(data));
    target.on('end', () => this.downstream.push(null));
    target.on('error', () => {
      // After the proxy's own reset the socket may still report an error: not the target's doing.
      if (this.closed) return;
      this.internals.stats.connections.targetFailed += 1;
      this.reset('peer');
    });
    target.on('close', () => this.finishIfDone());
  }

  /** The mode in force changed: retime what is held; a stream that lost bytes and would now flow again is reset. */
  modeChanged(mode: SteadyMode): void {
    if (mode.kind === 'refuse') return this.reset('fault');
    for (const link of [this.upstream, this.downstream]) {
      if (link.damaged && treatment(mode, link.direction) === 'forward') return this.reset('fault');
    }
    this.upstream.budget = this.resetBudget();
    if (treatment(mode, 'upstream') === 'forward' && !this.upstream.damaged) this.connectTarget();
    this.upstream.retime(mode);
    this.downstream.retime(mode);
  }

  /** Resets both sides (RST): as the injected fault, or passing on a peer's reset or error. */
  reset(cause: 'fault' | 'peer'): void {
    if (this.closed) return;
    this.closed = true;
    if (cause === 'fault') this.internals.stats.connections.reset += 1;
    for (const socket of [this.client, this.target]) {
      if (socket && !socket.destroyed) socket.resetAndDestroy();
    }
    this.upstream.discard();
    this.downstream.discard();
    this.internals.forget(this);
  }

  private finishIfDone(): void {
    if (this.closed) return;
    if (!this.client.destroyed || (this.target && !this.target.destroyed)) return;
    this.closed = true;
    this.upstream.discard();
    this.downstream.discard();
    this.internals.forget(this);
  }
}

interface ProxyInternals {
  readonly target: HostPort;
  readonly stats: FaultProxyStats;
  changed(): void;
  forget(connection: ProxiedConnection): void;
}

const emptyDirection = (): DirectionStats => ({ received: 0, forwarded: 0, dropped: 0, queued: 0 });

/**
 * A TCP proxy that injects network faults between a client and a target, switchable at run time:
 * `setMode` applies to new connections and to open ones alike. Emits 'mode' (a ModeChange) each
 * time the mode in force changes. See testkit/README.md.
 */
export class FaultProxy extends EventEmitter<{ mode: [ModeChange] }> {
  readonly host: string;
  readonly port: number;
  readonly target: HostPort;
  private readonly server: Server;
  private readonly connections = new Set<ProxiedConnection>();
  private readonly counters: FaultProxyStats;
  private readonly waiters = new Set<() => void>();
  private flapTimer: NodeJS.Timeout | undefined;
  private configured: FaultMode;

  private constructor(server: Server, address: AddressInfo, target: HostPort, mode: FaultMode) {
    super();
    this.server = server;
    this.host = address.address;
    this.port = address.port;
    this.target = target;
    this.configured = { kind: 'pass' };
    this.counters = {
      mode: { kind: 'pass' },
      connections: { accepted: 0, open: 0, reset: 0, targetFailed: 0 },
      upstream: emptyDirection(),
      downstream: emptyDirection(),
      modeChanges: 0,
    };
    const internals: ProxyInternals = {
      target,
      stats: this.counters,
      changed: () => this.changed(),
      forget: (connection) => {
        if (this.connections.delete(connection)) this.counters.connections.open = this.connections.size;
        this.changed();
      },
    };
    server.on('connection', (socket) => this.accept(socket, internals));
    this.setMode(mode);
  }

  /** Starts a proxy listening (by default on 127.0.0.1, a free port) and forwarding to `target`. */
  static async start(options: FaultProxyOptions): Promise<FaultProxy> {
    const target = typeof options.target === 'string' ? parseHostPort(options.target) : options.target;
    const listen = typeof options.listen === 'string' ? parseHostPort(options.listen) : { host: options.listen?.host ?? '127.0.0.1', port: options.listen?.port ?? 0 };
    const mode = parseMode(options.mode ?? 'pass');
    const server = createServer({ allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listen.port, listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new FaultProxy(server, server.address() as AddressInfo, target, mode);
  }

  /** `host:port` to give clients instead of the target's. */
  get address(): string {
    return `${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  /** The mode as last set (a flapping mode as a whole). */
  get mode(): FaultMode {
    return this.configured;
  }

  /** Switches the mode, for open connections too. A name (`'blackhole'`) or a mode object. */
  setMode(mode: FaultMode | string): void {
    const parsed = parseMode(mode);
    clearTimeout(this.flapTimer);
    this.flapTimer = undefined;
    this.configured = parsed;
    if (parsed.kind !== 'flapping') {
      this.enforce({ mode: parsed });
      return;
    }
    const schedule = new FlapSchedule(parsed);
    const flap = () => {
      const turn = schedule.turn();
      this.enforce({ mode: turn.mode, step: turn.step, ms: turn.ms });
      this.flapTimer = setTimeout(flap, turn.ms);
    };
    flap();
  }

  private enforce(change: ModeChange): void {
    this.counters.mode = change.mode;
    this.counters.modeChanges += 1;
    for (const connection of [...this.connections]) connection.modeChanged(change.mode);
    this.emit('mode', change);
    this.changed();
  }

  /** A snapshot of the counters. */
  stats(): FaultProxyStats {
    return structuredClone(this.counters);
  }

  /** Resolves with the stats once `predicate` holds for them; checked at once and on every change. */
  until(predicate: (stats: FaultProxyStats) => boolean): Promise<FaultProxyStats> {
    return new Promise((resolve) => {
      const check = () => {
        const stats = this.stats();
        if (!predicate(stats)) return;
        this.waiters.delete(check);
        resolve(stats);
      };
      this.waiters.add(check);
      check();
    });
  }

  private changed(): void {
    for (const check of [...this.waiters]) check();
  }

  private accept(socket: Socket, internals: ProxyInternals): void {
    this.counters.connections.accepted += 1;
    if (this.counters.mode.kind === 'refuse') {
      this.counters.connections.reset += 1;
      socket.on('error', () => {});
      socket.resetAndDestroy();
      this.changed();
      return;
    }
    const connection = new ProxiedConnection(socket, internals);
    this.connections.add(connection);
    this.counters.connections.open = this.connections.size;
    // Connect at once where the mode forwards, so that protocols whose server speaks first work.
    if (treatment(this.counters.mode, 'upstream') === 'forward') connection.connectTarget();
    this.changed();
  }

  /** Stops listening, ends flapping and resets every open connection. */
  async close(): Promise<void> {
    clearTimeout(this.flapTimer);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const connection of [...this.connections]) connection.reset('peer');
    await closed;
  }
}
