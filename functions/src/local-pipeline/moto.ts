import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';

const MOTO_STOP_GRACE_MS = 5000;

export interface Moto {
  readonly endpoint: string;
  /** The server's process id (benchmarks read its CPU time). */
  readonly pid: number;
  stop(): Promise<void>;
}

/** A port free on loopback now (another process may still take it before its user binds it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function answering(endpoint: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with code ${child.exitCode}`);
    try {
      if ((await fetch(`${endpoint}/moto-api/`)).status < 500) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`moto_server did not answer at ${endpoint} within ${timeoutMs / 1000} s`);
}

/** Starts the moto AWS emulator (moto_server, from moto[server]) on a free loopback port. */
export async function startMoto(): Promise<Moto> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const failedToSpawn = once(child, 'error').then(([error]) => {
    throw new Error(`cannot start moto_server (is moto[server] installed?): ${(error as Error).message}`);
  });
  try {
    await Promise.race([answering(endpoint, child, 30_000), failedToSpawn]);
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`${(error as Error).message}\n${stderr}`);
  }
  return {
    endpoint,
    pid: child.pid!,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      // A moto saturated with requests (a long drill's) can take minutes to go: it holds nothing worth waiting for.
      const grace = setTimeout(() => child.kill('SIGKILL'), MOTO_STOP_GRACE_MS);
      await exited;
      clearTimeout(grace);
    },
  };
}
