import { cpus } from 'node:os';
import type { ScenarioResult } from './load.js';

/** One operation at one number of clients, straight to the region and through the shim in front of it. */
export interface PassThroughRow {
  readonly operation: string;
  readonly clients: number;
  readonly direct: ScenarioResult;
  readonly shim: ScenarioResult;
  /** CPU seconds per second of the region (moto) while the direct clients ran, and while the shim's did. */
  readonly regionCpuDirect: number;
  readonly regionCpuShim: number;
  /** CPU seconds per second of the shim. */
  readonly shimCpu: number;
}

/** One backlog handed to the region by the replay, or the same messages sent by a direct client. */
export interface ReplayRow {
  /** The region replayed to: moto, or a standalone shim. */
  readonly region: string;
  readonly kind: 'FIFO' | 'standard';
  readonly round: number;
  /**
   * `generator`: the load generator's pre-signed requests, the least a client can cost the region;
   * `SDK`: an AWS SDK v3 client, the same requests on the wire as the replayer's; `replay`: the edge.
   */
  readonly how: 'generator' | 'SDK' | 'replay';
  readonly messages: number;
  readonly seconds: number;
  /** Messages the region's queue held afterwards. */
  readonly inRegion: number;
  readonly regionCpu: number;
  /** The shim's CPU seconds per second (replay only). */
  readonly shimCpu?: number;
  /** How long the backlog took to store at the edge while the region was cut (replay only). */
  readonly fillSeconds?: number;
  readonly errors: number;
}

/** One cut of the region under load, and what the shim and its clients saw. */
export interface SwitchRow {
  readonly settings: string;
  readonly fault: string;
  readonly trial: number;
  /** From the cut to the first upstream request the shim saw fail (a client's or its probe). */
  readonly cutToFirstFailureMs: number | undefined;
  /** What that first failure was. */
  readonly firstFailure: string;
  /** From the first failed upstream request to the mode `offline`: the target. */
  readonly firstFailureToOfflineMs: number | undefined;
  /** From the first client send the region failed (stored at the edge instead) to `offline`. */
  readonly firstFailedSendToOfflineMs: number | undefined;
  readonly cutToOfflineMs: number | undefined;
  readonly offlineReason: string;
  /** Client sends in flight at the cut or sent before the switch, and their latencies. */
  readonly sendsDuringSwitch: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** Sends that failed at the client, over the whole trial. */
  readonly failedSends: number;
}

export interface HybridResults {
  readonly passThrough: PassThroughRow[];
  readonly replay: ReplayRow[];
  readonly switches: SwitchRow[];
  readonly notes: string[];
}

export interface HybridSetup {
  readonly started: Date;
  readonly finished: Date;
  /** Sentences on how the run was set up. */
  readonly description: readonly string[];
  readonly loadBefore: readonly number[];
  readonly loadAfter: readonly number[];
  readonly replayGoal: number;
  readonly switchGoalMs: number;
  readonly defaultSettings: string;
  readonly profileSummary?: string;
}

const fmt = (value: number | undefined, digits = 0) =>
  value === undefined || Number.isNaN(value) ? '-' : value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const percent = (value: number | undefined) => (value === undefined || Number.isNaN(value) ? '-' : `${Math.round(value * 100)}%`);
const seconds = (ms: number | undefined) => (ms === undefined ? '-' : fmt(ms / 1000, 2));
const verdict = (met: boolean | undefined) => (met === undefined ? 'n/a' : met ? 'yes' : '**no**');
const load = (averages: readonly number[]) => averages.map((value) => value.toFixed(1)).join(', ');

/** Messages a second over every round of one region, kind and way: all messages over all the time. */
function replayRate(rows: readonly ReplayRow[], region: string, kind: ReplayRow['kind'], how: ReplayRow['how']): number | undefined {
  const chosen = rows.filter((row) => row.region === region && row.kind === kind && row.how === how);
  if (chosen.length === 0) return undefined;
  return chosen.reduce((sum, row) => sum + row.messages, 0) / chosen.reduce((sum, row) => sum + row.seconds, 0);
}

function passThroughTable(rows: readonly PassThroughRow[]): string[] {
  return [
    '| operation | clients | direct req/s | shim req/s | shim/direct | direct p50 ms | shim p50 ms | direct p99 ms | shim p99 ms | errors (direct, shim) | region CPU (direct, shim) | shim CPU |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (row) =>
        `| ${row.operation} | ${row.clients} | ${fmt(row.direct.requestsPerSecond)} | ${fmt(row.shim.requestsPerSecond)} | ${percent(row.shim.requestsPerSecond / row.direct.requestsPerSecond)} | ` +
        `${fmt(row.direct.p50, 1)} | ${fmt(row.shim.p50, 1)} | ${fmt(row.direct.p99, 1)} | ${fmt(row.shim.p99, 1)} | ${row.direct.errors}, ${row.shim.errors} | ` +
        `${percent(row.regionCpuDirect)}, ${percent(row.regionCpuShim)} | ${percent(row.shimCpu)} |`,
    ),
  ];
}

