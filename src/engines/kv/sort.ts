/**
 * SORT and SORT_RO over a list, set or sorted set, with Redis 7.0's rules:
 * numeric (ties broken by the elements' bytes) or ALPHA order, BY and GET
 * patterns (`*` replaced by the element, `->field` reading a hash, `#` the
 * element itself), LIMIT, and STORE into a list. Like Redis, a BY pattern
 * without `*` skips sorting, except for a set being stored (sorted ALPHA so
 * that a replica computes the same list).
 */
import { hget } from './hashes.js';
import type { Keyspace } from './keyspace.js';
import { notSortable, wrongType } from './kv-errors.js';
import { lrange, push } from './lists.js';
import { KeyType } from './record.js';
import { smembers } from './sets.js';
import { zrangeByRank } from './zsets.js';

export interface SortOptions {
  readonly by?: Buffer;
  /** LIMIT offset count (a negative count: to the end). */
  readonly limit?: { readonly offset: number; readonly count: number };
  /** GET patterns in order (`#`: the element). */
  readonly get: readonly Buffer[];
  readonly desc: boolean;
  readonly alpha: boolean;
  readonly store?: Buffer;
}

const STAR = 0x2a;

/** The value a BY or GET pattern names for `element`: a string key, or a hash field after `->`; null when missing. */
function lookupPattern(ks: Keyspace, db: number, pattern: Buffer, element: Buffer): Buffer | null {
  if (pattern.length === 1 && pattern[0] === 0x23 /* # */) return element;
  const star = pattern.indexOf(STAR);
  if (star < 0) return null;
  const arrow = pattern.indexOf('->', star + 1);
  const hasField = arrow >= 0 && arrow + 2 < pattern.length;
  const keyEnd = hasField ? arrow : pattern.length;
  const key = Buffer.concat([pattern.subarray(0, star), element, pattern.subarray(star + 1, keyEnd)]);
  const record = ks.lookup(db, key);
  if (record === undefined) return null;
  if (hasField) return record.type === KeyType.Hash ? hget(ks, db, key, pattern.subarray(arrow + 2)) : null;
  return record.type === KeyType.String ? Buffer.from(record.value) : null;
}

/** A number as SORT reads one (strtod over the whole string; NaN refused); undefined when it is not. */
function sortScore(bytes: Buffer): number | undefined {
  const text = bytes.toString('latin1');
  if (!/^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^\s*[+-]?(inf|infinity)$/i.test(text)) return undefined;
  const value = /inf/i.test(text) ? (text.trim().startsWith('-') ? -Infinity : Infinity) : Number(text);
  return Number.isNaN(value) ? undefined : value;
}

/** Redis' LIMIT clamping: the inclusive range [start, end] of `length` elements (end < start: none). */
function limitRange(length: number, limit: SortOptions['limit']): [number, number] {
  const offset = limit?.offset ?? 0;
  const count = limit?.count ?? -1;
  let start = offset < 0 ? 0 : offset;
  let end = count < 0 ? length - 1 : start + count - 1;
  if (start >= length) {
    start = length - 1;
    end = length - 2;
  }
  if (end >= length) end = length - 1;
  return [start, end];
}

/** The elements of the key to sort, in its own order (a missing key: none). */
function elementsOf(
  ks: Keyspace,
  db: number,
  key: Buffer,
): { type: KeyType | undefined; elements: Buffer[] } {
  const record = ks.lookupRead(db, key);
  if (record === undefined) return { type: undefined, elements: [] };
  switch (record.type) {
    case KeyType.List:
      return { type: record.type, elements: lrange(ks, db, key, 0, -1) };
    case KeyType.Set:
      return { type: record.type, elements: smembers(ks, db, key) };
    case KeyType.ZSet:
      return {
        type: record.type,
        elements: zrangeByRank(ks, db, key, 0, -1, false).map((item) => item.member),
      };
    default:
      throw wrongType();
  }
}

/** The elements in SORT's order, LIMIT applied. */
function ordered(ks: Keyspace, db: number, key: Buffer, options: SortOptions): Buffer[] {
  const { type, elements } = elementsOf(ks, db, key);
  let sortBy = options.by;
  let alpha = options.alpha;
  let sorting = sortBy === undefined || sortBy.includes(STAR);
  if (!sorting && type === KeyType.Set && options.store !== undefined) {
    sorting = true;
    alpha = true;
    sortBy = undefined;
  }
  const [start, end] = limitRange(elements.length, options.limit);
  if (!sorting) {
    // Unsorted, a list or sorted set keeps its own order, walked from the tail with DESC (as Redis).
    if (options.desc && type !== KeyType.Set) elements.reverse();
    return elements.slice(start, end + 1);
  }
  const keyed = elements.map((element) => {
    const by = sortBy === undefined ? element : lookupPattern(ks, db, sortBy, element);
    if (alpha) return { element, text: by, score: 0 };
    const score = by === null ? 0 : sortScore(by);
    if (score === undefined) throw notSortable();
    return { element, text: null, score };
  });
  const direction = options.desc ? -1 : 1;
  keyed.sort((a, b) => {
    let cmp: number;
    if (!alpha) cmp = a.score > b.score ? 1 : a.score < b.score ? -1 : Buffer.compare(a.element, b.element);
    else if (a.text === null || b.text === null) cmp = a.text === b.text ? 0 : a.text === null ? -1 : 1;
    else cmp = Buffer.compare(a.text, b.text);
    return cmp * direction;
  });
  return keyed.slice(start, end + 1).map((item) => item.element);
}

/**
 * SORT: the sorted elements, or for each one the values of the GET
 * patterns (null where missing). With `store`, the same values (missing as
 * empty strings) replace `store` as a list (deleted when there are none) and
 * the result is their count.
 */
export function sort(
  ks: Keyspace,
  db: number,
  key: Buffer,
  options: SortOptions,
): (Buffer | null)[] | number {
  const chosen = ordered(ks, db, key, options);
  const out: (Buffer | null)[] = [];
  for (const element of chosen) {
    if (options.get.length === 0) out.push(element);
    for (const pattern of options.get) out.push(lookupPattern(ks, db, pattern, element));
  }
  if (options.store === undefined) return out;
  const values = out.map((value) => Buffer.from(value ?? Buffer.alloc(0)));
  const destination = options.store;
  ks.group(() => {
    ks.del(db, [destination]);
    if (values.length > 0) push(ks, db, destination, 'right', values);
  });
  return values.length;
}
