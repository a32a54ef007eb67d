/**
 * Issue 15's rows of `npm run bench:hybrid -- --way-back ROWS`: the way back on a thin link, with a
 * large backlog, into a slow region, and the sync at the link's pace. Each run is a moto of its own;
 * with `--before DIR` every row also runs with that checkout's shim (or sync), before and after
 * alternating, so that the load of the machine falls on both alike.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import type { SteadyMode } from '../testkit/fault-modes.js';
import { RESULTS, motoVersion, revision } from './hybrid-shim.js';
import { type ReplayRun, type ReplayRunSpec, replayRun } from './way-back-replay.js';
import { type SyncRun, syncRun } from './way-back-sync.js';

export const WAY_BACK_ROWS = ['thin-link', 'backlog', 'slow-region', 'sync'] as const;
export type WayBackRow = (typeof WAY_BACK_ROWS)[number];

export interface WayBackOptions {
  readonly rows: readonly WayBackRow[];
  /** Another checkout to run the same rows with (the code before). */
  readonly before: string | undefined;
  readonly runs: number;
  /** Messages per queue of the thin link's backlog (two queues of 48 KiB messages). */
  readonly thinMessages: number;
  /** Messages of the large backlog (half FIFO over 50 groups). */
  readonly backlogMessages: number;
  /** Messages per queue into the slow region (two queues). */
  readonly slowMessages: number;
  /** Tasks the fallback agents ran, whose records are synced (about 4 records a task). */
  readonly syncTasks: number;
  /** How long a replay (or the earlier sync engine) may take before the run stops and reports what it reached. */
  readonly boundSeconds: number;
  readonly out: string | undefined;
}

/** 1 Mbit/s, in bytes a second; the thin link is that each way with 150 ms of round trip (75 ms each way). */
export const MBIT = 125_000;
const THIN_LINK: SteadyMode = { kind: 'link', upstreamBytesPerSecond: MBIT, downstreamBytesPerSecond: MBIT, upstreamMs: 75, downstreamMs: 75 };
const SLOW_REGION: SteadyMode = { kind: 'slow', delayMs: [1000, 3000], seed: 15 };
// The replay starts soon after the link is mended; recovery is not what is measured.
const RECOVERY = ['--recovery-probes', '2', '--recovery-time', '1s'];

function replaySpec(row: Exclude<WayBackRow, 'sync'>, options: WayBackOptions): Omit<ReplayRunSpec, 'side'> {
  const bound = options.boundSeconds * 1000;
  switch (row) {
    case 'thin-link':
      return {
        row,
        shape: { fifoQueues: 1, groupsPerFifoQueue: 10, standardQueues: 1, messagesPerQueue: options.thinMessages, bodyBytes: 48 * 1024 },
        link: THIN_LINK,
        comeback: THIN_LINK,
        live: { periodMs: 200, bodyBytes: 1024, idleMs: 5000 },
        boundMs: bound,
        args: RECOVERY,
      };
    case 'backlog': {
      // Ten queues: five FIFO of ten groups each (50 groups), five standard; moto's sends slow down as a queue grows, so the backlog is spread.
      const perQueue = Math.ceil(options.backlogMessages / 10);
      return {
        row,
        shape: { fifoQueues: 5, groupsPerFifoQueue: 10, standardQueues: 5, messagesPerQueue: perQueue, bodyBytes: 100 },
        link: { kind: 'pass' },
        comeback: { kind: 'pass' },
        boundMs: bound,
        args: RECOVERY,
      };
    }
    case 'slow-region':
      return {
        row,
        shape: { fifoQueues: 1, groupsPerFifoQueue: 10, standardQueues: 1, messagesPerQueue: options.slowMessages, bodyBytes: 100 },
        link: { kind: 'pass' },
        comeback: SLOW_REGION,
        boundMs: bound,
        args: RECOVERY,
      };
  }
}

type Run = ({ kind: 'replay' } & ReplayRun) | ({ kind: 'sync' } & SyncRun);

const fixed = (value: number | undefined, digits = 1) => (value === undefined || Number.isNaN(value) ? '-' : value.toFixed(digits));

