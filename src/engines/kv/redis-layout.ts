/**
 * How Redis 7.0 would hold a key, for the tools that ask (OBJECT ENCODING,
 * MEMORY USAGE, `redis-cli --memkeys`, RedisInsight): the encoding its
 * default settings choose for the value as it is now, and the bytes its
 * allocator would use for it. Doppel stores every value in LMDB; these
 * answers describe Redis, so that sizes compare across a migration. They
 * are derived from the current value (Redis keeps a converted encoding
 * after the value shrinks again) and, like Redis', estimate large
 * collections from a sample of their elements.
 */
import * as hashes from './hashes.js';
import type { Keyspace } from './keyspace.js';
import * as lists from './lists.js';
import { parseInt64 } from './numbers.js';
import { KeyType, type KeyRecord } from './record.js';
import * as sets from './sets.js';
import * as zsets from './zsets.js';

/** Redis 7.0's defaults: hash- and zset-max-listpack-entries, their -value, set-max-intset-entries. */
const HASH_LISTPACK_ENTRIES = 512;
const ZSET_LISTPACK_ENTRIES = 128;
const LISTPACK_VALUE = 64;
const INTSET_ENTRIES = 512;
/** Strings up to this length are allocated with their object (embstr). */
const EMBSTR_LIMIT = 44;
/** list-max-listpack-size -2: quicklist nodes of at most 8 KB. */
const QUICKLIST_NODE_BYTES = 8192;
/** Roughly how many short elements an 8 KB quicklist node holds (for sampling lists by node). */
const ELEMENTS_PER_NODE = 512;
/** Shared integer objects (OBJ_SHARED_INTEGERS): OBJECT REFCOUNT reports INT_MAX for them. */
const SHARED_INTEGERS = 10000;

/** Sizes of Redis' structures on 64-bit Linux. */
const ROBJ = 16;
const DICT_ENTRY = 24;
const DICT = 56;
const QUICKLIST = 48;
const QUICKLIST_NODE = 32;
const ZSET = 16;
const SKIPLIST = 32;
/** The skiplist's header node: 32 levels of 16 bytes after score, member and backward pointer. */
const SKIPLIST_HEADER = allocated(24 + 32 * 16);
/**
 * A skiplist node as allocated, on average: 48 bytes at one level (3 in 4
 * nodes), 64 at two, 80 at three… (Redis draws each node's levels at random,
 * so its own figure for a large sorted set varies a little between calls).
 */
const SKIPLIST_NODE = 52;

/** jemalloc's size class for `n` bytes: 8, 16-byte steps to 128, then four classes per doubling. */
function allocated(n: number): number {
  if (n <= 8) return 8;
  if (n <= 128) return Math.ceil(n / 16) * 16;
  const step = 2 ** Math.floor(Math.log2(n - 1)) / 4;
  return Math.ceil(n / step) * step;
}

/** An sds string of `length` bytes as Redis allocates it (header by length, NUL terminator). */
function sds(length: number): number {
  const header = length < 32 ? 1 : length < 256 ? 3 : length < 65536 ? 5 : 9;
  return allocated(header + length + 1);
}

/** A canonical int64 (what Redis stores as an integer: no sign on 0, no leading zeros or +). */
function integerOf(bytes: Buffer): bigint | number | undefined {
  if (bytes.length === 0 || bytes.length > 20) return undefined;
  const n = parseInt64(bytes);
  return n !== undefined && String(n) === bytes.toString('latin1') ? n : undefined;
}

/** One listpack entry: its encoding, data and back-length bytes. */
function listpackEntry(bytes: Buffer): number {
  const n = integerOf(bytes);
  let size: number;
  if (n !== undefined) {
    const v = BigInt(n);
    if (v >= 0n && v <= 127n) size = 1;
    else if (v >= -4096n && v <= 4095n) size = 2;
    else if (v >= -32768n && v <= 32767n) size = 3;
    else if (v >= -8388608n && v <= 8388607n) size = 4;
    else if (v >= -2147483648n && v <= 2147483647n) size = 5;
    else size = 9;
  } else {
    size = bytes.length + (bytes.length <= 63 ? 1 : bytes.length <= 4095 ? 2 : 5);
  }
  const back = size <= 127 ? 1 : size < 16383 ? 2 : size < 2097151 ? 3 : size < 268435455 ? 4 : 5;
  return size + back;
}