const HOW = { generator: 'direct: load generator', SDK: 'direct: AWS SDK', replay: 'replay' } as const;

/** The rates of each region and queue type measured, each way. */
function replayRates(rows: readonly ReplayRow[]): Array<{ region: string; kind: ReplayRow['kind']; generator: number; sdk: number; replay: number }> {
  const rates = [];
  for (const region of new Set(rows.map((row) => row.region))) {
    for (const kind of ['FIFO', 'standard'] as const) {
      const [generator, sdk, replay] = (['generator', 'SDK', 'replay'] as const).map((how) => replayRate(rows, region, kind, how));
      if (generator !== undefined && sdk !== undefined && replay !== undefined) rates.push({ region, kind, generator, sdk, replay });
    }
  }
  return rates;
}

function replayTable(rows: readonly ReplayRow[]): string[] {
  const lines = [
    '| region | queue | round | sent by | messages | seconds | messages/s | in the region after | region CPU | shim CPU | edge backlog stored in |',
    '| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (row) =>
        `| ${row.region} | ${row.kind} | ${row.round} | ${HOW[row.how]} | ${fmt(row.messages)} | ${fmt(row.seconds, 1)} | ${fmt(row.messages / row.seconds)} | ` +
        `${fmt(row.inRegion)} | ${percent(row.regionCpu)} | ${percent(row.shimCpu)} | ${row.fillSeconds === undefined ? '-' : `${fmt(row.fillSeconds, 1)} s`} |`,
    ),
  ];
  lines.push(
    '',
    'All rounds together (messages over seconds):',
    '',
    '| region | queue | direct: load generator msg/s | direct: AWS SDK msg/s | replay msg/s | replay / generator | replay / SDK |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const { region, kind, generator, sdk, replay } of replayRates(rows)) {
    lines.push(`| ${region} | ${kind} | ${fmt(generator)} | ${fmt(sdk)} | ${fmt(replay)} | ${percent(replay / generator)} | ${percent(replay / sdk)} |`);
  }
  return lines;
}

function switchTable(rows: readonly SwitchRow[]): string[] {
  return [
    '| settings | fault | trial | cut → first failure s | first failure | first failure → offline s | first failed send → offline s | cut → offline s | sends during the switch | send p50 ms | send p99 ms | send max ms | failed sends |',
    '| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (row) =>
        `| ${row.settings} | ${row.fault} | ${row.trial} | ${seconds(row.cutToFirstFailureMs)} | ${row.firstFailure} | ${seconds(row.firstFailureToOfflineMs)} | ` +
        `${seconds(row.firstFailedSendToOfflineMs)} | ${seconds(row.cutToOfflineMs)} | ${fmt(row.sendsDuringSwitch)} | ${fmt(row.p50, 0)} | ${fmt(row.p99, 0)} | ${fmt(row.max, 0)} | ${row.failedSends} |`,
    ),
  ];
}

