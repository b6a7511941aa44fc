/**
 * Where a collection's element rows live. A large collection owns rows in
 * the `kv-items` table under its uid; a small one keeps the very same rows
 * (with uid 0) inside its own record, so it costs one LMDB row instead of one
 * per element — Redis' listpacks, for the same reason. The type operations
 * are written once against `ItemStore`, which both forms provide.
 */
import { UID_BYTES } from './codec.js';

export interface ItemRange {
  readonly start?: Buffer;
  readonly end?: Buffer;
  readonly reverse?: boolean;
  readonly limit?: number;
}

/** The part of an LMDB table the collection operations use (ranges: `start` inclusive, `end` exclusive). */
export interface ItemStore {
  getBinary(row: Buffer): Buffer | undefined;
  getBinaryFast(row: Buffer): Buffer | undefined;
  doesExist(row: Buffer): boolean;
  put(row: Buffer, value: Buffer): unknown;
  remove(row: Buffer): boolean;
  getRange(range: ItemRange): Iterable<{ readonly key: Buffer; readonly value: Buffer }>;
  getKeys(range: ItemRange): Iterable<Buffer>;
  getCount(range: ItemRange): number;
}

/** A collection stays compact while it has at most this many elements … */
export const COMPACT_MAX_ELEMENTS = 128;
/** … and its encoded rows take at most this many bytes (with a short key, its record stays within one LMDB page). */
export const COMPACT_MAX_BYTES = 1024;

const LENGTH_BYTES = 2;

interface Entry {
  readonly row: Buffer;
  value: Buffer;
}

/** Rows this many or fewer are sorted by insertion (a compact collection's usual size). */
const INSERTION_SORT_MAX = 16;

/** The rows' indexes in the rows' byte order; equal rows in the order given. */
function sortedOrder(rows: readonly Buffer[]): number[] {
  const order = rows.map((_, i) => i);
  if (rows.length > INSERTION_SORT_MAX) {
    return order.sort((a, b) => Buffer.compare(rows[a], rows[b]) || a - b);
  }
  // Small arrays: no comparator closure calling into C++ for a few bytes each.
  for (let n = 1; n < order.length; n++) {
    const i = order[n];
    let m = n - 1;
    while (m >= 0 && compareBytes(rows[order[m]], rows[i]) > 0) {
      order[m + 1] = order[m];
      m--;
    }
    order[m + 1] = i;
  }
  return order;
}

