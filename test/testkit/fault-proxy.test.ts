import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { Agent, createServer as createHttpServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { type FaultMode, FlapSchedule, drawMs, parseMode, seededRandom } from '../../testkit/fault-modes.js';
import { startControlServer } from '../../testkit/fault-proxy-control.js';
import { FaultProxy, type ModeChange } from '../../testkit/fault-proxy.js';
import { EchoTarget, TestClient, when } from './tcp.js';

// The fault proxy over real sockets: an echo server (or an HTTP server) behind it, raw TCP clients
// in front. Every wait is for a state (bytes counted, a connection closed, a mode event), never a time.

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setUp(mode: FaultMode | string = 'pass') {
  const target = await EchoTarget.start();
  const proxy = await FaultProxy.start({ target: { host: '127.0.0.1', port: target.port }, mode });
  cleanups.push(() => target.close(), () => proxy.close());
  const client = async () => {
    const connection = await TestClient.connect(proxy.port);
    cleanups.push(() => connection.close());
    return connection;
  };
  return { target, proxy, client };
}

// An HTTP server as the target: it counts the requests it has answered and when each arrived.
async function httpTarget() {
  const arrivals: Array<{ readonly at: number; readonly path: string }> = [];
  const server = createHttpServer((request, response) => {
    arrivals.push({ at: Date.now(), path: request.url ?? '' });
    request.resume();
    request.on('end', () => response.end(`answer ${arrivals.length}`));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => {
    server.closeAllConnections();
    server.close();
  });
  return { port: (server.address() as AddressInfo).port, arrivals, answered: () => arrivals.length };
}

async function proxyTo(port: number, mode: FaultMode | string) {
  const proxy = await FaultProxy.start({ target: { host: '127.0.0.1', port }, mode });
  cleanups.push(() => proxy.close());
  return proxy;
}

describe('pass', () => {
  it('forwards both ways and counts the bytes', async () => {
    const { target, proxy, client } = await setUp();
    const one = await client();
    one.write('hello');
    await one.until((c) => c.received === 'hello');
    expect(target.received).toBe('hello');
    const stats = await proxy.until((s) => s.downstream.forwarded === 5);
    expect(stats.upstream).toEqual({ received: 5, forwarded: 5, dropped: 0, queued: 0 });
    expect(stats.downstream).toEqual({ received: 5, forwarded: 5, dropped: 0, queued: 0 });
    expect(stats.connections).toMatchObject({ accepted: 1, open: 1, reset: 0 });
    expect(proxy.address).toBe(`127.0.0.1:${proxy.port}`);
  });

  it('passes a clean close on to the other side', async () => {
    const { target, proxy, client } = await setUp();
    const one = await client();
    one.write('bye');
    await one.until((c) => c.received === 'bye');
    one.socket.end();
    await target.until((t) => t.closed === 1);
    await one.until((c) => c.outcome === 'closed');
    await proxy.until((s) => s.connections.open === 0);
    expect(target.failed).toBe(0);
  });
});

describe('a target that is down', () => {
  it('gets the client reset and is counted, whatever the mode', async () => {
    const stopped = await EchoTarget.start();
    const port = stopped.port;
    await stopped.close();
    const proxy = await FaultProxy.start({ target: { host: '127.0.0.1', port } });
    cleanups.push(() => proxy.close());
    const one = await TestClient.connect(proxy.port);
    cleanups.push(() => one.close());
    await one.until((c) => c.outcome !== 'open');
    expect(one.outcome).toBe('reset');
    expect((await proxy.until((s) => s.connections.open === 0)).connections).toMatchObject({ accepted: 1, targetFailed: 1, reset: 0 });
  });
});

describe('refuse', () => {
  it('resets new connections at once and never reaches the target', async () => {
    const { target, proxy, client } = await setUp('refuse');
    const one = await client();
    await one.until((c) => c.outcome !== 'open');
    expect(one.outcome).toBe('reset');
    expect(one.received).toBe('');
    expect(target.connections).toBe(0);
    expect(proxy.stats().connections).toMatchObject({ accepted: 1, open: 0, reset: 1 });
  });

  it('resets the connections open when it is switched on', async () => {
    const { target, proxy, client } = await setUp();
    const one = await client();
    one.write('a');
    await one.until((c) => c.received === 'a');
    proxy.setMode('refuse');
    await one.until((c) => c.outcome !== 'open');
    expect(one.outcome).toBe('reset');
    await target.until((t) => t.closed === 1);
    expect(target.failed).toBe(1);
  });
});

describe('reset', () => {
  it('accepts, then resets both sides when the client sends, forwarding nothing', async () => {
    const { target, proxy, client } = await setUp('reset');
    const one = await client();
    one.write('hello');
    await one.until((c) => c.outcome !== 'open');
    expect(one.outcome).toBe('reset');
    const stats = await proxy.until((s) => s.connections.open === 0);
    expect(stats.upstream).toMatchObject({ received: 5, forwarded: 0, dropped: 5 });
    expect(stats.connections.reset).toBe(1);
    expect(target.received).toBe('');
  });

  it('with afterBytes, forwards that many bytes first: the target gets a cut request', async () => {
    const { target, proxy, client } = await setUp({ kind: 'reset', afterBytes: 3 });
    const one = await client();
    one.write('hello');
    await one.until((c) => c.outcome !== 'open');
    expect(one.outcome).toBe('reset');
    await target.until((t) => t.closed === 1);
    expect(target.received).toBe('hel');
    expect(proxy.stats().upstream).toMatchObject({ received: 5, forwarded: 3, dropped: 2 });
  });

  it('applies to a connection that was open before: its next request resets it', async () => {
    const { proxy, client } = await setUp();
    const one = await client();
    one.write('first');
    await one.until((c) => c.received === 'first');
    proxy.setMode('reset');
    one.write('second');
    await one.until((c) => c.outcome !== 'open');
    expect(one.outcome).toBe('reset');
    expect(one.received).toBe('first');
  });
});

describe('blackhole', () => {
  it('accepts and reads, but never forwards nor answers', async () => {
    const { target, proxy, client } = await setUp('blackhole');
    const one = await client();
    one.write('into the void');
    const stats = await proxy.until((s) => s.upstream.dropped === 13);
    expect(stats.upstream).toEqual({ received: 13, forwarded: 0, dropped: 13, queued: 0 });
    expect(target.connections).toBe(0);
    expect(one.received).toBe('');
    expect(one.outcome).toBe('open');
  });

  it('stops an open connection mid-stream, and resets it when traffic flows again', async () => {
    const { target, proxy, client } = await setUp();
    const one = await client();
    one.write('before');
    await one.until((c) => c.received === 'before');
    proxy.setMode('blackhole');
    one.write('during');
    await proxy.until((s) => s.upstream.dropped === 6);
    expect(target.received).toBe('before');
    expect(one.outcome).toBe('open');
    // The stream lost bytes, so it cannot resume: the switch back resets it, a new one works.
    proxy.setMode('pass');
    await one.until((c) => c.outcome !== 'open');
    expect(one.outcome).toBe('reset');
    const two = await client();
    two.write('after');
    await two.until((c) => c.received === 'after');
  });

  it('drops answers that were on their way when it was switched on', async () => {
    const { target, proxy, client } = await setUp({ kind: 'latency', downstreamMs: 3_600_000 });
    const one = await client();
    one.write('held');
    await proxy.until((s) => s.downstream.queued === 4);
    expect(target.received).toBe('held');
    proxy.setMode('blackhole');
    const stats = await proxy.until((s) => s.downstream.dropped === 4);
    expect(stats.downstream.queued).toBe(0);
    expect(one.received).toBe('');
  });
});

describe('latency', () => {
  it('holds each direction for its own delay, and lets it go when the delay is lifted', async () => {
    const { target, proxy, client } = await setUp({ kind: 'latency', upstreamMs: 3_600_000 });
    const one = await client();
    one.write('ping');
    await proxy.until((s) => s.upstream.queued === 4);
    expect(target.received).toBe('');
    // Now the answer is held instead: the request goes through, its echo waits.
    proxy.setMode({ kind: 'latency', downstreamMs: 3_600_000 });
    await target.until((t) => t.received === 'ping');
    await proxy.until((s) => s.downstream.queued === 4);
    expect(one.received).toBe('');
    proxy.setMode('pass');
    await one.until((c) => c.received === 'ping');
    expect(proxy.stats().downstream.queued).toBe(0);
  });

  it('delivers everything in order with a small delay each way', async () => {
    const { proxy, client } = await setUp({ kind: 'latency', upstreamMs: 5, downstreamMs: 5 });
    const one = await client();
    const expected = Array.from({ length: 50 }, (_, index) => `<${index}>`).join('');
    for (let index = 0; index < 50; index++) one.write(`<${index}>`);
    await one.until((c) => c.received.length === expected.length);
    expect(one.received).toBe(expected);
    expect(proxy.stats().upstream.forwarded).toBe(expected.length);
  });
});

describe('lost answers', () => {
  const REQUEST = 'GET / HTTP/1.1\r\nHost: target\r\n\r\n';

  it('hang: the request is served, its answer never comes and the connection stays open', async () => {
    const http = await httpTarget();
    const proxy = await FaultProxy.start({ target: { host: '127.0.0.1', port: http.port }, mode: 'lost-answers' });
    cleanups.push(() => proxy.close());
    const one = await TestClient.connect(proxy.port);
    cleanups.push(() => one.close());
    one.write(REQUEST);
    const stats = await proxy.until((s) => s.downstream.dropped > 0);
    expect(http.answered()).toBe(1);
    expect(stats.upstream.forwarded).toBe(REQUEST.length);
    expect(one.received).toBe('');
    expect(one.outcome).toBe('open');
    // Once answers flow again, the connection that lost one is reset rather than left hanging.
    proxy.setMode('pass');
    await one.until((c) => c.outcome !== 'open');
    expect(one.outcome).toBe('reset');
  });

  it('reset: the request is served and the client is reset when the answer comes', async () => {
    const http = await httpTarget();
    const proxy = await FaultProxy.start({ target: { host: '127.0.0.1', port: http.port }, mode: { kind: 'lost-answers', then: 'reset' } });
    cleanups.push(() => proxy.close());
    const one = await TestClient.connect(proxy.port);
    cleanups.push(() => one.close());
    one.write(REQUEST);
    await one.until((c) => c.outcome !== 'open');
    expect(one.outcome).toBe('reset');
    expect(one.received).toBe('');
    expect(http.answered()).toBe(1);
    expect(proxy.stats().connections.reset).toBe(1);
  });
});

describe('bandwidth', () => {
  it('lets bytes through no faster than the limit, in order, and all of them once lifted', async () => {
    const rate = 2000;
    const { proxy, client } = await setUp({ kind: 'bandwidth', downstreamBytesPerSecond: rate });
    const one = await client();
    const payload = 'x'.repeat(4000) + 'y'.repeat(4000);
    const sentAt = Date.now();
    one.write(payload);
    await one.until((c) => c.received.length >= 500);
    // A bound the machine's load can only help: slower runs deliver less, never more.
    const slice = (rate * 50) / 1000;
    for (let index = 0, total = 0; index < one.chunks.length; index++) {
      total += one.chunks[index]!.size;
      expect(total).toBeLessThanOrEqual((rate * (one.chunks[index]!.at - sentAt)) / 1000 + slice);
    }
    expect(proxy.stats().downstream.queued).toBeGreaterThan(0);
    proxy.setMode('pass');
    await one.until((c) => c.received.length === payload.length);
    expect(one.received).toBe(payload);
  });
});

describe('link', () => {
  const KIB = 1024;

  it('lets bytes through no faster than its rate: 512 KiB through a 128 KiB/s link take about 4 s', { timeout: 30_000 }, async () => {
    const rate = 128 * KIB;
    const size = 512 * KIB;
    const { proxy, client } = await setUp({ kind: 'link', downstreamBytesPerSecond: rate });
    const one = await client();
    const sentAt = Date.now();
    one.write(Buffer.alloc(size, 'z'));
    await one.until((c) => c.received.length === size);
    // Never faster than the link (a bound the machine's load can only help): each byte arrives after
    // the time it takes to send it and all before it at the rate (slices leave whole: one slice's slack).
    const slice = (rate * 50) / 1000;
    for (let index = 0, total = 0; index < one.chunks.length; index++) {
      total += one.chunks[index]!.size;
      expect(total).toBeLessThanOrEqual((rate * (one.chunks[index]!.at - sentAt)) / 1000 + slice);
    }
    // Not much slower either. Release times are set when bytes arrive, so a busy machine delays a
    // release but not the ones after it: even loaded, it ends within a second or two of the 4 s.
    // This bound (twice the time, plus 3 s) only catches a link several times slower than its rate.
    const took = one.chunks.at(-1)!.at - sentAt;
    expect(took).toBeLessThanOrEqual(2 * ((size * 1000) / rate) + 3000);
    expect(proxy.stats().downstream).toEqual({ received: size, forwarded: size, dropped: 0, queued: 0 });
  });

  // A large transfer on one connection, then a small request on another: through a shared link the
  // small one's answer queues behind the large one's bytes; with bandwidth (per connection) it
  // passes them. Told from the proxy's own byte counts when the small answer arrives.
  async function smallBehindLarge(mode: FaultMode) {
    const large = 128 * KIB;
    const { proxy, client } = await setUp(mode);
    const bulk = await client();
    bulk.write(Buffer.alloc(large, 'z'));
    await proxy.until((s) => s.downstream.received === large);
    const small = await client();
    small.write('ping');
    await small.until((c) => c.received === 'ping');
    const stats = proxy.stats();
    await bulk.until((c) => c.received.length === large);
    return { large, stats };
  }

  it('is one bottleneck for all connections: a small request waits for the bytes queued before it', async () => {
    const rate = 64 * KIB;
    const { large, stats } = await smallBehindLarge({ kind: 'link', downstreamBytesPerSecond: rate });
    // All of the large answer had gone before the small one (but the last slice, which may leave in the same millisecond).
    const slice = (rate * 50) / 1000;
    expect(stats.downstream.forwarded).toBeGreaterThanOrEqual(large + 4 - slice);
  });

  it('unlike bandwidth, a link of its own per connection: there the small request passes the large one', async () => {
    const { stats } = await smallBehindLarge({ kind: 'bandwidth', downstreamBytesPerSecond: 64 * KIB });
    // About 2 s of the large answer was still held when the small one arrived.
    expect(stats.downstream.queued).toBeGreaterThan(0);
  });

  it('adds each direction\'s delay after its bottleneck', async () => {
    const { client } = await setUp({ kind: 'link', upstreamMs: 200, downstreamBytesPerSecond: 2000, downstreamMs: 300 });
    const one = await client();
    const sentAt = Date.now();
    one.write('x'.repeat(400));
    await one.until((c) => c.received.length === 400);
    // Lower bounds only: 200 ms there; back, 100-byte slices at 2000 B/s (50 ms each), then 300 ms.
    expect(one.chunks[0]!.at - sentAt).toBeGreaterThanOrEqual(200 + 50 + 300);
    expect(one.chunks.at(-1)!.at - sentAt).toBeGreaterThanOrEqual(200 + 200 + 300);
  });

  it('queues what is held at the switch in the order it came, over all connections', async () => {
    const { target, proxy, client } = await setUp({ kind: 'latency', upstreamMs: 3_600_000 });
    const [a, b] = [await client(), await client()];
    // a, b, a, b: 500 bytes each, held until the switch.
    for (const [connection, letter, held] of [[a, 'a', 500], [b, 'b', 1000], [a, 'c', 1500], [b, 'd', 2000]] as const) {
      connection.write(letter.repeat(500));
      await proxy.until((s) => s.upstream.queued === held);
    }
    proxy.setMode({ kind: 'link', upstreamBytesPerSecond: 1000 });
    await target.until((t) => t.received.length === 2000);
    // Half a second per block: each block's first byte reaches the target after the block before it began.
    const first = (letter: string) => target.received.indexOf(letter);
    expect(first('a')).toBeLessThan(first('b'));
    expect(first('b')).toBeLessThan(first('c'));
    expect(first('c')).toBeLessThan(first('d'));
  });
});

describe('slow', () => {
  it('holds each HTTP request for its own seeded delay before the target gets it', { timeout: 30_000 }, async () => {
    const http = await httpTarget();
    const delayMs = [300, 900] as const;
    const proxy = await proxyTo(http.port, { kind: 'slow', delayMs, seed: 7 });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(() => agent.destroy());
    const random = seededRandom(7);
    const expected = Array.from({ length: 4 }, () => drawMs(delayMs, random));
    for (const [index, delay] of expected.entries()) {
      const sentAt = Date.now();
      const body = await new Promise<string>((resolve, reject) => {
        const request = httpRequest({ host: '127.0.0.1', port: proxy.port, path: `/${index}`, method: 'POST', agent }, (response) => {
          let text = '';
          response.on('data', (chunk: Buffer) => (text += chunk.toString()));
          response.on('end', () => resolve(text));
        });
        request.on('error', reject);
        request.end('a body');
      });
      expect(body).toBe(`answer ${index + 1}`);
      // The request reached the target no sooner than its delay, drawn from the seed in request order.
      expect(http.arrivals[index]!.at - sentAt).toBeGreaterThanOrEqual(delay);
    }
    // One connection: the delays are per request, not per connection.
    expect(proxy.stats().connections.accepted).toBe(1);
    expect(proxy.stats().requests).toEqual({ seen: 4, answered: 0 });
  });
});

describe('errors', () => {
  const SEND_CHUNKED = 'POST / HTTP/1.1\r\nHost: sqs\r\nX-Amz-Target: AmazonSQS.SendMessage\r\nContent-Type: application/x-amz-json-1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\n3\r\n"b"\r\n1\r\n}\r\n0\r\n\r\n';
  const GET = 'GET /after HTTP/1.1\r\nHost: sqs\r\n\r\n';

  it('answers a request itself, having read all of it, and lets the next one on the connection through', async () => {
    const http = await httpTarget();
    const proxy = await proxyTo(http.port, { kind: 'errors', answers: ['unavailable'] });
    const one = await TestClient.connect(proxy.port);
    cleanups.push(() => one.close());
    one.write(SEND_CHUNKED.slice(0, 100));
    one.write(SEND_CHUNKED.slice(100));
    await one.until((c) => c.received.includes('com.amazonaws.sqs#ServiceUnavailable'));
    expect(one.received).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n/);
    expect(one.received).toContain('x-amzn-query-error: ServiceUnavailable;Receiver');
    expect(http.answered()).toBe(0);
    expect(proxy.stats().upstream).toMatchObject({ received: SEND_CHUNKED.length, forwarded: 0, dropped: SEND_CHUNKED.length });
    proxy.setMode('pass');
    one.write(GET);
    await one.until((c) => c.received.endsWith('answer 1'));
    expect(http.arrivals.map((arrival) => arrival.path)).toEqual(['/after']);
    expect(proxy.stats().requests).toEqual({ seen: 2, answered: 1 });
    expect(one.outcome).toBe('open');
  });

  it('answers no request with share 0, and passes a stream that is not HTTP', async () => {
    const { target, proxy, client } = await setUp({ kind: 'errors', share: 0 });
    const one = await client();
    one.write('not http');
    await one.until((c) => c.received === 'not http');
    expect(target.received).toBe('not http');
    expect(proxy.stats().requests).toEqual({ seen: 0, answered: 0 });
  });
});

describe('flapping', () => {
  const steps = [
    { kind: 'pass', ms: [20, 60] },
    { kind: 'blackhole', ms: [20, 60] },
  ] as const;

  async function turns(proxy: FaultProxy, count: number): Promise<ModeChange[]> {
    const seen: ModeChange[] = [];
    const record = (change: ModeChange) => seen.push(change);
    proxy.on('mode', record);
    await when(proxy, 'mode', () => seen.length >= count);
    proxy.off('mode', record);
    return seen.slice(0, count);
  }

  it('alternates its steps with durations drawn from the seed: the same seed, the same schedule', async () => {
    const { proxy } = await setUp();
    proxy.setMode({ kind: 'flapping', steps, seed: 42 });
    const seen = await turns(proxy, 6);
    const expected = new FlapSchedule({ kind: 'flapping', steps, seed: 42 });
    // The first turn was enforced inside setMode, before turns() listened.
    expected.turn();
    for (const change of seen) {
      const turn = expected.turn();
      expect(change).toEqual({ mode: turn.mode, step: turn.step, ms: turn.ms });
      expect(change.ms).toBeGreaterThanOrEqual(20);
      expect(change.ms).toBeLessThanOrEqual(60);
    }
    expect(seen.map((change) => change.mode.kind)).toEqual(['blackhole', 'pass', 'blackhole', 'pass', 'blackhole', 'pass']);
    const other = new FlapSchedule({ kind: 'flapping', steps, seed: 43 });
    const first = new FlapSchedule({ kind: 'flapping', steps, seed: 42 });
    const draws = (schedule: FlapSchedule) => Array.from({ length: 10 }, () => schedule.turn().ms);
    expect(draws(other)).not.toEqual(draws(first));
    proxy.setMode('pass');
    expect(proxy.stats().mode).toEqual({ kind: 'pass' });
  });

  it('acts on live connections at each turn: some bytes pass, some are dropped, damaged connections are reset', async () => {
    const { proxy, client } = await setUp({ kind: 'flapping', steps, seed: 7 });
    let echoed = 0;
    let reset = 0;
    // One byte at a time on fresh connections until both behaviours have been seen. A byte that
    // meets a blackhole turn on its way there or back is dropped, and its connection is reset at the
    // next pass turn.
    while (echoed === 0 || reset === 0) {
      const one = await client();
      one.write('x');
      await one.until((c) => c.received === 'x' || c.outcome !== 'open');
      if (one.received === 'x') echoed += 1;
      else reset += 1;
      one.close();
    }
    const stats = proxy.stats();
    expect(stats.upstream.dropped + stats.downstream.dropped).toBeGreaterThanOrEqual(reset);
    expect(stats.connections.reset).toBeGreaterThanOrEqual(reset);
    expect(stats.modeChanges).toBeGreaterThan(2);
  });
});

describe('modes as data', () => {
  it('takes names and objects and says what is wrong with a bad one', () => {
    expect(parseMode('blackhole')).toEqual({ kind: 'blackhole' });
    expect(parseMode({ kind: 'latency', downstreamMs: 200 })).toEqual({ kind: 'latency', downstreamMs: 200 });
    expect(() => parseMode('down')).toThrow(/kind must be one of pass, refuse, reset, blackhole, latency, lost-answers, bandwidth, link, slow, errors, flapping/);
    expect(() => parseMode({ kind: 'latency', ms: 5 })).toThrow(/latency takes no field "ms"/);
    expect(() => parseMode({ kind: 'latency', upstreamMs: -1 })).toThrow(/upstreamMs must be an integer of at least 0/);
    expect(() => parseMode({ kind: 'lost-answers', then: 'explode' })).toThrow(/then must be "hang" or "reset"/);
    expect(() => parseMode({ kind: 'flapping', steps: [] })).toThrow(/steps must be a non-empty list/);
    expect(() => parseMode({ kind: 'flapping', steps: [{ kind: 'pass' }] })).toThrow(/steps\[0\] needs ms/);
    expect(() => parseMode({ kind: 'flapping', steps: [{ kind: 'pass', ms: [50, 10] }] })).toThrow(/min > max/);
    expect(() => parseMode({ kind: 'flapping', steps: [{ kind: 'flapping', steps: [], ms: 5 }] })).toThrow(/cannot itself flap/);
  });

  it('checks the fields of link, slow and errors, as modes and as flapping steps', () => {
    const link = { kind: 'link', upstreamBytesPerSecond: 125_000, downstreamBytesPerSecond: 125_000, upstreamMs: 150, downstreamMs: 150 };
    expect(parseMode(link)).toEqual(link);
    expect(parseMode('slow')).toEqual({ kind: 'slow' });
    expect(parseMode({ kind: 'errors', share: 0.25, answers: ['throttling'], seed: 3 })).toEqual({ kind: 'errors', share: 0.25, answers: ['throttling'], seed: 3 });
    expect(() => parseMode({ kind: 'link', bytesPerSecond: 1000 })).toThrow(/link takes no field "bytesPerSecond" \(it takes upstreamBytesPerSecond, downstreamBytesPerSecond, upstreamMs, downstreamMs\)/);
    expect(() => parseMode({ kind: 'link', upstreamBytesPerSecond: 0 })).toThrow(/upstreamBytesPerSecond must be an integer of at least 1/);
    expect(() => parseMode({ kind: 'link', downstreamMs: 1.5 })).toThrow(/downstreamMs must be an integer of at least 0/);
    expect(() => parseMode({ kind: 'slow', delayMs: [5000, 1000] })).toThrow(/delayMs: the range \[min, max\] has min > max/);
    expect(() => parseMode({ kind: 'slow', delayMs: [1, 2, 3] })).toThrow(/delayMs must be milliseconds or a range \[min, max\]/);
    expect(() => parseMode({ kind: 'errors', share: 1.5 })).toThrow(/share must be a number from 0 to 1, not 1.5/);
    expect(() => parseMode({ kind: 'errors', answers: ['teapot'] })).toThrow(/answers must be a non-empty list of internal-error, unavailable, throttling/);
    expect(() => parseMode({ kind: 'errors', answers: [] })).toThrow(/answers must be a non-empty list/);
    const flapping = { kind: 'flapping', steps: [{ ...link, ms: 1000 }, { kind: 'slow', delayMs: 2000, ms: 500 }, { kind: 'errors', share: 0.5, ms: [100, 200] }] };
    expect(parseMode(flapping)).toEqual(flapping);
    expect(() => parseMode({ kind: 'flapping', steps: [{ kind: 'errors', share: -1, ms: 5 }] })).toThrow(/mode.steps\[0\].share must be a number from 0 to 1/);
  });
});

describe('control endpoint', () => {
  it('switches the mode and reports stats over HTTP', async () => {
    const { target, proxy, client } = await setUp();
    const control = await startControlServer(proxy, { host: '127.0.0.1', port: 0 });
    cleanups.push(() => control.close());
    const put = (body: string) => fetch(`${control.url}/mode`, { method: 'PUT', body, headers: { 'content-type': 'application/json' } });

    const switched = await put('{"kind":"blackhole"}');
    expect(switched.status).toBe(200);
    expect(await switched.json()).toEqual({ mode: { kind: 'blackhole' }, inForce: { kind: 'blackhole' } });
    const one = await client();
    one.write('lost');
    await proxy.until((s) => s.upstream.dropped === 4);
    const stats = (await (await fetch(`${control.url}/stats`)).json()) as { upstream: { dropped: number }; mode: unknown };
    expect(stats.upstream.dropped).toBe(4);
    expect(stats.mode).toEqual({ kind: 'blackhole' });
    expect(target.connections).toBe(0);

    const bad = await put('{"kind":"down"}');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/kind must be one of/);
    const notJson = await put('blackhole');
    expect(notJson.status).toBe(400);
    const badShare = await put('{"kind":"errors","share":2}');
    expect(badShare.status).toBe(400);
    expect(((await badShare.json()) as { error: string }).error).toBe('mode.share must be a number from 0 to 1, not 2');
    const link = { kind: 'link', upstreamBytesPerSecond: 125_000, upstreamMs: 150 };
    const linked = await put(JSON.stringify(link));
    expect(await linked.json()).toEqual({ mode: link, inForce: link });
    expect(await (await put('"blackhole"')).json()).toMatchObject({ mode: { kind: 'blackhole' } });
    expect((await fetch(`${control.url}/mode`)).status).toBe(200);
    expect((await fetch(`${control.url}/stats`, { method: 'DELETE' })).status).toBe(405);
    expect((await fetch(`${control.url}/nothing`)).status).toBe(404);
    expect(proxy.mode).toEqual({ kind: 'blackhole' });
  });

  it('refuses to listen beyond loopback', async () => {
    const { proxy } = await setUp();
    await expect(startControlServer(proxy, { host: '0.0.0.0', port: 0 })).rejects.toThrow(/loopback/);
  });
});

