/**
 * `npm run drill`: the outage drill. Starts a region (moto, or LocalStack at AWS_ENDPOINT_URL)
 * with the payments workflow and its agents, the edge shim in front of it through a fault proxy,
 * producers sending payments through the edge; cuts the region, gives it back, waits for the sync,
 * the replay and the pipeline to finish, checks everything from the outside and prints a report.
 * Exits 1 when anything was lost or doubled or another check failed. SIGINT or SIGTERM stops
 * everything it started (the edge and its agents, the fault proxy, the region and its moto server)
 * and exits 130 or 143.
 */
import { writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { parseArgs } from 'node:util';
import { parseDuration } from '../edge-shim/src/config.js';
import { type DrillOptions, OUTAGE_KINDS, type OutageKind, THIN_LINK, type ThinLink, runDrill } from './drill.js';
import { FAST_EDGE_TIMING } from './edge.js';
import { markdownReport } from './report.js';

// The project runs on Node 20 on purpose; keep the SDK's upgrade notice out of the report.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const USAGE = `Usage: npm run drill -- [options]

  --outage T           how long the region is cut off (default 60s; --quick: 10s)
  --kind KIND          ${OUTAGE_KINDS.join(' | ')} (default blackhole)
  --rate N             payments per second, all producers together (default 2)
  --low-risk SHARE     share of low-risk payments, 0 to 1 (default 0.33)
  --seed N             fixes the payments and the flapping schedule (default: random, printed)
  --baseline           also run the same outage with the producers straight to the region
  --quick              a 10 s outage, and an edge that probes every 200 ms, goes offline after 3
                       failed probes and trusts the region again after 3 good ones over 1 s,
                       instead of the shipped defaults
  --make-conflict      write one payment's step differently into the region during the outage:
                       the edge must report the conflict and leave the region's record alone (the
                       outage lasts until the edge has authorized and escalated payments)
  --report FILE        write the report to FILE.md and FILE.json (FILE.json or FILE.md: both, by that name)
  --stall T            give up a wait that sees no progress for this long (default 5m)
  --link KIND          the edge's link to the region outside the outage: direct (loopback, the
                       default) or thin (a site's DSL or LTE uplink: one bottleneck each way that
                       all connections share, and a delay each way)
  --link-rate RATE     the thin link's rate each way, in kbit/s or Mbit/s (default 1Mbit/s)
  --link-latency T     the thin link's delay each way (default 150ms; a round trip gains twice this)
  --edge-nodes N       the edge's nodes: 1, one shim on SQLite (default); 2 or 3, that many on one
                       PostgreSQL database behind HAProxy (both installed from Debian when missing),
                       and the node that holds the replay lease is SIGKILLed halfway through the outage
  --keep               keep the drill's directory (databases, the shim's and the region's logs) even when it passed
  --help               print this text