function targets(results: HybridResults, setup: HybridSetup): string[] {
  const lines = ['| goal | measured | met |', '| --- | --- | --- |'];
  for (const { region, kind, generator, sdk, replay } of replayRates(results.replay)) {
    for (const [client, direct] of [['the load generator', generator], ['an AWS SDK client', sdk]] as const) {
      lines.push(
        `| Replay of a ${kind} backlog to ${region} ≥ ${percent(setup.replayGoal)} of what it takes from a direct client (${client}) | ` +
          `${percent(replay / direct)} (${fmt(replay)} vs ${fmt(direct)} messages/s) | ${verdict(replay / direct >= setup.replayGoal)} |`,
      );
    }
  }
  const inexact = results.replay.filter((row) => row.inRegion !== row.messages);
  lines.push(
    `| Every message sent reaches the region once (each queue holds exactly what was sent or replayed to it) | ${inexact.length === 0 ? `${results.replay.length} of ${results.replay.length} queues exact` : inexact.map((row) => `${row.region} ${row.kind} ${row.how} round ${row.round}: ${fmt(row.inRegion)} of ${fmt(row.messages)}`).join('; ')} | ${verdict(results.replay.length === 0 ? undefined : inexact.length === 0)} |`,
  );
  const settings = [...new Set(results.switches.map((row) => row.settings))];
  for (const setting of settings) {
    for (const fault of [...new Set(results.switches.filter((row) => row.settings === setting).map((row) => row.fault))]) {
      const rows = results.switches.filter((row) => row.settings === setting && row.fault === fault);
      const worst = Math.max(...rows.map((row) => row.firstFailureToOfflineMs ?? Infinity));
      const sends = Math.max(...rows.map((row) => row.firstFailedSendToOfflineMs ?? Infinity));
      lines.push(
        `| Offline within ${fmt(setup.switchGoalMs / 1000)} s of the first failed request (${fault}, ${setting}) | ` +
          `worst of ${rows.length}: ${seconds(worst)} s from the first failed upstream request; ${seconds(sends)} s from the first failed client send | ${verdict(worst <= setup.switchGoalMs)} |`,
      );
    }
  }
  if (results.switches.length > 0) {
    const failed = results.switches.reduce((sum, row) => sum + row.failedSends, 0);
    lines.push(`| No client send fails during a switch | ${failed} failed in ${results.switches.length} trials | ${verdict(failed === 0)} |`);
  }
  if (results.passThrough.length > 0) {
    const ratios = results.passThrough.map((row) => row.shim.requestsPerSecond / row.direct.requestsPerSecond);
    lines.push(`| Pass-through overhead (no goal set by the issue) | shim/direct ${percent(Math.min(...ratios))}–${percent(Math.max(...ratios))} of requests/s | n/a |`);
  }
  return lines;
}

/** The report in markdown: how it was run, each measurement's table, then the goals met or missed. */
export function renderHybridReport(results: HybridResults, setup: HybridSetup): string {
  const lines = [
    '# Hybrid edge benchmark',
    '',
    `${setup.started.toISOString()} to ${setup.finished.toISOString()}; ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}; Node ${process.version}; ` +
      `load average ${load(setup.loadBefore)} at the start and ${load(setup.loadAfter)} at the end (the machine is shared: the numbers are noisy).`,
    '',
    ...setup.description,
  ];
  if (results.passThrough.length > 0) {
    lines.push(
      '',
      '## Pass-through overhead',
      '',
      'The same closed-loop clients (bench/load.ts) straight to the region (moto) and through the shim in front of it, in',
      'alternating slices so that both share the background load, the queue purged before each; a row adds up its slices.',
      '"region CPU" and "shim CPU" are CPU seconds per second of each process (1 core = 100%).',
      '',
      ...passThroughTable(results.passThrough),
    );
  }
  if (results.replay.length > 0) {
    lines.push(
      '',
      '## Replay throughput',
      '',
      'Each round stores a backlog at the edge while the region is cut (proxy blackhole), mends the link and times the replay',
      'from the switch to `replaying` until the backlog is 0 (the transition back to `online`), both times from `/status`;',
      'two direct clients send the same messages to a fresh queue of the region as SendMessageBatch of 10 with as many',
      'batches in flight as the replayer (--replay-concurrency), on the same way (through the proxy): the load generator with',
      'pre-signed requests (the least a client can cost the region), and an AWS SDK v3 client in the benchmark\'s process (the',
      'same requests on the wire as the replayer, which uses the SDK too). The order of the three flips every round. Every',
      'queue starts empty. "region CPU" and "shim CPU" (the edge\'s) are CPU seconds per second, over the replay itself.',
      '',
      ...replayTable(results.replay),
    );
  }
  if (results.switches.length > 0) {
    lines.push(
      '',
      '## Switch time',
      '',
      `Clients sending through the shim; the region is cut (proxy \`blackhole\`: connections accepted, never answered; \`refuse\`:`,
      'connections reset) and the load stops once the shim says `offline`. "first failure" is the first upstream request the',
      'shim saw fail after the cut, a client request carried to the region or the shim\'s own probe: when its timeout fired',
      'or its reset came back after the SDK\'s retries. It is read from `upstream.lastFailureAt` of `/status`, polled every',
      '20 ms from the cut (exact unless a second failure fell in the same poll, then at most one poll late), and from the',
      'shim\'s log line for each send it stored at the edge because the region failed it; the time of `offline` is the',
      'transition\'s own time in `/status`. "sends during the switch": every client send in flight at the cut or started',
      'before `offline`, with its latency at the client.',
      '',
      `Default settings: ${setup.defaultSettings}.`,
      '',
      ...switchTable(results.switches),
    );
  }
  lines.push('', '## Targets', '', ...targets(results, setup));
  if (results.notes.length > 0) lines.push('', '## Notes', '', ...results.notes.map((note) => `- ${note}`));
  if (setup.profileSummary) lines.push('', '## Shim CPU profile during the replays', '', setup.profileSummary);
  return `${lines.join('\n')}\n`;
}
