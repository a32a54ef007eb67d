/**
 * The edge shim's second door into functions/, for the runner and its logger alone: a fallback
 * agent's process loads it after its first heartbeat. Through ./index.ts it would also load the
 * sync engine and the edge database, which it never uses: about twice the load time before the
 * agent is ready.
 */
export { startLocalRunner } from '../event-source/runner.js';
export { holdfastLogger } from '../runtime/log.js';
