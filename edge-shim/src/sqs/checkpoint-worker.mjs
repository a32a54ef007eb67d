// The WAL checkpointer's thread (see checkpointer.ts). Plain JavaScript: a worker thread loads this
// file as it is, whether the server runs under tsx, vitest or from a bundle.
import Database from 'better-sqlite3';
import { statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';

const db = new Database(workerData.file);
db.pragma(`synchronous = ${workerData.synchronous}`);
db.pragma('busy_timeout = 1000');
const pageSize = db.pragma('page_size', { simple: true });
const directory = dirname(workerData.file);

// How far past its size the WAL may grow while PASSIVE checkpoints cannot catch up with the writer.
const FORCE_FACTOR = 8;

const timer = setInterval(() => {
  try {
    // PASSIVE never waits for the writer: it copies what it can and leaves the rest for next time.
    const [{ log, checkpointed }] = db.pragma('wal_checkpoint(PASSIVE)');
    // Only a writer that begins right after a complete checkpoint starts the WAL over; under steady
    // writes that moment may never come, so past a size TRUNCATE empties the file. It blocks the
    // writer while it runs: when PASSIVE has just copied everything, only for the truncation (a few
    // ms); copying too (tens of ms or more under load) only once the WAL has grown far past its size.
    // (The storage guard counts the WAL's growth back to journal_size_limit as disk taken.)
    // On a short disk the WAL must not grow into the last of it, which the drain needs: past its
    // size, it starts over, copying included, as soon as it holds more than the disk has free.
    const pastSize = log > workerData.restartFrames;
    if ((pastSize && (checkpointed === log || diskFreeBytes() < log * pageSize)) || log > FORCE_FACTOR * workerData.restartFrames) {
      db.pragma('wal_checkpoint(TRUNCATE)');
    }
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

function diskFreeBytes() {
  const { bavail, bsize } = statfsSync(directory);
  return bavail * bsize;
}
