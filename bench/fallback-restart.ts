/**
 * `npm run bench:fallback [-- --kills N]`: how soon a fallback agent is back at work after it dies.
 * Runs the payments workflow's edge agents under the supervisor against a shim on loopback (the
 * fake gateway standing in for the region's services), kills an agent with SIGKILL N times, and
 * measures from the kill to the replacement's first ReceiveMessage: with a warm standby taking over,
 * and with a new process started each time (warmStandby off). Also the agents' resident memory.
 * Run it on an idle machine for figures that mean something; under load it shows the load.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SQSClient } from '@aws-sdk/client-sqs';
import { pino } from 'pino';
import { startFakeGateway } from '../functions/src/fake-gateway/server.js';
import { ENV } from '../functions/src/workflow-definition.js';
import { DEFAULT_WORKFLOW_MODULE, loadWorkflowModule, resolveWorkflowQueues, Supervisor, type AgentUp } from '../edge-shim/src/fallback/index.js';
import { startShim } from '../edge-shim/src/shim.js';
import { createWorkflowQueues } from '../testkit/workflow-queues.js';
import { memory } from './proc-stats.js';

// The project runs on Node 20 on purpose; the agents inherit this and keep the SDK's upgrade notice out of the table.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const { values } = parseArgs({ options: { kills: { type: 'string', default: '10' } } });
const kills = Number(values.kills);
const credentials = { accessKeyId: 'AKIDBENCH', secretAccessKey: 'bench-secret' };
const silent = pino({ level: 'silent' });

const dir = mkdtempSync(join(tmpdir(), 'holdfast-bench-fallback-'));
const shim = await startShim({ port: 0, adminPort: 0, dbFile: join(dir, 'shim.db'), logLevel: 'silent', credentials: [credentials], diskReserveBytes: 2 ** 20 });
const gateway = await startFakeGateway();
const sqs = new SQSClient({ endpoint: shim.url, region: 'us-east-1', credentials });
const { workflow, entryRoot } = await loadWorkflowModule(DEFAULT_WORKFLOW_MODULE);
await createWorkflowQueues(sqs, workflow);
const queues = await resolveWorkflowQueues(sqs, workflow);

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

async function measure(warmStandby: boolean): Promise<{ times: number[]; fromStandby: number; rssMb: number[] }> {
  const supervisor = new Supervisor({
    workflow,
    entryRoot,
    siteId: 'bench-site',
    database: join(dir, `edge-agents-${warmStandby}.db`),
    shim: { endpoint: shim.url, region: 'us-east-1', credentials },
    ...queues,
    environment: { [ENV.gatewayUrl]: gateway.url, [ENV.notifierUrl]: gateway.url, POWERTOOLS_LOG_LEVEL: 'CRITICAL' },
    warmStandby,
    // Each kill a first death, restarted at once: no crash-loop backoff between the kills.
    stableRunMs: 0,
    logger: silent,
    agentLogLevel: 'silent',
  });
  const standbyReady = new Set<string>();
  supervisor.on('standby-ready', ({ stage }) => standbyReady.add(stage));
  const next = (stage: string) => new Promise<AgentUp>((resolve) => {
    const listener = (up: AgentUp) => {
      if (up.stage !== stage) return;
      supervisor.off('agent-up', listener);
      resolve(up);
    };
    supervisor.on('agent-up', listener);
  });
  const settled = async (stage: string) => {
    // A standby is started once the agent polls; the next kill waits until it has loaded.
    while (warmStandby && !standbyReady.has(stage)) await new Promise((resolve) => setTimeout(resolve, 50));
    standbyReady.delete(stage);
  };
  supervisor.start();
  await supervisor.running();
  const times: number[] = [];
  let fromStandby = 0;
  const stages = supervisor.status().map((agent) => agent.stage);
  for (let kill = 0; kill < kills; kill += 1) {
    const stage = stages[kill % stages.length]!;
    await settled(stage);
    const pid = supervisor.status().find((agent) => agent.stage === stage)!.pid!;
    const back = next(stage);
    const killedAt = performance.now();
    process.kill(pid, 'SIGKILL');
    const up = await back;
    times.push(performance.now() - killedAt);
    if (up.fromStandby) fromStandby += 1;
  }
  for (const stage of stages) await settled(stage);
  const rssMb = supervisor.status().map((agent) => memory(agent.pid!).rssMb);
  await supervisor.stop();
  return { times, fromStandby, rssMb };
}

console.log(`Fallback agent restarts: SIGKILL -> the replacement's first ReceiveMessage, ${kills} kills per mode, payments workflow (${workflow.stages.filter((stage) => stage.runsAtEdge).length} edge stages)\n`);
console.log('| mode | kills | taken over by a standby | min ms | median ms | p90 ms | max ms | agent RSS MiB |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const warmStandby of [true, false]) {
  const { times, fromStandby, rssMb } = await measure(warmStandby);
  const sorted = [...times].sort((a, b) => a - b);
  const row = [sorted[0]!, quantile(sorted, 0.5), quantile(sorted, 0.9), sorted.at(-1)!].map((ms) => ms.toFixed(0));
  console.log(`| ${warmStandby ? 'warm standby' : 'new process'} | ${times.length} | ${fromStandby} | ${row.join(' | ')} | ${rssMb.map((mb) => mb.toFixed(0)).join(', ')} |`);
}

sqs.destroy();
await gateway.close();
await shim.close();
rmSync(dir, { recursive: true, force: true });
