import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { payments } from '../../functions/src/workflows/payments.js';
import {
  checkWorkflowDefinition,
  DEFAULT_WORKFLOW_MODULE,
  edgeStages,
  inheritedEnvironment,
  loadWorkflowModule,
  readAgentEnvironment,
} from '../../edge-shim/src/fallback/index.js';

/** How the edge finds the workflow it runs fallback agents for, and what those agents are given. */
const REPOSITORY = resolve('.');
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'holdfast-workflow-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const stage = (name: string, runsAtEdge = true) => ({
  name,
  entry: `agents/${name}.ts`,
  maxReceiveCount: 5,
  timeoutSeconds: 10,
  memoryMb: 128,
  batchSize: 10,
  maxConcurrency: 2,
  runsAtEdge,
});

let modules = 0;

/** A user's project (a package.json) with a workflow module of `source`; each module a new file, as imports are cached. */
function project(source: string, name = `workflow-${++modules}.mjs`): string {
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }');
  writeFileSync(join(dir, name), source);
  return join(dir, name);
}

describe('the workflow module', () => {
  it('is the payments workflow by default, its entries relative to the repository', async () => {
    const loaded = await loadWorkflowModule(DEFAULT_WORKFLOW_MODULE);
    expect(loaded.workflow).toBe(payments);
    expect(loaded.entryRoot).toBe(REPOSITORY);
    expect(edgeStages(loaded.workflow, loaded.entryRoot).map((edge) => edge.name)).toEqual(['authorize', 'fraud-score', 'notify']);
  });

  it("takes a user's module, its default export or its one workflow export, entries relative to the user's project", async () => {
    const asDefault = project(`export default ${JSON.stringify({ name: 'mine', stages: [stage('one')] })};`);
    const loaded = await loadWorkflowModule(asDefault);
    expect(loaded.workflow.name).toBe('mine');
    expect(loaded.entryRoot).toBe(dir);
    expect(loaded.modulePath).toBe(asDefault);

    const named = project(`export const helper = 1;\nexport const mine = ${JSON.stringify({ name: 'mine2', stages: [stage('one')] })};`, 'named.mjs');
    expect((await loadWorkflowModule(named)).workflow.name).toBe('mine2');
    // Relative to the working directory, as given on the command line; entries relative to another root.
    const relative = await loadWorkflowModule('named.mjs#mine', { cwd: dir, entryRoot: 'elsewhere' });
    expect(relative.workflow.name).toBe('mine2');
    expect(relative.entryRoot).toBe(join(dir, 'elsewhere'));
  });

  it('names what is wrong with a module or a definition', async () => {
    await expect(loadWorkflowModule(join(dir, 'missing.mjs'))).rejects.toThrow(`workflow module ${join(dir, 'missing.mjs')} does not exist`);
    await expect(loadWorkflowModule(`${DEFAULT_WORKFLOW_MODULE.split('#')[0]}#nope`)).rejects.toThrow('has no export named nope');
    await expect(loadWorkflowModule('#payments')).rejects.toThrow("give the workflow as MODULE or MODULE#EXPORT, not '#payments'");
    await expect(loadWorkflowModule(project('export const nothing = 1;'))).rejects.toThrow('exports no workflow definition (an object with a name and stages)');
    const two = { name: 'x', stages: [stage('one')] };
    await expect(loadWorkflowModule(project(`export const a = ${JSON.stringify(two)};\nexport const b = ${JSON.stringify(two)};`))).rejects.toThrow(
      'exports several workflow definitions (a, b): name one as',
    );
    await expect(loadWorkflowModule(project('throw new Error("broken at load");'))).rejects.toThrow('cannot load workflow module');

    expect(() => checkWorkflowDefinition({ name: 'w', stages: [] }, 'w')).toThrow('workflow definition w: stages must be a non-empty array');
    expect(() => checkWorkflowDefinition({ name: 'w', stages: [{ ...stage('one'), runsAtEdge: 'yes' }] }, 'w')).toThrow(
      'workflow definition w: stage one: runsAtEdge must be true or false',
    );
    expect(() => checkWorkflowDefinition({ name: 'w', stages: [{ ...stage('one'), batchSize: 11 }] }, 'w')).toThrow('stage one: batchSize must be a whole number from 1 to 10');
    expect(() => checkWorkflowDefinition({ name: 'w', stages: [stage('one'), stage('one')] }, 'w')).toThrow('stage one appears twice');
  });

  it('runs only the stages marked runsAtEdge, and refuses an edge stage whose entry is missing', () => {
    const workflow = checkWorkflowDefinition({ name: 'w', stages: [stage('one'), stage('two', false)] }, 'w');
    writeFileSync(join(dir, 'one.ts'), '');
    expect(() => edgeStages(workflow, dir)).toThrow(`the entry of stage one of w, ${join(dir, 'agents/one.ts')}, does not exist (entries are relative to ${dir})`);
    expect(edgeStages({ ...workflow, stages: [{ ...workflow.stages[0]!, entry: join(dir, 'one.ts') }, workflow.stages[1]!] }, dir).map((edge) => edge.name)).toEqual(['one']);
  });
});

describe("the agents' environment", () => {
  it('reads an env file of NAME=value lines', () => {
    const file = join(dir, 'agents.env');
    writeFileSync(file, '# gateway\nPAYMENT_GATEWAY_URL=http://127.0.0.1:8080\nHOLDFAST_EDGE_PAYMENT_LIMIT_MINOR="5000"\n');
    expect(readAgentEnvironment(file)).toEqual({ PAYMENT_GATEWAY_URL: 'http://127.0.0.1:8080', HOLDFAST_EDGE_PAYMENT_LIMIT_MINOR: '5000' });
    expect(() => readAgentEnvironment(join(dir, 'none.env'))).toThrow(`cannot read the agent environment file ${join(dir, 'none.env')}`);
  });

  it("keeps the shim's secrets from its agents", () => {
    const inherited = inheritedEnvironment({
      PATH: '/usr/bin',
      HOME: '/home/edge',
      TZ: 'UTC',
      HOLDFAST_CREDENTIALS: 'AKID:secret',
      AWS_ACCESS_KEY_ID: 'AKIDREGION',
      AWS_SECRET_ACCESS_KEY: 'region-secret',
      AWS_SESSION_TOKEN: 'token',
      NODE_OPTIONS: '--inspect',
    });
    expect(inherited).toEqual({ PATH: '/usr/bin', HOME: '/home/edge', TZ: 'UTC' });
  });
});
