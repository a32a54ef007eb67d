import { defineConfig } from 'vitest/config';

// Two projects: the edge shim's tests need nothing but the shim; the cloud tests share one AWS
// emulator (LocalStack at AWS_ENDPOINT_URL, else a moto server the global setup starts).
export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: { name: 'edge-shim', include: ['test/edge-shim/**/*.test.ts'] },
      },
      {
        extends: true,
        test: { name: 'cloud', include: ['test/cloud/**/*.test.ts'], globalSetup: ['test/helpers/emulator-setup.ts'] },
      },
    ],
  },
});
