import type { Database, RangeOptions } from 'lmdb';
import type { Storage } from './environment.js';

/** The overlay's map is copied once this many rows (plus four per row it holds) have left it. */
const FRESH_MAP_AFTER = 1024;

/** A range of rows: `start` inclusive, `end` exclusive, as lmdb-js takes it. */
export interface RowRange {
  readonly start?: Buffer;
  readonly end?: Buffer;
  readonly reverse?: boolean;
  readonly limit?: number;
}

export interface Row {
  readonly key: Buffer;
  readonly value: Buffer;
}

/** A row written and not yet committed. */
export interface Pending {
  readonly row: Buffer;
  /** `row` as the overlay's map key (computed once per write). */
  readonly id: string;
  /** null: removed. */
  readonly value: Buffer | null;
  /** The write that made it (see `Storage.currentMark`). */
  readonly mark: number;
  /**
   * The uncommitted row it replaced, for when its write is undone; cleared once that
   * row commits, or a key rewritten without pause would keep every version it ever had.
   */
  replaced: Pending | undefined;
  /** The later write of the same row until this one commits: a transaction holding both need not write this one. */
  next: Pending | undefined;
}

/**
 * An LMDB table of binary rows whose writes are readable at once, before
 * they commit: `Storage.writeNow` applies a turn's writes to LMDB later, and
 * until that commit shows they live here, in an overlay that every read
 * outside a transaction consults first. Inside a transaction LMDB itself
 * holds every write queued before it, so reads go straight there. Rows
 * leave the overlay once the write that made them is visible.
 *
 * Writes go through `put`, `remove` and `clear` only (they work both inside
 * a transaction and queued), never through the lmdb-js table.
 */
export class OverlaidTable {
  readonly db: Database<Buffer, Buffer>;
  readonly #storage: Storage;
  #pending = new Map<string, Pending>();
  /** Rows let go of since `#pending` was made (see `#committed`). */
  #releasedSinceFresh = 0;
  /** The rows in the order they were written, to leave the overlay by mark. */
  readonly #written: Pending[] = [];
  #writtenHead = 0;
  /** While above the visible mark: a `clear` is not committed yet, LMDB's rows are gone. */
  #clearedAt = 0;

