import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { METRICS_PREFIX, Metrics } from '../../edge-shim/src/observability/metrics.js';
import { edgeStatus, queueStatus } from '../helpers/edge-status.js';
import { parseExposition } from '../helpers/prometheus.js';
import { PROMTOOL } from '../helpers/promtool-setup.js';

// The example alert rules of deploy/prometheus/: valid for Prometheus, each alert firing when it
// should and not before (their unit tests, run by promtool), and each naming metrics the edge has.

const DIRECTORY = fileURLToPath(new URL('../../deploy/prometheus/', import.meta.url));
const RULES = `${DIRECTORY}holdfast-alerts.yml`;
const UNIT_TESTS = `${DIRECTORY}holdfast-alerts.test.yml`;
const run = promisify(execFile);

const alertsIn = (file: string, pattern: RegExp) => new Set([...readFileSync(file, 'utf8').matchAll(pattern)].map((match) => match[1]!));

describe('the example alert rules', () => {
  it('are valid rules for Prometheus', async () => {
    const { stdout } = await run(PROMTOOL, ['check', 'rules', RULES]);
    expect(stdout).toMatch(/SUCCESS: 10 rules found/);
  });

  it('pass their unit tests, and every alert has one', async () => {
    const { stdout } = await run(PROMTOOL, ['test', 'rules', UNIT_TESTS], { cwd: DIRECTORY });
    expect(stdout).toMatch(/SUCCESS/);
    const alerts = alertsIn(RULES, /- alert: (\w+)/g);
    // The five: edge offline, backlog age, store near full, sync conflicts, agent restarts.
    for (const name of ['HoldfastEdgeOffline', 'HoldfastEdgeBacklogOld', 'HoldfastEdgeStoreNearlyFull', 'HoldfastEdgeSyncConflicts', 'HoldfastEdgeAgentRestarting']) expect(alerts).toContain(name);
    expect(alertsIn(UNIT_TESTS, /alertname: (\w+)/g)).toEqual(alerts);
  });

  it("name only metrics the edge exposes", async () => {
    const status = edgeStatus({ queues: [queueStatus('payments.fifo', { oldestBacklogAgeSeconds: 10 })] });
    const families = parseExposition(await new Metrics().exposition(status));
    const named = [...readFileSync(RULES, 'utf8').matchAll(new RegExp(`\\b${METRICS_PREFIX}[a-z_]+`, 'g'))].map((match) => match[0]);
    expect(named.length).toBeGreaterThan(8);
    for (const name of new Set(named)) expect(families.has(name), name).toBe(true);
  });
});