function replayLine(run: ReplayRun): string {
  const region = run.region;
  const live = run.live;
  const share = run.row === 'thin-link' ? ` payload ${fixed(run.payloadBytesPerSecond / 1000)} kB/s = ${fixed((100 * run.payloadBytesPerSecond) / MBIT)}% of 1 Mbit/s; wire ${fixed((run.wireBytesPerSecond ?? NaN) / 1000)} kB/s = ${fixed((100 * (run.wireBytesPerSecond ?? NaN)) / MBIT)}%;` : '';
  const liveText = live
    ? ` live 1 KiB sends: ${live.sends} (${live.failed} failed), p50 ${fixed(live.p50, 0)} ms, p99 ${fixed(live.p99, 0)} ms, max ${fixed(live.max, 0)} ms; passed through ${live.passedThrough} (p50 ${fixed(live.passedP50, 0)}, p99 ${fixed(live.passedP99, 0)} ms), behind the live queue's backlog ${live.behindBacklog}, while offline ${live.whileOffline}; idle link p50 ${fixed(live.idleP50, 0)} ms p99 ${fixed(live.idleP99, 0)} ms;`
    : '';
  return (
    `| ${run.row} | ${run.side} (${run.revision}) | ${run.converged ? 'yes' : `no, bound ${run.boundSeconds} s`} | ${run.replayed} of ${run.stored} in ${fixed(run.seconds)} s ` +
    `(${fixed(run.replayed / run.seconds)} msg/s; first fifth ${fixed(run.rateFirstFifth)}, last fifth ${fixed(run.rateLastFifth)}) | ${run.returnsToOffline} | ` +
    `${region.delivered} delivered, ${region.lost} lost, ${region.duplicates} duplicated (${region.fifoDuplicates} FIFO; the edge counted ${run.possiblyDuplicated ?? '-'} as possibly duplicated), ${region.outOfOrder} out of order, ${region.stillAtEdge} still at the edge | ` +
    `${share}${liveText} window ${run.window ? `${run.window.min}/${run.window.median}/${run.window.max}` : '-'} (min/median/max); mend to replaying ${fixed(run.mendToReplayingSeconds)} s; CPU shim ${fixed(run.shimCpu, 2)}, moto ${fixed(run.regionCpu, 2)}` +
    `${run.offlineReasons.length > 0 ? `; offline because: ${run.offlineReasons.join(' / ')}` : ''}${run.notes.length > 0 ? `; ${run.notes.join('; ')}` : ''} |`
  );
}

function syncLine(run: SyncRun): string {
  return (
    `| sync | ${run.side} (${run.revision}) | ${run.converged ? 'yes' : 'no'} | ${run.records} records in ${fixed(run.seconds)} s (${fixed(run.records / run.seconds)} records/s) | - | ` +
    `${run.written} written, ${run.identical} identical, ${run.conflicts} conflicts | direct conditional PutItem on the same path: ${run.direct.map((direct) => `${direct.concurrency} at a time ${fixed(direct.perSecond)}/s`).join(', ')}; ` +
    `link ${run.link}; ${run.notes.join('; ')} |`
  );
}

export async function runWayBack(options: WayBackOptions): Promise<void> {
  const started = new Date();
  const loadBefore = loadavg();
  const runs: Run[] = [];
  const say = (line: string) => console.error(line);
  const sides: Array<{ side: 'after' | 'before'; root?: string }> = options.before ? [{ side: 'before', root: options.before }, { side: 'after' }] : [{ side: 'after' }];
  for (let round = 0; round < options.runs; round++) {
    // Before and after alternate, and which goes first alternates by round.
    const order = round % 2 === 0 ? sides : [...sides].reverse();
    for (const row of options.rows) {
      for (const { side, root } of order) {
        say(`way back: ${row}, ${side}, round ${round + 1} of ${options.runs}`);
        try {
          if (row === 'sync') runs.push({ kind: 'sync', ...(await syncRun({ side, ...(root !== undefined && { root }), tasks: options.syncTasks, boundMs: options.boundSeconds * 1000 }, revision, say)) });
          else runs.push({ kind: 'replay', ...(await replayRun({ ...replaySpec(row, options), side, ...(root !== undefined && { root }) }, revision, say)) });
        } catch (error) {
          say(`way back: ${row} ${side} failed: ${(error as Error).stack ?? String(error)}`);
          runs.push({ kind: 'sync', side, revision: revision(root), records: 0, seconds: NaN, converged: false, written: 0, identical: 0, conflicts: 0, direct: [], link: '-', notes: [`the run failed: ${(error as Error).message.slice(0, 300)}`] });
        }
      }
    }
  }
  const finished = new Date();
  const text = [
    `# Issue 15's way-back rows: ${options.rows.join(', ')}`,
    '',
    `- started ${started.toISOString()}, finished ${finished.toISOString()}`,
    `- machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, load average before ${loadBefore.map((load) => load.toFixed(2)).join(' ')}, after ${loadavg().map((load) => load.toFixed(2)).join(' ')} (other work shares the machine)`,
    `- node ${process.version}, moto ${motoVersion()}, this checkout at ${revision()}${options.before ? `, before: ${options.before} at ${revision(options.before)}` : ''}`,
    `- command: \`npm run bench:hybrid -- ${process.argv.slice(2).join(' ')}\``,
    '',
    '| row | side | converged | replayed | returns to offline | region | more |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...runs.map((run) => (run.kind === 'sync' ? syncLine(run) : replayLine(run))),
    '',
    '<details><summary>every figure of every run (JSON)</summary>',
    '',
    '```json',
    JSON.stringify(runs, null, 1),
    '```',
    '',
    '</details>',
    '',
  ].join('\n');
  const out = options.out ?? join(RESULTS, 'way-back', `${started.toISOString().replace(/[:.]/g, '-')}-${options.rows.join('-')}.md`);
  mkdirSync(join(out, '..'), { recursive: true });
  writeFileSync(out, text);
  console.log(text);
  say(`written to ${out}`);
}
