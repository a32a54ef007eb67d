import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sqsClient } from '../helpers/shim.js';
import { ChoreControl } from './fixtures/chores/control.js';
import { waitForState } from '../helpers/wait.js';

// The production build: `npm run build` compiles the shim to dist/, and the `holdfast` command that
// package.json declares is that JavaScript, run directly (its shebang), with no TypeScript loader.

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);
const { bin } = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { bin: Record<string, string> };
const holdfast = join(REPO, bin.holdfast!);
const dir = mkdtempSync(join(tmpdir(), 'holdfast-build-'));
let child: ChildProcess | undefined;

beforeAll(async () => {
  await run('npm', ['run', 'build'], { cwd: REPO });
}, 600_000);

afterAll(() => {
  if (child?.exitCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

it('builds an executable holdfast command with a node shebang', () => {
  expect(bin.holdfast).toBe('dist/edge-shim/src/main.js');
  expect(readFileSync(holdfast, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
  expect(statSync(holdfast).mode & 0o111).toBe(0o111);
});

it('packs the build and what it loads at run time', async () => {
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json'], { cwd: REPO });
  const [packed] = JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>;
  const paths = packed!.files.map((file) => file.path);
  expect(paths).toContain(bin.holdfast);
  expect(paths).toContain('dist/edge-shim/src/sqs/checkpoint-worker.mjs');
  for (const file of ['index.html', 'status-page.js', 'status-page.css']) expect(paths).toContain(`dist/edge-shim/src/observability/ui/${file}`);
  // The payments workflow's agents, for the fallback agents.
  for (const stage of ['authorize', 'fraud-score', 'ledger', 'notify']) expect(paths).toContain(`dist/functions/src/agents/${stage}.js`);
  // The construct's entry point for teams' CDK apps, with its declarations; no TypeScript source.
  expect(paths).toEqual(expect.arrayContaining(['dist/infra/index.js', 'dist/infra/index.d.ts']));
  expect(paths.filter((path) => path.endsWith('.ts') && !path.endsWith('.d.ts'))).toEqual([]);
});

it('the built holdfast starts, answers /health and SQS, and stops cleanly on SIGTERM', async () => {
  child = spawn(holdfast, ['--port', '0', '--admin-port', '0', '--db', join(dir, 'built.db')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
  const messages: string[] = [];
  const { url, adminUrl } = await new Promise<{ url: string; adminUrl: string }>((resolve, reject) => {
    void exited.then((code) => reject(new Error(`holdfast exited with ${code} before listening`)));
    createInterface({ input: child!.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as { msg: string; url?: string; adminUrl?: string };
      messages.push(entry.msg);
      if (entry.url && entry.adminUrl) resolve({ url: entry.url, adminUrl: entry.adminUrl });
    });
  });

  const health = await fetch(`${url}/health`);
  expect(health.status).toBe(200);
  expect(await health.json()).toMatchObject({ status: 'ok' });
  // The status page's files beside the compiled code, and the chart library from node_modules.
  for (const path of ['/ui', '/ui/status-page.js', '/ui/status-page.css', '/ui/uPlot.iife.min.js', '/metrics']) expect((await fetch(`${adminUrl}${path}`)).status, path).toBe(200);
  const sqs = sqsClient(url);
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'built' }));
  await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'compiled' }));
  const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 1 }));
  expect(Messages.map((message) => message.Body)).toEqual(['compiled']);
  sqs.destroy();

  child.kill('SIGTERM');
  expect(await exited).toBe(0);
  expect(messages).toContain('edge shim stopped');
  // The checkpoint worker is a plain .mjs file beside the compiled code: missing, it would say so.
  expect(messages.filter((message) => message.includes('checkpoint'))).toEqual([]);
});

