import type { EdgeStatus } from '../edge-shim/src/observability/status.js';
import { type LoadBalancer, startHaproxy } from '../testkit/haproxy.js';
import { type Cluster, createDatabase, startCluster } from '../testkit/postgres-cluster.js';
import { type DrillEdge, type EdgeOptions, drillCredentials, startEdge } from './edge.js';

/**
 * The edge site the drill runs: one shim on SQLite, or several nodes on one PostgreSQL database
 * behind HAProxy, as a site runs them for a server that may fail during the outage. Producers use
 * `url` (the balancer's); `status` asks the first node still running.
 */
export interface DrillSite extends Omit<DrillEdge, 'process' | 'adminUrl'> {
  readonly nodes: readonly DrillEdge[];
  /** The nodes not killed. */
  running(): readonly DrillEdge[];
  /** SIGKILLs the node that holds the replay lease (the one that would replay); resolves to its name in the status. */
  killReplayingNode(): Promise<string>;
}

export interface SiteOptions extends Omit<EdgeOptions, 'database' | 'credentials' | 'node'> {
  /** 1: one shim on SQLite; more: that many nodes on PostgreSQL. */
  readonly nodes: number;
}

export async function startSite(options: SiteOptions): Promise<DrillSite> {
  if (options.nodes === 1) {
    const edge = await startEdge(options);
    return { ...edge, nodes: [edge], running: () => [edge], killReplayingNode: () => Promise.reject(new Error('a site of one node has no other to take over')) };
  }
  const cluster = await startCluster();
  const started: DrillEdge[] = [];
  let balancer: LoadBalancer | undefined;
  try {
    const database = await createDatabase(cluster.url, 'drill');
    const credentials = drillCredentials();
    for (let index = 0; index < options.nodes; index++) started.push(await startEdge({ ...options, database, credentials, node: String.fromCharCode(97 + index) }));
    balancer = await startHaproxy(started.map((node, index) => ({ name: `node-${index}`, address: new URL(node.url).host })));
    return siteOf(started, balancer, cluster);
  } catch (error) {
    await Promise.allSettled(started.map((node) => node.stop()));
    await balancer?.stop();
    cluster.discard();
    throw error;
  }
}

function siteOf(nodes: readonly DrillEdge[], balancer: LoadBalancer, cluster: Cluster): DrillSite {
  const killed = new Set<DrillEdge>();
  const running = () => nodes.filter((node) => !killed.has(node));
  const first = nodes[0]!;
  const status = async (): Promise<EdgeStatus> => {
    let failure: unknown;
    for (const node of running()) {
      try {
        return await node.status();
      } catch (error) {
        failure = error;
      }
    }
    throw failure;
  };
  return {
    url: balancer.url,
    credentials: first.credentials,
    siteId: first.siteId,
    logFile: first.logFile,
    nodes,
    running,
    status,
    async killReplayingNode() {
      const statuses = await Promise.all(running().map(async (node) => ({ node, status: await node.status() })));
      const holder = statuses.find(({ status }) => status.site?.nodes.find((entry) => entry.name === status.site!.node)?.replays);
      if (!holder) throw new Error('no running node holds the replay lease');
      killed.add(holder.node);
      await holder.node.process.stop('SIGKILL');
      return holder.status.site!.node;
    },
    async stop() {
      await Promise.allSettled(running().map((node) => node.stop()));
      await balancer.stop();
      cluster.discard();
    },
  };
}