describe('npm run fault-proxy', () => {
  const repo = fileURLToPath(new URL('../..', import.meta.url));

  it('runs as a process of its own, switched through its control endpoint, and stops on SIGTERM', async () => {
    const target = await EchoTarget.start();
    cleanups.push(() => target.close());
    const child: ChildProcess = spawn('npm', ['run', '--silent', 'fault-proxy', '--', '--target', `127.0.0.1:${target.port}`, '--mode', '{"kind":"blackhole"}'], {
      cwd: repo,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    cleanups.push(() => child.exitCode === null && child.kill('SIGKILL'));
    const lines = createInterface({ input: child.stdout! });
    const logged: Array<Record<string, unknown>> = [];
    lines.on('line', (line) => logged.push(JSON.parse(line) as Record<string, unknown>));
    await when(lines, 'line', () => logged.some((entry) => entry.control));
    const started = logged.find((entry) => entry.control) as { listen: string; control: string; mode: unknown };
    expect(started.mode).toEqual({ kind: 'blackhole' });
    const port = Number(started.listen.split(':').at(-1));

    const one = await TestClient.connect(port);
    cleanups.push(() => one.close());
    one.write('lost');
    const dropped = async () => ((await (await fetch(`${started.control}/stats`)).json()) as { upstream: { dropped: number } }).upstream.dropped;
    while ((await dropped()) < 4) await new Promise((resolve) => setTimeout(resolve, 20));
    const switched = await fetch(`${started.control}/mode`, { method: 'PUT', body: '"pass"' });
    expect(switched.status).toBe(200);
    const two = await TestClient.connect(port);
    cleanups.push(() => two.close());
    two.write('through');
    await two.until((c) => c.received === 'through');
    expect(target.received).toBe('through');

    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = await exited;
    expect(code).toBe(0);
  });

  it('refuses a bad mode with what is wrong', async () => {
    const child = spawn('npm', ['run', '--silent', 'fault-proxy', '--', '--target', '127.0.0.1:1', '--mode', '{"kind":"slow","delayMs":[5000,1000]}'], {
      cwd: repo,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    cleanups.push(() => child.exitCode === null && child.kill('SIGKILL'));
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = await once(child, 'exit');
    expect(code).toBe(2);
    expect(stderr).toContain('fault proxy: mode.delayMs: the range [min, max] has min > max');
  });
});
