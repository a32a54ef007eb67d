import pg from 'pg';
import type { Logger } from 'pino';
import { type VersionedSchema, migrate, postgresPool } from '../../../../functions/src/edge/index.js';
import type { SqsContext } from '../../sqs/context.js';
import { type PostgresStorage, QUERY_TIMEOUT_MS } from '../../sqs/postgres/engine.js';
import { PostgresQueues, type Queryable } from '../../sqs/postgres/stores.js';
import { CostlyRead, LARGE_COUNT } from '../../sqs/postgres/costly-read.js';
import type { MessageCounts, Queue } from '../../sqs/storage/records.js';
import type { EdgeMode } from '../../observability/status.js';
import type { Lease, MirrorRow, MirrorRows, QueueView, ReplayLedger, SiteNode, SiteStore } from './ports.js';
import { SITE_QUESTION_MS, within } from './within.js';

/**
 * The hybrid edge's tables beside the SQS engine's (sqs/postgres/schema.ts): the mirror, the
 * replay's leases and unanswered attempts (ended with their message), and the nodes of the site.
 */
const HYBRID_SCHEMA: VersionedSchema = {
  name: 'hybrid edge',
  versionTable: 'hybrid_schema_version',
  lock: 0x48796231, // "Hyb1"
  migrations: [
    `
    CREATE TABLE hybrid_upstream_queues (
      name text PRIMARY KEY,
      state text NOT NULL CHECK (state IN ('linked', 'pending', 'declared')),
      upstream_path text,
      attributes text NOT NULL DEFAULT '{}',
      mirrored_at bigint NOT NULL DEFAULT 0
    );
    CREATE TABLE hybrid_replay_leases (
      id bigint PRIMARY KEY REFERENCES sqs_messages (id) ON DELETE CASCADE
    );
    CREATE TABLE hybrid_replay_attempts (
      id bigint PRIMARY KEY REFERENCES sqs_messages (id) ON DELETE CASCADE,
      first_unanswered_at bigint NOT NULL
    );
    CREATE TABLE hybrid_nodes (
      name text PRIMARY KEY,
      mode text NOT NULL,
      replays boolean NOT NULL,
      seen_at bigint NOT NULL
    );
    `,
  ],
};

// The advisory lock of the replay (one node replays: the uplink is the site's), "Rply".
const REPLAY_LOCK = 0x52706c79;
// How often a node that does not hold the replay's lease tries to take it, and one that does checks its connection.
const LEASE_TICK_MS = 1000;
// A lease whose connection does not answer in this long is taken as lost: the node stops replaying.
const LEASE_QUERY_TIMEOUT_MS = 5000;
// The server looks at the lease's connection when it has been idle 5 s, every 2 s, 3 times: a node that lost
// power or its network lets go of the lease within about 11 s, not after the kernel's default of hours.
const LEASE_KEEPALIVES = '-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3';
// Nodes not heard from for this long leave the site's status.
const FORGET_NODES_AFTER_MS = 10 * 60_000;

interface QueueTally {
  readonly stored: number;
  readonly counts: MessageCounts;
  readonly oldest: number | undefined;
}

const EMPTY: QueueTally = { stored: 0, counts: { visible: 0, inFlight: 0, delayed: 0 }, oldest: undefined };

export interface PostgresSiteOptions {
  readonly url: string;
  readonly region: string;
  readonly accountId: string;
  readonly nodeName: string;
  readonly logger: Logger;
  readonly clock: () => number;
}

/**
 * The hybrid edge's store on PostgreSQL, shared by the nodes of a site: the mirror's rows and the
 * replay's bookkeeping in the database, one node replaying under a session advisory lock (released
 * by the server when that node's connection ends, and so taken over when it dies), and a view of
 * the queues read from the database every refresh. (The sync of the agents' work takes a lock of its
 * own: functions/src/edge/sync.ts.)
 */
