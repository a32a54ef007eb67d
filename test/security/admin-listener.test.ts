import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../edge-shim/src/config.js';
import { startShim } from '../../edge-shim/src/shim.js';
import { exchange, parseAnswer } from '../helpers/raw-http.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';
import { type NetworkNamespace, makeCertificate, makeNetworkNamespace } from './support.js';

// Issue 16, the operator pages: /status, /metrics and the status page on a listener of their own,
// on loopback by default, never on the SQS port that producers reach from the site's network; and
// beyond loopback only behind a token.

const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
const PAGES = ['/status', '/status/history', '/metrics', '/', '/ui', '/ui/status-page.js', '/ui/status-page.css', '/ui/uPlot.iife.min.js'];

describe('on loopback, the default', () => {
  let t: TestShim;
  beforeAll(async () => {
    t = await startTestShim();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('serves the operator pages and /health on the admin listener, without SQS signatures', async () => {
    expect(t.shim.adminUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(t.shim.adminUrl).not.toBe(t.shim.url);
    for (const path of [...PAGES, '/health']) {
      const response = await fetch(`${t.shim.adminUrl}${path}`, { headers: { accept: BROWSER_ACCEPT } });
      expect(response.status, path).toBe(200);
    }
    expect(await (await fetch(`${t.shim.adminUrl}/status`)).json()).toMatchObject({ mode: 'standalone' });
  });

  it('serves none of them on the SQS port, only /health', async () => {
    for (const path of PAGES) {
      const response = await fetch(`${t.shim.url}${path}`, { headers: { accept: BROWSER_ACCEPT } });
      const body = await response.text();
      expect(response.status, path).not.toBe(200);
      expect(body, path).not.toMatch(/"mode"|"samples"|holdfast_edge_|<title>|uPlot/);
    }
    expect((await fetch(`${t.shim.url}/health`)).status).toBe(200);
  });

  it('answers a rebound name with a plain 403 (a web page cannot read the pages through DNS rebinding)', async () => {
    const { port } = new URL(t.shim.adminUrl);
    const answer = parseAnswer(await exchange(t.shim.adminUrl, `GET /status HTTP/1.1\r\nHost: attacker.example:${port}\r\nConnection: close\r\n\r\n`));
    expect(answer.status).toBe(403);
    expect(answer.headers['content-type']).toMatch(/^text\/plain/);
    expect(answer.body).not.toMatch(/"mode"/);
    expect(parseAnswer(await exchange(t.shim.adminUrl, `GET /status HTTP/1.1\r\nHost: localhost:${port}\r\nConnection: close\r\n\r\n`)).status).toBe(200);
  });

  it('answers GET and HEAD only', async () => {
    expect((await fetch(`${t.shim.adminUrl}/metrics`, { method: 'HEAD' })).status).toBe(200);
    expect((await fetch(`${t.shim.adminUrl}/status`, { method: 'POST', body: '{}' })).status).toBe(405);
  });
});

it('refuses to start with the admin listener beyond loopback and no token', async () => {
  await expect(startShim({ port: 0, adminHost: '0.0.0.0', adminPort: 0, dbFile: ':memory:', logLevel: 'silent' })).rejects.toThrow(ConfigError);
  await expect(startShim({ port: 0, adminHost: '0.0.0.0', adminPort: 0, dbFile: ':memory:', logLevel: 'silent' })).rejects.toThrow(/--admin-token-file/);
});

// 127.0.0.2 would not do: it is loopback by the shim's rules (and reachable only from this
// machine). The listener is bound to an address of a veth pair instead, and asked from the other
// end, in a network namespace of the test's own: as a laptop on the site's network would.
describe('beyond loopback: from another network namespace', () => {
  let namespace: NetworkNamespace | string;
  let dir: string;
  let t: TestShim | undefined;
  const token = randomBytes(24).toString('hex');

  beforeAll(async () => {
    namespace = makeNetworkNamespace();
    if (typeof namespace === 'string') return;
    dir = mkdtempSync(join(tmpdir(), 'holdfast-admin-'));
    const tokenFile = join(dir, 'admin-token');
    writeFileSync(tokenFile, `${token}\n`);
    const certificate = makeCertificate(dir, 'edge', [`IP:${namespace.address}`, 'IP:127.0.0.1']);
    // A client that prints what it was answered, run in the namespace; it trusts the test's certificate.
    writeFileSync(
      join(dir, 'client.mjs'),
      `import { readFileSync } from 'node:fs';
import { request } from 'node:https';
const [url, ca, authorization] = process.argv.slice(2);
request(url, { ca: readFileSync(ca), headers: authorization ? { authorization } : {} }, (response) => {
  let body = '';
  response.setEncoding('utf8').on('data', (chunk) => (body += chunk)).on('end', () => console.log(JSON.stringify({ status: response.statusCode, challenge: response.headers['www-authenticate'], body })));
}).on('error', (error) => console.log(JSON.stringify({ error: error.code ?? error.message }))).end();
`,
    );
    t = await startTestShim({ adminHost: namespace.address, adminTokenFile: tokenFile, tlsCert: certificate.certFile, tlsKey: certificate.keyFile });
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    if (typeof namespace !== 'string') namespace?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** GET of an admin page from inside the namespace. */
  async function fromTheNetwork(path: string, authorization?: string): Promise<{ status?: number; challenge?: string; body?: string; error?: string }> {
    const namespaced = namespace as NetworkNamespace;
    const result = await namespaced.run(process.execPath, [join(dir, 'client.mjs'), `${t!.shim.adminUrl}${path}`, join(dir, 'edge.crt'), ...(authorization ? [authorization] : [])]);
    return JSON.parse(result.stdout) as { status?: number; body?: string; error?: string };
  }

  it('speaks TLS there, and refuses every page without the token', async (context) => {
    if (typeof namespace === 'string') context.skip(namespace);
    expect(t!.shim.adminUrl).toMatch(new RegExp(`^https://${(namespace as NetworkNamespace).address.replaceAll('.', '\\.')}:\\d+$`));
    for (const path of ['/status', '/status/history', '/metrics', '/', '/conflicts/1']) {
      const answer = await fromTheNetwork(path);
      expect(answer, path).toMatchObject({ status: 401, challenge: expect.stringContaining('Basic') });
      expect(answer.body, path).not.toMatch(/"mode"|"samples"|holdfast_edge_|<title>/);
    }
    expect(await fromTheNetwork('/status', `Bearer ${token.slice(1)}x`)).toMatchObject({ status: 401 });
    expect(await fromTheNetwork('/status', `Basic ${Buffer.from(`operator:${token}x`).toString('base64')}`)).toMatchObject({ status: 401 });
  });

  it('answers with the token, as a bearer token (Prometheus, curl) or as the password of Basic (a browser asks for it)', async (context) => {
    if (typeof namespace === 'string') context.skip(namespace);
    const bearer = await fromTheNetwork('/status', `Bearer ${token}`);
    expect(bearer.status).toBe(200);
    expect(JSON.parse(bearer.body!)).toMatchObject({ mode: 'standalone' });
    expect(await fromTheNetwork('/metrics', `Basic ${Buffer.from(`operator:${token}`).toString('base64')}`)).toMatchObject({ status: 200, body: expect.stringContaining('holdfast_edge_mode') });
  });
});
