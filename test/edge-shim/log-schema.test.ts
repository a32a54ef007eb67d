import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

// One log schema on the edge's stdout: the shim's pino lines, its fallback agents' (the runner's
// pino lines and the handlers' Powertools Logger lines) read alike, levels as labels.

const FIXTURE = fileURLToPath(new URL('./fixtures/log-lines.ts', import.meta.url));

it("writes the shim's, the agents' runner's and a handler's lines in one schema, levels as labels, the handler's with its invocation's context", async () => {
  // As Lambda and the local runner (stageEnvironment) set it: Powertools tells a cold start only then.
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', FIXTURE], { env: { ...process.env, AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand' } });
  const lines = stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  // Three writers of their own, each with its own buffer: their lines may reach stdout in any order.
  const byName = new Map(lines.map((line) => [line.name, line]));
  expect(lines).toHaveLength(3);
  expect([...byName.keys()].sort()).toEqual(['fallback-agent', 'holdfast-edge-shim', 'payments']);
  for (const line of lines) {
    expect(line).toMatchObject({ level: 'info', pid: expect.any(Number), hostname: expect.any(String), name: expect.any(String), msg: expect.any(String) });
    expect(line.time).toBe(new Date(Date.parse(String(line.time))).toISOString());
  }
  const [shim, runner, handler] = ['holdfast-edge-shim', 'fallback-agent', 'payments'].map((name) => byName.get(name)!);
  expect(shim).toMatchObject({ msg: 'from the shim', queue: 'orders' });
  expect(runner).toMatchObject({ msg: 'from the runner', stage: 'authorize' });
  expect(handler).toMatchObject({ msg: 'from a handler', stage: 'authorize', site: 'site-1', taskId: 't-1', cold_start: true, function_name: 'payments-authorize', function_request_id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
  // Nothing of Powertools' own schema is left beside it.
  for (const key of ['message', 'timestamp', 'service']) expect(handler).not.toHaveProperty(key);
});
