/**
 * The faults the proxy can inject, as plain data: what `setMode`, `PUT /mode` and `--mode` take.
 * Directions follow the usual proxy naming: upstream is client → target, downstream target → client.
 */
export type Direction = 'upstream' | 'downstream';

/** The errors the `errors` mode answers with, each in the caller's protocol (testkit/aws-error-answers.ts). */
export const ERROR_ANSWERS = ['internal-error', 'unavailable', 'throttling'] as const;
export type ErrorAnswer = (typeof ERROR_ANSWERS)[number];

/** Milliseconds: a fixed number, or a range [min, max] to draw from. */
export type MsRange = number | readonly [number, number];

/** How long a `slow` request waits unless told: a region that answers in 1 to 5 s. */
export const DEFAULT_SLOW_DELAY_MS: MsRange = [1000, 5000];

export type SteadyMode =
  /** Forward everything. */
  | { readonly kind: 'pass' }
  /** New connections are reset as soon as they are accepted; open ones are reset at the switch. */
  | { readonly kind: 'refuse' }
  /** Connections are accepted; once `afterBytes` bytes (default 0) came from the client, the rest is not forwarded and both sides are reset. */
  | { readonly kind: 'reset'; readonly afterBytes?: number }
  /** Connections are accepted and read; nothing is forwarded either way, nothing is answered. */
  | { readonly kind: 'blackhole' }
  /** Every chunk waits this long before it is forwarded, per direction. */
  | { readonly kind: 'latency'; readonly upstreamMs?: number; readonly downstreamMs?: number }
  /** Requests reach the target; its answers are dropped and the client is left hanging (`hang`, the default) or reset when the answer comes (`reset`). */
  | { readonly kind: 'lost-answers'; readonly then?: 'hang' | 'reset' }
  /** At most this many bytes a second per connection, per direction; a direction not given is not limited. */
  | { readonly kind: 'bandwidth'; readonly upstreamBytesPerSecond?: number; readonly downstreamBytesPerSecond?: number }
  /**
   * A thin uplink: per direction ONE bottleneck shared by every connection, a FIFO of what arrived
   * drained at the rate, then the propagation delay. A rate not given is not limited; a delay not given is 0.
   */
  | {
      readonly kind: 'link';
      readonly upstreamBytesPerSecond?: number;
      readonly downstreamBytesPerSecond?: number;
      readonly upstreamMs?: number;
      readonly downstreamMs?: number;
    }
  /** A slow region: each HTTP request waits a delay drawn from `delayMs` (default 1 to 5 s, seeded) before the target gets it. */
  | { readonly kind: 'slow'; readonly delayMs?: MsRange; readonly seed?: number }
  /** A failing region: a share (default 1, seeded) of HTTP requests is answered by the proxy with one of `answers` (default all), never reaching the target. */
  | { readonly kind: 'errors'; readonly share?: number; readonly answers?: readonly ErrorAnswer[]; readonly seed?: number };

/** A step of a flapping schedule: a steady mode held for `ms`, or for a duration drawn from [min, max]. */
export type FlapStep = SteadyMode & { readonly ms: MsRange };

export type FaultMode =
  | SteadyMode
  /** The steps in turn, over and over, until another mode is set; durations drawn from ranges with a generator seeded by `seed` (default 1). */
  | { readonly kind: 'flapping'; readonly steps: readonly FlapStep[]; readonly seed?: number };

export type ModeName = FaultMode['kind'];

export const MODE_NAMES: readonly ModeName[] = ['pass', 'refuse', 'reset', 'blackhole', 'latency', 'lost-answers', 'bandwidth', 'link', 'slow', 'errors', 'flapping'];

export class FaultModeError extends Error {}

/** What the proxy does with data arriving in a direction under a mode. */
export type Treatment = 'forward' | 'drop' | 'reset';

export function treatment(mode: SteadyMode, direction: Direction): Treatment {
  switch (mode.kind) {
    case 'refuse':
      return 'reset';
    case 'blackhole':
      return 'drop';
    case 'lost-answers':
      if (direction === 'upstream') return 'forward';
      return mode.then === 'reset' ? 'reset' : 'drop';
    default:
      return 'forward';
  }
}

const ALLOWED_FIELDS: Record<ModeName, readonly string[]> = {
  pass: [],
  refuse: [],
  reset: ['afterBytes'],
  blackhole: [],
  latency: ['upstreamMs', 'downstreamMs'],
  'lost-answers': ['then'],
  bandwidth: ['upstreamBytesPerSecond', 'downstreamBytesPerSecond'],
  link: ['upstreamBytesPerSecond', 'downstreamBytesPerSecond', 'upstreamMs', 'downstreamMs'],
  slow: ['delayMs', 'seed'],
  errors: ['share', 'answers', 'seed'],
  flapping: ['steps', 'seed'],
};

function count(value: unknown, name: string, minimum: number): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < minimum) {
    throw new FaultModeError(`${name} must be an integer of at least ${minimum}, not ${JSON.stringify(value)}`);
  }
}

/** A duration in milliseconds, or a range [min, max] of them. */
function msRange(value: unknown, name: string, minimum: number): void {
  if (Array.isArray(value) && value.length === 2) {
    count(value[0], `${name}[0]`, minimum);
    count(value[1], `${name}[1]`, minimum);
    if ((value[0] as number) > (value[1] as number)) throw new FaultModeError(`${name}: the range [min, max] has min > max`);
    return;
  }
  if (Array.isArray(value)) throw new FaultModeError(`${name} must be milliseconds or a range [min, max], not ${JSON.stringify(value)}`);
  count(value, name, minimum);
}