/** `Buffer.compare` for short rows, which differ within their first bytes. */
function compareBytes(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** What a row takes in the encoding. */
const entryBytes = (row: Buffer, value: Buffer): number =>
  2 * LENGTH_BYTES + row.length - UID_BYTES + value.length;

/**
 * A compact collection's rows in memory, answering as LMDB would (rows
 * ordered by their bytes). Encoded as
 * `[row length u16][row without its uid][value length u16][value]…`.
 *
 * Held sorted (as decoded, or as `fromRows` built them: lookups search that
 * order) and, once written to, by identity too; sorted again only when a
 * range or the encoding needs the order: a new key's first write may bring
 * any number of elements (one HSET) before it moves them to rows of its own.
 * The buffers given are kept, not copied: callers hand over fresh rows and
 * values that stay unchanged while the operation runs.
 */
export class CompactItems implements ItemStore {
  /** Null until the first `put` / `remove` (then `#sorted` may be stale). */
  #byRow: Map<string, Entry> | null = null;
  #sorted: Entry[] | null = [];
  #bytes = 0;

  /**
   * A new collection's rows given at once (an RDB's key): sorted once, with
   * none of `put`'s lookups. A row given twice keeps its last value, as
   * successive `put`s would.
   */
  static fromRows(rows: readonly Buffer[], values: readonly Buffer[]): CompactItems {
    const order = sortedOrder(rows);
    const sorted: Entry[] = [];
    let bytes = 0;
    for (let n = 0; n < order.length; n++) {
      const i = order[n];
      if (n + 1 < order.length && compareBytes(rows[order[n + 1]], rows[i]) === 0) continue;
      sorted.push({ row: rows[i], value: values[i] });
      bytes += entryBytes(rows[i], values[i]);
    }
    const items = new CompactItems();
    items.#sorted = sorted;
    items.#bytes = bytes;
    return items;
  }

  /** `fromRows` for rows already in order, each given once (a new list's positions). */
  static fromSortedRows(rows: readonly Buffer[], values: readonly Buffer[]): CompactItems {
    const sorted: Entry[] = new Array<Entry>(rows.length);
    let bytes = 0;
    for (let i = 0; i < rows.length; i++) {
      sorted[i] = { row: rows[i], value: values[i] };
      bytes += entryBytes(rows[i], values[i]);
    }
    const items = new CompactItems();
    items.#sorted = sorted;
    items.#bytes = bytes;
    return items;
  }

  static decode(encoded: Buffer): CompactItems {
    const items = new CompactItems();
    const sorted: Entry[] = [];
    let at = 0;
    while (at < encoded.length) {
      const rowLength = encoded.readUInt16BE(at);
      at += LENGTH_BYTES;
      const row = Buffer.alloc(UID_BYTES + rowLength);
      encoded.copy(row, UID_BYTES, at, at + rowLength);
      at += rowLength;
      const valueLength = encoded.readUInt16BE(at);
      at += LENGTH_BYTES;
      sorted.push({ row, value: encoded.subarray(at, at + valueLength) });
      at += valueLength;
    }
    items.#sorted = sorted;
    items.#bytes = encoded.length;
    return items;
  }

  /** How many rows it holds. */
  get size(): number {
    return this.#byRow?.size ?? this.#sorted!.length;
  }

  /** By identity, built on first need (then kept up to date, and `#sorted` dropped on change). */
  #map(): Map<string, Entry> {
    if (this.#byRow !== null) return this.#byRow;
    const map = new Map<string, Entry>();
    for (const entry of this.#sorted!) map.set(entry.row.toString('latin1'), entry);
    return (this.#byRow = map);
  }

  #find(row: Buffer): Entry | undefined {
    if (this.#byRow !== null) return this.#byRow.get(row.toString('latin1'));
    const sorted = this.#sorted!;
    const at = CompactItems.#lowerBound(sorted, row);
    return at < sorted.length && sorted[at].row.equals(row) ? sorted[at] : undefined;
  }

  encode(): Buffer {
    const out = Buffer.allocUnsafe(this.#bytes);
    let at = 0;
    for (const { row, value } of this.#inOrder()) {
      at = out.writeUInt16BE(row.length - UID_BYTES, at);
      at += row.copy(out, at, UID_BYTES);
      at = out.writeUInt16BE(value.length, at);
      at += value.copy(out, at);
    }
    return out;
  }

  /** Whether a collection of `elements` with these rows may stay compact. */
  fits(elements: number): boolean {
    return elements <= COMPACT_MAX_ELEMENTS && this.#bytes <= COMPACT_MAX_BYTES;
  }

  #inOrder(): Entry[] {
    this.#sorted ??= [...this.#byRow!.values()].sort((a, b) => Buffer.compare(a.row, b.row));
    return this.#sorted;
  }

  getBinary(row: Buffer): Buffer | undefined {
    return this.#find(row)?.value;
  }

  getBinaryFast(row: Buffer): Buffer | undefined {
    return this.getBinary(row);
  }

  doesExist(row: Buffer): boolean {
    return this.#find(row) !== undefined;
  }

  put(row: Buffer, value: Buffer): true {
    const map = this.#map();
    const id = row.toString('latin1');
    const entry = map.get(id);
    if (entry !== undefined) {
      this.#bytes += value.length - entry.value.length;
      entry.value = value;
      return true;
    }
    map.set(id, { row, value });
    this.#sorted = null;
    this.#bytes += entryBytes(row, value);
    return true;
  }

  remove(row: Buffer): boolean {
    const map = this.#map();
    const id = row.toString('latin1');
    const entry = map.get(id);
    if (entry === undefined) return false;
    map.delete(id);
    this.#sorted = null;
    this.#bytes -= entryBytes(row, entry.value);
    return true;
  }

  /** Index of the first row at or after `row` in `rows`. */
  static #lowerBound(rows: readonly Entry[], row: Buffer): number {
    let low = 0;
    let high = rows.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (Buffer.compare(rows[mid].row, row) < 0) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** The rows in `range`, in its order. */
  *#entries(range: ItemRange): Generator<Entry> {
    const rows = this.#inOrder();
    const limit = range.limit ?? Infinity;
    let taken = 0;
    if (range.reverse === true) {
      // Reverse: from `start` (the high bound, inclusive) down to, not including, `end`.
      let i = rows.length - 1;
      if (range.start !== undefined) {
        const at = CompactItems.#lowerBound(rows, range.start);
        i = at < rows.length && rows[at].row.equals(range.start) ? at : at - 1;
      }
      for (; i >= 0 && taken < limit; i--, taken++) {
        if (range.end !== undefined && Buffer.compare(rows[i].row, range.end) <= 0) return;
        yield rows[i];
      }
      return;
    }
    let i = range.start === undefined ? 0 : CompactItems.#lowerBound(rows, range.start);
    for (; i < rows.length && taken < limit; i++, taken++) {
      if (range.end !== undefined && Buffer.compare(rows[i].row, range.end) >= 0) return;
      yield rows[i];
    }
  }

  *getRange(range: ItemRange): Generator<{ readonly key: Buffer; readonly value: Buffer }> {
    for (const { row, value } of this.#entries(range)) yield { key: row, value };
  }

  *getKeys(range: ItemRange): Generator<Buffer> {
    for (const { row } of this.#entries(range)) yield row;
  }

  getCount(range: ItemRange): number {
    return [...this.#entries(range)].length;
  }
}
