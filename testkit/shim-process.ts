import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const START_TIMEOUT_MS = 30_000;
// A shim still draining this long after SIGTERM (replay batches into a region that no longer
// answers, say) is killed: whoever stops it is leaving, and its store is durable whatever the signal.
const STOP_GRACE_MS = 30_000;

export interface ShimProcessOptions {
  readonly dbFile: string;
  readonly durability?: 'process' | 'power';
  /** ACCESS_KEY_ID:SECRET pairs the shim accepts; none: requests are not authenticated. */
  readonly credentials?: readonly string[];
  /** Options for node itself, e.g. --cpu-prof. */
  readonly nodeOptions?: readonly string[];
  /** A wrapper to run node under, e.g. ['strace', '-f', '-o', 'file']. */
  readonly wrapper?: readonly string[];
  /** More options for the shim, e.g. ['--disk-reserve', '2MiB']. */
  readonly args?: readonly string[];
  /** More environment variables for the shim (the rest is this process's). */
  readonly env?: Readonly<Record<string, string>>;
  /** The checkout whose shim to run (default: this one), e.g. an export of an earlier commit to compare with. */
  readonly root?: string;
  /** A file to keep the shim's whole log in (its stdout and stderr), e.g. to look into a failed drill. */
  readonly logFile?: string;
}

/** The edge shim as `npm start` runs it, in a process of its own. */
export interface ShimProcess {
  readonly url: string;
  /** Where its operator pages are (/status, /metrics, the status page): its admin listener. */
  readonly adminUrl: string;
  /** The shim's own process id (the child's, or under a wrapper its descendant's). */
  readonly pid: number;
  readonly child: ChildProcess;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
  /** Sends a signal and waits for the process to exit; SIGKILL if it has not within 30 s. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts the shim on free loopback ports (SQS and admin) and resolves once its log says where it listens. */
export function spawnShim(options: ShimProcessOptions): Promise<ShimProcess> {
  const args = [
    ...(options.nodeOptions ?? []),
    '--import',
    'tsx',
    join(options.root ?? REPO, 'edge-shim', 'src', 'main.ts'),
    '--port',
    '0',
    '--db',
    options.dbFile,
    '--durability',
    options.durability ?? 'process',
    '--log-level',
    'info',
    ...(options.credentials ?? []).flatMap((credential) => ['--credentials', credential]),
    ...(options.args ?? []),
  ];
  const [command, ...commandArgs] = [...(options.wrapper ?? []), process.execPath, ...args];
  // The admin port by its variable, not by --admin-port: an earlier checkout (`root`) that has no such option ignores it.
  const env = { ...process.env, HOLDFAST_ADMIN_PORT: '0', ...options.env };
  const child = spawn(command!, commandArgs, { cwd: options.root ?? REPO, stdio: ['ignore', 'pipe', 'pipe'], env });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  if (options.logFile) {
    const log = createWriteStream(options.logFile, { flags: 'a' });
    child.stdout!.on('data', (chunk: Buffer) => log.write(chunk));
    child.stderr!.on('data', (chunk: string) => log.write(chunk));
    void exited.then(() => log.end());
  }

  return new Promise<ShimProcess>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`the shim did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(error);
    };
    void exited.then(() => fail(new Error(`the shim exited before listening (code ${child.exitCode}): ${stderr}`)));
    // Keep reading the log so the shim never blocks on a full pipe.
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let entry: { msg?: string; url?: string; adminUrl?: string; pid?: number };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        return;
      }
      if (!entry.msg?.startsWith('edge shim listening') || !entry.url || !entry.pid) return;
      clearTimeout(timer);
      const pid = entry.pid;
      resolve({
        url: entry.url,
        // An earlier checkout served its pages on the SQS port.
        adminUrl: entry.adminUrl ?? entry.url,
        pid,
        child,
        exited,
        async stop(signal = 'SIGTERM') {
          // The shim itself, not a wrapper: a tracer that is killed lets its tracee run on.
          const kill = (which: NodeJS.Signals) => {
            if (child.exitCode !== null || child.signalCode !== null) return;
            try {
              process.kill(pid, which);
            } catch {
              // Already gone; the wrapper is about to exit too.
            }
          };
          kill(signal);
          const grace = setTimeout(() => kill('SIGKILL'), STOP_GRACE_MS);
          await exited;
          clearTimeout(grace);
        },
      });
    });
  });
}
