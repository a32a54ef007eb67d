import { type Server, createServer } from 'node:http';
import { ListQueuesCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { METRICS_PREFIX } from '../../edge-shim/src/observability/metrics.js';
import { parseExposition, sampleValue } from '../helpers/prometheus.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';
import { eventually } from '../helpers/wait.js';
import { type HeadlessChromium, launchChromium } from '../status-page/scenario.js';

// Issue 16, browsers: a web page on another site, opened in a real browser on the site server,
// tries to drive a shim that checks no signatures: a form posted into a hidden frame, an image whose
// URL is an SQS GET, and a fetch without CORS. The browser sends each (nothing stops it); the shim
// must refuse each. 127.0.0.2 is another site than 127.0.0.1 to the browser.

let shim: TestShim;
let site: Server;
let browser: HeadlessChromium;

/** The attacker's page: three ways a page makes a browser send a request to another site. */
function attackerPage(target: string): string {
  return `<!doctype html><html><body>
<iframe name="sink"></iframe>
<form id="form" method="POST" action="${target}/" target="sink"><input name="Action" value="CreateQueue"><input name="QueueName" value="by-form"></form>
<img src="${target}/?Action=CreateQueue&amp;QueueName=by-image">
<script>
document.getElementById('form').submit();
fetch('${target}/', { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'Action=CreateQueue&QueueName=by-fetch' });
</script></body></html>`;
}

beforeAll(async () => {
  shim = await startTestShim({ credentials: [] });
  site = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end(attackerPage(shim.shim.url));
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.2', resolve));
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  site?.close();
  await shim?.close();
});

async function refusedRequests(): Promise<number> {
  const families = parseExposition(await (await fetch(`${shim.shim.adminUrl}/metrics`)).text());
  return sampleValue(families, `${METRICS_PREFIX}request_errors_total`, { action: 'unknown', code: 'AccessDenied' }) ?? 0;
}

it('refuses what a page on another site makes the browser send: a form POST, an image GET, a fetch', async () => {
  const page = await browser.context.newPage();
  try {
    const { port } = site.address() as { port: number };
    await page.goto(`http://127.0.0.2:${port}/`);
    // All three reached the shim, and were refused before being read.
    await eventually(refusedRequests, (refused) => refused >= 3, 100);
  } finally {
    await page.close();
  }
  expect((await shim.sqs.send(new ListQueuesCommand({}))).QueueUrls ?? []).toEqual([]);
});
