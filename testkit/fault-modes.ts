/**
 * The faults the proxy can inject, as plain data: what `setMode`, `PUT /mode` and `--mode` take.
 * Directions follow the usual proxy naming: upstream is client → target, downstream target → client.
 */
export type Direction = 'upstream' | 'downstream';

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
  | { readonly kind: 'bandwidth'; readonly upstreamBytesPerSecond?: number; readonly downstreamBytesPerSecond?: number };

/** A step of a flapping schedule: a steady mode held for `ms`, or for a duration drawn from [min, max]. */
export type FlapStep = SteadyMode & { readonly ms: number | readonly [number, number] };

export type FaultMode =
  | SteadyMode
  /** The steps in turn, over and over, until another mode is set; durations drawn from ranges with a generator seeded by `seed` (default 1). */
  | { readonly kind: 'flapping'; readonly steps: readonly FlapStep[]; readonly seed?: number };

export type ModeName = FaultMode['kind'];

export const MODE_NAMES: readonly ModeName[] = ['pass', 'refuse', 'reset', 'blackhole', 'latency', 'lost-answers', 'bandwidth', 'flapping'];

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
  flapping: ['steps', 'seed'],
};

function count(value: unknown, name: string, minimum: number): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < minimum) {
    throw new FaultModeError(`${name} must be an integer of at least ${minimum}, not ${JSON.stringify(value)}`);
  }
}

function duration(value: unknown, where: string): void {
  if (Array.isArray(value) && value.length === 2) {
    count(value[0], `${where}.ms[0]`, 1);
    count(value[1], `${where}.ms[1]`, 1);
    if ((value[0] as number) > (value[1] as number)) throw new FaultModeError(`${where}.ms: the range [min, max] has min > max`);
    return;
  }
  if (value === undefined) throw new FaultModeError(`${where} needs ms: a duration in milliseconds or a range [min, max]`);
  count(value, `${where}.ms`, 1);
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
    case 'flapping': {
      if (where !== 'mode') throw new FaultModeError(`${where}: a flapping step cannot itself flap`);
      count(fields.seed, `${where}.seed`, 0);
      const steps = fields.steps;
      if (!Array.isArray(steps) || steps.length === 0) throw new FaultModeError(`${where}.steps must be a non-empty list of modes, each with ms`);
      steps.forEach((step: unknown, index) => {
        const stepWhere = `${where}.steps[${index}]`;
        parseMode(step, stepWhere);
        duration((step as Record<string, unknown>).ms, stepWhere);
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
    const drawn = typeof ms === 'number' ? ms : ms[0] + Math.floor(this.random() * (ms[1] - ms[0] + 1));
    return { mode: steady as SteadyMode, step, ms: drawn };
  }
}
