import { closeSync, existsSync, openSync, statSync, statfsSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { Db } from './database.js';
import { SqsError } from './errors.js';

export interface StorageLimits {
  /**
   * Free disk the shim keeps for the operations that shrink its data (receive, delete, purge,
   * delete queue): sends stop while less than this is free, and a file of this size (the reserve)
   * is held next to the database and given up the moment a write finds the disk full. Capped at a
   * tenth of the file system, so a small disk still holds data.
   */
  readonly diskReserveBytes: number;
  /** The most the database (file and WAL) may hold; sends stop beyond it. Infinity: no bound. */
  readonly maxStoreBytes: number;
}

export type StorageState = 'ok' | 'disk-full' | 'store-full';

/** How fast the database file may give its free pages back to the disk. */
export type ShrinkPace = 'freely' | 'a-slice-a-sweep' | 'not-now';

export interface StorageStatus {
  readonly state: StorageState;
  /** What the store holds: the database's pages in use, and its WAL. */
  readonly storeBytes: number;
  readonly maxStoreBytes: number | null;
  /** Free disk, less what the pending WAL checkpoint will add to the database file and the WAL's growth to the size it keeps. */
  readonly diskFreeBytes: number;
  readonly diskReserveBytes: number;
  /** Whether the reserve file is held (given up while the disk is full). */
  readonly reserveHeld: boolean;
}

// How often the free space and the store size are looked at without a reason.
const CHECK_INTERVAL_MS = 1000;
// A store this full of its bound is warned about, once each time it gets there.
const WARN_FRACTION = 0.8;
// A store at its bound takes sends again once it is down to this share of it.
const RESUME_FRACTION = 0.9;
const ZEROS = Buffer.alloc(1024 * 1024);

/** Whether a SQLite error means the disk (or the file size limit) ran out. */
export function isOutOfSpace(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_FULL' || code === 'ENOSPC' || (typeof code === 'string' && code.startsWith('SQLITE_IOERR_WRITE'));
}

/**
 * Keeps the store from filling its disk or its bound, and lets it recover by itself. Operations
 * that add data ask `admit` first and are refused with a retryable ServiceUnavailable while the
 * room for them is short of the reserve or the store is at its bound; everything else goes on, so
 * that consumers can drain the queues and free the space. The room is the free disk less what the
 * pending WAL checkpoint will add to the database file (the WAL's pages past its end: admitted
 * sends take the disk twice, in the WAL and then in the database) and less the WAL's growth to the
 * size it keeps as it starts over (journal_size_limit), plus the pages free inside the
 * database, which sends fill before the disk: a drain makes room at once, without waiting for the
 * file to shrink. Free pages are written through the WAL, though, which needs disk of its own
 * until the checkpoint has copied it: half the reserve stays free of them. If a write finds the
 * disk full anyway (another program filled it), the reserve file is deleted at once, which gives
 * the operations that drain room to run (the service runs them again in it); once the disk has
 * twice the reserve free again, the reserve is taken back and sends resume. When the disk is that
 * short, the sweeper hands free pages back to it, slowly (see `shrinkPace`).
 */
export class StorageGuard {
  private readonly reserveFile: string;
  private readonly directory: string;
  private readonly reserveBytes: number;
  private readonly pageSize: number;
  /** Free disk kept for the WAL, which free pages in the database cannot hold: half the reserve. */
  private readonly walBytes: number;
  /** The size a WAL is cut back to as it starts over (journal_size_limit). */
  private readonly walSizeLimit: number;
  private state: StorageState = 'ok';
  private storeBytes = 0;
  private diskFreeBytes = 0;
  /** Bytes that may still be admitted before the next look at the disk. */
  private headroom = 0;
  private warnedNearBound = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly dbFile: string,
    private readonly db: Db,
    private readonly limits: StorageLimits,
    private readonly logger: Logger,
  ) {
    this.directory = dirname(dbFile);
    this.reserveFile = `${dbFile}.reserve`;
    this.pageSize = db.pragma('page_size', { simple: true }) as number;
    const { blocks, bsize } = statfsSync(this.directory);
    this.reserveBytes = Math.min(limits.diskReserveBytes, Math.floor((blocks * bsize) / 10));
    this.walBytes = this.reserveBytes / 2;
    this.walSizeLimit = db.pragma('journal_size_limit', { simple: true }) as number;
    this.check();
    this.timer = setInterval(() => {
      try {
        this.check();
      } catch (error) {
        this.logger.warn({ err: error }, 'cannot look at the disk and the store; sends are admitted as at the last look');
      }
    }, CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  /** Refuses, with the error a producer retries, an operation that would add `bytes` while storage is short. */
  admit(bytes: number): void {
    this.headroom -= bytes;
    if (this.headroom < 0) this.check();
    if (this.state === 'disk-full') {
      throw new SqsError('ServiceUnavailable', 'The edge store cannot take more messages: its disk is full. Retry later; consumers can still receive and delete.');
    }
    if (this.state === 'store-full') {
      throw new SqsError(
        'ServiceUnavailable',
        `The edge store cannot take more messages: it holds ${this.storeBytes} bytes of its bound of ${this.limits.maxStoreBytes}. Retry later; consumers can still receive and delete.`,
      );
    }
  }

  /** A commit failed: if the disk ran out, give up the reserve so that draining can go on. */
  writeFailed(error: unknown): void {
    if (!isOutOfSpace(error)) return;
    if (existsSync(this.reserveFile)) {
      unlinkSync(this.reserveFile);
      this.logger.error({ reserveBytes: this.reserveBytes }, 'the disk is full: gave up the reserve file so that receives and deletes can go on; sends are refused');
    }
    this.setState('disk-full', 'a write found the disk full');
  }

  /**
   * How fast the sweeper may hand free pages back to the disk. Vacuuming moves pages through the
   * WAL, and on a short disk that is the room receives and deletes need; so freely only with room
   * to spare (twice the reserve). But a disk without the reserve file, or short of the WAL's part,
   * gets its room back from nothing else: then a slice a sweep.
   */
  get shrinkPace(): ShrinkPace {
    if (this.diskFreeBytes >= 2 * this.reserveBytes) return 'freely';
    if (!existsSync(this.reserveFile) || this.diskFreeBytes < this.walBytes) return 'a-slice-a-sweep';
    return 'not-now';
  }

  get status(): StorageStatus {
    return {
      state: this.state,
      storeBytes: this.storeBytes,
      maxStoreBytes: Number.isFinite(this.limits.maxStoreBytes) ? this.limits.maxStoreBytes : null,
      diskFreeBytes: this.diskFreeBytes,
      diskReserveBytes: this.reserveBytes,
      reserveHeld: existsSync(this.reserveFile),
    };
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Looks at the disk and the store, takes the reserve back when there is room, and sets the state. */
  private check(): void {
    let freePageBytes = this.measure();
    // Room wanted beyond the reserve file: the reserve's size, and twice that to leave the disk-full
    // state, so that a checkpoint freeing a few MiB does not flap it. The reserve, when given up, is
    // taken back only with that much disk free besides: free pages cannot hold the reserve file.
    const wanted = (this.state === 'disk-full' ? 2 : 1) * this.reserveBytes;
    // Under steady sends the checkpointer's thread may never find the moment to start the WAL over,
    // and the WAL grows past its size into the last of the disk. Before sends are refused while the
    // WAL holds the room, it is checkpointed here and cut back (TRUNCATE: its blocks are free disk at once).
    const walFileBytes = fileSize(`${this.dbFile}-wal`);
    if (this.lacksRoom(freePageBytes, wanted) && walFileBytes > this.walSizeLimit) {
      const [outcome] = this.db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number; log: number; checkpointed: number }>;
      const diskFreeBefore = this.diskFreeBytes;
      freePageBytes = this.measure();
      this.logger.warn({ walFileBytes, ...outcome, diskFreeBefore, diskFreeBytes: this.diskFreeBytes }, 'the WAL grew into the last of the disk: checkpointed and cut back');
    }
    let reserveHeld = existsSync(this.reserveFile);
    if (!reserveHeld && this.diskFreeBytes >= this.reserveBytes + wanted) reserveHeld = this.takeReserve();
    const room = this.diskFreeBytes + freePageBytes;
    const storeBound = (this.state === 'store-full' ? RESUME_FRACTION : 1) * this.limits.maxStoreBytes;
    if (!reserveHeld || this.lacksRoom(freePageBytes, wanted)) {
      this.setState(
        'disk-full',
        `${room} bytes of room (free disk after the checkpoint, and free pages) besides the reserve, ${wanted} wanted, ` +
          `of which ${this.diskFreeBytes} free disk, ${this.walBytes} wanted for the WAL (its file: ${fileSize(`${this.dbFile}-wal`)} bytes, ` +
          `the database's: ${fileSize(this.dbFile)})${reserveHeld ? '' : '; the reserve file is given up'}`,
      );
    } else if (this.storeBytes >= storeBound) {
      this.setState('store-full', `the store holds ${this.storeBytes} bytes, its bound is ${this.limits.maxStoreBytes}`);
    } else {
      this.setState('ok', 'there is room again');
    }
    this.warnNearBound();
    // Until the next look, admit no more than a quarter of what is left, counted twice (WAL and
    // database). While sends are refused, every send looks again: the first one after a drain is taken.
    const left = Math.min(room - this.reserveBytes, this.diskFreeBytes - this.walBytes, this.limits.maxStoreBytes - this.storeBytes);
    this.headroom = this.state === 'ok' ? Math.max(0, left) / 8 : 0;
  }

  /** Whether the disk, with the pages free inside the database, has less than `wanted` beyond the reserve, or less free than the WAL wants. */
  private lacksRoom(freePageBytes: number, wanted: number): boolean {
    return this.diskFreeBytes + freePageBytes < wanted || this.diskFreeBytes < this.walBytes;
  }

  /** Looks at the disk and the store's size; the bytes of the pages free inside the database. */
  private measure(): number {
    const { bavail, bsize } = statfsSync(this.directory);
    const databaseBytes = (this.db.pragma('page_count', { simple: true }) as number) * this.pageSize;
    const fileBytes = fileSize(this.dbFile);
    // Pages free inside the database: sends fill them before the disk.
    const freePageBytes = (this.db.pragma('freelist_count', { simple: true }) as number) * this.pageSize;
    const walFileBytes = fileSize(`${this.dbFile}-wal`);
    // Disk taken already, though not yet written: the pages past the database file's end, which the
    // checkpoint copies into it, and the WAL's growth to the size it keeps as it starts over.
    this.diskFreeBytes = bavail * bsize - Math.max(0, databaseBytes - fileBytes) - Math.max(0, this.walSizeLimit - walFileBytes);
    this.storeBytes = Math.max(databaseBytes, fileBytes) - freePageBytes + walFileBytes;
    return freePageBytes;
  }

  /** Writes the reserve file (zeros: real blocks, not a sparse file); whether it is held now. */
  private takeReserve(): boolean {
    let fd: number | undefined;
    try {
      fd = openSync(this.reserveFile, 'w');
      for (let written = 0; written < this.reserveBytes; written += ZEROS.length) writeSync(fd, ZEROS, 0, Math.min(ZEROS.length, this.reserveBytes - written));
      closeSync(fd);
      this.diskFreeBytes -= this.reserveBytes;
      return true;
    } catch (error) {
      if (fd !== undefined) closeSync(fd);
      if (existsSync(this.reserveFile)) unlinkSync(this.reserveFile);
      this.logger.warn({ err: error }, 'cannot write the disk reserve file; trying again later');
      return false;
    }
  }

  private setState(next: StorageState, reason: string): void {
    if (next === this.state) return;
    const previous = this.state;
    this.state = next;
    const details = { from: previous, to: next, reason, storeBytes: this.storeBytes, diskFreeBytes: this.diskFreeBytes };
    if (next === 'ok') this.logger.info(details, 'the edge store takes messages again');
    else this.logger.error(details, 'the edge store refuses new messages; receives, deletes and purges go on');
  }

  private warnNearBound(): void {
    const near = this.storeBytes >= WARN_FRACTION * this.limits.maxStoreBytes;
    if (near && !this.warnedNearBound) {
      this.logger.warn({ storeBytes: this.storeBytes, maxStoreBytes: this.limits.maxStoreBytes }, `the edge store is over ${WARN_FRACTION * 100}% of its bound`);
    }
    this.warnedNearBound = near;
  }
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}
