import { CreateQueueCommand, ListQueuesCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultProxy } from '../../testkit/fault-proxy.js';
import { startControlServer } from '../../testkit/fault-proxy-control.js';
import { exchange, parseAnswer, sqsError } from '../helpers/raw-http.js';
import { sendRaw } from '../helpers/raw-request.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';

// Issue 16, browsers and host names. A shim without credentials checks no signatures, so a web page
// opened on the site server must not be able to drive it: a cross-site form POST or GET (which
// browsers send without asking), or a page on a name the attacker rebinds to the shim's address
// (DNS rebinding). Requests are written by hand, with exactly the headers a browser sends.

const FORM = 'Content-Type: application/x-www-form-urlencoded\r\n';
const JSON_CREATE_QUEUE = 'Content-Type: application/x-amz-json-1.0\r\nX-Amz-Target: AmazonSQS.CreateQueue\r\n';

let open: TestShim;
/** The shim's own Host: 127.0.0.1 and its port. */
let own: string;
/** A name an attacker rebinds to 127.0.0.1: the browser sends it, with the shim's port. */
let rebound: string;

beforeAll(async () => {
  open = await startTestShim({ credentials: [] });
  own = new URL(open.shim.url).host;
  rebound = `attacker.example:${open.shim.port}`;
});
afterAll(async () => {
  await open?.close();
});

const send = async (request: string) => parseAnswer(await exchange(open.shim.url, request));

async function queueNames(): Promise<string[]> {
  return ((await open.sqs.send(new ListQueuesCommand({}))).QueueUrls ?? []).map((url) => url.split('/').pop()!);
}

