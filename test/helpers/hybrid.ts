import { SQSClient } from '@aws-sdk/client-sqs';
import { FaultProxy } from '../../drill/fault-proxy.js';
import type { StartOptions } from '../../edge-shim/src/shim.js';
import { emulator } from './emulator.js';
import { type TestShim, startTestShim } from './shim.js';

export interface HybridTest extends TestShim {
  /** Between the shim and the region: cut it, and mend it, with `proxy.setMode`. */
  readonly proxy: FaultProxy;
  /** A client of the region itself, to check from the outside what reached it. */
  readonly region: SQSClient;
}

/**
 * Settings that make a test's outage short: the region is probed ten times a second, a request to
 * it gives up after half a second, three failures in a row take the edge offline, and three probes
 * in a row over 300 ms bring it back.
 */
export const FAST_HYBRID: StartOptions = {
  upstreamTimeoutMs: 500,
  probeIntervalMs: 100,
  breakerFailures: 3,
  recoveryProbes: 3,
  recoveryMs: 300,
};

/** A hybrid shim in front of the emulator (the region), through a fault proxy. */
export async function startHybridTest(options: StartOptions = {}): Promise<HybridTest> {
  const aws = emulator();
  const proxy = await FaultProxy.start({ target: new URL(aws.endpoint).host });
  const shim = await startTestShim({
    upstream: `http://${proxy.address}`,
    upstreamRegion: aws.region,
    upstreamCredentials: aws.credentials,
    ...FAST_HYBRID,
    ...options,
  });
  const region = new SQSClient({ endpoint: aws.endpoint, region: aws.region, credentials: aws.credentials });
  return {
    ...shim,
    proxy,
    region,
    async close() {
      region.destroy();
      await shim.close();
      await proxy.close();
    },
  };
}
