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
/** … and its encoded rows take at most this many bytes (the record then fits an LMDB page with its key). */
export const COMPACT_MAX_BYTES = 1024;

const LENGTH_BYTES = 2;

/**
 * A compact collection's rows in memory, sorted as LMDB sorts them. Encoded
 * as `[row length u16][row without its uid][value length u16][value]…`.
 */
export class CompactItems implements ItemStore {
  readonly #rows: Buffer[] = [];
  readonly #values: Buffer[] = [];
  #bytes = 0;

  static decode(encoded: Buffer): CompactItems {
    const items = new CompactItems();
    let at = 0;
    while (at < encoded.length) {
      const rowLength = encoded.readUInt16BE(at);
      at += LENGTH_BYTES;
      const row = Buffer.alloc(UID_BYTES + rowLength);
      encoded.copy(row, UID_BYTES, at, at + rowLength);
      at += rowLength;
      const valueLength = encoded.readUInt16BE(at);
      at += LENGTH_BYTES;
      items.#rows.push(row);
      items.#values.push(encoded.subarray(at, at + valueLength));
      at += valueLength;
    }
    items.#bytes = encoded.length;
    return items;
  }

  encode(): Buffer {
    const out = Buffer.allocUnsafe(this.#bytes);
    let at = 0;
    for (let i = 0; i < this.#rows.length; i++) {
      const row = this.#rows[i];
      at = out.writeUInt16BE(row.length - UID_BYTES, at);
      at += row.copy(out, at, UID_BYTES);
      const value = this.#values[i];
      at = out.writeUInt16BE(value.length, at);
      at += value.copy(out, at);
    }
    return out;
  }

  /** Whether a collection of `elements` with these rows may stay compact. */
  fits(elements: number): boolean {
    return elements <= COMPACT_MAX_ELEMENTS && this.#bytes <= COMPACT_MAX_BYTES;
  }

  /** Index of `row`, or of where it would go (`found` false). */
  #find(row: Buffer): { index: number; found: boolean } {
    let low = 0;
    let high = this.#rows.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const order = Buffer.compare(this.#rows[mid], row);
      if (order === 0) return { index: mid, found: true };
      if (order < 0) low = mid + 1;
      else high = mid;
    }
    return { index: low, found: false };
  }

  getBinary(row: Buffer): Buffer | undefined {
    const { index, found } = this.#find(row);
    return found ? this.#values[index] : undefined;
  }

  getBinaryFast(row: Buffer): Buffer | undefined {
    return this.getBinary(row);
  }

  doesExist(row: Buffer): boolean {
    return this.#find(row).found;
  }

  putSync(row: Buffer, value: Buffer): true {
    const { index, found } = this.#find(row);
    const own = Buffer.from(value);
    if (found) {
      this.#bytes += own.length - this.#values[index].length;
      this.#values[index] = own;
      return true;
    }
    this.#rows.splice(index, 0, Buffer.from(row));
    this.#values.splice(index, 0, own);
    this.#bytes += 2 * LENGTH_BYTES + row.length - UID_BYTES + own.length;
    return true;
  }

  removeSync(row: Buffer): boolean {
    const { index, found } = this.#find(row);
    if (!found) return false;
    this.#bytes -= 2 * LENGTH_BYTES + row.length - UID_BYTES + this.#values[index].length;
    this.#rows.splice(index, 1);
    this.#values.splice(index, 1);
    return true;
  }

  /** Indexes of the rows in `range`, in its order. */
  *#indexes(range: ItemRange): Generator<number> {
    const limit = range.limit ?? Infinity;
    let taken = 0;
    if (range.reverse === true) {
      // Reverse: from `start` (the high bound) down to, not including, `end`.
      let i = range.start === undefined ? this.#rows.length - 1 : this.#lastAtOrBefore(range.start);
      for (; i >= 0 && taken < limit; i--, taken++) {
        if (range.end !== undefined && Buffer.compare(this.#rows[i], range.end) <= 0) return;
        yield i;
      }
      return;
    }
    let i = range.start === undefined ? 0 : this.#find(range.start).index;
    for (; i < this.#rows.length && taken < limit; i++, taken++) {
      if (range.end !== undefined && Buffer.compare(this.#rows[i], range.end) >= 0) return;
      yield i;
    }
  }

  #lastAtOrBefore(row: Buffer): number {
    const { index, found } = this.#find(row);
    return found ? index : index - 1;
  }

  *getRange(range: ItemRange): Generator<{ readonly key: Buffer; readonly value: Buffer }> {
    for (const i of this.#indexes(range)) yield { key: this.#rows[i], value: this.#values[i] };
  }

  *getKeys(range: ItemRange): Generator<Buffer> {
    for (const i of this.#indexes(range)) yield this.#rows[i];
  }

  getCount(range: ItemRange): number {
    return [...this.#indexes(range)].length;
  }
}
