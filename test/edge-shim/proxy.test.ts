import { type Server, createServer } from 'node:http';
import { type AddressInfo, type Socket, connect } from 'node:net';
import { CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TEST_CREDENTIALS, type TestShim, startTestShim } from '../helpers/shim.js';
import { waitForState } from '../helpers/wait.js';

// A site's way out to the region is often only through a proxy: the hybrid edge reads HTTPS_PROXY,
// HTTP_PROXY and NO_PROXY as curl does. The region is a standalone shim on loopback; the proxy a
// real CONNECT proxy on loopback that records where each tunnel went.

/** A CONNECT proxy: tunnels each CONNECT to its target and remembers the target. */
class ConnectProxy {
  readonly tunnels: string[] = [];
  private readonly sockets = new Set<Socket>();
  private constructor(private readonly server: Server) {
    server.on('connect', (request, client: Socket, head: Buffer) => {
      const target = request.url ?? '';
      this.tunnels.push(target);
      const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
      const upstream = connect(port, host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(client).pipe(upstream);
      });
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('error', () => socket.destroy());
        socket.on('close', () => this.sockets.delete(socket));
      }
    });
  }

  static async start(): Promise<ConnectProxy> {
    const server = createServer((_request, response) => response.writeHead(405).end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new ConnectProxy(server);
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

const PROXY_VARIABLES = ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy'];

describe('the edge behind a proxy', () => {
  let region: TestShim;
  let proxy: ConnectProxy;
  let edge: TestShim | undefined;

  beforeAll(async () => {
    region = await startTestShim();
    proxy = await ConnectProxy.start();
  });
  afterEach(async () => {
    await edge?.close();
    edge = undefined;
    for (const name of PROXY_VARIABLES) delete process.env[name];
    proxy.tunnels.length = 0;
  });
  afterAll(async () => {
    await proxy.close();
    await region.close();
  });

  const startEdge = () =>
    startTestShim({ upstream: region.shim.url, upstreamRegion: 'us-east-1', upstreamCredentials: TEST_CREDENTIALS, probeIntervalMs: 100 });
  const regionAddress = () => new URL(region.shim.url).host;

  it('reaches the region through the proxy HTTP_PROXY names', async () => {
    process.env.HTTP_PROXY = proxy.url;
    edge = await startEdge();
    const { QueueUrl } = await edge.sqs.send(new CreateQueueCommand({ QueueName: 'through-the-proxy' }));
    await edge.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'hello' }));

    // In the region, and every connection to it went through a tunnel.
    const regionQueue = `${region.shim.url}/000000000000/through-the-proxy`;
    const { Messages } = await region.sqs.send(new ReceiveMessageCommand({ QueueUrl: regionQueue, WaitTimeSeconds: 1 }));
    expect(Messages?.map((message) => message.Body)).toEqual(['hello']);
    expect(proxy.tunnels.length).toBeGreaterThan(0);
    expect(new Set(proxy.tunnels)).toEqual(new Set([regionAddress()]));
    expect((await edge.shim.status()).mode).toBe('online');
  });

  it('goes straight to a region NO_PROXY names', async () => {
    process.env.HTTP_PROXY = proxy.url;
    process.env.HTTPS_PROXY = proxy.url;
    process.env.NO_PROXY = 'localhost,127.0.0.1';
    edge = await startEdge();
    await waitForState(async () => expect((await edge!.shim.status()).upstream?.lastSuccessAt).not.toBeNull());
    await edge.sqs.send(new CreateQueueCommand({ QueueName: 'straight' }));
    expect(proxy.tunnels).toEqual([]);
  });

  it('goes offline when the proxy refuses the tunnel, as when the region cannot be reached', async () => {
    // A proxy that takes connections and refuses every CONNECT: the region is out of reach.
    const refusing = createServer((_request, response) => response.writeHead(405).end());
    refusing.on('connect', (_request, client: Socket) => client.end('HTTP/1.1 403 Forbidden\r\n\r\n'));
    await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve));
    try {
      process.env.HTTP_PROXY = `http://127.0.0.1:${(refusing.address() as AddressInfo).port}`;
      edge = await startEdge();
      await waitForState(async () => expect((await edge!.shim.status()).mode).toBe('offline'));
    } finally {
      await new Promise((resolve) => refusing.close(resolve));
    }
  });
});