  constructor(storage: Storage, db: Database<Buffer, Buffer>) {
    this.#storage = storage;
    this.db = db;
    storage.onVisible((mark) => this.#committed(mark));
    storage.afterAbort((undone) => (undone === null ? this.#forget() : this.#undo(undone)));
  }

  /** Whether reads must look at the overlay (outside a transaction, with rows in it). */
  get #overlaid(): boolean {
    return (this.#pending.size > 0 || this.#clearedAt > 0) && this.#storage.running !== 'transaction';
  }

  /** The value of `row`; lmdb-js may reuse the buffer on its next read. */
  getBinaryFast(row: Buffer): Buffer | undefined {
    if (this.#overlaid) {
      const pending = this.#pending.get(row.toString('latin1'));
      if (pending !== undefined) return pending.value ?? undefined;
      if (this.#clearedAt > 0) return undefined;
    }
    return this.db.getBinaryFast(row);
  }

  /** The value of `row` in a buffer of its own. */
  getBinary(row: Buffer): Buffer | undefined {
    if (this.#overlaid) {
      const pending = this.#pending.get(row.toString('latin1'));
      if (pending !== undefined) return pending.value === null ? undefined : Buffer.from(pending.value);
      if (this.#clearedAt > 0) return undefined;
    }
    return this.db.getBinary(row);
  }

  doesExist(row: Buffer): boolean {
    return this.getBinaryFast(row) !== undefined;
  }

  /** Inside a write: stores `value` (neither it nor `row` may change afterwards: a queued write reads them later). */
  put(row: Buffer, value: Buffer): true {
    this.#storage.put(this.db, row, value, this.#remember(row, value));
    return true;
  }

  /** Inside a write: removes `row`; whether it was there. */
  remove(row: Buffer): boolean {
    if (!this.doesExist(row)) return false;
    this.#storage.remove(this.db, row, this.#remember(row, null));
    return true;
  }

  /** Inside a write: stores `value` unless `row` exists; whether it stored. */
  insert(row: Buffer, value: Buffer): boolean {
    if (!this.#storage.logging) return this.#storage.putIfAbsent(this.db, row, value);
    if (this.doesExist(row)) return false;
    return this.put(row, value);
  }

  /** Inside a write: removes every row. */
  clear(): void {
    this.#pending.clear();
    this.#written.length = 0;
    this.#writtenHead = 0;
    this.#clearedAt = this.#storage.currentMark;
    this.#storage.clear(this.db);
  }

  getRange(range: RowRange): Iterable<Row> {
    if (!this.#overlaid) return this.db.getRange(range);
    return this.#merged(range);
  }

  getKeys(range: RowRange = {}): Iterable<Buffer> {
    if (!this.#overlaid) return this.db.getKeys(range);
    return mapRows(this.#merged(range), (row) => row.key);
  }

  getCount(range: RowRange = {}): number {
    if (!this.#overlaid) return this.db.getCount(range);
    let n = 0;
    for (const row of this.#merged(range)) if (row !== undefined) n++;
    return n;
  }

  /** The committed rows of `range` merged with the overlay's, in key order. */
  *#merged(range: RowRange): Generator<Row> {
    const { start, end, reverse = false, limit = Infinity } = range;
    if (limit <= 0) return;
    // With `reverse`, lmdb-js reads from `start` down to `end`.
    const low = reverse ? end : start;
    const high = reverse ? start : end;
    const inRange = (row: Buffer): boolean =>
      (low === undefined || (reverse ? Buffer.compare(row, low) > 0 : Buffer.compare(row, low) >= 0)) &&
      (high === undefined || (reverse ? Buffer.compare(row, high) <= 0 : Buffer.compare(row, high) < 0));
    const overlay: Pending[] = [];
    for (const pending of this.#pending.values()) if (inRange(pending.row)) overlay.push(pending);
    overlay.sort((a, b) => (reverse ? Buffer.compare(b.row, a.row) : Buffer.compare(a.row, b.row)));
    const base: Iterator<Row> | undefined =
      this.#clearedAt > 0 ? undefined : this.db.getRange(unlimited(range))[Symbol.iterator]();
    let next = base?.next();
    let o = 0;
    let given = 0;
    const before = (a: Buffer, b: Buffer): number => (reverse ? Buffer.compare(b, a) : Buffer.compare(a, b));
    while (given < limit) {
      const committed = next === undefined || next.done === true ? undefined : next.value;
      const pending = o < overlay.length ? overlay[o] : undefined;
      if (committed === undefined && pending === undefined) return;
      const order =
        committed === undefined ? 1 : pending === undefined ? -1 : before(committed.key, pending.row);
      if (order < 0) {
        next = base!.next();
        given++;
        yield committed!;
        continue;
      }
      // The overlay's row replaces (or removes) the committed one of the same key.
      if (order === 0) next = base!.next();
      o++;
      if (pending!.value === null) continue;
      given++;
      yield { key: pending!.row, value: pending!.value };
    }
  }

  /**
   * Without a write-ahead log every write is a transaction and no write runs
   * before it commits: nothing needs the overlay (a load on a worker thread,
   * durability=fsync, a recovery).
   */
  #remember(row: Buffer, value: Buffer | null): Pending | undefined {
    if (!this.#storage.logging) return undefined;
    const id = row.toString('latin1');
    const replaced = this.#pending.get(id);
    const pending: Pending = { row, id, value, mark: this.#storage.currentMark, replaced, next: undefined };
    if (replaced !== undefined) replaced.next = pending;
    this.#pending.set(id, pending);
    this.#written.push(pending);
    return pending;
  }

  /** Rows of writes up to `mark` are committed: LMDB answers for them now. */
  #committed(mark: number): void {
    if (this.#clearedAt !== 0 && this.#clearedAt <= mark) this.#clearedAt = 0;
    const written = this.#written;
    let i = this.#writtenHead;
    while (i < written.length && written[i].mark <= mark) {
      const pending = written[i++];
      if (pending.next !== undefined) {
        // Both links go: a committed row that reached the old generation would otherwise keep
        // every later version of its row alive through each scavenge, one link at a time.
        pending.next.replaced = undefined;
        pending.next = undefined;
      } else if (this.#pending.get(pending.id) === pending) this.#pending.delete(pending.id);
    }
    this.#releasedSinceFresh += i - this.#writtenHead;
    if (this.#releasedSinceFresh > FRESH_MAP_AFTER + 4 * this.#pending.size) {
      // Once V8 has moved a Map's table to the old generation, every table it rehashes into
      // is old too, and each replaced table keeps the rows it held until a full collection:
      // under steady writes every row would live through two scavenges (5 ms pauses, not 1).
      // A copy starts with a young table; copying at most a quarter of the rows let go of
      // since keeps the cost per write constant.
      this.#pending = new Map(this.#pending);
      this.#releasedSinceFresh = 0;
    }
    if (i === written.length) {
      written.length = 0;
      this.#writtenHead = 0;
    } else if (i > 1024 && i * 2 > written.length) {
      written.splice(0, i);
      this.#writtenHead = 0;
    } else this.#writtenHead = i;
  }

  /** The action of `mark` threw inside its transaction: its rows were not written. */
  #undo(mark: number): void {
    // The rows a clear of that action dropped from the overlay stay dropped: their writes are committed soon.
    if (this.#clearedAt === mark) this.#clearedAt = 0;
    const written = this.#written;
    while (written.length > this.#writtenHead && written[written.length - 1].mark === mark) {
      const pending = written.pop()!;
      const id = pending.id;
      if (this.#pending.get(id) !== pending) continue;
      if (pending.replaced === undefined) this.#pending.delete(id);
      else {
        pending.replaced.next = undefined;
        this.#pending.set(id, pending.replaced);
      }
    }
  }

  /** A commit failed: what was not visible may be gone; only LMDB knows. */
  #forget(): void {
    this.#pending.clear();
    this.#written.length = 0;
    this.#writtenHead = 0;
    this.#clearedAt = 0;
  }
}

function unlimited({ start, end, reverse }: RowRange): RangeOptions {
  const options: RangeOptions = {};
  if (start !== undefined) options.start = start;
  if (end !== undefined) options.end = end;
  if (reverse !== undefined) options.reverse = reverse;
  return options;
}

function* mapRows<T>(rows: Iterable<Row>, pick: (row: Row) => T): Generator<T> {
  for (const row of rows) yield pick(row);
}
