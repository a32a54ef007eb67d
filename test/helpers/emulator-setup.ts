import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { TestProject } from 'vitest/node';

/**
 * Global setup of the cloud tests: the AWS emulator they all share. LocalStack when AWS_ENDPOINT_URL
 * already points at one; otherwise a moto server on a free loopback port, stopped afterwards.
 * Tests read the endpoint from AWS_ENDPOINT_URL (see emulator.ts).
 */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitUntilUp(endpoint: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with code ${child.exitCode}`);
    try {
      const response = await fetch(`${endpoint}/moto-api/`);
      if (response.status < 500) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`moto_server did not answer at ${endpoint} within 30 s`);
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env.AWS_ENDPOINT_URL) {
    project.provide('awsEndpoint', process.env.AWS_ENDPOINT_URL);
    return async () => {};
  }
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const spawnFailure = new Promise<never>((_, reject) =>
    child.once('error', (error) => reject(new Error(`cannot start moto_server (is moto[server] installed?): ${error.message}`))),
  );
  try {
    await Promise.race([waitUntilUp(endpoint, child), spawnFailure]);
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`${(error as Error).message}\n${stderr}`);
  }
  project.provide('awsEndpoint', endpoint);
  return async () => {
    child.kill('SIGTERM');
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    awsEndpoint: string;
  }
}
