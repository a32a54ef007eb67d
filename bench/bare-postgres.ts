import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { type ScenarioResult, summarize } from './load.js';

// The ceiling of a queue on PostgreSQL through the same client library as the shim's engine (pg),
// with no shim: per message one INSERT, and one DELETE of the oldest row RETURNING its body, each
// statement a transaction of its own, by closed-loop clients on a connection each.
const TABLE = 'bare_messages';
const INSERT = `INSERT INTO ${TABLE} (body) VALUES ($1)`;
// SKIP LOCKED, as the shim's receives: concurrent clients take different rows instead of queueing on one.
const DELETE_OLDEST = `DELETE FROM ${TABLE} WHERE id = (SELECT id FROM ${TABLE} ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING body`;

export class BarePostgres {
  private constructor(private readonly url: string) {}

  /** Creates the table on the database at `url` (an empty database of its own). */
  static async open(url: string): Promise<BarePostgres> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(`CREATE TABLE ${TABLE} (id bigserial PRIMARY KEY, body text NOT NULL)`);
    } finally {
      await client.end();
    }
    return new BarePostgres(url);
  }

  /** `clients` clients inserting one message per statement for `durationMs`. */
  insert(clients: number, durationMs: number, body: (index: number) => string): Promise<ScenarioResult> {
    return this.closedLoop(clients, durationMs, async (client, index) => {
      await client.query(INSERT, [body(index)]);
      return true;
    });
  }

  /** `clients` clients each deleting the oldest message per statement for `durationMs`; a delete that found none counts as an empty receive. */
  deleteOldest(clients: number, durationMs: number): Promise<ScenarioResult> {
    return this.closedLoop(clients, durationMs, async (client) => (await client.query(DELETE_OLDEST)).rowCount === 1);
  }

  private async closedLoop(clients: number, durationMs: number, statement: (client: pg.Client, index: number) => Promise<boolean>): Promise<ScenarioResult> {
    const connections = await Promise.all(
      Array.from({ length: clients }, async () => {
        const client = new pg.Client({ connectionString: this.url });
        await client.connect();
        return client;
      }),
    );
    const latencies: number[] = [];
    const tally = { requests: 0, messages: 0, errors: 0, emptyReceives: 0, errorSample: undefined as string | undefined };
    const eluBefore = performance.eventLoopUtilization();
    const started = performance.now();
    const deadline = started + durationMs;
    try {
      await Promise.all(
        connections.map(async (client, first) => {
          for (let index = first; performance.now() < deadline; index += clients) {
            const start = performance.now();
            try {
              if (await statement(client, index)) tally.messages++;
              else tally.emptyReceives++;
              latencies.push(performance.now() - start);
              tally.requests++;
            } catch (error) {
              tally.errors++;
              tally.errorSample ??= String(error);
            }
          }
        }),
      );
    } finally {
      await Promise.all(connections.map((client) => client.end()));
    }
    const elapsedMs = performance.now() - started;
    const elu = performance.eventLoopUtilization(eluBefore).utilization;
    return summarize([{ ...tally, elapsedMs, elu, latencies: Float64Array.from(latencies) }], elapsedMs);
  }
}