export async function postgresSite(options: PostgresSiteOptions): Promise<SiteStore> {
  // Bounded as the engine's queries are: a database whose packets are dropped must not hold the node's refreshes for ever.
  const pool = postgresPool(options.url, { maxConnections: 3, queryTimeoutMs: QUERY_TIMEOUT_MS });
  try {
    await migrate(pool, HYBRID_SCHEMA);
  } catch (error) {
    await pool.end();
    throw error;
  }
  const view = new SnapshotView(pool, options);
  await view.refresh();
  const lease = new AdvisoryLease(options.url, REPLAY_LOCK, options.logger.child({ component: 'replay-lease' }));
  lease.start();
  const mirrorRows: MirrorRows = {
    all: async () => (await pool.query<MirrorRow>('SELECT * FROM hybrid_upstream_queues')).rows,
    save: async (row) =>
      void (await pool.query(
        `INSERT INTO hybrid_upstream_queues (name, state, upstream_path, attributes, mirrored_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (name) DO UPDATE SET state = $2, upstream_path = $3, attributes = $4, mirrored_at = $5`,
        [row.name, row.state, row.upstream_path, row.attributes, row.mirrored_at],
      )),
    forget: async (name) => void (await pool.query('DELETE FROM hybrid_upstream_queues WHERE name = $1', [name])),
  };
  return {
    shared: true,
    nodeName: options.nodeName,
    view,
    mirrorRows,
    // Every context of this engine carries its transaction's connection (see PostgresStorage).
    ledger: (context: SqsContext) => new PostgresLedger((context as SqsContext & PostgresStorage).sql),
    replayLease: lease,
    async heartbeat(mode: EdgeMode): Promise<readonly SiteNode[]> {
      const now = options.clock();
      await pool.query(
        `INSERT INTO hybrid_nodes (name, mode, replays, seen_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO UPDATE SET mode = $2, replays = $3, seen_at = $4`,
        [options.nodeName, mode, lease.held, now],
      );
      await pool.query('DELETE FROM hybrid_nodes WHERE seen_at < $1', [now - FORGET_NODES_AFTER_MS]);
      const { rows } = await pool.query<{ name: string; mode: EdgeMode; replays: boolean; seen_at: number }>('SELECT * FROM hybrid_nodes ORDER BY name');
      const nodes = rows.map((row) => ({ name: row.name, mode: row.mode, replays: row.replays, seenAt: row.seen_at }));
      return [...nodes.filter((node) => node.name === options.nodeName), ...nodes.filter((node) => node.name !== options.nodeName)];
    },
    async close() {
      await lease.stop();
      // A node stopped on purpose leaves the site's status at once.
      await pool.query('DELETE FROM hybrid_nodes WHERE name = $1', [options.nodeName]).catch(() => {});
      await pool.end();
    },
  };
}

/** The queues and their counts as last read from the database, plus this node's sends since. */
class SnapshotView implements QueueView {
  private readonly registry: PostgresQueues;
  /** The read under way, which a refresh asked for meanwhile shares. */
  private reading: Promise<void> | undefined;
  private byName = new Map<string, Queue>();
  private tallies = new Map<string, QueueTally>();
  /** Messages this node stored since the snapshot began: the next one counts them. */
  private storedSince = new Map<string, number>();
  /**
   * The counts, which go through every message of the site: every node refreshes its view each
   * second and for each /status, and a large backlog is counted again less often (see CostlyRead).
   * The queues are read at every refresh: a queue another node created must be found at once.
   */
  private readonly counting = new CostlyRead<number>((stored) => stored >= LARGE_COUNT);

  constructor(
    private readonly pool: pg.Pool,
    private readonly options: PostgresSiteOptions,
  ) {
    this.registry = new PostgresQueues(pool, options.region, options.accountId);
  }

  get accountId(): string {
    return this.registry.accountId;
  }

  arnOf(name: string): string {
    return this.registry.arnOf(name);
  }

  queue(name: string): Queue | undefined {
    return this.byName.get(name);
  }

  queues(): readonly Queue[] {
    return [...this.byName.values()];
  }

  storedMessages(name: string): number {
    return (this.tallies.get(name) ?? EMPTY).stored + (this.storedSince.get(name) ?? 0);
  }

