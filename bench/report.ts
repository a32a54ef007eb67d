import { cpus } from 'node:os';
import type { ScenarioResult } from './load.js';

export interface Row {
  readonly system: string;
  readonly operation: string;
  readonly clients: number;
  readonly result: ScenarioResult;
  /** CPU seconds the server used per second. */
  readonly serverCpu?: number;
}

export interface BacklogRow {
  readonly system: string;
  readonly queue: string;
  readonly stored: number;
  readonly result: ScenarioResult;
}

export interface FillRow {
  readonly system: string;
  readonly messages: number;
  readonly messagesPerSecond: number;
  readonly errors: number;
}

export interface MemoryRow {
  readonly system: string;
  readonly when: string;
  readonly stored: number;
  readonly rssMb: number;
  readonly peakMb: number;
  readonly dbMb?: number;
}

export interface Results {
  readonly rows: Row[];
  readonly backlogRows: BacklogRow[];
  readonly fillRows: FillRow[];
  readonly memoryRows: MemoryRow[];
  readonly notes: string[];
}

export interface Setup {
  readonly started: Date;
  /** How the run was set up, in a sentence. */
  readonly description: string;
  readonly clients: readonly number[];
  readonly profileSummary?: string;
}

const fmt = (value: number | undefined, digits = 0) => (value === undefined || Number.isNaN(value) ? '-' : value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));
const percent = (value: number | undefined) => (value === undefined ? '-' : `${Math.round(value * 100)}%`);

function find(rows: readonly Row[], system: string, operation: string, clients: number): Row | undefined {
  return rows.find((row) => row.system === system && row.operation === operation && row.clients === clients);
}

function targets(results: Results, setup: Setup): string[] {
  const { rows, backlogRows, memoryRows } = results;
  const lines = ['| target | measured | met |', '| --- | --- | --- |'];
  const verdict = (met: boolean | undefined) => (met === undefined ? 'n/a' : met ? 'yes' : '**no**');
  const maxClients = Math.max(...setup.clients);
  const bare = find(rows, 'bare', 'bare HTTP (fixed answer)', maxClients);
  const send = find(rows, 'shim', 'SendMessage', maxClients);
  const ratio = bare && send ? send.result.requestsPerSecond / bare.result.requestsPerSecond : undefined;
  lines.push(`| SendMessage at ${maxClients} clients ≥ 50% of the bare server | ${ratio === undefined ? '-' : `${percent(ratio)} (${fmt(send!.result.requestsPerSecond)} vs ${fmt(bare!.result.requestsPerSecond)} req/s)`} | ${verdict(ratio === undefined ? undefined : ratio >= 0.5)} |`);
  const batch = rows.filter((row) => row.system === 'shim' && row.operation === 'SendMessageBatch (10)').sort((a, b) => b.result.messagesPerSecond - a.result.messagesPerSecond)[0];
  lines.push(`| SendMessageBatch above 30,000 messages/s | ${batch ? `${fmt(batch.result.messagesPerSecond)} msg/s (${batch.clients} clients)` : '-'} | ${verdict(batch ? batch.result.messagesPerSecond > 30_000 : undefined)} |`);
  const empty = backlogRows.find((row) => row.system === 'shim' && row.queue === 'empty queue');
  const backlog = backlogRows.find((row) => row.system === 'shim' && row.queue === 'backlog');
  const full = backlog !== undefined && backlog.stored >= 1_000_000;
  lines.push(
    `| Receive with a 1,000,000 backlog within 2x of an empty queue (p50 and p99) | ${empty && backlog ? `p50 ${fmt(backlog.result.p50, 2)} vs ${fmt(empty.result.p50, 2)} ms (${fmt(backlog.result.p50 / empty.result.p50, 1)}x), p99 ${fmt(backlog.result.p99, 2)} vs ${fmt(empty.result.p99, 2)} ms (${fmt(backlog.result.p99 / empty.result.p99, 1)}x)${full ? '' : `; backlog only ${fmt(backlog.stored)}`}` : '-'} | ${verdict(full ? backlog.result.p50 <= 2 * empty!.result.p50 && backlog.result.p99 <= 2 * empty!.result.p99 : undefined)} |`,
  );
  const peak = rows.filter((row) => row.system !== 'bare' && row.operation === 'SendMessage').sort((a, b) => b.result.requestsPerSecond - a.result.requestsPerSecond)[0];
  if (bare && peak) {
    const share = peak.result.requestsPerSecond / bare.result.requestsPerSecond;
    lines.push(
      `| The load generator is not the bottleneck | generator + bare server: ${fmt(bare.result.requestsPerSecond)} req/s (generator thread ${percent(bare.result.generatorLoad)} busy); fastest SendMessage (${peak.system}, ${peak.clients} clients) reached ${percent(share)} of that with the generator ${percent(peak.result.generatorLoad)} busy | ${verdict(share < 0.8)} |`,
    );
  }
  const stored = memoryRows.find((row) => row.system === 'shim' && row.when === 'backlog stored');
  lines.push(`| Resident memory under 200 MB with 1,000,000 messages stored | ${stored ? `${fmt(stored.rssMb)} MB (peak ${fmt(stored.peakMb)} MB) with ${fmt(stored.stored)} stored` : '-'} | ${verdict(stored && stored.stored >= 1_000_000 ? stored.rssMb < 200 : undefined)} |`);
  return lines;
}

