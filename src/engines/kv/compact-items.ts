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
  putSync(row: Buffer, value: Buffer): unknown;
  removeSync(row: Buffer): boolean;
  getRange(range: ItemRange): Iterable<{ readonly key: Buffer; readonly value: Buffer }>;
  getKeys(range: ItemRange): Iterable<Buffer>;
  getCount(range: ItemRange): number;
}

/** A collection stays compact while it has at most this many elements … */
export const COMPACT_MAX_ELEMENTS = 128;
/** … and its encoded rows take at most this many bytes (with a short key, its record stays within one LMDB page). */
export const COMPACT_MAX_BYTES = 1024;

const LENGTH_BYTES = 2;

/**
 * A compact collection's rows in memory, answering as LMDB would (rows
 * ordered by their bytes). Encoded as
 * `[row length u16][row without its uid][value length u16][value]…`.
 *
 * Rows are kept by identity and sorted only when a range or the encoding
 * needs the order: a new key's first write may bring any number of
 * elements (one HSET, one RDB key) before it moves them to rows of its own.
 * The buffers given to `putSync` are kept, not copied: callers hand over
 * fresh rows and values that stay unchanged while the operation runs.
 */
export class CompactItems implements ItemStore {
  readonly #byRow = new Map<string, { readonly row: Buffer; value: Buffer }>();
  #sorted: { readonly row: Buffer; value: Buffer }[] | null = [];
  #bytes = 0;

  static decode(encoded: Buffer): CompactItems {
    const items = new CompactItems();
    const sorted: { readonly row: Buffer; value: Buffer }[] = [];
    let at = 0;
    while (at < encoded.length) {
      const rowLength = encoded.readUInt16BE(at);
      at += LENGTH_BYTES;
      const row = Buffer.alloc(UID_BYTES + rowLength);
      encoded.copy(row, UID_BYTES, at, at + rowLength);
      at += rowLength;
      const valueLength = encoded.readUInt16BE(at);
      at += LENGTH_BYTES;
      const entry = { row, value: encoded.subarray(at, at + valueLength) };
      items.#byRow.set(row.toString('latin1'), entry);
      sorted.push(entry);
      at += valueLength;
    }
    items.#sorted = sorted;
    items.#bytes = encoded.length;
    return items;
  }

  /** How many rows it holds. */
  get size(): number {
    return this.#byRow.size;
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

  #inOrder(): { readonly row: Buffer; value: Buffer }[] {
    this.#sorted ??= [...this.#byRow.values()].sort((a, b) => Buffer.compare(a.row, b.row));
    return this.#sorted;
  }

  getBinary(row: Buffer): Buffer | undefined {
    return this.#byRow.get(row.toString('latin1'))?.value;
  }

  getBinaryFast(row: Buffer): Buffer | undefined {
    return this.getBinary(row);
  }

  doesExist(row: Buffer): boolean {
    return this.#byRow.has(row.toString('latin1'));
  }

  putSync(row: Buffer, value: Buffer): true {
    const id = row.toString('latin1');
    const entry = this.#byRow.get(id);
    if (entry !== undefined) {
      this.#bytes += value.length - entry.value.length;
      entry.value = value;
      return true;
    }
    this.#byRow.set(id, { row, value });
    this.#sorted = null;
    this.#bytes += 2 * LENGTH_BYTES + row.length - UID_BYTES + value.length;
    return true;
  }

  removeSync(row: Buffer): boolean {
    const id = row.toString('latin1');
    const entry = this.#byRow.get(id);
    if (entry === undefined) return false;
    this.#byRow.delete(id);
    this.#sorted = null;
    this.#bytes -= 2 * LENGTH_BYTES + row.length - UID_BYTES + entry.value.length;
    return true;
  }

  /** Index of the first row at or after `row` in `rows`. */
  static #lowerBound(rows: readonly { readonly row: Buffer }[], row: Buffer): number {
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
  *#entries(range: ItemRange): Generator<{ readonly row: Buffer; value: Buffer }> {
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