describe('a shim without credentials', () => {
  it('refuses a cross-site form POST (it carries Origin) with AccessDenied in the Query protocol, and does nothing', async () => {
    const body = 'Action=CreateQueue&QueueName=posted-by-a-page';
    const answer = await send(`POST / HTTP/1.1\r\nHost: ${own}\r\nOrigin: http://shop.example\r\nSec-Fetch-Site: cross-site\r\n${FORM}Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    expect(sqsError(answer)).toMatchObject({ status: 403, protocol: 'query', code: 'AccessDenied' });
    expect(await queueNames()).not.toContain('posted-by-a-page');
  });

  it('refuses a GET with Origin, and a cross-site GET without it (an image: Sec-Fetch-Site says where it came from)', async () => {
    for (const header of ['Origin: http://shop.example', 'Sec-Fetch-Site: cross-site', 'Sec-Fetch-Site: same-site']) {
      const answer = await send(`GET /?Action=CreateQueue&QueueName=got-by-a-page HTTP/1.1\r\nHost: ${own}\r\n${header}\r\nConnection: close\r\n\r\n`);
      expect(sqsError(answer), header).toMatchObject({ status: 403, code: 'AccessDenied' });
    }
    expect(await queueNames()).not.toContain('got-by-a-page');
  });

  it('answers in the client\'s protocol: a JSON request with Origin gets a JSON AccessDenied', async () => {
    const body = '{"QueueName":"json-from-a-page"}';
    const answer = await send(`POST / HTTP/1.1\r\nHost: ${own}\r\nOrigin: http://shop.example\r\n${JSON_CREATE_QUEUE}Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    expect(sqsError(answer)).toMatchObject({ status: 403, protocol: 'json', code: 'AccessDenied' });
    expect(await queueNames()).not.toContain('json-from-a-page');
  });

  it('refuses a rebound Host, and never echoes it', async () => {
    const body = 'Action=CreateQueue&QueueName=rebound';
    const answer = await send(`POST / HTTP/1.1\r\nHost: ${rebound}\r\n${FORM}Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    expect(sqsError(answer)).toMatchObject({ status: 403, code: 'AccessDenied' });
    expect(answer.body).not.toContain('attacker.example');
    expect(await queueNames()).not.toContain('rebound');
    // A loopback name on another port is not the shim's either.
    expect((await send(`GET /?Action=ListQueues HTTP/1.1\r\nHost: localhost:1\r\nConnection: close\r\n\r\n`)).status).toBe(403);
  });

  it('answers /health to a rebound name with a plain 403, and to its own names', async () => {
    const refused = await send(`GET /health HTTP/1.1\r\nHost: ${rebound}\r\nConnection: close\r\n\r\n`);
    expect(refused.status).toBe(403);
    expect(refused.headers['content-type']).toMatch(/^text\/plain/);
    for (const name of [own, `localhost:${open.shim.port}`]) {
      expect((await send(`GET /health HTTP/1.1\r\nHost: ${name}\r\nConnection: close\r\n\r\n`)).status, name).toBe(200);
    }
  });

  it('takes what SDKs send: no Origin, its own Host, with the queue URLs on that Host', async () => {
    const { QueueUrl } = await open.sqs.send(new CreateQueueCommand({ QueueName: 'from-an-sdk' }));
    expect(QueueUrl).toBe(`${open.shim.url}/000000000000/from-an-sdk`);
    const answer = await send(`GET /?Action=GetQueueUrl&QueueName=from-an-sdk HTTP/1.1\r\nHost: localhost:${open.shim.port}\r\nConnection: close\r\n\r\n`);
    expect(answer.body).toContain(`<QueueUrl>http://localhost:${open.shim.port}/000000000000/from-an-sdk</QueueUrl>`);
  });
});

describe('a shim with credentials', () => {
  let signed: TestShim;
  beforeAll(async () => {
    signed = await startTestShim();
  });
  afterAll(async () => {
    await signed?.close();
  });

  it('takes a request signed for another Host (the Host is signed) but gives queue URLs on the address reached, never that Host', async () => {
    const answer = await sendRaw(signed.shim.url, {
      headers: { host: `attacker.example:${signed.shim.port}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'Action=CreateQueue&QueueName=signed-elsewhere',
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toContain(`<QueueUrl>${signed.shim.url}/000000000000/signed-elsewhere</QueueUrl>`);
    expect(answer.body).not.toContain('attacker.example');
  });
});

describe('--public-url', () => {
  let behindProxy: TestShim;
  beforeAll(async () => {
    behindProxy = await startTestShim({ credentials: [], publicUrl: 'https://edge.site.example:9443' });
  });
  afterAll(async () => {
    await behindProxy?.close();
  });

  it('is the base of every queue URL, and a name the shim answers to (a proxy in front passes it on)', async () => {
    const { QueueUrl } = await behindProxy.sqs.send(new CreateQueueCommand({ QueueName: 'published' }));
    expect(QueueUrl).toBe('https://edge.site.example:9443/000000000000/published');
    const answer = parseAnswer(await exchange(behindProxy.shim.url, 'GET /?Action=ListQueues HTTP/1.1\r\nHost: edge.site.example:9443\r\nConnection: close\r\n\r\n'));
    expect(answer.status).toBe(200);
    expect(answer.body).toContain('<QueueUrl>https://edge.site.example:9443/000000000000/published</QueueUrl>');
  });
});

describe("the fault proxy's control endpoint", () => {
  it('answers its own names only: a rebound page cannot switch the fault', async () => {
    const proxy = await FaultProxy.start({ target: '127.0.0.1:9' });
    const control = await startControlServer(proxy, { host: '127.0.0.1', port: 0 });
    try {
      const { port } = new URL(control.url);
      const body = '"blackhole"';
      const put = (host: string) => exchange(control.url, `PUT /mode HTTP/1.1\r\nHost: ${host}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
      expect(parseAnswer(await put(`attacker.example:${port}`)).status).toBe(403);
      expect(proxy.mode).toEqual({ kind: 'pass' });
      expect(parseAnswer(await put(`127.0.0.1:${port}`)).status).toBe(200);
      expect(proxy.mode).toEqual({ kind: 'blackhole' });
    } finally {
      await control.close();
      await proxy.close();
    }
  });
});
