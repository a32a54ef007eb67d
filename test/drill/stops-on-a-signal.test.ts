import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import type { EdgeStatus } from '../../edge-shim/src/observability/status.js';
import { eventually, waitForState } from '../helpers/wait.js';

// `npm run drill` stopped by a signal in the middle of its outage, as a user stops it: every
// process it started (its moto server, the edge shim, the fallback agents the shim started, and
// what each of them started) must be gone when it has exited, and it must exit non-zero.
// The processes are found from outside, in /proc: the drill's descendants once the edge is offline
// with its agents running.

const REPO = fileURLToPath(new URL('../..', import.meta.url));

interface ProcessEntry {
  readonly pid: number;
  readonly ppid: number;
  /** When it started (clock ticks since boot): tells it from a later process with the same id. */
  readonly startTime: string;
  readonly state: string;
  readonly command: string;
}

/** A process as /proc shows it; undefined once it is gone. */
function processEntry(pid: number): ProcessEntry | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid ... with starttime the 22nd field; comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
    return { pid, ppid: Number(fields[1]), startTime: fields[19]!, state: fields[0]!, command };
  } catch {
    return undefined;
  }
}

/** Every process below `root`, found through their parents. */
function descendants(root: number): ProcessEntry[] {
  const all = readdirSync('/proc').filter((name) => /^\d+$/.test(name)).flatMap((name) => processEntry(Number(name)) ?? []);
  const found: ProcessEntry[] = [];
  let parents = new Set([root]);
  while (parents.size > 0) {
    const children = all.filter((entry) => parents.has(entry.ppid));
    found.push(...children);
    parents = new Set(children.map((entry) => entry.pid));
  }
  return found;
}

/** Still running: the same process (not a later one with its id), and not a zombie waiting to be reaped. */
function survives(entry: ProcessEntry): boolean {
  const now = processEntry(entry.pid);
  return now !== undefined && now.startTime === entry.startTime && now.state !== 'Z';
}

let drill: ChildProcess | undefined;
/** The drill's directory: kept by a drill that was stopped, for a person to look into; not by this test. */
let drillDir: string | undefined;
afterEach(() => {
  // Whatever the outcome, nothing of this test's drill is left running: it is a process group of its
  // own, which may outlive npm (what a failing drill leaves behind).
  try {
    if (drill?.pid) process.kill(-drill.pid, 'SIGKILL');
  } catch {
    // No process left in the group.
  }
  if (drillDir) rmSync(drillDir, { recursive: true, force: true });
});

it.each([
  ['SIGINT', 'npm alone (kill -INT)', false],
  ['SIGTERM', 'npm alone (kill)', false],
  ['SIGINT', 'the whole process group (Ctrl-C)', true],
] as const)('%s to %s in the middle of the outage stops everything the drill started, and it exits non-zero', { timeout: 300_000 }, async (signal, _to, group) => {
  const env = { ...process.env };
  // The drill's own moto server, as on a machine without an emulator running.
  delete env.AWS_ENDPOINT_URL;
  const started = spawn('npm', ['run', '--silent', 'drill', '--', '--quick', '--outage', '30m', '--seed', '5', '--stall', '2m'], {
    cwd: REPO,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  drill = started;
  const exited = once(started, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const lines: string[] = [];
  createInterface({ input: started.stdout! }).on('line', (line) => lines.push(line));
  let stderr = '';
  started.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const logged = (pattern: RegExp) =>
    eventually(
      () => {
        if (started.exitCode !== null) throw new Error(`the drill exited (${started.exitCode}) before logging ${pattern}: ${lines.join('\n')}\n${stderr}`);
        return lines.map((line) => pattern.exec(line)).find(Boolean);
      },
      (match) => match !== undefined,
      100,
    ) as Promise<RegExpExecArray>;

  drillDir = (await logged(/its directory \(databases, the shim's and the region's logs\): (\S+)/))[1];
  const motoPid = Number((await logged(/the region's moto server: pid (\d+)/))[1]);
  const [, shimPid, adminUrl] = await logged(/the edge shim: \S+, pid (\d+), operator pages on (\S+)/);
  await logged(/region cut off/);
  // In the middle of the outage: the edge offline, every stage's fallback agent running.
  const offline = await waitForState(async () => {
    const status = (await (await fetch(`${adminUrl}/status`)).json()) as EdgeStatus;
    if (status.mode !== 'offline' || status.agents.length === 0 || !status.agents.every((agent) => agent.state === 'running')) {
      throw new Error(`not yet: ${status.mode}, agents ${JSON.stringify(status.agents.map((agent) => agent.state))}`);
    }
    return status;
  }, { intervalMs: 250 });

  const processes = descendants(started.pid!);
  const pids = processes.map((entry) => entry.pid);
  expect(pids).toContain(motoPid);
  expect(pids).toContain(Number(shimPid));
  // The agents' processes (the status names none: they are the shim's children).
  expect(descendants(Number(shimPid)).length).toBeGreaterThanOrEqual(offline.agents.length);

  process.kill(group ? -started.pid! : started.pid!, signal);
  const [code] = await exited;
  expect(code).toBe(signal === 'SIGINT' ? 130 : 143);
  expect(stderr).toContain(`drill: stopped by ${signal}; everything it started is stopped`);
  // Gone by now, or within moments: a child the drill waited for may still be reaped by init.
  await waitForState(
    () => {
      const left = processes.filter(survives);
      if (left.length > 0) throw new Error(`still running after the drill exited: ${left.map((entry) => `${entry.pid} ${entry.command}`).join('; ')}`);
    },
    { intervalMs: 100, signal: AbortSignal.timeout(10_000) },
  );
});
