import { EventEmitter } from 'node:events';
import { type AddressInfo, type Server, type Socket, connect, createServer } from 'node:net';
import { errorResponse } from './aws-error-answers.js';
import {
  DEFAULT_SLOW_DELAY_MS,
  type Direction,
  ERROR_ANSWERS,
  type ErrorAnswer,
  type FaultMode,
  FlapSchedule,
  type SteadyMode,
  drawMs,
  parseMode,
  seededRandom,
  treatment,
} from './fault-modes.js';
import { type FramedRequest, RequestFramer, type RequestPiece } from './http-requests.js';

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
  /** Bytes dropped: read and never forwarded (blackhole, lost answers, resets, requests the proxy answered itself). */
  dropped: number;
  /** Bytes held by the proxy now, waiting for their time (latency, bandwidth, link, slow) or for the target. */
  queued: number;
}

export interface RequestStats {
  /** HTTP/1.1 requests read from clients (their heads). */
  seen: number;
  /** Requests the proxy answered itself (errors); their bytes count as dropped upstream, the answers in no byte count. */
  answered: number;
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
  requests: RequestStats;
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
// A rate limit (bandwidth, link) releases data in slices worth this long, so a big chunk does not burst.
const BANDWIDTH_SLICE_MS = 50;
const DIRECTIONS: readonly Direction[] = ['upstream', 'downstream'];

export function parseHostPort(text: string, defaultHost = '127.0.0.1'): HostPort {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text) ?? /^(\d{1,5})$/.exec(text);
  if (!match) throw new Error(`expected host:port or a port, not ${JSON.stringify(text)}`);
  const port = Number(match.length === 2 ? match[1] : match[3]);
  if (port > 65535) throw new Error(`invalid port in ${JSON.stringify(text)}`);
  const host = match.length === 2 ? defaultHost : (match[1] ?? match[2]) || defaultHost;
  return { host, port };
}

/** An HTTP request as the proxy treats it: how long it waits (slow), whether the proxy answers it (errors). */
interface ProxiedRequest {
  readonly framed: FramedRequest;
  delayMs?: number;
  answer?: ErrorAnswer;
}

interface Timing {
  releaseAt: number;
  readonly arrivedAt: number;
  /** Arrival order over the whole proxy: the shared link's queue is re-timed in it. */
  readonly seq: number;
}

type Item = Timing &
  (
    | {
        readonly kind: 'data';
        readonly data: Buffer;
        /** Upstream: the request these bytes belong to, and whether they are its last. */
        readonly request?: ProxiedRequest;
        readonly endsRequest?: boolean;
        /** An answer the proxy made (errors): counted in no byte stats. */
        readonly made?: boolean;
      }
    | { readonly kind: 'end' }
    /** Reset the connection once everything before it has been forwarded (reset after N bytes). */
    | { readonly kind: 'reset' }
  );

const sizeOf = (item: Item) => (item.kind === 'data' ? item.data.length : 0);
// The bytes that count in the direction's stats: all but the proxy's own answers.
const countedSize = (item: Item) => (item.kind === 'data' && item.made ? 0 : sizeOf(item));

/**
 * A rate limit's bottleneck: bytes leave one after another at the rate, in the order they were
 * offered. One per connection and direction for `bandwidth`, one per direction shared by all
 * connections for `link`.
 */
class Bottleneck {
  private freeAt = 0;

  /** When `bytes` offered at `now` have all left, at `bytesPerSecond`. */
  transmit(bytes: number, bytesPerSecond: number, now: number): number {
    this.freeAt = Math.max(now, this.freeAt) + (bytes * 1000) / bytesPerSecond;
    return this.freeAt;
  }

  restart(): void {
    this.freeAt = 0;
  }
}

