import { cpus } from 'node:os';
import type { ScenarioResult } from './load.js';

export interface Row {
  readonly system: string;
  readonly operation: string;
  readonly clients: number;
  readonly result: ScenarioResult;
  /** CPU seconds the server used per second. */
  readonly serverCpu?: number;
  /** The machine's 1-minute load average as the measurement ended: other work sharing the machine shows here. */
  readonly load: number;
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
  /** The machine's load averages (1, 5, 15 minutes) as the run started and ended: others may share it. */
  readonly load: { readonly start: readonly number[]; readonly end: readonly number[] };
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

// The engines side by side: each setup's operation that stands for each row's (the bare servers do less).
const ENGINE_COLUMNS: ReadonlyArray<{ readonly system: string; readonly title: string; readonly operations: Readonly<Record<string, string>> }> = [
  { system: 'bare', title: 'bare HTTP', operations: { SendMessage: 'bare HTTP (fixed answer)' } },
  { system: 'shim', title: 'SQLite, 1 node', operations: {} },
  { system: 'postgres 1 node', title: 'PostgreSQL, 1 node', operations: {} },
  { system: 'postgres 1 node, HAProxy', title: 'PostgreSQL, 1 node behind HAProxy', operations: {} },
  { system: 'postgres 2 nodes', title: 'PostgreSQL, 2 nodes behind HAProxy', operations: {} },
  {
    system: 'bare postgres',
    title: 'bare PostgreSQL (pg, no shim)',
    operations: { SendMessage: 'INSERT (1 message)', 'ReceiveMessage + DeleteMessageBatch': 'DELETE … RETURNING (1 message)' },
  },
];
const ENGINE_OPERATIONS = ['SendMessage', 'SendMessageBatch (10)', 'ReceiveMessage + DeleteMessageBatch'];

function engines(results: Results, setup: Setup): string[] {
  const { rows } = results;
  const columns = ENGINE_COLUMNS.filter((column) => rows.some((row) => row.system === column.system));
  const rate = (system: string, operation: string, clients: number) => {
    const column = ENGINE_COLUMNS.find((candidate) => candidate.system === system)!;
    return find(rows, system, column.operations[operation] ?? operation, clients)?.result.messagesPerSecond;
  };
  const lines = [
    'Messages per second, by operation and concurrent clients. SQLite and PostgreSQL, 1 node: the generator talks to the',
    'node directly; behind HAProxy (testkit/haproxy.ts, round robin, as a site runs it): to HAProxy, which spreads each',
    "request over the nodes (the 1-node column gives the balancer's own cost, so that 2 nodes compare with it like for",
    'like). Bare HTTP answers a fixed body (the ceiling of a Node server and of the generator); bare PostgreSQL',
    'is the ceiling of the database through pg, with no shim: per message one INSERT (under SendMessage) and one DELETE of',
    'the oldest row … RETURNING (under receive+delete), each statement its own transaction, one connection per client.',
    '',
    `| operation | clients | ${columns.map((column) => column.title).join(' | ')} |`,
    `| --- | ---: | ${columns.map(() => '---:').join(' | ')} |`,
  ];
  for (const operation of ENGINE_OPERATIONS) {
    for (const clients of setup.clients) lines.push(`| ${operation} | ${clients} | ${columns.map((column) => fmt(rate(column.system, operation, clients))).join(' | ')} |`);
  }
  const most = Math.max(...setup.clients);
  const [send, batch, drain] = ENGINE_OPERATIONS as [string, string, string];
  const sqlite = rate('shim', send, most);
  const one = rate('postgres 1 node', send, most);
  const oneBalanced = rate('postgres 1 node, HAProxy', send, most);
  const two = rate('postgres 2 nodes', send, most);
  const ceiling = rate('bare postgres', send, most);
  if (sqlite === undefined || one === undefined || oneBalanced === undefined || two === undefined || ceiling === undefined) return lines;
  const share = (part: number | undefined, whole: number | undefined) => (part === undefined || whole === undefined ? '-' : percent(part / whole));
  const gain = two / oneBalanced;
  const peakLoad = Math.max(...rows.map((row) => row.load));
  lines.push(
    '',
    '### When to choose which',
    '',
    `At ${most} clients one PostgreSQL node takes ${share(one, sqlite)} of SQLite's SendMessage rate, ${share(rate('postgres 1 node', batch, most), rate('shim', batch, most))} of its ` +
      `SendMessageBatch rate and ${share(rate('postgres 1 node', drain, most), rate('shim', drain, most))} of its receive+delete rate; HAProxy's hop ` +
      `leaves one node ${share(oneBalanced, one)} of its SendMessage rate, and two nodes behind it take ${fmt(gain, 2)}× one node's behind it. ${
        gain < 1.1
          ? `On this ${cpus().length}-core machine the nodes, PostgreSQL, HAProxy and the load generator share the same cores, so a second node adds no capacity here, only the survival of a node's loss; on machines of their own, each node brings its cores.`
          : 'A second node adds capacity even on this machine.'
      } ` +
      `The database alone (one INSERT per message) takes ${fmt(ceiling / one, 1)}× what one node sends: ${
        ceiling > 1.5 * one
          ? "the shim's work per request (HTTP, SigV4, a transaction of several statements), not the database, is one node's limit, which more nodes on more machines lift up to that ceiling."
          : 'the database is near its own ceiling already; more nodes would only wait on it.'
      } ` +
      `So: one server, SQLite — the fastest here, nothing else to run, backed up with \`holdfast backup\`. A site that must keep serving through the loss of a server: PostgreSQL, several nodes behind a load balancer, ` +
      `paying about ${percent(1 - one / sqlite)} of a node's send rate for it; run the database itself replicated, or it is the one server the site cannot lose.` +
      (peakLoad > cpus().length
        ? ` Other work shared the machine during this run (1-minute load up to ${fmt(peakLoad, 1)} on ${cpus().length} cores, the "load" column below): columns measured minutes apart met different loads, so their ratios carry that noise.`
        : ''),
  );
  return lines;
}