/**
 * Checks a mode given as data (a name, or an object with `kind`) and returns it typed; throws a
 * FaultModeError saying what is wrong.
 */
export function parseMode(value: unknown, where = 'mode'): FaultMode {
  if (typeof value === 'string') value = { kind: value };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new FaultModeError(`${where} must be a mode name or an object with "kind": one of ${MODE_NAMES.join(', ')}`);
  }
  const fields = value as Record<string, unknown>;
  const kind = fields.kind as ModeName;
  if (!MODE_NAMES.includes(kind)) throw new FaultModeError(`${where}.kind must be one of ${MODE_NAMES.join(', ')}, not ${JSON.stringify(fields.kind)}`);
  const allowed = where.includes('steps[') ? [...ALLOWED_FIELDS[kind], 'ms'] : ALLOWED_FIELDS[kind];
  for (const name of Object.keys(fields)) {
    if (name !== 'kind' && !allowed.includes(name)) throw new FaultModeError(`${where}: ${kind} takes no field "${name}"${allowed.length ? ` (it takes ${allowed.join(', ')})` : ''}`);
  }
  switch (kind) {
    case 'reset':
      count(fields.afterBytes, `${where}.afterBytes`, 0);
      break;
    case 'latency':
      count(fields.upstreamMs, `${where}.upstreamMs`, 0);
      count(fields.downstreamMs, `${where}.downstreamMs`, 0);
      break;
    case 'lost-answers':
      if (fields.then !== undefined && fields.then !== 'hang' && fields.then !== 'reset') {
        throw new FaultModeError(`${where}.then must be "hang" or "reset", not ${JSON.stringify(fields.then)}`);
      }
      break;
    case 'bandwidth':
      count(fields.upstreamBytesPerSecond, `${where}.upstreamBytesPerSecond`, 1);
      count(fields.downstreamBytesPerSecond, `${where}.downstreamBytesPerSecond`, 1);
      break;
    case 'link':
      count(fields.upstreamBytesPerSecond, `${where}.upstreamBytesPerSecond`, 1);
      count(fields.downstreamBytesPerSecond, `${where}.downstreamBytesPerSecond`, 1);
      count(fields.upstreamMs, `${where}.upstreamMs`, 0);
      count(fields.downstreamMs, `${where}.downstreamMs`, 0);
      break;
    case 'slow':
      if (fields.delayMs !== undefined) msRange(fields.delayMs, `${where}.delayMs`, 0);
      count(fields.seed, `${where}.seed`, 0);
      break;
    case 'errors': {
      const share = fields.share;
      if (share !== undefined && (typeof share !== 'number' || !(share >= 0 && share <= 1))) {
        throw new FaultModeError(`${where}.share must be a number from 0 to 1, not ${JSON.stringify(share)}`);
      }
      const answers = fields.answers;
      if (answers !== undefined && (!Array.isArray(answers) || answers.length === 0 || !answers.every((answer) => ERROR_ANSWERS.includes(answer as ErrorAnswer)))) {
        throw new FaultModeError(`${where}.answers must be a non-empty list of ${ERROR_ANSWERS.join(', ')}, not ${JSON.stringify(answers)}`);
      }
      count(fields.seed, `${where}.seed`, 0);
      break;
    }
    case 'flapping': {
      if (where !== 'mode') throw new FaultModeError(`${where}: a flapping step cannot itself flap`);
      count(fields.seed, `${where}.seed`, 0);
      const steps = fields.steps;
      if (!Array.isArray(steps) || steps.length === 0) throw new FaultModeError(`${where}.steps must be a non-empty list of modes, each with ms`);
      steps.forEach((step: unknown, index) => {
        const stepWhere = `${where}.steps[${index}]`;
        parseMode(step, stepWhere);
        const ms = (step as Record<string, unknown>).ms;
        if (ms === undefined) throw new FaultModeError(`${stepWhere} needs ms: a duration in milliseconds or a range [min, max]`);
        msRange(ms, `${stepWhere}.ms`, 1);
      });
      break;
    }
  }
  return fields as unknown as FaultMode;
}

/** A small seeded generator (mulberry32) of numbers in [0, 1): the same seed, the same schedule. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A number of milliseconds: the one given, or one drawn evenly from [min, max]. */
export function drawMs(range: MsRange, random: () => number): number {
  return typeof range === 'number' ? range : range[0] + Math.floor(random() * (range[1] - range[0] + 1));
}

export interface FlapTurn {
  readonly mode: SteadyMode;
  readonly step: number;
  readonly ms: number;
}

/** The turns of a flapping mode, one after another: each step in order, durations drawn from the seed. */
export class FlapSchedule {
  private readonly random: () => number;
  private next = 0;

  constructor(private readonly mode: Extract<FaultMode, { kind: 'flapping' }>) {
    this.random = seededRandom(mode.seed ?? 1);
  }

  turn(): FlapTurn {
    const step = this.next;
    this.next = (this.next + 1) % this.mode.steps.length;
    const { ms, ...steady } = this.mode.steps[step]!;
    return { mode: steady as SteadyMode, step, ms: drawMs(ms, this.random) };
  }
}
