import {
  closeSync,
  fdatasync,
  fdatasyncSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';

/**
 * A segment is a run of blocks, one per write(2): `[body length u32][crc32
 * of body u32][body]`; a body is frames `[lsn f64][payload length
 * u32][payload]`, little-endian. A torn or corrupt block (a crash in the
 * middle of a write) fails its length or checksum, and reading stops there.
 */
const BLOCK_HEADER_BYTES = 8;
const FRAME_HEADER_BYTES = 12;
/** A segment is closed and a new one started past this size. */
const SEGMENT_BYTES = 64 * 1024 * 1024;
const SEGMENT_NAME = /^([0-9a-f]{16})\.wal$/;
/** What opening or syncing a directory answers where directories cannot be synced. */
const CANNOT_SYNC_DIRECTORY = new Set(['EISDIR', 'EACCES', 'EPERM', 'EBADF', 'EINVAL']);
/** Background syncs start at most this often: each costs the disk a flush, and the main thread a call. */
const SYNC_INTERVAL_MS = 10;

export interface LoggedFrame {
  readonly lsn: number;
  readonly payload: Buffer;
}

export interface WriteAheadLogOptions {
  /** Once unsynced writes are this old, acknowledgements wait for the sync (durability=flush's bound). */
  readonly maxUnsyncedMs: number;
  /** Called after each write(2) with the last LSN it wrote (a crash of the process keeps it from then on). */
  readonly onWritten: (lsn: number) => void;
}

interface Segment {
  readonly path: string;
  readonly fd: number;
  bytes: number;
  lastLsn: number;
  /** Whether the directory entry naming the file has been synced. */
  named: boolean;
}

/**
 * Journal entries of writes queued to LMDB (`Storage.writeNow`), appended to
 * files before those writes commit: a write is acknowledged once its entry
 * is written here (a crash of the process keeps it), without waiting for
 * LMDB's commit; the files are synced in the background, and writes wait
 * for that only when it lags by more than `maxUnsyncedMs`. The frames of one event-loop turn go out in
 * one write(2). After a crash, the node replays the entries LMDB does not
 * hold yet (see `read`); segments are removed once LMDB has synced past
 * them (`dropThrough`).
 */
export class WriteAheadLog {
  readonly #dir: string;
  readonly #options: WriteAheadLogOptions;
  #segment: Segment | null = null;
  readonly #closed: Segment[] = [];
  #frames: Buffer[] = [];
  #frameBytes = 0;
  #lastLsn = 0;
  /** The LSN of the first frame not written yet. */
  #firstLsn = 0;
  #flushScheduled = false;
  /** Called once the frames appended so far are written (and synced, when writes wait for that). */
  #afterWrite: ((err: unknown) => void)[] = [];
  /** Waiting for the sync in progress or the next one. */
  #afterSync: ((err: unknown) => void)[] = [];
  #syncing = false;
  /** Written since the last sync started. */
  #unsynced = false;
  /** When the oldest write not yet synced was written (performance.now()), or null. */
  #unsyncedSince: number | null = null;
  #failed: unknown = null;
  #lastSyncAt = -Infinity;
  #syncTimer: NodeJS.Timeout | null = null;

  constructor(dir: string, options: WriteAheadLogOptions) {
    this.#dir = dir;
    this.#options = options;
    mkdirSync(dir, { recursive: true });
  }

  /** Every frame in the directory's segments, in LSN order, up to the first torn or corrupt one. */
  static *read(dir: string): Generator<LoggedFrame> {
    let names: string[];
    try {
      names = readdirSync(dir).filter((name) => SEGMENT_NAME.test(name));
    } catch {
      return;
    }
    names.sort();
    for (const name of names) {
      const bytes = readFileSync(join(dir, name));
      let at = 0;
      while (at + BLOCK_HEADER_BYTES <= bytes.length) {
        const end = at + BLOCK_HEADER_BYTES + bytes.readUInt32LE(at);
        if (end > bytes.length) return;
        const body = bytes.subarray(at + BLOCK_HEADER_BYTES, end);
        if (crc32(body) !== bytes.readUInt32LE(at + 4)) return;
        let from = 0;
        while (from + FRAME_HEADER_BYTES <= body.length) {
          const payloadEnd = from + FRAME_HEADER_BYTES + body.readUInt32LE(from + 8);
          yield {
            lsn: body.readDoubleLE(from),
            payload: body.subarray(from + FRAME_HEADER_BYTES, payloadEnd),
          };
          from = payloadEnd;
        }
        at = end;
      }
      if (at !== bytes.length) return;
    }
  }

  /** Removes every segment (at start, once LMDB holds and has synced everything they held). */
  static clear(dir: string): void {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) if (SEGMENT_NAME.test(name)) rmSync(join(dir, name));
  }

  /**
   * Appends the entry `lsn`; it is written at the end of this event-loop
   * turn. Returns the payload as copied into the log's frame (it does not
   * change: callers keep it instead of a copy of their own).
   */
  append(lsn: number, payload: Buffer): Buffer {
    const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
    frame.writeDoubleLE(lsn, 0);
    frame.writeUInt32LE(payload.length, 8);
    payload.copy(frame, FRAME_HEADER_BYTES);
    if (this.#frames.length === 0) this.#firstLsn = lsn;
    this.#frames.push(frame);
    this.#frameBytes += frame.length;
    this.#lastLsn = lsn;
    this.#scheduleFlush();
    return frame.subarray(FRAME_HEADER_BYTES);
  }

  /** Calls `callback` once every frame appended so far is written, with the error if that failed. */
  afterWrite(callback: (err: unknown) => void): void {
    this.#afterWrite.push(callback);
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = false;
    const waiting = this.#afterWrite;
    this.#afterWrite = [];
    if (this.#frames.length > 0 && this.#failed === null) {
      try {
        this.#write();
        this.#options.onWritten(this.#lastLsn);
      } catch (err) {
        this.#failed = err;
      }
    }
    if (this.#failed !== null) {
      for (const callback of waiting) callback(this.#failed);
      return;
    }
    const now = performance.now();
    const mustSync = this.#unsyncedSince !== null && now - this.#unsyncedSince > this.#options.maxUnsyncedMs;
    if (mustSync && (this.#unsynced || this.#syncing)) this.#afterSync.push(...waiting);
    else for (const callback of waiting) callback(undefined);
    this.#sync();
  }

  #write(): void {
    let segment = this.#segment;
    if (segment === null || segment.bytes >= SEGMENT_BYTES) {
      if (segment !== null) {
        // Background syncs cover the current segment only: the one closed gets its last one now.
        fdatasyncSync(segment.fd);
        if (!segment.named) this.#syncDirectory();
        this.#closed.push(segment);
      }
      const path = join(this.#dir, `${Math.floor(this.#firstLsn).toString(16).padStart(16, '0')}.wal`);
      segment = this.#segment = { path, fd: openSync(path, 'a'), bytes: 0, lastLsn: 0, named: false };
    }
    const block = Buffer.allocUnsafe(BLOCK_HEADER_BYTES + this.#frameBytes);
    let at = BLOCK_HEADER_BYTES;
    for (const frame of this.#frames) at += frame.copy(block, at);
    block.writeUInt32LE(this.#frameBytes, 0);
    block.writeUInt32LE(crc32(block.subarray(BLOCK_HEADER_BYTES)), 4);
    this.#frames = [];
    this.#frameBytes = 0;
    at = 0;
    while (at < block.length) at += writeSync(segment.fd, block, at);
    segment.bytes += block.length;
    segment.lastLsn = this.#lastLsn;
    this.#unsynced = true;
    this.#unsyncedSince ??= performance.now();
  }

  /**
   * Starts a disk sync of the current segment unless one runs (then it
   * follows) or one started less than `SYNC_INTERVAL_MS` ago (then it waits
   * for that, unless writes wait for it).
   */
  #sync(): void {
    if (this.#syncing || !this.#unsynced || this.#segment === null || this.#syncTimer !== null) return;
    const wait = this.#lastSyncAt + SYNC_INTERVAL_MS - performance.now();
    if (wait > 0 && this.#afterSync.length === 0) {
      this.#syncTimer = setTimeout(() => {
        this.#syncTimer = null;
        this.#sync();
      }, wait);
      return;
    }
    this.#lastSyncAt = performance.now();
    this.#syncing = true;
    this.#unsynced = false;
    const since = this.#unsyncedSince;
    this.#unsyncedSince = null;
    const callbacks = this.#afterSync;
    this.#afterSync = [];
    const segment = this.#segment;
    this.#syncFile(segment, (err) => {
      this.#syncing = false;
      if (err !== null) {
        this.#failed ??= err;
        this.#unsyncedSince = since;
      }
      for (const callback of callbacks) callback(err ?? undefined);
      if (this.#unsynced) {
        this.#sync();
        return;
      }
      // Nothing was written since this sync started: it covered what the later callers wait for.
      const covered = this.#afterSync;
      this.#afterSync = [];
      for (const callback of covered) callback(err ?? undefined);
    });
  }

  /**
   * Syncs the log's directory, and the data directory's entry for it (made at the first
   * start). Systems that cannot open or sync a directory (Windows, some network file
   * systems) refuse with these codes, and have nothing to sync; any other error counts.
   */
  #syncDirectory(): void {
    for (const path of [this.#dir, dirname(this.#dir)]) {
      let dir: number;
      try {
        dir = openSync(path, 'r');
      } catch (err) {
        if (CANNOT_SYNC_DIRECTORY.has((err as NodeJS.ErrnoException).code ?? '')) continue;
        throw err;
      }
      try {
        fsyncSync(dir);
      } catch (err) {
        if (!CANNOT_SYNC_DIRECTORY.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
      } finally {
        closeSync(dir);
      }
    }
  }

  /**
   * Syncs the segment's data and, the first time, the directory entry that names it
   * (a file's own sync does not promise that): once per 64 MiB segment, on this thread.
   */
  #syncFile(segment: Segment, done: (err: unknown) => void): void {
    fdatasync(segment.fd, (err) => {
      if (err !== null || segment.named) {
        done(err);
        return;
      }
      try {
        this.#syncDirectory();
        segment.named = true;
        done(null);
      } catch (dirErr) {
        done(dirErr);
      }
    });
  }

  /** Removes the closed segments whose entries all have LSN ≤ `lsn` (LMDB has synced them). */
  dropThrough(lsn: number): void {
    while (this.#closed.length > 0 && this.#closed[0].lastLsn <= lsn) {
      const segment = this.#closed.shift()!;
      closeSync(segment.fd);
      rmSync(segment.path, { force: true });
    }
  }

  /** Closes the files (after the last write; LMDB holds every entry by then). */
  close(): void {
    if (this.#syncTimer !== null) clearTimeout(this.#syncTimer);
    for (const segment of [...this.#closed, ...(this.#segment === null ? [] : [this.#segment])]) {
      closeSync(segment.fd);
    }
    this.#closed.length = 0;
    this.#segment = null;
  }
}
