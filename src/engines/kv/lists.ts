/** List commands. Elements sit at consecutive positions `head … tail-1` under the list's uid. */
import { listRow } from './codec.js';
import { CompactItems, type ItemStore } from './compact-items.js';
import { collection, insertCollection } from './collections.js';
import type { Keyspace } from './keyspace.js';
import { indexOutOfRange, MAX_STRING_BYTES, noSuchKey, tooBig } from './kv-errors.js';
import { COMPACT_UID, KeyType, type KeyRecord } from './record.js';

export type Side = 'left' | 'right';

/** LPUSH/RPUSH (LPUSHX/RPUSHX with `onlyIfExists`): the new length. */
export function push(
  ks: Keyspace,
  db: number,
  key: Buffer,
  side: Side,
  values: readonly Buffer[],
  onlyIfExists = false,
): number {
  for (const value of values) if (value.length > MAX_STRING_BYTES) throw tooBig();
  const row = ks.row(db, key);
  const old = collection(ks, db, key, KeyType.List, row);
  if (old === undefined && onlyIfExists) return 0;
  const items = ks.itemsOf(old);
  const uid = old?.uid ?? COMPACT_UID;
  let head = old?.head ?? 0;
  let tail = old?.tail ?? 0;
  for (const value of values) {
    if (side === 'left') items.put(listRow(uid, --head), value);
    else items.put(listRow(uid, tail++), value);
  }
  ks.putCollection(db, key, row, KeyType.List, { uid, count: tail - head, head, tail }, old, items);
  ks.emit(db, { op: 'push', key, side, values });
  return tail - head;
}

/** Loads a new list with its TTL (an RDB's key): false when the key exists. */
export function insertList(
  ks: Keyspace,
  db: number,
  key: Buffer,
  values: readonly Buffer[],
  expireAt: number,
): boolean {
  for (const value of values) if (value.length > MAX_STRING_BYTES) throw tooBig();
  const items = CompactItems.fromSortedRows(
    values.map((_, i) => listRow(COMPACT_UID, i)),
    values,
  );
  const state = { uid: COMPACT_UID, count: values.length, head: 0, tail: values.length };
  return insertCollection(ks, db, key, KeyType.List, state, items, expireAt, {
    op: 'push',
    key,
    side: 'right',
    values,
  });
}

/** LPOP/RPOP: one element (or null) without `count`, else up to `count` elements (null when missing). */
export function pop(
  ks: Keyspace,
  db: number,
  key: Buffer,
  side: Side,
  count?: number,
): Buffer | Buffer[] | null {
  const row = ks.row(db, key);
  const old = collection(ks, db, key, KeyType.List, row);
  if (old === undefined) return null;
  const n = Math.min(count ?? 1, old.count);
  if (n === 0) return [];
  const items = ks.itemsOf(old);
  let { head, tail } = old;
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const position = side === 'left' ? head++ : --tail;
    const itemRow = listRow(old.uid, position);
    out.push(items.getBinary(itemRow)!);
    items.remove(itemRow);
  }
  writeBack(ks, db, key, row, old, items, head, tail);
  ks.emit(db, { op: 'pop', key, side, count: n });
  return count === undefined ? out[0] : out;
}

function writeBack(
  ks: Keyspace,
  db: number,
  key: Buffer,
  row: Buffer,
  old: KeyRecord,
  items: ItemStore,
  head: number,
  tail: number,
): void {
  if (tail === head) ks.removeRecord(db, key, row, old);
  else
    ks.putCollection(
      db,
      key,
      row,
      KeyType.List,
      { uid: old.uid, count: tail - head, head, tail },
      old,
      items,
    );
}

export function llen(ks: Keyspace, db: number, key: Buffer): number {
  return collection(ks, db, key, KeyType.List, undefined, true)?.count ?? 0;
}

/** Redis' range rule: negative from the end, clamped; undefined when empty. */
function clampRange(start: number, stop: number, length: number): [number, number] | undefined {
  if (start < 0) start = length + start;
  if (stop < 0) stop = length + stop;
  if (start < 0) start = 0;
  if (start > stop || start >= length) return undefined;
  if (stop >= length) stop = length - 1;
  return [start, stop];
}

export function lrange(ks: Keyspace, db: number, key: Buffer, start: number, stop: number): Buffer[] {
  const record = collection(ks, db, key, KeyType.List, undefined, true);
  if (record === undefined) return [];
  const range = clampRange(start, stop, record.count);
  if (range === undefined) return [];
  const out: Buffer[] = [];
  for (const { value } of ks.itemsOf(record).getRange({
    start: listRow(record.uid, record.head + range[0]),
    end: listRow(record.uid, record.head + range[1] + 1),
  })) {
    out.push(value);
  }
  return out;
}

export function lindex(ks: Keyspace, db: number, key: Buffer, index: number): Buffer | null {
  const record = collection(ks, db, key, KeyType.List, undefined, true);
  if (record === undefined) return null;
  if (index < 0) index += record.count;
  if (index < 0 || index >= record.count) return null;
  return ks.itemsOf(record).getBinary(listRow(record.uid, record.head + index)) ?? null;
}

export function lset(ks: Keyspace, db: number, key: Buffer, index: number, value: Buffer): void {
  const row = ks.row(db, key);
  const old = collection(ks, db, key, KeyType.List, row);
  if (old === undefined) throw noSuchKey();
  const at = index < 0 ? index + old.count : index;
  if (at < 0 || at >= old.count) throw indexOutOfRange();
  const items = ks.itemsOf(old);
  items.put(listRow(old.uid, old.head + at), value);
  writeBack(ks, db, key, row, old, items, old.head, old.tail);
  ks.emit(db, { op: 'lset', key, index, value });
}

