/**
 * An incremental reader of RDB files (versions 1–12, everything Redis 7.0
 * writes): feed it bytes as they arrive, take items as they complete.
 *
 *     const reader = new RdbReader();
 *     reader.feed(chunk);              // any number of times
 *     for (let item; (item = reader.next()) !== undefined; ) use(item);
 *     reader.end();                    // no more input: the rest must parse
 *     for (let item; (item = reader.next()) !== undefined; ) use(item);
 *
 * An item is one top-level record: an AUX field, a SELECTDB, a key with its
 * value (its expiry, IDLE and FREQ opcodes folded in), a function library, a
 * skipped stream or module value, or the end. A record is parsed only once
 * all its bytes are here; when it is not, the attempt is abandoned and
 * retried once the buffered input has doubled, so even a huge key costs
 * linear time. Malformed input throws `RdbError` with the byte offset;
 * input that ends early throws it from `next()` after `end()`.
 */
import { intsetMembers, listpackEntries, ziplistEntries, zipmapPairs } from './compact-encodings.js';
import { Crc64 } from './crc64.js';
import { lzfDecompress } from './lzf.js';
import {
  MAX_RDB_VERSION,
  MAX_STRING_BYTES,
  MIN_RDB_VERSION,
  ModuleOpcode,
  Opcode,
  QuicklistContainer,
  StringEncoding,
  ValueType,
} from './rdb-format.js';
import { RdbError } from './rdb-error.js';
import { parseDouble } from '../numbers.js';

export { RdbError } from './rdb-error.js';

export type RdbValue =
  | { readonly type: 'string'; readonly value: Buffer }
  | { readonly type: 'list'; readonly items: Buffer[] }
  | { readonly type: 'set'; readonly members: Buffer[] }
  /** field, value, field, value … */
  | { readonly type: 'hash'; readonly pairs: Buffer[] }
  | { readonly type: 'zset'; readonly members: Buffer[]; readonly scores: number[] };

export type RdbItem =
  | { readonly kind: 'aux'; readonly name: string; readonly value: Buffer }
  | { readonly kind: 'select'; readonly db: number }
  | { readonly kind: 'resize'; readonly keys: number; readonly expires: number }
  | {
      readonly kind: 'key';
      readonly db: number;
      readonly key: Buffer;
      /** Absolute expiry in ms since the epoch; 0 when none. */
      readonly expireAt: number;
      readonly value: RdbValue;
    }
  /** A value this keyspace cannot hold (streams, module types): read past, not loaded. */
  | {
      readonly kind: 'skipped';
      readonly db: number;
      readonly key: Buffer;
      readonly what: 'stream' | 'module';
      readonly detail: string;
    }
  | { readonly kind: 'function'; readonly code: Buffer }
  | { readonly kind: 'module-aux'; readonly module: string }
  | { readonly kind: 'eof'; readonly checksum: 'verified' | 'absent' };

/** Thrown by the primitives when the record is not complete yet (never escapes `next`; made once). */
class NeedMoreInput extends Error {}
const NEED_MORE = new NeedMoreInput('the record is not complete yet');

const EMPTY = Buffer.alloc(0);
const MODULE_ID_CHARSET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

export class RdbReader {
  #buf: Buffer = EMPTY;
  /** Start of the unread input in #buf. */
  #pos = 0;
  /** The read cursor of the record being parsed. */
  #at = 0;
  readonly #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** Absolute offset of #buf[0] in the file (for error messages). */
  #base = 0;
  /** Retry a record only once this many bytes are buffered. */
  #wanted = 0;
  #ended = false;
  #done = false;
  #version = -1;
  #db = 0;
  readonly #crc = new Crc64();

  /** The file's RDB version, once its header was read (-1 before). */
  get version(): number {
    return this.#version;
  }

  /** True once the EOF record (and its checksum) was read. */
  get done(): boolean {
    return this.#done;
  }

  /** Bytes taken so far (every complete record). */
  get offset(): number {
    return this.#base + this.#pos;
  }