/** The report in markdown: every measurement, then the targets met or missed. */
export function renderReport(results: Results, setup: Setup): string {
  const { rows, backlogRows, fillRows, memoryRows, notes } = results;
  const loads = (values: readonly number[]) => values.map((value) => value.toFixed(2)).join(', ');
  // As it started: the end's includes this run's own load.
  const busy = setup.load.start[0]! > cpus().length / 2;
  const lines = [
    `# Edge shim benchmark`,
    '',
    `${setup.started.toISOString()}; ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}; Node ${process.version}; ${setup.description}.`,
    '',
    `Load average (1, 5, 15 min): ${loads(setup.load.start)} as the run started, ${loads(setup.load.end)} as it ended (this run's own load included)${
      busy ? '; other work was running as it started, so the rates are lower than an idle machine would give' : ''
    }.`,
    '',
    ...(rows.some((row) => row.system.startsWith('postgres')) ? ['## SQLite and PostgreSQL', '', ...engines(results, setup), '', '## Every measurement', ''] : []),
    '"bare" is a node:http server answering a fixed small JSON body, measured by the same generator: the ceiling of a',
    'one-process Node server on this machine and of the generator at once. "server CPU" is the server process\'s CPU time',
    'per second (1 core = 100%); "generator load" the event-loop utilisation of the busiest generator thread; "load" the',
    "machine's 1-minute load average as the measurement ended (this run's own share included).",
    '',
    '| server | operation | clients | requests/s | messages/s | p50 ms | p99 ms | errors | server CPU | generator load | load |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (row) =>
        `| ${row.system} | ${row.operation} | ${row.clients} | ${fmt(row.result.requestsPerSecond)} | ${fmt(row.result.messagesPerSecond)} | ${fmt(row.result.p50, 2)} | ${fmt(row.result.p99, 2)} | ${row.result.errors} | ${percent(row.serverCpu)} | ${percent(row.result.generatorLoad)} | ${fmt(row.load, 1)} |`,
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
