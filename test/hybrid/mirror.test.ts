import { pino } from 'pino';
import { afterEach, expect, it } from 'vitest';
import { QueueMirror } from '../../edge-shim/src/hybrid/region/mirror.js';
import type { MirrorRow, MirrorRows, SiteStore } from '../../edge-shim/src/hybrid/site/ports.js';
import { postgresSite } from '../../edge-shim/src/hybrid/site/postgres-site.js';
import { sqliteSite } from '../../edge-shim/src/hybrid/site/sqlite-site.js';
import { type TestShim, startTestShim, testEngine } from '../helpers/shim.js';

// The mirror of a site of several nodes is read again every second (what the others linked or
// declared): a read that began before this node changed a queue must not undo the change.

let t: TestShim | undefined;
let site: SiteStore | undefined;
afterEach(async () => {
  await site?.close();
  await t?.close();
});

it('keeps what this node changed while a reload of the mirror was reading, and takes the rest of what it read', async () => {
  t = await startTestShim();
  const logger = pino({ level: 'silent' });
  site =
    testEngine() === 'sqlite'
      ? sqliteSite(t.shim.sqlite!.engine, 'node-a', Date.now)
      : await postgresSite({ url: t.dbFile, region: 'us-east-1', accountId: '000000000000', nodeName: 'node-a', logger, clock: Date.now });
  const stored = site.mirrorRows;
  // The rows as stored, held from the mirror until the test lets the reload go on.
  let held: { rows: MirrorRow[]; release: () => void } | undefined;
  let heldNow: (() => void) | undefined;
  const rows: MirrorRows = {
    all: async () => {
      const all = await stored.all();
      await new Promise<void>((release) => {
        held = { rows: all, release };
        heldNow?.();
      });
      return all;
    },
    save: (row) => stored.save(row),
    forget: (name) => stored.forget(name),
  };
  const mirror = new QueueMirror(rows, { endpoint: 'http://region.test', name: 'us-east-1' }, t.shim.service, site.view, logger);
  await mirror.declare('linked-meanwhile', {}, 'pending');
  await mirror.declare('deleted-meanwhile', {}, 'declared');

  const reading = new Promise<void>((resolve) => (heldNow = resolve));
  const reload = mirror.reload();
  await reading;
  expect(held!.rows.map((row) => [row.name, row.state]).sort()).toEqual([
    ['deleted-meanwhile', 'declared'],
    ['linked-meanwhile', 'pending'],
  ]);
  // Meanwhile this node links one queue and deletes another; another node declares a third.
  await mirror.link('linked-meanwhile', 'http://region.test/123456789012/linked-meanwhile');
  await mirror.deleted('deleted-meanwhile');
  held!.rows.push({ name: 'declared-elsewhere', state: 'declared', upstream_path: null, attributes: '{}', mirrored_at: 0 });
  held!.release();
  await reload;

  expect(mirror.stateOf('linked-meanwhile')).toBe('linked');
  expect(mirror.upstreamUrl('linked-meanwhile')).toMatch(/\/123456789012\/linked-meanwhile$/);
  expect(mirror.stateOf('deleted-meanwhile')).toBeUndefined();
  expect(mirror.stateOf('declared-elsewhere')).toBe('declared');
});