/** The report in markdown: every measurement, then the targets met or missed. */
export function renderReport(results: Results, setup: Setup): string {
  const { rows, backlogRows, fillRows, memoryRows, notes } = results;
  const lines = [
    `# Edge shim benchmark`,
    '',
    `${setup.started.toISOString()}; ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}; Node ${process.version}; ${setup.description}.`,
    '',
    '"bare" is a node:http server answering a fixed small JSON body, measured by the same generator: the ceiling of a',
    'one-process Node server on this machine and of the generator at once. "server CPU" is the server process\'s CPU time',
    'per second (1 core = 100%); "generator load" the event-loop utilisation of the busiest generator thread.',
    '',
    '| server | operation | clients | requests/s | messages/s | p50 ms | p99 ms | errors | server CPU | generator load |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (row) =>
        `| ${row.system} | ${row.operation} | ${row.clients} | ${fmt(row.result.requestsPerSecond)} | ${fmt(row.result.messagesPerSecond)} | ${fmt(row.result.p50, 2)} | ${fmt(row.result.p99, 2)} | ${row.result.errors} | ${percent(row.serverCpu)} | ${percent(row.result.generatorLoad)} |`,
    ),
  ];
  if (backlogRows.length > 0) {
    lines.push(
      '',
      'ReceiveMessage (up to 10, no wait) by 1 client, each followed by a DeleteMessageBatch of what came (not timed); the',
      'small queue is measured first, then, once the backlog is stored, the empty queue and the backlog in alternation:',
      '',
      '| server | queue | messages stored | receives/s | p50 ms | p99 ms |',
      '| --- | --- | ---: | ---: | ---: | ---: |',
      ...backlogRows.map((row) => `| ${row.system} | ${row.queue} | ${fmt(row.stored)} | ${fmt(row.result.requestsPerSecond)} | ${fmt(row.result.p50, 2)} | ${fmt(row.result.p99, 2)} |`),
      '',
      '| server | backlog fill (SendMessageBatch, 32 clients) | messages/s | errors |',
      '| --- | ---: | ---: | ---: |',
      ...fillRows.map((row) => `| ${row.system} | ${fmt(row.messages)} | ${fmt(row.messagesPerSecond)} | ${row.errors} |`),
    );
  }
  if (memoryRows.length > 0) {
    lines.push(
      '',
      '| server | when | messages stored | resident MB | peak resident MB | database + WAL MB |',
      '| --- | --- | ---: | ---: | ---: | ---: |',
      ...memoryRows.map((row) => `| ${row.system} | ${row.when} | ${fmt(row.stored)} | ${fmt(row.rssMb)} | ${fmt(row.peakMb)} | ${fmt(row.dbMb)} |`),
    );
  }
  lines.push('', '## Targets', '', ...targets(results, setup));
  if (notes.length > 0) lines.push('', '## Notes', '', ...notes.map((note) => `- ${note}`));
  if (setup.profileSummary) lines.push('', '## Shim CPU profile', '', setup.profileSummary);
  return `${lines.join('\n')}\n`;
}