/** A score as a listpack holds it: an integer when it is one, else as `%.17g` prints it. */
function scoreEntry(score: number): Buffer {
  if (Number.isInteger(score) && Math.abs(score) < 2 ** 63) return Buffer.from(String(score));
  // %.17g: 17 significant digits, trailing zeros dropped.
  const [mantissa, exponent] = score.toPrecision(17).split('e');
  const trimmed = mantissa.includes('.') ? mantissa.replace(/\.?0+$/, '') : mantissa;
  return Buffer.from(exponent === undefined ? trimmed : `${trimmed}e${exponent}`);
}

function listpackBytes(entries: readonly Buffer[]): number {
  let total = 6 + 1;
  for (const entry of entries) total += listpackEntry(entry);
  return total;
}

/** A collection's elements as Redis would see them: all of a small one, a sample of a large one. */
interface Elements {
  readonly count: number;
  /** Byte strings per element (a hash field and its value, a member and its score's text…). */
  readonly sample: Buffer[][];
}

function elements(ks: Keyspace, db: number, key: Buffer, record: KeyRecord, limit: number): Elements {
  const count = record.count;
  const take = Math.min(count, limit);
  switch (record.type) {
    case KeyType.List:
      return { count, sample: lists.lrange(ks, db, key, 0, take - 1).map((element) => [element]) };
    case KeyType.Set:
      return {
        count,
        sample: sets
          .sscan(ks, db, key, 0, take)
          .items.slice(0, take)
          .map((member) => [member]),
      };
    case KeyType.Hash:
      return { count, sample: hashes.hscan(ks, db, key, 0, take).items.slice(0, take) };
    default:
      return {
        count,
        sample: zsets
          .zrangeByRank(ks, db, key, 0, take - 1, false)
          .map((item) => [item.member, scoreEntry(item.score)]),
      };
  }
}

/**
 * A collection's elements when it fits Redis' compact encoding (intset,
 * listpack; all of them are looked at, at most 512), undefined when it does not.
 */
function compactElements(ks: Keyspace, db: number, key: Buffer, record: KeyRecord): Buffer[][] | undefined {
  if (record.type === KeyType.Set) {
    if (record.count > INTSET_ENTRIES) return undefined;
    const { sample } = elements(ks, db, key, record, INTSET_ENTRIES);
    return sample.every(([member]) => integerOf(member) !== undefined) ? sample : undefined;
  }
  const limit = record.type === KeyType.Hash ? HASH_LISTPACK_ENTRIES : ZSET_LISTPACK_ENTRIES;
  if (record.type === KeyType.List || record.count > limit) return undefined;
  const { sample } = elements(ks, db, key, record, limit);
  // A zset's score is not a "value" for zset-max-listpack-value: only its member counts.
  const fits = sample.every((parts) =>
    (record.type === KeyType.ZSet ? parts.slice(0, 1) : parts).every((part) => part.length <= LISTPACK_VALUE),
  );
  return fits ? sample : undefined;
}

/** OBJECT ENCODING: Redis 7.0's encoding name for the value of `key` (undefined: missing). */
export function encodingOf(ks: Keyspace, db: number, key: Buffer): string | undefined {
  const record = ks.lookup(db, key);
  if (record === undefined) return undefined;
  switch (record.type) {
    case KeyType.String:
      if (integerOf(record.value) !== undefined) return 'int';
      return record.value.length <= EMBSTR_LIMIT ? 'embstr' : 'raw';
    case KeyType.List:
      return 'quicklist';
    case KeyType.Set:
      return compactElements(ks, db, key, record) !== undefined ? 'intset' : 'hashtable';
    case KeyType.Hash:
      return compactElements(ks, db, key, record) !== undefined ? 'listpack' : 'hashtable';
    default:
      return compactElements(ks, db, key, record) !== undefined ? 'listpack' : 'skiplist';
  }
}