Durations take the shim's forms: 500ms, 30s, 2m (a bare number is refused: give the unit).
The region is a moto server started for the drill, or the emulator at AWS_ENDPOINT_URL (LocalStack).
SIGINT (Ctrl-C) or SIGTERM stops everything the drill started and exits 130 or 143.`;

function fail(message: string): never {
  console.error(`drill: ${message}\n\n${USAGE}`);
  process.exit(2);
}

function number(text: string | undefined, name: string, fallback: number, check: (value: number) => boolean): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || !check(value)) fail(`invalid ${name} '${text}'`);
  return value;
}

/** A duration in milliseconds, in the shim's forms (500ms, 30s, 2m). */
function durationMs(text: string | undefined, name: string, fallbackMs: number, minimumMs = 1): number {
  if (text === undefined) return fallbackMs;
  let ms: number;
  try {
    ms = parseDuration(text, name);
  } catch (error) {
    fail((error as Error).message);
  }
  if (ms < minimumMs) fail(`${name} must be at least ${minimumMs}ms, not '${text}'`);
  return ms;
}

const BIT_RATE_UNITS: Record<string, number> = { k: 1e3, M: 1e6 };

/** The thin link's rate in bits a second: 512kbit/s, 1Mbit/s, 2.5Mbit/s. */
function bitRate(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(k|M)bit\/s$/.exec(text.trim());
  const bits = match ? Number(match[1]) * BIT_RATE_UNITS[match[2]!]! : NaN;
  if (!(bits >= 8)) fail(`invalid --link-rate '${text}': give a rate such as 512kbit/s or 1Mbit/s`);
  return bits;
}

/** The thin link, if asked for: --link-rate and --link-latency shape it and need it. */
function link(kind: string, rate: string | undefined, latency: string | undefined): ThinLink | undefined {
  if (kind !== 'direct' && kind !== 'thin') fail(`--link must be direct or thin, not '${kind}'`);
  if (kind === 'direct') {
    if (rate !== undefined || latency !== undefined) fail('--link-rate and --link-latency shape the thin link: give --link thin with them');
    return undefined;
  }
  return {
    bitsPerSecond: rate === undefined ? THIN_LINK.bitsPerSecond : bitRate(rate),
    latencyMs: durationMs(latency, '--link-latency', THIN_LINK.latencyMs, 0),
  };
}

function options(): { drill: DrillOptions; report: string | undefined } {
  let values;
  try {
    values = parseArgs({
      options: {
        outage: { type: 'string' },
        kind: { type: 'string', default: 'blackhole' },
        rate: { type: 'string' },
        'low-risk': { type: 'string' },
        seed: { type: 'string' },
        baseline: { type: 'boolean', default: false },
        quick: { type: 'boolean', default: false },
        'make-conflict': { type: 'boolean', default: false },
        report: { type: 'string' },
        stall: { type: 'string' },
        link: { type: 'string', default: 'direct' },
        'link-rate': { type: 'string' },
        'link-latency': { type: 'string' },
        'edge-nodes': { type: 'string' },
        keep: { type: 'boolean', default: false },
        help: { type: 'boolean' },
      },
      strict: true,
    }).values;
  } catch (error) {
    fail((error as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  if (!OUTAGE_KINDS.includes(values.kind as OutageKind)) fail(`--kind must be one of ${OUTAGE_KINDS.join(', ')}, not '${values.kind}'`);
  return {
    drill: {
      outageSeconds: durationMs(values.outage, '--outage', values.quick ? 10_000 : 60_000) / 1000,
      kind: values.kind as OutageKind,
      rate: number(values.rate, '--rate', 2, (value) => value > 0 && value <= 200),
      lowRiskShare: number(values['low-risk'], '--low-risk', 0.33, (value) => value >= 0 && value <= 1),
      seed: number(values.seed, '--seed', Math.floor(Math.random() * 1_000_000), Number.isSafeInteger),
      baseline: values.baseline,
      makeConflict: values['make-conflict'],
      stallSeconds: durationMs(values.stall, '--stall', 300_000) / 1000,
      keepWorkDir: values.keep,
      edgeNodes: number(values['edge-nodes'], '--edge-nodes', 1, (value) => Number.isInteger(value) && value >= 1 && value <= 3),
      link: link(values.link, values['link-rate'], values['link-latency']),
      ...(values.quick ? { timing: FAST_EDGE_TIMING } : {}),
      ...(process.env.AWS_ENDPOINT_URL ? { regionEndpoint: process.env.AWS_ENDPOINT_URL } : {}),
    },
    report: values.report,
  };
}

/** FILE.md and FILE.json, or the name given for one of them and the same stem for the other. */
function reportFiles(file: string): { markdown: string; json: string } {
  const stem = file.replace(/\.(json|md)$/, '');
  return { markdown: file.endsWith('.md') ? file : `${stem}.md`, json: file.endsWith('.json') ? file : `${stem}.json` };
}

const { drill, report: reportFile } = options();
console.log(`drill: seed ${drill.seed} (rerun with --seed ${drill.seed})`);

// A signal stops the drill where it is; the drill then stops what it started on its way out.
const stopping = new AbortController();
let stoppedBy: NodeJS.Signals | undefined;
const stop = (signal: NodeJS.Signals) => {
  // Ctrl-C reaches the drill twice (from the terminal and relayed by npm): one stop is enough.
  if (stoppedBy) return;
  stoppedBy = signal;
  console.log(`drill: ${signal}: stopping the edge and its agents, the fault proxy and the region`);
  stopping.abort(new Error(`the drill was stopped by ${signal}`));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

let report;
try {
  report = await runDrill({ ...drill, signal: stopping.signal, log: (line) => console.log(`drill: ${line}`) });
} catch (error) {
  if (!stoppedBy) throw error;
  console.error(`drill: stopped by ${stoppedBy}; everything it started is stopped`);
  process.exit(128 + constants.signals[stoppedBy]);
}
const markdown = markdownReport(report);
console.log(`\n${markdown}`);
if (reportFile) {
  const files = reportFiles(reportFile);
  writeFileSync(files.markdown, markdown);
  writeFileSync(files.json, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`drill: report written to ${files.markdown} and ${files.json}`);
}
process.exitCode = report.passed ? 0 : 1;
