// The WAL checkpointer's thread (see checkpointer.ts). Plain JavaScript: a worker thread loads this
// file as it is, whether the server runs under tsx, vitest or from a bundle.
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';

const db = new Database(workerData.file);
db.pragma(`synchronous = ${workerData.synchronous}`);
db.pragma('busy_timeout = 1000');

const timer = setInterval(() => {
  try {
    // PASSIVE never waits for the writer: it copies what it can and leaves the rest for next time.
    const [{ log }] = db.pragma('wal_checkpoint(PASSIVE)');
    // Only a writer that begins right after a complete checkpoint starts the WAL over; under steady
    // writes that moment may never come, so past a size TRUNCATE waits for one (briefly: PASSIVE has
    // already copied nearly everything) and empties the file.
    if (log > workerData.restartFrames) db.pragma('wal_checkpoint(TRUNCATE)');
  } catch (error) {
    parentPort.postMessage({ error: String(error) });
  }
}, workerData.intervalMs);

parentPort.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  db.close();
  parentPort.close();
});