/** LREM: removes up to |count| elements equal to `value` (from the tail when negative; all when 0). */
export function lrem(ks: Keyspace, db: number, key: Buffer, count: number, value: Buffer): number {
  const row = ks.row(db, key);
  const old = collection(ks, db, key, KeyType.List, row);
  if (old === undefined) return 0;
  const items = ks.itemsOf(old);
  const elements: Buffer[] = [];
  for (const { value: element } of items.getRange({
    start: listRow(old.uid, old.head),
    end: listRow(old.uid, old.tail),
  })) {
    elements.push(element);
  }
  const limit = count === 0 ? Infinity : Math.abs(count);
  const drop = new Set<number>();
  if (count >= 0) {
    for (let i = 0; i < elements.length && drop.size < limit; i++) if (elements[i].equals(value)) drop.add(i);
  } else {
    for (let i = elements.length - 1; i >= 0 && drop.size < limit; i--)
      if (elements[i].equals(value)) drop.add(i);
  }
  if (drop.size === 0) return 0;
  // Rewrite the survivors at consecutive positions from the same head.
  for (let p = old.head; p < old.tail; p++) items.remove(listRow(old.uid, p));
  let tail = old.head;
  for (let i = 0; i < elements.length; i++) {
    if (!drop.has(i)) items.put(listRow(old.uid, tail++), elements[i]);
  }
  writeBack(ks, db, key, row, old, items, old.head, tail);
  ks.emit(db, { op: 'lrem', key, count, value });
  return drop.size;
}

export function ltrim(ks: Keyspace, db: number, key: Buffer, start: number, stop: number): void {
  const row = ks.row(db, key);
  const old = collection(ks, db, key, KeyType.List, row);
  if (old === undefined) return;
  const range = clampRange(start, stop, old.count);
  const keepFrom = range === undefined ? old.tail : old.head + range[0];
  const keepTo = range === undefined ? old.tail : old.head + range[1] + 1;
  if (keepFrom === old.head && keepTo === old.tail) return;
  const items = ks.itemsOf(old);
  for (let p = old.head; p < keepFrom; p++) items.remove(listRow(old.uid, p));
  for (let p = keepTo; p < old.tail; p++) items.remove(listRow(old.uid, p));
  writeBack(ks, db, key, row, old, items, range === undefined ? old.tail : keepFrom, keepTo);
  ks.emit(db, { op: 'ltrim', key, start, stop });
}

/**
 * LMOVE (RPOPLPUSH is `right`, `left`): pops from `source`'s `from` end and
 * pushes onto `destination`'s `to` end; the element, or null when `source`
 * is missing. Journaled as one entry (a pop and a push).
 */
export function lmove(
  ks: Keyspace,
  db: number,
  source: Buffer,
  destination: Buffer,
  from: Side,
  to: Side,
): Buffer | null {
  const record = collection(ks, db, source, KeyType.List);
  if (record === undefined) return null;
  collection(ks, db, destination, KeyType.List);
  if (source.equals(destination) && record.count === 1) {
    // Rotating a one-element list leaves it as it is (and keeps its TTL).
    return lindex(ks, db, source, 0);
  }
  return ks.group(() => {
    const element = pop(ks, db, source, from) as Buffer;
    push(ks, db, destination, to, [element]);
    return element;
  });
}

/**
 * LINSERT: inserts `value` before or after the first element equal to
 * `pivot`; the new length, -1 without such an element, 0 when the key is
 * missing. Journaled as one entry: the elements after the insertion point
 * popped, then pushed back behind `value`.
 */
export function linsert(
  ks: Keyspace,
  db: number,
  key: Buffer,
  after: boolean,
  pivot: Buffer,
  value: Buffer,
): number {
  if (value.length > MAX_STRING_BYTES) throw tooBig();
  const record = collection(ks, db, key, KeyType.List);
  if (record === undefined) return 0;
  const elements = lrange(ks, db, key, 0, -1);
  const found = elements.findIndex((element) => element.equals(pivot));
  if (found < 0) return -1;
  const at = after ? found + 1 : found;
  // At the head a push is enough; elsewhere the key keeps an element (and its TTL) throughout.
  if (at === 0) return push(ks, db, key, 'left', [value]);
  return ks.group(() => {
    const moved = at < elements.length ? (pop(ks, db, key, 'right', elements.length - at) as Buffer[]) : [];
    return push(ks, db, key, 'right', [value, ...moved.reverse()]);
  });
}

/**
 * LPOS: the positions (from the head) of elements equal to `element`: from
 * the `rank`-th match (negative: counting from the tail), at most `count` of
 * them (0: all), comparing at most `maxlen` elements (0: all).
 */
export function lpos(
  ks: Keyspace,
  db: number,
  key: Buffer,
  element: Buffer,
  rank: number,
  count: number,
  maxlen: number,
): number[] {
  const elements = lrange(ks, db, key, 0, -1);
  const found: number[] = [];
  const step = rank > 0 ? 1 : -1;
  let skip = Math.abs(rank) - 1;
  let compared = 0;
  for (let i = rank > 0 ? 0 : elements.length - 1; i >= 0 && i < elements.length; i += step) {
    if (maxlen !== 0 && compared++ >= maxlen) break;
    if (!elements[i].equals(element)) continue;
    if (skip > 0) {
      skip--;
      continue;
    }
    found.push(i);
    if (count !== 0 && found.length >= count) break;
  }
  return found;
}
