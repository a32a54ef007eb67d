import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SQSClient } from '@aws-sdk/client-sqs';
import { type RunningShim, type StartOptions, startShim } from '../../edge-shim/src/shim.js';

export interface TestShim {
  readonly shim: RunningShim;
  readonly sqs: SQSClient;
  readonly dir: string;
  /** A clock the test moves forward: `clock.advance(ms)`. */
  readonly clock: TestClock;
  close(): Promise<void>;
}

export class TestClock {
  private offset = 0;
  readonly now = () => Date.now() + this.offset;
  advance(ms: number): void {
    this.offset += ms;
  }
}

export const TEST_CREDENTIALS = { accessKeyId: 'AKIDHOLDFASTTEST', secretAccessKey: 'holdfast-test-secret' };

export function sqsClient(endpoint: string, credentials = TEST_CREDENTIALS): SQSClient {
  return new SQSClient({ endpoint, region: 'us-east-1', credentials, maxAttempts: 1 });
}

/**
 * A shim on free loopback ports (SQS and admin) over a database in a fresh temporary directory. It checks
 * signatures against TEST_CREDENTIALS (what the returned client signs with) unless the options
 * give other credentials (`credentials: []` turns checking off).
 */
export async function startTestShim(options: StartOptions = {}): Promise<TestShim> {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-test-'));
  const clock = new TestClock();
  const shim = await startShim({
    port: 0,
    adminPort: 0,
    dbFile: join(dir, 'shim.db'),
    logLevel: (process.env.TEST_SHIM_LOG_LEVEL ?? 'silent') as 'silent',
    clock: clock.now,
    credentials: [TEST_CREDENTIALS],
    // The default reserve is 64 MiB of zeros written next to every database: more than a test needs.
    diskReserveBytes: 2 ** 20,
    ...options,
  });
  const sqs = sqsClient(shim.url);
  return {
    shim,
    sqs,
    dir,
    clock,
    async close() {
      sqs.destroy();
      await shim.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
