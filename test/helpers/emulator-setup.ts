import type { TestProject } from 'vitest/node';
import { startMoto } from '../../functions/src/local-pipeline/moto.js';

/**
 * Global setup of the cloud tests: the AWS emulator they all share. LocalStack when AWS_ENDPOINT_URL
 * already points at one; otherwise a moto server on a free loopback port, stopped afterwards.
 * Tests get the endpoint from emulator() (emulator.ts).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env.AWS_ENDPOINT_URL) {
    project.provide('awsEndpoint', process.env.AWS_ENDPOINT_URL);
    return async () => {};
  }
  const moto = await startMoto();
  project.provide('awsEndpoint', moto.endpoint);
  return () => moto.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    awsEndpoint: string;
  }
}
