/**
 * `npm run drill`: the outage drill. Starts a region (moto, or LocalStack at AWS_ENDPOINT_URL)
 * with the payments workflow and its agents, the edge shim in front of it through a fault proxy,
 * producers sending payments through the edge; cuts the region, gives it back, waits for the sync,
 * the replay and the pipeline to finish, checks everything from the outside and prints a report.
 * Exits 1 when anything was lost or doubled or another check failed.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type DrillOptions, OUTAGE_KINDS, type OutageKind, runDrill } from './drill.js';
import { FAST_EDGE_TIMING } from './edge.js';
import { markdownReport } from './report.js';

// The project runs on Node 20 on purpose; keep the SDK's upgrade notice out of the report.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const USAGE = `Usage: npm run drill -- [options]

  --outage SECONDS     how long the region is cut off (default 60; --quick: 10)
  --kind KIND          ${OUTAGE_KINDS.join(' | ')} (default blackhole)
  --rate N             payments per second, all producers together (default 2)
  --low-risk SHARE     share of low-risk payments, 0 to 1 (default 0.33)
  --seed N             fixes the payments and the flapping schedule (default: random, printed)
  --baseline           also run the same outage with the producers straight to the region
  --quick              a 10 s outage, and an edge that notices and trusts the region again
                       within about a second (probes every 200 ms) instead of the shipped defaults
  --make-conflict      write one payment's step differently into the region during the outage:
                       the edge must report the conflict and leave the region's record alone (the
                       outage lasts until the edge has authorized and escalated payments)
  --report FILE        write the report to FILE.md and FILE.json (FILE.json or FILE.md: both, by that name)
  --stall SECONDS      give up a wait that sees no progress for this long (default 300)
  --keep               keep the drill's directory (databases, the shim's log) even when it passed
  --help               print this text

The region is a moto server started for the drill, or the emulator at AWS_ENDPOINT_URL (LocalStack).`;

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
      outageSeconds: number(values.outage, '--outage', values.quick ? 10 : 60, (value) => value > 0),
      kind: values.kind as OutageKind,
      rate: number(values.rate, '--rate', 2, (value) => value > 0 && value <= 200),
      lowRiskShare: number(values['low-risk'], '--low-risk', 0.33, (value) => value >= 0 && value <= 1),
      seed: number(values.seed, '--seed', Math.floor(Math.random() * 1_000_000), Number.isSafeInteger),
      baseline: values.baseline,
      makeConflict: values['make-conflict'],
      stallSeconds: number(values.stall, '--stall', 300, (value) => value > 0),
      keepWorkDir: values.keep,
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
const report = await runDrill({ ...drill, log: (line) => console.log(`drill: ${line}`) });
const markdown = markdownReport(report);
console.log(`\n${markdown}`);
if (reportFile) {
  const files = reportFiles(reportFile);
  writeFileSync(files.markdown, markdown);
  writeFileSync(files.json, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`drill: report written to ${files.markdown} and ${files.json}`);
}
process.exitCode = report.passed ? 0 : 1;
