/**
 * `npm run bench:detection [-- --runs N] [-- --busy]`: how long the hybrid edge at its shipped
 * defaults takes to go offline after the link to the region is blackholed (the fault proxy), from
 * the cut to `offline` on /status (polled every 20 ms). Idle: nothing but the edge's probe talks to
 * the region. --busy: 8 clients send through the edge all along, as bench:hybrid's switch does. The
 * region is a standalone shim on loopback; each run is a new edge.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { CreateQueueCommand, SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import { startShim } from '../edge-shim/src/shim.js';
import { FaultProxy } from '../testkit/fault-proxy.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, busy: { type: 'boolean', default: false } } });
const credentials = { accessKeyId: 'AKIDDETECTION', secretAccessKey: 'detection-secret' };
const quiet = { port: 0, adminPort: 0, credentials: [credentials], logLevel: 'silent', diskReserveBytes: 2 ** 20 } as const;
const dir = mkdtempSync(join(tmpdir(), 'holdfast-bench-detection-'));
const region = await startShim({ ...quiet, dbFile: join(dir, 'region.db') });
const seconds: number[] = [];
for (let run = 0; run < Number(values.runs); run += 1) {
  const proxy = await FaultProxy.start({ target: new URL(region.url).host });
  const edge = await startShim({ ...quiet, dbFile: join(dir, `edge-${run}.db`), upstream: `http://${proxy.address}`, upstreamRegion: 'us-east-1', upstreamCredentials: credentials });
  while ((await edge.status()).mode !== 'online') await sleep(50);
  let sending = values.busy;
  const clients = values.busy ? Array.from({ length: 8 }, () => new SQSClient({ endpoint: edge.url, region: 'us-east-1', credentials })) : [];
  const senders = clients.map(async (client, i) => {
    const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: `detection-${run}-${i}` }));
    while (sending) await client.send(new SendMessageCommand({ QueueUrl, MessageBody: 'x' }));
  });
  await sleep(1500);
  proxy.setMode('blackhole');
  const cut = performance.now();
  while ((await edge.status()).mode !== 'offline') await sleep(20);
  seconds.push((performance.now() - cut) / 1000);
  sending = false;
  await Promise.all(senders);
  for (const client of clients) client.destroy();
  console.log(`run ${run + 1}: offline ${seconds.at(-1)!.toFixed(2)} s after the cut`);
  await edge.close();
  await proxy.close();
}
await region.close();
rmSync(dir, { recursive: true, force: true });
console.log(`${values.busy ? 'busy (8 clients sending)' : 'idle'}: offline ${Math.min(...seconds).toFixed(1)}–${Math.max(...seconds).toFixed(1)} s after the cut over ${seconds.length} runs`);
