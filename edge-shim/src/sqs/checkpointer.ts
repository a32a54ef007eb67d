import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Db, Durability } from './database.js';

// WAL frames past which the checkpointer makes the WAL start over: SQLite's own checkpoint threshold.
const RESTART_FRAMES = 1000;

export interface Checkpointer {
  stop(): Promise<void>;
}

/**
 * Moves WAL checkpoints off the event loop. SQLite's automatic checkpoint runs inside the COMMIT
 * that crosses its threshold, fsyncs included, and so stalls every request behind it; here a worker
 * thread with its own connection checkpoints every `intervalMs` instead, and the serving connection
 * never does. Durability is unchanged: a commit is durable in the WAL before anything is answered.
 */
export function startCheckpointer(db: Db, file: string, durability: Durability, logger: Logger, intervalMs = 200): Checkpointer {
  const worker = new Worker(new URL('./checkpoint-worker.mjs', import.meta.url), {
    workerData: { file, synchronous: durability === 'power' ? 'FULL' : 'NORMAL', intervalMs, restartFrames: RESTART_FRAMES },
    // Plain JavaScript needs no loader; inheriting tsx's or vitest's hooks stalls the worker's start.
    execArgv: [],
  });
  worker.on('message', (message: { error?: string }) => logger.warn({ error: message.error }, 'WAL checkpoint failed; retrying'));
  worker.on('error', (error) => logger.error({ err: error }, 'WAL checkpointer stopped; SQLite checkpoints on commit again'));
  worker.on('error', () => db.open && db.pragma('wal_autocheckpoint = 1000'));
  db.pragma('wal_autocheckpoint = 0');
  worker.unref();
  // A worker that failed has exited already: stopping it must not wait for an exit that came.
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  return {
    async stop() {
      worker.ref(); // keep the process alive until the worker has closed its connection
      worker.postMessage('stop');
      await exited;
    },
  };
}
