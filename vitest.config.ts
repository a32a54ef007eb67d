import { defineConfig } from 'vitest/config';

// Eight projects: the edge shim's tests need nothing but the shim; the test kit's (the fault proxy)
// nothing but loopback servers; each outage drill starts a region of its own; the status page's test
// needs Debian's Chromium (/usr/bin/chromium), the example alert rules' Debian's promtool; the cloud
// tests, and the hybrid edge's (the shim in front of the region through a fault proxy), each share
// one AWS emulator (LocalStack at AWS_ENDPOINT_URL, else a moto server the global setup starts); the
// agents' runtime also needs a PostgreSQL cluster (its global setup installs and starts one); the
// security tests need openssl and Chromium.
// The suites of the SQS semantics through the shim, which run on either storage engine.
const SEMANTICS_SUITES = [
  'attributes',
  'clients',
  'dead-letter',
  'deduplication',
  'fifo',
  'fuzz',
  'json-protocol',
  'limits',
  'long-polling',
  'md5',
  'move-tasks',
  'permissions',
  'purge',
  'query-protocol',
  'queue-rollback',
  'queues',
  'receive',
  'retention',
  'send',
  'smoke',
  'tags',
  'visibility',
];

export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // The project runs on Node 20 on purpose; the SDK's notice about Node 22 would fill every log.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    projects: [
      {
        extends: true,
        // HOLDFAST_TEST_ENGINE=postgres runs the shims of these tests on PostgreSQL (test/helpers/shim.ts).
        test: {
          name: 'edge-shim',
          include: ['test/edge-shim/**/*.test.ts'],
          globalSetup: process.env.HOLDFAST_TEST_ENGINE === 'postgres' ? ['test/helpers/postgres-setup.ts'] : [],
        },
      },
      {
        extends: true,
        test: { name: 'testkit', include: ['test/testkit/**/*.test.ts'] },
      },
      {
        extends: true,
        test: { name: 'drill', include: ['test/drill/**/*.test.ts'] },
      },
      {
        extends: true,
        test: { name: 'status-page', include: ['test/status-page/**/*.test.ts'], globalSetup: ['test/helpers/chromium-setup.ts'] },
      },
      {
        extends: true,
        test: { name: 'alerts', include: ['test/alerts/**/*.test.ts'], globalSetup: ['test/helpers/promtool-setup.ts'] },
      },
      {
        extends: true,
        // The agents' runtime and the CDK stack: one project, so that they share one emulator (and one PostgreSQL).
        test: { name: 'cloud', include: ['test/functions/**/*.test.ts', 'test/infra/**/*.test.ts'], globalSetup: ['test/helpers/emulator-setup.ts', 'test/helpers/postgres-setup.ts'] },
      },
      {
        extends: true,
        // The SQS semantics suites again, their shims on PostgreSQL (HOLDFAST_TEST_ENGINE, test/helpers/shim.ts).
        test: {
          name: 'edge-shim-postgres',
          include: SEMANTICS_SUITES.map((suite) => `test/edge-shim/${suite}.test.ts`),
          env: { HOLDFAST_TEST_ENGINE: 'postgres' },
          globalSetup: ['test/helpers/postgres-setup.ts'],
        },
      },
      {
        extends: true,
        // The SQS engine on PostgreSQL, several nodes on one database: each file starts a cluster of its own.
        test: { name: 'postgres-engine', include: ['test/postgres/**/*.test.ts'], hookTimeout: 180_000 },
      },
      {
        extends: true,
        test: { name: 'hybrid', include: ['test/hybrid/**/*.test.ts'], globalSetup: ['test/helpers/emulator-setup.ts'] },
      },
      // The hybrid edge's suites again, its nodes on PostgreSQL: the second engine's matrix, which
      // .ci/run runs after `npm test` (HOLDFAST_ENGINE_MATRIX=1 npx vitest run --project hybrid-postgres).
      ...(process.env.HOLDFAST_ENGINE_MATRIX
        ? [
            {
              extends: true as const,
              test: {
                name: 'hybrid-postgres',
                include: ['test/hybrid/**/*.test.ts'],
                env: { HOLDFAST_TEST_ENGINE: 'postgres' },
                globalSetup: ['test/helpers/emulator-setup.ts', 'test/helpers/postgres-setup.ts'],
              },
            },
          ]
        : []),
      {
        extends: true,
        // Issue 16's findings, each on real sockets: authorization against the emulator, browsers and host names
        // (one test in Chromium), the admin listener (one test in a network namespace of its own, as root), TLS,
        // secrets, file modes, forged receipt handles, a second shim, a corrupted page.
        test: {
          name: 'security',
          include: ['test/security/**/*.test.ts'],
          // Most start shims as processes of their own (two, or one that must refuse): a start
          // takes seconds alone and several times that on a loaded 2-core machine.
          testTimeout: 120_000,
          globalSetup: ['test/helpers/emulator-setup.ts', 'test/helpers/chromium-setup.ts'],
        },
      },
    ],
  },
});