/** One direction of one connection: an ordered queue from a source socket to a sink socket. */
class Link {
  private readonly queue: Item[] = [];
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private waitingForDrain = false;
  /** The proxy dropped bytes or an end of this direction: its stream cannot be resumed. */
  damaged = false;
  /** This connection's own bottleneck in this direction (bandwidth). */
  private readonly bottleneck = new Bottleneck();
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
      if (this.direction === 'upstream') for (const piece of this.connection.requests.end()) this.accept(piece, mode, now);
      this.enqueue({ kind: 'end', arrivedAt: now, releaseAt: now, seq: this.connection.nextSeq() }, mode);
    } else {
      this.stats.received += data.length;
      if (this.direction === 'upstream') for (const piece of this.connection.requests.feed(data, now)) this.accept(piece, mode, now);
      else this.accept({ data }, mode, now);
    }
    this.pump();
  }

  /** Queues bytes read: upstream, a piece of a request. */
  private accept(piece: RequestPiece | { readonly data: Buffer }, mode: SteadyMode, now: number): void {
    const request = 'request' in piece ? this.connection.proxied(piece, mode) : undefined;
    const ends = 'ends' in piece && piece.ends;
    const bytes = (data: Buffer, last: boolean): Item => ({ kind: 'data', data, request, endsRequest: last && ends, arrivedAt: now, releaseAt: now, seq: this.connection.nextSeq() });
    if (this.direction === 'upstream' && mode.kind === 'reset') {
      const allowed = Math.min(this.budget, piece.data.length);
      this.budget -= allowed;
      if (allowed > 0) this.enqueue(bytes(piece.data.subarray(0, allowed), allowed === piece.data.length), mode);
      if (allowed < piece.data.length) {
        this.stats.dropped += piece.data.length - allowed;
        this.enqueue({ kind: 'reset', arrivedAt: now, releaseAt: now, seq: this.connection.nextSeq() }, mode);
      }
      return;
    }
    const slices = this.slices(piece.data, mode);
    slices.forEach((slice, index) => this.enqueue(bytes(slice, index === slices.length - 1), mode));
  }

  /** An answer the proxy made, sent to the client after what it holds for it (downstream). */
  answer(bytes: Buffer): void {
    const now = Date.now();
    this.enqueue({ kind: 'data', data: bytes, made: true, arrivedAt: now, releaseAt: now, seq: this.connection.nextSeq() }, this.connection.mode());
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
    if (mode.kind !== 'bandwidth' && mode.kind !== 'link') return undefined;
    return this.direction === 'upstream' ? mode.upstreamBytesPerSecond : mode.downstreamBytesPerSecond;
  }

  private enqueue(item: Item, mode: SteadyMode): void {
    this.queue.push(item);
    this.queuedBytes += sizeOf(item);
    this.stats.queued += countedSize(item);
    this.time(item, mode, Date.now());
  }

  /** Sets when an item may go under `mode`. */
  time(item: Item, mode: SteadyMode, now: number): void {
    const upstream = this.direction === 'upstream';
    const rate = this.rate(mode);
    switch (mode.kind) {
      case 'latency':
        item.releaseAt = item.arrivedAt + ((upstream ? mode.upstreamMs : mode.downstreamMs) ?? 0);
        return;
      case 'bandwidth':
        item.releaseAt = rate === undefined ? now : this.bottleneck.transmit(sizeOf(item), rate, now);
        return;
      case 'link': {
        // Through the shared bottleneck first, then the propagation delay.
        const sent = rate === undefined ? item.arrivedAt : this.connection.sharedBottleneck(this.direction).transmit(sizeOf(item), rate, now);
        item.releaseAt = sent + ((upstream ? mode.upstreamMs : mode.downstreamMs) ?? 0);
        return;
      }
      case 'slow':
        item.releaseAt = upstream && item.kind === 'data' && item.request ? item.request.framed.startedAt + this.connection.delayOf(item.request, mode) : now;
        return;
      default:
        item.releaseAt = now;
    }
  }

  /** What it holds, in order. */
  held(): readonly Item[] {
    return this.queue;
  }

  /** The mode changed: this connection's own bottleneck starts afresh (what is held is re-timed by the proxy). */
  restartClock(): void {
    this.bottleneck.restart();
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
        this.stats.dropped += countedSize(item);
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
      if (item.kind === 'data' && item.request?.answer) {
        // A request the proxy answers itself: it never reaches the target.
        this.take();
        this.stats.dropped += sizeOf(item);
        if (item.endsRequest) this.connection.answer(item.request);
        continue;
      }
      const sink = this.sink;
      if (!sink) {
        this.connection.connectTarget();
        break;
      }
      if (this.waitingForDrain) break;
      this.take();
      if (item.kind === 'end') {
        sink.end();
        continue;
      }
      this.stats.forwarded += countedSize(item);
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
    this.stats.queued -= countedSize(item);
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
      this.stats.queued -= countedSize(item);
      this.stats.dropped += countedSize(item);
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
  /** The client's stream split into HTTP requests. */
  readonly requests = new RequestFramer();
  private request: ProxiedRequest | undefined;

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

  nextSeq(): number {
    return this.internals.nextSeq();
  }

  sharedBottleneck(direction: Direction): Bottleneck {
    return this.internals.bottlenecks[direction];
  }

  /** The request a piece belongs to; a new HTTP request is counted, and under `errors` its fate drawn. */
  proxied(piece: RequestPiece, mode: SteadyMode): ProxiedRequest {
    if (!piece.starts && this.request) return this.request;
    this.request = { framed: piece.request };
    if (piece.request.head) {
      this.internals.stats.requests.seen += 1;
      if (mode.kind === 'errors') {
        const random = this.internals.random;
        const answers = mode.answers ?? ERROR_ANSWERS;
        if (random() < (mode.share ?? 1)) this.request.answer = answers[Math.floor(random() * answers.length)];
      }
    }
    return this.request;
  }

  /** How long a request waits under `slow`: drawn once, when it is first timed under it. */
  delayOf(request: ProxiedRequest, mode: Extract<SteadyMode, { kind: 'slow' }>): number {
    request.delayMs ??= drawMs(mode.delayMs ?? DEFAULT_SLOW_DELAY_MS, this.internals.random);
    return request.delayMs;
  }

  /** The proxy answers a request it took whole (errors). */
  answer(request: ProxiedRequest): void {
    this.internals.stats.requests.answered += 1;
    this.downstream.answer(errorResponse(request.answer!, request.framed.head!));
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

  /** The mode in force changed: a stream that lost bytes and would now flow again is reset (the proxy then re-times what is held). */
  modeChanged(mode: SteadyMode): void {
    if (mode.kind === 'refuse') return this.reset('fault');
    for (const link of [this.upstream, this.downstream]) {
      if (link.damaged && treatment(mode, link.direction) === 'forward') return this.reset('fault');
    }
    this.upstream.budget = this.resetBudget();
    if (treatment(mode, 'upstream') === 'forward' && !this.upstream.damaged) this.connectTarget();
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
  /** The link's bottlenecks, one per direction, shared by all connections. */
  readonly bottlenecks: Record<Direction, Bottleneck>;
  /** The seeded draws of the mode in force (slow delays, errors). */
  readonly random: () => number;
  nextSeq(): number;
  changed(): void;
  forget(connection: ProxiedConnection): void;
}

const emptyDirection = (): DirectionStats => ({ received: 0, forwarded: 0, dropped: 0, queued: 0 });
const seedOf = (mode: SteadyMode): number => (mode.kind === 'slow' || mode.kind === 'errors' ? mode.seed : undefined) ?? 1;

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
  private readonly bottlenecks: Record<Direction, Bottleneck> = { upstream: new Bottleneck(), downstream: new Bottleneck() };
  private random: () => number = seededRandom(1);
  private seq = 0;

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
      requests: { seen: 0, answered: 0 },
      modeChanges: 0,
    };
    const internals: ProxyInternals = {
      target,
      stats: this.counters,
      bottlenecks: this.bottlenecks,
      random: () => this.random(),
      nextSeq: () => (this.seq += 1),
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
      this.enforce({ mode: parsed }, seededRandom(seedOf(parsed)));
      return;
    }
    const schedule = new FlapSchedule(parsed);
    // Each step keeps its own draws from turn to turn.
    const randoms = parsed.steps.map((step) => seededRandom(seedOf(step)));
    const flap = () => {
      const turn = schedule.turn();
      this.enforce({ mode: turn.mode, step: turn.step, ms: turn.ms }, randoms[turn.step]!);
      this.flapTimer = setTimeout(flap, turn.ms);
    };
    flap();
  }

  private enforce(change: ModeChange, random: () => number): void {
    this.counters.mode = change.mode;
    this.counters.modeChanges += 1;
    this.random = random;
    for (const connection of [...this.connections]) connection.modeChanged(change.mode);
    this.retimeHeld(change.mode);
    this.emit('mode', change);
    this.changed();
  }

  /**
   * What is held goes by the new mode's timing: per direction, in the order it arrived over all
   * connections, so that a shared link queues it as it came.
   */
  private retimeHeld(mode: SteadyMode): void {
    const now = Date.now();
    const connections = [...this.connections];
    for (const direction of DIRECTIONS) {
      this.bottlenecks[direction].restart();
      const held = connections.flatMap((connection) => {
        const link = connection[direction];
        link.restartClock();
        return link.held().map((item) => ({ link, item }));
      });
      held.sort((a, b) => a.item.seq - b.item.seq);
      for (const { link, item } of held) link.time(item, mode, now);
    }
    for (const connection of connections) {
      connection.upstream.pump();
      connection.downstream.pump();
    }
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