it('the built holdfast runs the payments workflow\'s fallback agents from their compiled handlers', { timeout: 120_000 }, async () => {
  // Nothing listens on port 9: the edge starts offline, and its agents start at once.
  const edge = spawn(holdfast, ['--port', '0', '--admin-port', '0', '--db', join(dir, 'edge.db'), '--upstream', 'http://127.0.0.1:9', '--upstream-region', 'us-east-1', '--site-id', 'built-site'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const adminUrl = await new Promise<string>((resolve, reject) => {
      edge.once('exit', (code) => reject(new Error(`holdfast exited with ${code} before listening`)));
      createInterface({ input: edge.stdout! }).on('line', (line) => {
        const entry = JSON.parse(line) as { adminUrl?: string };
        if (entry.adminUrl) resolve(entry.adminUrl);
      });
    });
    const status = await waitForState(async () => {
      const current = (await (await fetch(`${adminUrl}/status`)).json()) as { mode: string; agents: Array<{ stage: string; state: string }> };
      if (current.agents.length === 0 || current.agents.some((agent) => agent.state !== 'running')) throw new Error('the agents are not all running yet');
      return current;
    });
    expect(status.mode).toBe('offline');
    expect(status.agents.map((agent) => agent.stage).sort()).toEqual(['authorize', 'fraud-score', 'notify']);
  } finally {
    const exited = new Promise((resolve) => edge.once('exit', resolve));
    edge.kill('SIGTERM');
    await exited;
  }
});

/** Starts the built holdfast offline (nothing listens on port 9) with fallback agents; resolves to its admin URL, or rejects with its stderr. */
function startOfflineEdge(command: string, args: string[], cwd: string): { edge: ChildProcess; adminUrl: Promise<string> } {
  const edge = spawn(command, ['--port', '0', '--admin-port', '0', '--upstream', 'http://127.0.0.1:9', '--upstream-region', 'us-east-1', '--site-id', 'lean-site', ...args], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  edge.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const adminUrl = new Promise<string>((resolve, reject) => {
    edge.once('exit', (code) => reject(new Error(`holdfast exited with ${code}: ${stderr}`)));
    createInterface({ input: edge.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as { adminUrl?: string };
      if (entry.adminUrl) resolve(entry.adminUrl);
    });
  });
  return { edge, adminUrl };
}

async function stop(edge: ChildProcess): Promise<void> {
  if (edge.exitCode !== null || edge.signalCode !== null) return;
  const exited = new Promise((resolve) => edge.once('exit', resolve));
  edge.kill('SIGTERM');
  await exited;
}

/** The edge's status once it has agents and every one of them runs. */
function allAgentsRunning(adminUrl: string): Promise<{ agents: Array<{ stage: string; state: string }> }> {
  return waitForState(async () => {
    const current = (await (await fetch(`${adminUrl}/status`)).json()) as { agents: Array<{ stage: string; state: string }> };
    if (current.agents.length === 0 || current.agents.some((agent) => agent.state !== 'running')) throw new Error('the agents are not all running yet');
    return current;
  });
}

it('runs its compiled agents where only the runtime dependencies are installed: no tsx, esbuild or CDK', { timeout: 120_000 }, async () => {
  // A site's install as npm install -g makes it: the package's files and its runtime dependencies,
  // each linked from this checkout's node_modules; what only the build and the tests use is absent.
  const site = join(dir, 'site');
  const { dependencies } = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  for (const name of Object.keys(dependencies)) {
    mkdirSync(dirname(join(site, 'node_modules', name)), { recursive: true });
    symlinkSync(join(REPO, 'node_modules', name), join(site, 'node_modules', name));
  }
  cpSync(join(REPO, 'dist'), join(site, 'dist'), { recursive: true });
  cpSync(join(REPO, 'package.json'), join(site, 'package.json'));
  const lean = join(site, bin.holdfast!);

  const { edge, adminUrl } = startOfflineEdge(lean, ['--db', join(dir, 'lean.db')], site);
  try {
    const url = await adminUrl;
    const status = await allAgentsRunning(url);
    expect(status.agents.map((agent) => agent.stage).sort()).toEqual(['authorize', 'fraud-score', 'notify']);
  } finally {
    await stop(edge);
  }

  // A workflow written in TypeScript needs tsx, which the site does not have: the start says so.
  const chores = join(REPO, 'test', 'edge-shim', 'fixtures', 'chores');
  const outside = join(dir, 'chores');
  cpSync(chores, outside, { recursive: true });
  const refused = startOfflineEdge(lean, ['--db', join(dir, 'lean-ts.db'), '--workflow', join(outside, 'workflow.ts#chores')], site);
  await expect(refused.adminUrl).rejects.toThrow(/workflow\.ts is TypeScript, which needs tsx to load: install it beside holdfast/);
});

it('loads a workflow written in TypeScript, and its TypeScript agents, with the tsx of the workflow\'s project', { timeout: 120_000 }, async () => {
  const workflow = join(REPO, 'test', 'edge-shim', 'fixtures', 'chores', 'workflow.ts#chores');
  // The chores agents check in with their control server as they load.
  const control = await ChoreControl.start();
  const agentEnv = join(dir, 'chores.env');
  writeFileSync(agentEnv, `CHORES_CONTROL_URL=${control.url}\n`);
  const { edge, adminUrl } = startOfflineEdge(holdfast, ['--db', join(dir, 'ts-workflow.db'), '--workflow', workflow, '--agent-env', agentEnv], REPO);
  try {
    const url = await adminUrl;
    const status = await allAgentsRunning(url);
    expect(status.agents.map((agent) => agent.stage).sort()).toEqual(['deliver', 'prepare']);
  } finally {
    await stop(edge);
    await control.close();
  }
});
