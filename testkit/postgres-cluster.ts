import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from '../functions/src/local-pipeline/moto.js';
import { ensureDebianPackages } from './debian-packages.js';

/** Where Debian installs each PostgreSQL major version's server binaries. */
const INSTALLED = '/usr/lib/postgresql';

/** The newest installed server's bin directory, if any. */
function serverBinaries(): string | undefined {
  if (!existsSync(INSTALLED)) return undefined;
  const newest = readdirSync(INSTALLED)
    .filter((version) => existsSync(join(INSTALLED, version, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a))[0];
  return newest && join(INSTALLED, newest, 'bin');
}

/** Debian's server, installed when missing. */
function installServer(): string {
  ensureDebianPackages(['postgresql'], () => serverBinaries() !== undefined, `a PostgreSQL server under ${INSTALLED}`);
  return serverBinaries()!;
}

/** A throwaway PostgreSQL cluster: its URL, and its server stopped and started again at will. */
export interface Cluster {
  /** libpq URL of its `postgres` database, for the user `holdfast` (trust authentication on loopback). */
  readonly url: string;
  /** Stops the server as an operator would (`pg_ctl stop -m fast`): connections are cut, nothing committed is lost. */
  stop(): Promise<void>;
  /** Starts the stopped server again, on the same port. */
  start(): Promise<void>;
  /** Restarts the server as an operator would (`pg_ctl restart -m fast`): connections are cut, nothing committed is lost. */
  restart(): Promise<void>;
  /** Stops the server if it runs and removes the cluster. */
  discard(): void;
}

/**
 * A cluster of its own (initdb in a temporary directory, pg_ctl on a free loopback port, its socket
 * in that directory), never the system's service. Installs Debian's server first when it is missing.
 */
export async function startCluster(): Promise<Cluster> {
  const bin = installServer();
  // The server refuses to run as root: as root, the cluster belongs to Debian's postgres user.
  const asRoot = process.getuid?.() === 0;
  const command = (program: string, args: readonly string[]): [string, string[]] =>
    asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, program), ...args]] : [join(bin, program), [...args]];
  // Process groups of the commands at work: each runs in its own, so that runuser and what it runs end together.
  const working = new Set<number>();
  const run = (program: string, args: readonly string[]) =>
    new Promise<void>((resolve, reject) => {
      const child = spawn(...command(program, args), { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      working.add(child.pid!);
      child.once('error', reject);
      child.once('exit', (code, signal) => {
        working.delete(child.pid!);
        if (code === 0) resolve();
        else reject(new Error(`${program} failed (${signal ?? `exit code ${code}`}): ${stderr.trim()}`));
      });
    });
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-postgres-'));
  if (asRoot) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })), Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })));
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  // Stops the server if it runs and removes the cluster: at teardown, and on the way out of a run
  // interrupted (Ctrl-C), which ends vitest without its teardown. Immediate: nothing is kept, so
  // there is nothing to write out first.
  const discard = () => {
    process.off('exit', discard);
    for (const group of working) {
      try {
        process.kill(-group, 'SIGKILL');
      } catch {
        // Ended already, its exit not yet seen.
      }
    }
    // Not checked: the lock file may be a killed initdb's, with no server to stop.
    if (existsSync(join(data, 'postmaster.pid'))) spawnSync(...command('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']), { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', discard);
  try {
    await run('initdb', ['-D', data, '-U', 'holdfast', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions']);
    const port = await start(run, data, log, dir);
    return {
      url: `postgres://holdfast@127.0.0.1:${port}/postgres`,
      stop: () => run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']),
      start: () => run('pg_ctl', ['-D', data, '-l', log, '-w', '-t', '120', '-o', serverOptions(port, dir), 'start']),
      restart: () => run('pg_ctl', ['-D', data, '-l', log, '-m', 'fast', '-w', '-t', '120', '-o', serverOptions(port, dir), 'restart']),
      discard,
    };
  } catch (error) {
    discard();
    throw error;
  }
}

// No fsync: the cluster is thrown away after the run, and syncing on a loaded disk only slows every test.
const serverOptions = (port: number, dir: string) => `-c listen_addresses=127.0.0.1 -p ${port} -k '${dir}' -c fsync=off`;

/**
 * Starts the server and waits (pg_ctl -w) until it accepts connections. A port found free can be
 * taken by another process before the server binds it: then it tries another.
 */
async function start(run: (program: string, args: readonly string[]) => Promise<void>, data: string, log: string, dir: string): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      await run('pg_ctl', ['-D', data, '-l', log, '-w', '-t', '120', '-o', serverOptions(port, dir), 'start']);
      return port;
    } catch (error) {
      const serverLog = existsSync(log) ? readFileSync(log, 'utf8') : '';
      if (attempt < 5 && serverLog.includes('could not bind')) continue;
      throw new Error(`PostgreSQL did not start: ${(error as Error).message}\n${serverLog.slice(-4000)}`);
    }
  }
}

/** Creates an empty database `name` on the server `serverUrl` names (a libpq URL), and gives its URL. */
export async function createDatabase(serverUrl: string, name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.href;
}
