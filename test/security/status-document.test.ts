import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openEdgeDatabase } from '../../functions/src/edge/index.js';
import { withoutAccountDetails } from '../../edge-shim/src/observability/redaction.js';
import type { ConflictRecord, EdgeStatus } from '../../edge-shim/src/observability/status.js';
import { METRICS_PREFIX } from '../../edge-shim/src/observability/metrics.js';
import { RegionStandIn, awsJsonError } from '../../testkit/region-stand-in.js';
import { parseExposition, sampleValue } from '../helpers/prometheus.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';
import { eventually } from '../helpers/wait.js';
import { getOverTls, makeCertificate } from './support.js';

// Issue 16, what the status document shows: a conflict of the sync by its kind and key only (its
// records, with payment and customer data, are on the admin listener at /conflicts/ID), the
// region's error texts without ARNs or account ids, no process ids. The region is a stand-in that
// refuses the edge's credentials in the words of IAM, naming a role of the account; the edge starts
// offline with its fallback agents, and its agents' database already holds a conflict. The shim
// speaks TLS, so the agents reach it over the loopback listener they get then.

const ACCOUNT = '123456789012';
const ROLE_ARN = `arn:aws:sts::${ACCOUNT}:assumed-role/holdfast-edge/i-0abc123def4567890`;
const REFUSAL = `User: ${ROLE_ARN} is not authorized to perform: sqs:listqueues on resource: arn:aws:sqs:eu-west-1:${ACCOUNT}: because no identity-based policy allows the sqs:listqueues action`;
const CARD = '4111 1111 1111 1111';
const EDGE_RECORD = { paymentId: 'pay-7', status: 'authorized', card: CARD, amountMinor: 4200 };
const REGION_RECORD = { paymentId: 'pay-7', status: 'declined', card: CARD, amountMinor: 4200 };

let dir: string;
let region: RegionStandIn;
let edge: TestShim;
let conflictId: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'holdfast-status-document-'));
  const agentsDb = join(dir, 'edge-agents.db');
  const database = openEdgeDatabase(agentsDb);
  conflictId = Number(
    database
      .prepare(`INSERT INTO sync_conflict (target, kind, record_key, reason, edge, region, first_seen_at, last_seen_at) VALUES (?, 'step', 'pay-7/0', ?, ?, ?, ?, ?)`)
      .run('http://region payments-workflow', 'the region holds another version', JSON.stringify(EDGE_RECORD), JSON.stringify(REGION_RECORD), new Date().toISOString(), new Date().toISOString())
      .lastInsertRowid,
  );
  database.close();
  region = await RegionStandIn.start('http://127.0.0.1:9');
  region.rule = () => awsJsonError(403, 'AccessDenied', REFUSAL);
  const certificate = makeCertificate(dir, 'edge', ['IP:127.0.0.1']);
  edge = await startTestShim({
    upstream: region.url,
    upstreamRegion: 'eu-west-1',
    upstreamCredentials: { accessKeyId: 'AKIDEDGE', secretAccessKey: 'edge-secret' },
    siteId: 'site-1',
    edgeDbFile: agentsDb,
    agentStandby: false,
    regionDynamoDb: 'http://127.0.0.1:9',
    tlsCert: certificate.certFile,
    tlsKey: certificate.keyFile,
  });
}, 60_000);

afterAll(async () => {
  await edge?.close();
  await region?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function document(): Promise<{ text: string; status: EdgeStatus }> {
  const text = await (await fetch(`${edge.shim.adminUrl}/status`)).text();
  return { text, status: JSON.parse(text) as EdgeStatus };
}

it('names the conflict by id, kind and key only; its records are at /conflicts/ID on the admin listener', { timeout: 60_000 }, async () => {
  const { text, status } = await document();
  expect(status.conflicts).toEqual([{ id: conflictId, kind: 'step', key: 'pay-7/0', detectedAt: expect.any(String) }]);
  expect(text).not.toContain(CARD);
  expect(text).not.toContain('declined');

  const record = (await (await fetch(`${edge.shim.adminUrl}/conflicts/${conflictId}`)).json()) as ConflictRecord;
  expect(record).toMatchObject({ id: conflictId, kind: 'step', key: 'pay-7/0', edge: EDGE_RECORD, region: REGION_RECORD, resolvedAt: null });
  expect((await fetch(`${edge.shim.adminUrl}/conflicts/${conflictId + 1}`)).status).toBe(404);
  expect((await fetch(`${edge.shim.adminUrl}/conflicts/x`)).status).toBe(404);
});

it('shows the region\'s refusal without ARNs or account ids, on /status and on /health; the log keeps it whole', { timeout: 60_000 }, async () => {
  const { text, status } = await eventually(document, ({ status: current }) => current.mode === 'offline' && current.upstream!.credentialsRefused !== null);
  expect(status.upstream!.credentialsRefused).toContain('is not authorized to perform: sqs:listqueues');
  expect(status.reason).toContain('is not authorized');
  expect(text).not.toContain('arn:aws');
  expect(text).not.toContain(ACCOUNT);
  // /health answers anyone who reaches the SQS port.
  const healthText = (await getOverTls(`${edge.shim.url}/health`, join(dir, 'edge.crt'))).body;
  expect(JSON.parse(healthText)).toMatchObject({ attention: expect.stringContaining('is not authorized') });
  expect(healthText).not.toContain('arn:aws');
  expect(healthText).not.toContain(ACCOUNT);
});

it('shows the fallback agents without process ids, and they reach the shim on their loopback listener although it speaks TLS', { timeout: 90_000 }, async () => {
  const { text, status } = await eventually(document, ({ status: current }) => current.agents.length > 0 && current.agents.every((agent) => agent.state === 'running'), 200);
  expect(status.agents.every((agent) => !('pid' in agent))).toBe(true);
  expect(text).not.toMatch(/"pid"/);
  // Their polls are the shim's only receives: they got through.
  const receives = async () =>
    sampleValue(parseExposition(await (await fetch(`${edge.shim.adminUrl}/metrics`)).text()), `${METRICS_PREFIX}requests_total`, { action: 'ReceiveMessage', path: 'local' }) ?? 0;
  await eventually(receives, (count) => count > 0, 200);
});

it('takes ARNs and account ids out of any text', () => {
  expect(withoutAccountDetails(REFUSAL)).toBe(
    'User: <arn> is not authorized to perform: sqs:listqueues on resource: <arn> because no identity-based policy allows the sqs:listqueues action',
  );
  expect(withoutAccountDetails(`queue https://sqs.eu-west-1.amazonaws.com/${ACCOUNT}/orders (arn:aws-us-gov:sqs:us-gov-west-1:${ACCOUNT}:orders)`)).toBe(
    'queue https://sqs.eu-west-1.amazonaws.com/<account>/orders (<arn>)',
  );
  expect(withoutAccountDetails('took 1234567890123 ms')).toBe('took 1234567890123 ms');
  expect(withoutAccountDetails(null)).toBeNull();
});
