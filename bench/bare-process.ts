import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const BENCH = fileURLToPath(new URL('.', import.meta.url));

export interface BareProcess {
  readonly url: string;
  readonly pid: number;
  readonly child: ChildProcess;
}

/** The bare server (bare-server.ts), spawned like the shim, in its own process; resolves once it listens. */
export async function spawnBare(): Promise<BareProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(BENCH, 'bare-server.ts')], { cwd: join(BENCH, '..'), stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', () => reject(new Error('the bare server exited before listening')));
  });
  const { url, pid } = JSON.parse(line) as { url: string; pid: number };
  return { url, pid, child };
}
