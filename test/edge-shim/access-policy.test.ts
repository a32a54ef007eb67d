import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ACTION_GROUPS, AccessPolicy, NAMED_ONLY, groupOf } from '../../edge-shim/src/authz/policy.js';

// The access policy on its own: how a file is read, what `*`, patterns and "known" cover, and
// what is refused. The policy in front of a real edge is tested in test/security/.

const dir = mkdtempSync(join(tmpdir(), 'holdfast-policy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const policy = (document: unknown) => {
  const file = join(dir, `policy-${(files += 1)}.json`);
  writeFileSync(file, typeof document === 'string' ? document : JSON.stringify(document));
  return AccessPolicy.fromFile(file);
};
const known = (...names: string[]) => ({ knows: (name: string) => names.includes(name) });

describe('access policy', () => {
  it('puts every SQS action in one group', () => {
    const actions = Object.values(ACTION_GROUPS).flat();
    expect(new Set(actions).size).toBe(actions.length);
    expect(actions).toHaveLength(23);
    expect(groupOf('PurgeQueue')).toBe('purge');
    expect(groupOf('DoSomethingElse')).toBeUndefined();
  });

  it('grants by group and queue pattern, to the keys it names only', () => {
    const read = policy({ keys: { AKID1: [{ allow: ['send', 'read'], queues: ['payments-*.fifo', 'orders'] }] } });
    expect(read.allows('AKID1', 'send', 'payments-eu.fifo', known())).toBe(true);
    expect(read.allows('AKID1', 'send', 'payments-eu', known())).toBe(false);
    expect(read.allows('AKID1', 'send', 'orders', known())).toBe(true);
    expect(read.allows('AKID1', 'send', 'orders-archive', known())).toBe(false);
    expect(read.allows('AKID1', 'receive', 'orders', known())).toBe(false);
    expect(read.allows('AKID2', 'send', 'orders', known())).toBe(false);
    expect(read.allows(undefined, 'send', 'orders', known())).toBe(false);
    // ListQueues concerns no one queue: a grant of read anywhere allows it.
    expect(read.allows('AKID1', 'read', undefined, known())).toBe(true);
  });

  it('never grants the named-only groups through *', () => {
    const all = policy({ keys: { anonymous: [{ allow: ['*'], queues: ['*'] }] } });
    for (const group of NAMED_ONLY) expect(all.allows(undefined, group, 'any', known())).toBe(false);
    expect(all.allows(undefined, 'manage', 'any', known())).toBe(true);
    const named = policy({ keys: { anonymous: [{ allow: ['*', 'purge'], queues: ['*'] }] } });
    expect(named.allows(undefined, 'purge', 'any', known())).toBe(true);
    expect(named.allows(undefined, 'delete', 'any', known())).toBe(false);
  });

  it('covers the known queues, and creating a new one, with "known"', () => {
    const edge = AccessPolicy.defaultForEdge();
    expect(edge.allows('AKID', 'send', 'declared', known('declared'))).toBe(true);
    expect(edge.allows('AKID', 'send', 'elsewhere', known('declared'))).toBe(false);
    expect(edge.allows('AKID', 'create', 'new-queue', known('declared'))).toBe(true);
    expect(edge.names('AKID', 'create', 'new-queue')).toBe(false);
    for (const group of ['manage', 'permissions', 'delete', 'purge', 'move'] as const) expect(edge.allows('AKID', group, 'declared', known('declared'))).toBe(false);
    expect(AccessPolicy.defaultForStandalone().allows(undefined, 'delete', 'anything', known())).toBe(true);
  });

  it.each([
    ['not JSON', '{keys', /cannot read the access policy/],
    ['no keys', { grants: [] }, /must hold \{"keys"/],
    ['grants that are not a list', { keys: { K: {} } }, /grants of K must be a list/],
    ['an unknown group', { keys: { K: [{ allow: ['write'], queues: ['*'] }] } }, /"write" is not a group of actions/],
    ['no groups', { keys: { K: [{ allow: [], queues: ['*'] }] } }, /"allow" must list groups/],
    ['no queues', { keys: { K: [{ allow: ['send'] }] } }, /"queues" must list queue names/],
  ])('refuses a file with %s, saying where', (_, document, message) => {
    expect(() => policy(document)).toThrow(message);
  });
});