  feed(chunk: Buffer): void {
    if (this.#ended) throw new Error('RdbReader: feed() after end()');
    if (chunk.length === 0) return;
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
  }

  /** No more input will come: what is buffered must complete the file. */
  end(): void {
    this.#ended = true;
  }

  /** The next complete record, or undefined until more input is fed (or once done). */
  next(): RdbItem | undefined {
    if (this.#done) return undefined;
    const available = this.#buf.length - this.#pos + this.#pendingBytes;
    if (available < this.#wanted && !this.#ended) return undefined;
    if (available === 0) {
      if (this.#ended)
        throw new RdbError(`truncated RDB: the input ended at byte ${this.offset}, before EOF`);
      return undefined;
    }
    this.#gather();
    this.#at = this.#pos;
    try {
      const item = this.#version < 0 ? this.#header() : this.#record();
      this.#wanted = 0;
      if (item.kind !== 'eof') this.#crc.update(this.#buf, this.#pos, this.#at);
      this.#pos = this.#at;
      if (this.#pos === this.#buf.length) {
        this.#base += this.#buf.length;
        this.#buf = EMPTY;
        this.#pos = 0;
      }
      return item.kind === 'header' ? this.next() : item;
    } catch (err) {
      if (err !== NEED_MORE) {
        if (err instanceof RdbError) throw new RdbError(`${err.message} (at byte ${this.#base + this.#at})`);
        throw err;
      }
      if (this.#ended) {
        throw new RdbError(`truncated RDB: the input ended inside the record at byte ${this.offset}`);
      }
      this.#wanted = Math.max(available * 2, available + 1);
      return undefined;
    }
  }

  /** Makes #buf hold all the unread input. */
  #gather(): void {
    if (this.#pending.length === 0) return;
    if (this.#pos === this.#buf.length && this.#pending.length === 1) {
      this.#base += this.#buf.length;
      this.#buf = this.#pending[0];
    } else {
      const rest = this.#buf.subarray(this.#pos);
      this.#base += this.#pos;
      this.#buf = Buffer.concat([rest, ...this.#pending], rest.length + this.#pendingBytes);
    }
    this.#pos = 0;
    this.#pending.length = 0;
    this.#pendingBytes = 0;
  }

  // ---- primitives (throw NEED_MORE when the record is not all here) ----------------

  #take(n: number): number {
    const at = this.#at;
    if (at + n > this.#buf.length) throw NEED_MORE;
    this.#at = at + n;
    return at;
  }

  #u8(): number {
    return this.#buf[this.#take(1)];
  }

  #bytes(n: number): Buffer {
    const at = this.#take(n);
    return this.#buf.subarray(at, at + n);
  }

  /** A length; an encoded-string marker (`11xxxxxx`) is refused here. */
  #length(): number {
    const first = this.#u8();
    switch (first >>> 6) {
      case 0:
        return first & 0x3f;
      case 1:
        return ((first & 0x3f) << 8) | this.#u8();
      case 2:
        if (first === 0x80) return this.#buf.readUInt32BE(this.#take(4));
        if (first === 0x81) {
          const n = this.#buf.readBigUInt64BE(this.#take(8));
          if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new RdbError('length too large');
          return Number(n);
        }
        throw new RdbError(`invalid length encoding 0x${first.toString(16)}`);
      default:
        throw new RdbError('an encoded string where a length was expected');
    }
  }

  /** A 64-bit length kept exact (module ids). */
  #length64(): bigint {
    const first = this.#buf[this.#at];
    if (first === 0x81 && this.#at < this.#buf.length) {
      this.#take(1);
      return this.#buf.readBigUInt64BE(this.#take(8));
    }
    return BigInt(this.#length());
  }

  #string(): Buffer {
    const first = this.#u8();
    if (first >>> 6 !== 3) {
      this.#at--;
      const len = this.#length();
      if (len > MAX_STRING_BYTES) throw new RdbError(`string of ${len} bytes is too long`);
      return this.#bytes(len);
    }
    switch (first & 0x3f) {
      case StringEncoding.Int8:
        return decimal(this.#buf.readInt8(this.#take(1)));
      case StringEncoding.Int16:
        return decimal(this.#buf.readInt16LE(this.#take(2)));
      case StringEncoding.Int32:
        return decimal(this.#buf.readInt32LE(this.#take(4)));
      case StringEncoding.Lzf: {
        const compressed = this.#length();
        const length = this.#length();
        // One 3-byte back reference expands to at most 264 bytes: a larger claim is corrupt.
        if (length > MAX_STRING_BYTES || length > compressed * 88 + 32) {
          throw new RdbError(`LZF string of ${length} bytes from ${compressed} is implausible`);
        }
        return lzfDecompress(this.#bytes(compressed), length);
      }
      default:
        throw new RdbError(`invalid string encoding ${first & 0x3f}`);
    }
  }

  /** A ZSET (type 3) score: length-prefixed ASCII, with 253/254/255 for nan/+inf/-inf. */
  #asciiDouble(): number {
    const len = this.#u8();
    if (len === 253) return NaN;
    if (len === 254) return Infinity;
    if (len === 255) return -Infinity;
    return score(this.#bytes(len));
  }

  #binaryDouble(): number {
    return this.#buf.readDoubleLE(this.#take(8));
  }

  // ---- records -----------------------------------------------------------------

  #header(): { kind: 'header' } {
    const magic = this.#bytes(9);
    if (magic.toString('latin1', 0, 5) !== 'REDIS') throw new RdbError('not an RDB file (no REDIS magic)');
    const digits = magic.toString('latin1', 5, 9);
    const version = /^\d{4}$/.test(digits) ? Number(digits) : NaN;
    if (!(version >= MIN_RDB_VERSION && version <= MAX_RDB_VERSION)) {
      throw new RdbError(`unsupported RDB version ${JSON.stringify(digits)}`);
    }
    this.#version = version;
    return { kind: 'header' };
  }

  #record(): RdbItem {
    let expireAt = 0;
    for (;;) {
      const opcode = this.#u8();
      switch (opcode) {
        case Opcode.ExpireTimeMs:
          expireAt = Number(this.#buf.readBigInt64LE(this.#take(8)));
          continue;
        case Opcode.ExpireTime:
          expireAt = this.#buf.readInt32LE(this.#take(4)) * 1000;
          continue;
        case Opcode.Idle:
          this.#length();
          continue;
        case Opcode.Freq:
          this.#u8();
          continue;
        case Opcode.Aux: {
          const name = this.#string().toString('latin1');
          return { kind: 'aux', name, value: this.#string() };
        }
        case Opcode.SelectDb:
          this.#db = this.#length();
          return { kind: 'select', db: this.#db };
        case Opcode.ResizeDb:
          return { kind: 'resize', keys: this.#length(), expires: this.#length() };
        case Opcode.Function2:
          return { kind: 'function', code: this.#string() };
        case Opcode.FunctionPreGa:
          throw new RdbError('the pre-GA function format (opcode 0xF6) is not supported');
        case Opcode.ModuleAux: {
          const module = moduleName(this.#length64());
          const whenOpcode = this.#length();
          if (whenOpcode !== ModuleOpcode.UInt) throw new RdbError('module aux: invalid "when" opcode');
          this.#length();
          this.#skipModuleValue();
          return { kind: 'module-aux', module };
        }
        case Opcode.Eof:
          return this.#eof();
        default:
          return this.#keyRecord(opcode, expireAt);
      }
    }
  }

  #eof(): RdbItem {
    if (this.#version < 5) {
      this.#crc.update(this.#buf, this.#pos, this.#at);
      this.#done = true;
      return { kind: 'eof', checksum: 'absent' };
    }
    // Taken first: should the 8 bytes not be here yet, this record is read again later, and
    // the bytes before them must not have gone into the checksum twice.
    const at = this.#take(8);
    // The checksum covers every byte before its own 8.
    this.#crc.update(this.#buf, this.#pos, at);
    let zero = true;
    for (let i = at; i < at + 8; i++) if (this.#buf[i] !== 0) zero = false;
    if (!zero && !this.#crc.matches(this.#buf, at)) {
      throw new RdbError(
        `checksum mismatch: the file says ${this.#buf.readBigUInt64LE(at)}, the data ${this.#crc.value}`,
      );
    }
    this.#done = true;
    return { kind: 'eof', checksum: zero ? 'absent' : 'verified' };
  }

  #keyRecord(type: number, expireAt: number): RdbItem {
    const db = this.#db;
    const key = this.#string();
    switch (type) {
      case ValueType.StreamListpacks:
      case ValueType.StreamListpacks2:
      case ValueType.StreamListpacks3:
        this.#skipStream(type);
        return { kind: 'skipped', db, key, what: 'stream', detail: `stream (type ${type})` };
      case ValueType.Module2: {
        const module = moduleName(this.#length64());
        this.#skipModuleValue();
        return { kind: 'skipped', db, key, what: 'module', detail: `module type ${module}` };
      }
      case ValueType.ModulePreGa:
        throw new RdbError('the pre-GA module value format (type 6) is not supported');
      default:
        return { kind: 'key', db, key, expireAt, value: this.#value(type) };
    }
  }

  #value(type: number): RdbValue {
    switch (type) {
      case ValueType.String:
        return { type: 'string', value: this.#string() };
      case ValueType.List:
        return { type: 'list', items: this.#strings(this.#length()) };
      case ValueType.Set:
        return { type: 'set', members: this.#strings(this.#length()) };
      case ValueType.Hash:
        return { type: 'hash', pairs: this.#strings(this.#length() * 2) };
      case ValueType.ZSet:
      case ValueType.ZSet2: {
        const n = this.#length();
        const members: Buffer[] = [];
        const scores: number[] = [];
        for (let i = 0; i < n; i++) {
          members.push(this.#string());
          scores.push(type === ValueType.ZSet ? this.#asciiDouble() : this.#binaryDouble());
        }
        return { type: 'zset', members, scores };
      }
      case ValueType.HashZipmap:
        return { type: 'hash', pairs: zipmapPairs(this.#string()) };
      case ValueType.ListZiplist:
        return { type: 'list', items: ziplistEntries(this.#string()) };
      case ValueType.SetIntset:
        return { type: 'set', members: intsetMembers(this.#string()) };
      case ValueType.SetListpack:
        return { type: 'set', members: listpackEntries(this.#string()) };
      case ValueType.ZSetZiplist:
        return zsetOfPairs(ziplistEntries(this.#string()));
      case ValueType.ZSetListpack:
        return zsetOfPairs(listpackEntries(this.#string()));
      case ValueType.HashZiplist:
        return { type: 'hash', pairs: evenPairs(ziplistEntries(this.#string()), 'hash ziplist') };
      case ValueType.HashListpack:
        return { type: 'hash', pairs: evenPairs(listpackEntries(this.#string()), 'hash listpack') };
      case ValueType.ListQuicklist: {
        const nodes = this.#length();
        const items: Buffer[] = [];
        for (let i = 0; i < nodes; i++) for (const item of ziplistEntries(this.#string())) items.push(item);
        return { type: 'list', items };
      }
      case ValueType.ListQuicklist2: {
        const nodes = this.#length();
        const items: Buffer[] = [];
        for (let i = 0; i < nodes; i++) {
          const container = this.#length();
          if (container === QuicklistContainer.Plain) items.push(this.#string());
          else if (container === QuicklistContainer.Packed) {
            for (const item of listpackEntries(this.#string())) items.push(item);
          } else throw new RdbError(`quicklist: invalid node container ${container}`);
        }
        return { type: 'list', items };
      }
      default:
        throw new RdbError(`unknown value type ${type}`);
    }
  }

  #strings(n: number): Buffer[] {
    const out: Buffer[] = [];
    for (let i = 0; i < n; i++) out.push(this.#string());
    return out;
  }

  /** Reads past a module value: opcode-tagged fields up to the EOF opcode. */
  #skipModuleValue(): void {
    for (;;) {
      const opcode = this.#length();
      switch (opcode) {
        case ModuleOpcode.Eof:
          return;
        case ModuleOpcode.SInt:
        case ModuleOpcode.UInt:
          this.#length64();
          break;
        case ModuleOpcode.Float:
          this.#take(4);
          break;
        case ModuleOpcode.Double:
          this.#take(8);
          break;
        case ModuleOpcode.String:
          this.#string();
          break;
        default:
          throw new RdbError(`module value: unknown opcode ${opcode}`);
      }
    }
  }

  /** Reads past a stream (types 15, 19, 21): entries, metadata, consumer groups and their PELs. */
  #skipStream(type: number): void {
    const listpacks = this.#length();
    for (let i = 0; i < listpacks; i++) {
      if (this.#string().length !== 16) throw new RdbError('stream: node key is not a 128-bit id');
      this.#string();
    }
    // length, last id (ms, seq); v2+: first id, max deleted id, entries added.
    const fields = type === ValueType.StreamListpacks ? 3 : 8;
    for (let i = 0; i < fields; i++) this.#length64();
    const groups = this.#length();
    for (let g = 0; g < groups; g++) {
      this.#string();
      this.#length64();
      this.#length64();
      if (type !== ValueType.StreamListpacks) this.#length64();
      const pending = this.#length();
      for (let p = 0; p < pending; p++) {
        this.#take(16 + 8);
        this.#length64();
      }
      const consumers = this.#length();
      for (let c = 0; c < consumers; c++) {
        this.#string();
        this.#take(type === ValueType.StreamListpacks3 ? 16 : 8);
        this.#take(16 * this.#length());
      }
    }
  }
}

const decimal = (n: number): Buffer => Buffer.from(String(n), 'latin1');

function score(text: Buffer): number {
  const value = parseDouble(text);
  if (value === undefined)
    throw new RdbError(`invalid sorted-set score ${JSON.stringify(text.toString('latin1'))}`);
  return value;
}

function evenPairs(entries: Buffer[], what: string): Buffer[] {
  if (entries.length % 2 !== 0) throw new RdbError(`${what}: odd number of entries`);
  return entries;
}

function zsetOfPairs(entries: Buffer[]): RdbValue {
  evenPairs(entries, 'sorted-set blob');
  const members: Buffer[] = [];
  const scores: number[] = [];
  for (let i = 0; i < entries.length; i += 2) {
    members.push(entries[i]);
    scores.push(score(entries[i + 1]));
  }
  return { type: 'zset', members, scores };
}

/** A module id as its 9-character name and version (Redis' moduleTypeNameByID). */
function moduleName(id: bigint): string {
  let name = '';
  for (let i = 0; i < 9; i++) name += MODULE_ID_CHARSET[Number((id >> BigInt(10 + (8 - i) * 6)) & 63n)];
  return `${name}/${Number(id & 1023n)}`;
}
