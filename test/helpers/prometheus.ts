import parsePrometheusTextFormat, { type ParsedFamily } from 'parse-prometheus-text-format';

// The text format's grammar, line by line (prometheus.io, "Exposition formats"): the parser
// below takes some malformed lines quietly, so every line is held to it first.
const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
// A float as Go's ParseFloat reads it, which takes NaN and Inf in any case (prom-client writes "Nan").
const VALUE = '(?:[+-]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][+-]?\\d+)?|[+-]?[iI][nN][fF]|[nN][aA][nN])';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(?:${LABEL}(?:,${LABEL})*)?\\})? ${VALUE}(?: -?\\d+)?$`);
const HELP = new RegExp(`^# HELP (${NAME}) .+$`);
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);

export type Families = ReadonlyMap<string, ParsedFamily>;

/**
 * Checks an exposition line by line against the format (every sample under a HELP and TYPE of its
 * family, declared once) and parses it: the families by name.
 */
export function parseExposition(text: string): Families {
  const declared = new Map<string, { type?: string }>();
  let current: string | undefined;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const help = HELP.exec(line);
    const type = TYPE.exec(line);
    const sample = SAMPLE.exec(line);
    if (help) {
      const name = help[1]!;
      if (declared.has(name)) throw new Error(`family declared twice: ${name}`);
      declared.set(name, {});
      current = name;
    } else if (type) {
      const family = current === undefined ? undefined : declared.get(current);
      if (type[1] !== current || !family || family.type) throw new Error(`TYPE without its HELP just before: ${line}`);
      family.type = type[2];
    } else if (sample) {
      const family = current !== undefined && declared.get(current)?.type;
      const suffixes = family === 'histogram' ? ['_bucket', '_sum', '_count'] : family === 'summary' ? ['', '_sum', '_count'] : [''];
      if (!family || !suffixes.some((suffix) => sample[1] === current + suffix)) throw new Error(`sample outside its family: ${line}`);
    } else {
      throw new Error(`not a line of the Prometheus text format: ${JSON.stringify(line)}`);
    }
  }
  return new Map(parsePrometheusTextFormat(text).map((family) => [family.name, family]));
}

/** The value of the one sample of `name` with exactly these labels; undefined when there is none. */
export function sampleValue(families: Families, name: string, labels: Record<string, string> = {}): number | undefined {
  const family = families.get(name);
  if (!family) throw new Error(`no metric family ${name}`);
  const matching = family.metrics.filter((metric) => sameLabels(metric.labels ?? {}, labels));
  if (matching.length > 1) throw new Error(`${matching.length} samples of ${name} with ${JSON.stringify(labels)}`);
  return matching[0] === undefined ? undefined : Number(matching[0].value);
}

export interface HistogramSeries {
  readonly count: number;
  readonly sum: number;
  /** Cumulative counts by upper bound, as the exposition writes it (`0.5`, `+Inf`). */
  readonly buckets: Record<string, number>;
}

/**
 * A histogram's series in an exposition, each keyed by its label values (but `le`) in order,
 * separated by spaces. Read from the text: the parser above loses a histogram's labels, and its
 * count and sum, when `le` comes first, as prom-client writes it.
 */
export function histogram(exposition: string, name: string): Map<string, HistogramSeries> {
  parseExposition(exposition);
  const series = new Map<string, { count: number; sum: number; buckets: Record<string, number> }>();
  const line = new RegExp(`^${name}_(bucket|sum|count)(?:\\{(.*)\\})? (\\S+)$`);
  for (const text of exposition.split('\n')) {
    const match = line.exec(text);
    if (!match) continue;
    const labels = [...(match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)];
    const key = labels.filter(([, label]) => label !== 'le').map(([, , value]) => value).join(' ');
    const entry = series.get(key) ?? { count: NaN, sum: NaN, buckets: {} };
    series.set(key, entry);
    const value = Number(match[3]);
    if (match[1] === 'bucket') entry.buckets[labels.find(([, label]) => label === 'le')![2]!] = value;
    else entry[match[1] as 'sum' | 'count'] = value;
  }
  if (series.size === 0 && !exposition.includes(`# TYPE ${name} histogram`)) throw new Error(`no histogram ${name}`);
  return series;
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key]);
}
