/**
 * Row writes recorded on one thread and written by another (`Storage.record`,
 * `Storage.replay`): a long load splits so, its decoding on one core and
 * LMDB's puts on the other. A recording is one flat buffer (moved between
 * threads without copying) of operations on tables named in a list beside it:
 *
 *     [op u8][table u16] then, by op: [key length u32][key][value length u32][value]
 *     (put, insert, structured put: key and value as JSON), [key length u32][key]
 *     (remove), nothing (clear).
 */
import type { Key } from 'lmdb';

export const RecordedOp = {
  Put: 1,
  /** Put unless the row exists (`Storage.putIfAbsent`). */
  Insert: 2,
  Remove: 3,
  Clear: 4,
  /** A row of a table that is not binary, as JSON. */
  PutStructured: 5,
} as const;
export type RecordedOp = (typeof RecordedOp)[keyof typeof RecordedOp];

/** What one thread hands another: the tables' names and the operations. */
export interface RecordedWrites {
  readonly tables: readonly string[];
  readonly bytes: Uint8Array;
}

const FIRST_CHUNK = 64 * 1024;
/** A recorder goes on in a buffer at most this large after `take` (one huge value must not make every later one huge). */
const KEPT_CAPACITY = 1024 * 1024;

export class WriteRecorder {
  /** Not from Node's shared pool: its memory moves to the thread that replays it. */
  #bytes = Buffer.allocUnsafeSlow(FIRST_CHUNK);
  #length = 0;
  readonly #tables = new Map<string, number>();

  /** Bytes recorded since the last `take`. */
  get size(): number {
    return this.#length;
  }

  /** `op`: Put, Insert, or PutStructured with JSON text. */
  put(table: string, key: Uint8Array, value: Uint8Array, op: RecordedOp = RecordedOp.Put): void {
    this.#head(op, table, 8 + key.length + value.length);
    this.#field(key);
    this.#field(value);
  }

  putStructured(table: string, key: Key, value: unknown): void {
    this.put(
      table,
      Buffer.from(JSON.stringify(key)),
      Buffer.from(JSON.stringify(value)),
      RecordedOp.PutStructured,
    );
  }

  remove(table: string, key: Uint8Array): void {
    this.#head(RecordedOp.Remove, table, 4 + key.length);
    this.#field(key);
  }

  clear(table: string): void {
    this.#head(RecordedOp.Clear, table, 0);
  }

  /**
   * The operations recorded so far, in a buffer of their own that may move to another
   * thread (the recorder goes on in a new one).
   */
  take(): RecordedWrites {
    const bytes = new Uint8Array(this.#bytes.buffer, this.#bytes.byteOffset, this.#length);
    this.#bytes = Buffer.allocUnsafeSlow(Math.min(this.#bytes.length, KEPT_CAPACITY));
    this.#length = 0;
    return { tables: [...this.#tables.keys()], bytes };
  }

  #head(op: RecordedOp, table: string, rest: number): void {
    let index = this.#tables.get(table);
    if (index === undefined) this.#tables.set(table, (index = this.#tables.size));
    this.#reserve(3 + rest);
    this.#bytes[this.#length] = op;
    this.#bytes.writeUInt16BE(index, this.#length + 1);
    this.#length += 3;
  }

  #field(bytes: Uint8Array): void {
    this.#bytes.writeUInt32BE(bytes.length, this.#length);
    this.#bytes.set(bytes, this.#length + 4);
    this.#length += 4 + bytes.length;
  }

  #reserve(more: number): void {
    if (this.#length + more <= this.#bytes.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(this.#bytes.length * 2, this.#length + more));
    this.#bytes.copy(grown, 0, 0, this.#length);
    this.#bytes = grown;
  }
}

/**
 * Calls `visit` with each operation of `writes`, in the order they were recorded, until
 * it returns false. `key` and `value` are views into the recording (a structured put's
 * are decoded; a remove's and a clear's value is undefined, a clear's key empty).
 */
export function visitRecorded(
  writes: RecordedWrites,
  visit: (op: RecordedOp, table: string, key: Key, value: unknown) => boolean,
): void {
  const bytes = Buffer.from(writes.bytes.buffer, writes.bytes.byteOffset, writes.bytes.byteLength);
  let at = 0;
  const field = (): Buffer => {
    const length = bytes.readUInt32BE(at);
    const out = bytes.subarray(at + 4, at + 4 + length);
    at += 4 + length;
    return out;
  };
  while (at < bytes.length) {
    const op = bytes[at] as RecordedOp;
    const table = writes.tables[bytes.readUInt16BE(at + 1)];
    at += 3;
    let going: boolean;
    switch (op) {
      case RecordedOp.Put:
      case RecordedOp.Insert:
        going = visit(op, table, field(), field());
        break;
      case RecordedOp.PutStructured:
        going = visit(op, table, JSON.parse(field().toString()) as Key, JSON.parse(field().toString()));
        break;
      case RecordedOp.Remove:
        going = visit(op, table, field(), undefined);
        break;
      case RecordedOp.Clear:
        going = visit(op, table, '', undefined);
        break;
      default:
        throw new Error(`recorded writes: unknown operation ${String(op)} at byte ${at - 3}`);
    }
    if (!going) return;
  }
}
