import { once } from 'node:events';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { type LoadBalancer, startHaproxy } from '../../testkit/haproxy.js';
import { eventually } from '../helpers/wait.js';

// Debian's HAProxy (installed when missing) before two small HTTP servers standing in for shim
// nodes: each answers with its name, and /health with 200 or, when told, 503.

interface Node {
  readonly name: string;
  readonly server: Server;
  readonly address: string;
  healthy: boolean;
}

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function node(name: string): Promise<Node> {
  const server = createServer((req, res) => {
    if (req.url === '/health') res.writeHead(started.healthy ? 200 : 503).end();
    else res.writeHead(200, { 'content-type': 'text/plain' }).end(name);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(async () => {
    server.closeAllConnections();
    if (server.listening) await new Promise((resolve) => server.close(resolve));
  });
  const started: Node = { name, server, address: `127.0.0.1:${(server.address() as AddressInfo).port}`, healthy: true };
  return started;
}

async function balancer(nodes: readonly Node[]): Promise<LoadBalancer> {
  const lb = await startHaproxy(nodes.map((n) => ({ name: n.name, address: n.address })), { checkIntervalMs: 100 });
  cleanups.push(() => lb.stop());
  return lb;
}

async function ask(lb: LoadBalancer): Promise<{ status: number; body: string }> {
  const response = await request(`${lb.url}/`, { method: 'GET', reset: true });
  return { status: response.statusCode, body: await response.body.text() };
}

describe('haproxy before shim nodes', () => {
  it('spreads requests over the nodes, takes out a node whose health fails, and sends a request meant for a node that is gone to another', { timeout: 120_000 }, async () => {
    const [a, b] = [await node('a'), await node('b')];
    const lb = await balancer([a, b]);
    // Both in service once their first checks passed.
    const seen = await eventually(
      async () => new Set(await Promise.all(Array.from({ length: 6 }, async () => (await ask(lb)).body))),
      (names) => names.size === 2,
    );
    expect([...seen].sort()).toEqual(['a', 'b']);

    a.healthy = false;
    // Out of service once its checks fail: every request goes to b.
    await eventually(async () => (await Promise.all(Array.from({ length: 6 }, () => ask(lb)))).map((answer) => answer.body), (bodies) => bodies.every((body) => body === 'b'));
    a.healthy = true;
    await eventually(async () => new Set((await Promise.all(Array.from({ length: 6 }, () => ask(lb)))).map((answer) => answer.body)), (names) => names.size === 2);

    // a gone at once, before any check noticed: its requests are redispatched, none fails.
    a.server.closeAllConnections();
    await new Promise((resolve) => a.server.close(resolve));
    const answers = await Promise.all(Array.from({ length: 20 }, () => ask(lb)));
    expect(answers.map((answer) => answer.status)).toEqual(Array.from({ length: 20 }, () => 200));
    expect(new Set(answers.map((answer) => answer.body))).toEqual(new Set(['b']));
  });

  it('answers ServiceUnavailable in the client\'s protocol while no node is in service, which an SDK reads as such', { timeout: 120_000 }, async () => {
    const [a, b] = [await node('a'), await node('b')];
    const lb = await balancer([a, b]);
    await eventually(async () => (await ask(lb)).status, (status) => status === 200);
    a.healthy = false;
    b.healthy = false;
    await eventually(async () => (await ask(lb)).status, (status) => status === 503);
    const sqs = new SQSClient({ endpoint: lb.url, region: 'us-east-1', credentials: { accessKeyId: 'AKID', secretAccessKey: 'secret' }, maxAttempts: 1 });
    cleanups.push(async () => sqs.destroy());
    const error = await sqs.send(new ListQueuesCommand({})).catch((caught: unknown) => caught as Error & { $metadata?: { httpStatusCode?: number } });
    expect(error).toMatchObject({ name: 'ServiceUnavailable', $metadata: { httpStatusCode: 503 } });
    const query = await request(`${lb.url}/`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'Action=ListQueues&Version=2012-11-05', reset: true });
    expect(query.statusCode).toBe(503);
    expect(await query.body.text()).toContain('<Code>ServiceUnavailable</Code>');
  });
});
