import { afterAll, expect, it } from 'vitest';
import { RegionClient } from '../../edge-shim/src/hybrid/region/client.js';
import { emulator } from '../helpers/emulator.js';

// The region's client against the emulator: what the replayer and the router hand it, as they do.

const aws = emulator();
const client = new RegionClient({ ...aws, connectTimeoutMs: 5_000, requestTimeoutMs: 10_000, maxAttempts: 1, maxTransfers: 2 });
afterAll(() => client.destroy());

it('takes a timeout that is not a whole number of milliseconds (the replay derives its batches\' from sizes and measured rates)', async () => {
  // A fractional timeout once failed every batch before it left: AbortSignal.timeout takes whole milliseconds only.
  const answer = await client.call('ListQueues', {}, { kind: 'transfer', timeoutMs: 4202.888 });
  expect(answer).toBeTypeOf('object');
  const probe = await client.call('ListQueues', {}, { kind: 'probe', timeoutMs: 1234.5 });
  expect(probe).toBeTypeOf('object');
});