  async holdsMessagesNow(name: string): Promise<boolean> {
    if (this.storedMessages(name) > 0) return true;
    const holds = this.pool
      .query<{ holds: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM sqs_messages m JOIN sqs_queues q ON q.id = m.queue_id AND m.epoch = q.purged_through WHERE q.name = $1) AS holds`,
        [name],
      )
      .then(({ rows }) => rows[0]!.holds);
    // The database cannot be asked now (down, or not answering): the view as last read decides, so that sends still reach the region.
    return within(SITE_QUESTION_MS, holds, false);
  }

  counts(name: string): MessageCounts {
    return (this.tallies.get(name) ?? EMPTY).counts;
  }

  oldestMessageAt(name: string): number | undefined {
    return this.tallies.get(name)?.oldest;
  }

  stored(name: string, count: number): void {
    this.storedSince.set(name, (this.storedSince.get(name) ?? 0) + count);
  }

  refresh(): Promise<void> {
    this.reading ??= this.read().finally(() => (this.reading = undefined));
    return this.reading;
  }

  private async read(): Promise<void> {
    const queues = await this.registry.all();
    this.byName = new Map(queues.map((queue) => [queue.name, queue]));
    await this.counting.get(() => this.count(queues));
  }

  /** Counts the site's messages into the tallies; resolves to how many are stored. */
  private async count(queues: readonly Queue[]): Promise<number> {
    // What this node stored before the snapshot's query began is in the snapshot.
    const counted = new Map(this.storedSince);
    const now = this.options.clock();
    const { rows } = await this.pool.query<{ queue_id: number; stored: number; visible: number; in_flight: number; delayed: number; oldest: number | null }>(
      `SELECT m.queue_id, count(*) AS stored,
              count(*) FILTER (WHERE m.visible_at <= $1) AS visible,
              count(*) FILTER (WHERE m.visible_at > $1 AND m.receive_count > 0) AS in_flight,
              count(*) FILTER (WHERE m.visible_at > $1 AND m.receive_count = 0) AS delayed,
              min(m.enqueued_at) AS oldest
       FROM sqs_messages m JOIN sqs_queues q ON q.id = m.queue_id AND m.epoch = q.purged_through
       GROUP BY m.queue_id`,
      [now],
    );
    const byId = new Map(rows.map((row) => [row.queue_id, row]));
    this.tallies = new Map(
      queues.map((queue) => {
        const row = byId.get(queue.id);
        return [queue.name, row ? { stored: row.stored, counts: { visible: row.visible, inFlight: row.in_flight, delayed: row.delayed }, oldest: row.oldest ?? undefined } : EMPTY];
      }),
    );
    for (const [name, count] of counted) {
      const left = (this.storedSince.get(name) ?? 0) - count;
      if (left > 0) this.storedSince.set(name, left);
      else this.storedSince.delete(name);
    }
    return rows.reduce((sum, row) => sum + Number(row.stored), 0);
  }
}

/** The replay's bookkeeping on the connection of the engine's transaction. */
class PostgresLedger implements ReplayLedger {
  constructor(private readonly sql: Queryable) {}

  async lease(id: number): Promise<void> {
    await this.sql.query('INSERT INTO hybrid_replay_leases (id) VALUES ($1) ON CONFLICT DO NOTHING', [id]);
  }

  async attempt(id: number): Promise<{ unansweredAt: number | undefined; held: boolean }> {
    const { rows } = await this.sql.query<{ unanswered_at: number | null; held: boolean }>(
      'SELECT (SELECT first_unanswered_at FROM hybrid_replay_attempts WHERE id = $1) AS unanswered_at, held FROM sqs_messages WHERE id = $1',
      [id],
    );
    return { unansweredAt: rows[0]?.unanswered_at ?? undefined, held: rows[0]?.held === true };
  }

  async unanswered(id: number, now: number): Promise<void> {
    await this.sql.query('INSERT INTO hybrid_replay_attempts (id, first_unanswered_at) VALUES ($1, $2) ON CONFLICT DO NOTHING', [id, now]);
  }

  async leased(): Promise<number[]> {
    return (await this.sql.query<{ id: number }>('SELECT id FROM hybrid_replay_leases')).rows.map((row) => row.id);
  }

  async clearLeases(): Promise<void> {
    await this.sql.query('DELETE FROM hybrid_replay_leases');
  }
}

/**
 * A session advisory lock held on a connection of its own: the server releases it when that
 * connection ends (the node died, or lost the database), and another node's next try takes it. The
 * holder checks its connection every tick, and lets go of the lease as soon as a check fails.
 */
class AdvisoryLease implements Lease {
  private client: pg.Client | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private stopped = false;
  private readonly listeners: Array<(held: boolean) => void> = [];
  held = false;

  constructor(
    private readonly url: string,
    private readonly key: number,
    private readonly logger: Logger,
  ) {}

  onChange(listener: (held: boolean) => void): void {
    this.listeners.push(listener);
  }

  start(): void {
    this.ticking = this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
    await this.drop();
  }

  private async tick(): Promise<void> {
    try {
      this.client ??= await this.connect();
      if (this.held) await this.client.query('SELECT 1');
      else if ((await this.client.query<{ taken: boolean }>('SELECT pg_try_advisory_lock($1) AS taken', [this.key])).rows[0]!.taken) this.change(true);
    } catch (error) {
      if (this.held) this.logger.warn({ err: error }, 'the connection that holds the replay lease failed: this node stops replaying');
      await this.drop();
    }
    if (this.stopped) return;
    this.timer = setTimeout(() => (this.ticking = this.tick()), LEASE_TICK_MS);
    this.timer.unref();
  }

  private async connect(): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString: this.url,
      connectionTimeoutMillis: LEASE_QUERY_TIMEOUT_MS,
      query_timeout: LEASE_QUERY_TIMEOUT_MS,
      keepAlive: true,
      options: LEASE_KEEPALIVES,
    });
    client.on('error', () => void this.drop());
    await client.connect();
    return client;
  }

  /** Ends the connection, and with it the lock (the server releases it). */
  private async drop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (this.held) this.change(false);
    await client?.end().catch(() => {});
  }

  private change(held: boolean): void {
    this.held = held;
    this.logger.info({ held }, held ? 'this node holds the replay lease: it replays the site\'s backlog' : 'this node no longer holds the replay lease');
    for (const listener of this.listeners) listener(held);
  }
}
