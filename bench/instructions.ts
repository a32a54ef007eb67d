/**
 * `npx tsx bench/instructions.ts [-- options]`: instructions per SendMessage that the shim executes,
 * counted by valgrind's callgrind. Unlike requests per second or CPU time, the count hardly moves
 * when other processes load the machine, so it compares two versions of the shim on a shared
 * machine: `--root DIR` (repeatable) measures the shim of another checkout, e.g. an earlier commit
 * exported with `git archive <commit> | tar -x -C DIR` and DIR/node_modules linked to this one's.
 *
 * Each shim runs under callgrind with counting off while it starts and warms up (its JIT compiles
 * the hot code); counting is on only for the measured requests. "main thread" is the event loop,
 * whose time bounds the shim's throughput; "all threads" adds V8's background compiler and garbage
 * collector and the checkpointer, which vary more from run to run. Under callgrind every request
 * takes about fifty times longer, so group commits hold more operations than at full speed.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { spawnShim } from '../testkit/shim-process.js';
import { LoadGenerator, type PreparedRequest } from './load.js';
import { type Credentials, Signer } from './sign.js';

const { values: options } = parseArgs({
  options: {
    root: { type: 'string', multiple: true },
    clients: { type: 'string', default: '32' },
    warm: { type: 'string', default: '20000' },
    requests: { type: 'string', default: '5000' },
    unauthenticated: { type: 'boolean', default: false },
    functions: { type: 'string', default: '0' },
  },
});
const ROOTS = options.root ?? [fileURLToPath(new URL('..', import.meta.url))];
const CLIENTS = Number(options.clients);
const LIST_FUNCTIONS = Number(options.functions);
const CREDENTIALS: Credentials = { accessKeyId: 'AKIDHOLDFASTBENCH', secretAccessKey: 'holdfast-bench-secret' };

interface Count {
  readonly requests: number;
  readonly mainThread: number;
  readonly allThreads: number;
  /** Instructions by function on the main thread, JavaScript functions named from V8's perf map. */
  readonly functions: Array<[string, number]>;
}

/** Functions by instructions from a callgrind file, with JIT code addresses resolved through a perf map. */
function functionsOf(callgrindFile: string, perfMap: string): Array<[string, number]> {
  const code = readFileSync(perfMap, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [start, size, ...name] = line.split(' ');
      return { start: parseInt(start!, 16), end: parseInt(start!, 16) + parseInt(size!, 16), name: name.join(' ') };
    });
  const annotated = execFileSync('callgrind_annotate', ['--inclusive=no', '--threshold=100', callgrindFile], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const totals = new Map<string, number>();
  for (const line of annotated.split('\n')) {
    const match = /^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.+?)(?: \[.*\])?$/.exec(line);
    if (!match || match[2]!.includes('PROGRAM TOTALS')) continue;
    const address = /\?\?\?:0x([0-9a-f]+)$/.exec(match[2]!);
    const at = address ? parseInt(address[1]!, 16) : undefined;
    // The map only grows: where code was freed and its space reused, the last entry is the live one.
    const name = at === undefined ? match[2]! : (code.findLast((entry) => entry.start <= at && at < entry.end)?.name ?? match[2]!);
    totals.set(name, (totals.get(name) ?? 0) + Number(match[1]!.replace(/,/g, '')));
  }
  return [...totals].sort((a, b) => b[1] - a[1]);
}

async function count(root: string): Promise<Count> {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-instructions-'));
  const out = join(dir, 'callgrind.out');
  const shim = await spawnShim({
    root,
    dbFile: join(dir, 'shim.db'),
    credentials: options.unauthenticated ? [] : [`${CREDENTIALS.accessKeyId}:${CREDENTIALS.secretAccessKey}`],
    // The perf map names the JIT's code (logging it costs ~2 k instructions a request, so only when
    // asked for); the V8 log that comes with it is kept out of the checkout.
    nodeOptions: LIST_FUNCTIONS ? ['--perf-basic-prof', `--logfile=${join(dir, 'v8.log')}`, '--no-logfile-per-isolate'] : [],
    wrapper: ['valgrind', '--tool=callgrind', '--instr-atstart=no', '--separate-threads=yes', '--smc-check=all-non-file', `--callgrind-out-file=${out}`],
  });
  const generator = new LoadGenerator(1);
  try {
    const endpoint = new URL(shim.url);
    const signer = new Signer('us-east-1', CREDENTIALS);
    const createQueue = JSON.stringify({ QueueName: 'instructions' });
    const created = await request(endpoint, { method: 'POST', headers: await signer.sign(endpoint, 'CreateQueue', createQueue), body: createQueue });
    const { QueueUrl } = (await created.body.json()) as { QueueUrl: string };
    const requests: PreparedRequest[] = await Promise.all(
      Array.from({ length: 64 }, async (_, index) => {
        const body = JSON.stringify({ QueueUrl, MessageBody: `bench message ${index} ${'x'.repeat(80)}` });
        return { path: endpoint.pathname, headers: await signer.sign(endpoint, 'SendMessage', body), body };
      }),
    );
    const run = (messages: number) => generator.run({ origin: endpoint.origin, clients: CLIENTS, untilMessages: messages, requests });
    await run(Number(options.warm));
    const control = (flag: string) => execFileSync('callgrind_control', [flag, String(shim.pid)], { stdio: 'ignore' });
    control('--instr=on');
    const measured = await run(Number(options.requests));
    control('--instr=off');
    control('--dump');
    if (measured.errors > 0) throw new Error(`${measured.errors} requests failed, e.g. ${measured.errorSample}`);
    // One file per thread for the dump; the main thread is thread 1.
    const dumps = readdirSync(dir).filter((file) => file.startsWith('callgrind.out.1-')).map((file) => join(dir, file));
    const totalOf = (file: string) => Number(/^totals: (\d+)$/m.exec(readFileSync(file, 'utf8'))?.[1] ?? 0);
    const mainFile = dumps.find((file) => /^thread: 1$/m.test(readFileSync(file, 'utf8')))!;
    return {
      requests: measured.requests,
      mainThread: totalOf(mainFile),
      allThreads: dumps.reduce((sum, file) => sum + totalOf(file), 0),
      functions: LIST_FUNCTIONS > 0 ? functionsOf(mainFile, `/tmp/perf-${shim.pid}.map`) : [],
    };
  } finally {
    await generator.close();
    await shim.stop('SIGTERM');
    rmSync(`/tmp/perf-${shim.pid}.map`, { force: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

const perRequest = (instructions: number, requests: number) => `${(instructions / requests / 1000).toFixed(1)} k`;
console.log(`SendMessage at ${CLIENTS} clients, ${options.unauthenticated ? 'unauthenticated' : 'SigV4 verified'}; instructions per request:\n`);
console.log('| shim | requests | main thread | all threads |\n| --- | ---: | ---: | ---: |');
const functionTables: string[] = [];
for (const root of ROOTS) {
  const result = await count(root);
  console.log(`| ${root} | ${result.requests} | ${perRequest(result.mainThread, result.requests)} | ${perRequest(result.allThreads, result.requests)} |`);
  if (result.functions.length > 0) {
    const rows = result.functions.slice(0, LIST_FUNCTIONS).map(([name, instructions]) => `| ${(instructions / result.requests).toFixed(0)} | \`${name.slice(0, 140)}\` |`);
    functionTables.push([`\nMain thread of ${root}, by function:\n`, '| per request | function |', '| ---: | --- |', ...rows].join('\n'));
  }
}
for (const table of functionTables) console.log(table);
