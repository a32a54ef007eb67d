import type { TestProject } from 'vitest/node';
import { startCluster } from '../../testkit/postgres-cluster.js';

/**
 * Global setup of the tests that need PostgreSQL: a throwaway cluster of their own, stopped and
 * removed afterwards. Tests get its URL from postgresUrl() (postgres.ts).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cluster = await startCluster();
  project.provide('postgresUrl', cluster.url);
  return async () => cluster.discard();
}

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string;
  }
}
