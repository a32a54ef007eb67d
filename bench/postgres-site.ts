import { type LoadBalancer, startHaproxy } from '../testkit/haproxy.js';
import { createDatabase, startCluster } from '../testkit/postgres-cluster.js';
import { type ShimProcess, spawnShim } from '../testkit/shim-process.js';

/**
 * What the benchmark measures on PostgreSQL: one node, reached directly and through HAProxy (what the
 * balancer's hop costs), two nodes behind HAProxy, and a database for the bare ceiling.
 */
export interface PostgresSite {
  readonly oneNode: ShimProcess;
  /** HAProxy before the one node. */
  readonly oneNodeBalancer: LoadBalancer;
  readonly twoNodes: readonly ShimProcess[];
  /** HAProxy before the two nodes (round robin), as a site runs it. */
  readonly balancer: LoadBalancer;
  /** An empty database of its own, for the bare PostgreSQL ceiling. */
  readonly bareUrl: string;
  stop(): Promise<void>;
}

/**
 * A throwaway PostgreSQL cluster started as the tests start theirs (testkit/postgres-cluster.ts),
 * with a database for each setup so that none measures on another's rows.
 */
export async function startPostgresSite(credentials: readonly string[]): Promise<PostgresSite> {
  const cluster = await startCluster();
  const started: ShimProcess[] = [];
  const balancers: LoadBalancer[] = [];
  const stop = async () => {
    await Promise.all(balancers.map((balancer) => balancer.stop()));
    await Promise.all(started.map((node) => node.stop('SIGTERM')));
    cluster.discard();
  };
  try {
    const database = (name: string) => createDatabase(cluster.url, name);
    const node = async (dbFile: string) => {
      const shim = await spawnShim({ dbFile, credentials });
      started.push(shim);
      return shim;
    };
    const balance = async (nodes: readonly ShimProcess[]) => {
      const balancer = await startHaproxy(nodes.map((shim, index) => ({ name: `node${index}`, address: new URL(shim.url).host })));
      balancers.push(balancer);
      return balancer;
    };
    const oneNode = await node(await database('one_node'));
    const pair = await database('two_nodes');
    // One after the other: the first creates the schema.
    const twoNodes = [await node(pair), await node(pair)];
    return { oneNode, oneNodeBalancer: await balance([oneNode]), twoNodes, balancer: await balance(twoNodes), bareUrl: await database('bare'), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