/** OBJECT REFCOUNT: 1, or INT_MAX for the integers Redis shares (0 to 9999). */
export function refcountOf(ks: Keyspace, db: number, key: Buffer): number | undefined {
  const record = ks.lookup(db, key);
  if (record === undefined) return undefined;
  if (record.type !== KeyType.String) return 1;
  const n = integerOf(record.value);
  return n !== undefined && n >= 0 && n < SHARED_INTEGERS ? 2147483647 : 1;
}

/** A dict of `count` entries: the struct and its bucket array (a power of two). */
function dict(count: number): number {
  const buckets = count === 0 ? 0 : 2 ** Math.ceil(Math.log2(Math.max(count, 4)));
  return DICT + allocated(buckets * 8);
}

/** Scales a sample's total to the whole collection, as Redis' MEMORY USAGE does. */
function extrapolated(sampled: number, sampleSize: number, count: number): number {
  return sampleSize === 0 ? 0 : Math.round((sampled / sampleSize) * count);
}

/**
 * MEMORY USAGE: the bytes Redis 7.0 would use for `key` and its value (the
 * key's entry included); `samples` elements of a large collection are looked
 * at (0: all). Undefined when the key is missing.
 */
export function memoryUsageOf(ks: Keyspace, db: number, key: Buffer, samples: number): number | undefined {
  const record = ks.lookup(db, key);
  if (record === undefined) return undefined;
  const entry = DICT_ENTRY + sds(key.length);
  if (record.type === KeyType.String) {
    const length = record.value.length;
    if (integerOf(record.value) !== undefined) return entry + ROBJ;
    if (length <= EMBSTR_LIMIT) return entry + allocated(ROBJ + 3 + length + 1);
    return entry + ROBJ + sds(length);
  }
  if (record.type === KeyType.List) {
    // Redis samples quicklist nodes: about `samples` nodes' worth of elements.
    const limit = samples === 0 ? record.count : samples * ELEMENTS_PER_NODE;
    const { count, sample } = elements(ks, db, key, record, limit);
    const bytes =
      extrapolated(listpackBytes(sample.map(([element]) => element)) - 7, sample.length, count) + 7;
    const nodes = Math.max(1, Math.ceil(bytes / QUICKLIST_NODE_BYTES));
    return entry + ROBJ + QUICKLIST + nodes * (QUICKLIST_NODE + allocated(Math.ceil(bytes / nodes)));
  }
  const compact = compactElements(ks, db, key, record);
  if (compact !== undefined) {
    if (record.type === KeyType.Set) return entry + ROBJ + allocated(8 + record.count * intsetWidth(compact));
    return entry + ROBJ + allocated(listpackBytes(compact.flat()));
  }
  const { count, sample } = elements(ks, db, key, record, samples === 0 ? record.count : samples);
  let perElements = 0;
  for (const parts of sample) {
    perElements += DICT_ENTRY + sds(parts[0].length);
    if (record.type === KeyType.Hash) perElements += sds(parts[1].length);
    if (record.type === KeyType.ZSet) perElements += SKIPLIST_NODE;
  }
  const structure =
    record.type === KeyType.ZSet ? ZSET + SKIPLIST + SKIPLIST_HEADER + dict(count) : dict(count);
  return entry + ROBJ + structure + extrapolated(perElements, sample.length, count);
}

/** An intset's element width: 2, 4 or 8 bytes, by its widest member. */
function intsetWidth(sample: Buffer[][]): number {
  let width = 2;
  for (const [member] of sample) {
    const v = BigInt(integerOf(member) ?? 0);
    if (v < -2147483648n || v > 2147483647n) return 8;
    if (v < -32768n || v > 32767n) width = 4;
  }
  return width;
}
