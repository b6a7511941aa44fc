/** Hash commands. Mutating functions run inside `Keyspace.write`. */
import { memberRow, memberOfRow, uidEnd, uidPrefix } from './codec.js';
import { CompactItems } from './compact-items.js';
import {
  checkMembers,
  collection,
  insertCollection,
  randomPicks,
  removeMembers,
  scanMembers,
} from './collections.js';
import type { Keyspace, ScanResult } from './keyspace.js';
import { hashNotFloat, hashNotInteger, nanOrInfinity, overflow } from './kv-errors.js';
import { addInt64, formatHumanDouble, parseDouble, parseInt64 } from './numbers.js';
import { COMPACT_UID, KeyType } from './record.js';

/** HSET: `pairs` is field, value, …; returns how many fields were new. */
export function hset(
  ks: Keyspace,
  db: number,
  key: Buffer,
  pairs: readonly Buffer[],
  onlyNew = false,
): number {
  checkMembers(pairs, 2);
  const row = ks.row(db, key);
  const old = collection(ks, db, key, KeyType.Hash, row);
  const items = ks.itemsOf(old);
  const uid = old?.uid ?? COMPACT_UID;
  let count = old?.count ?? 0;
  let added = 0;
  const written: Buffer[] = [];
  for (let i = 0; i < pairs.length; i += 2) {
    const itemRow = memberRow(uid, pairs[i]);
    const exists = items.getBinaryFast(itemRow) !== undefined;
    if (exists && onlyNew) continue;
    items.put(itemRow, pairs[i + 1]);
    written.push(pairs[i], pairs[i + 1]);
    if (!exists) {
      count++;
      added++;
    }
  }
  if (written.length === 0) return 0;
  ks.putCollection(db, key, row, KeyType.Hash, { uid, count }, old, items);
  ks.emit(db, { op: 'hset', key, pairs: written });
  return added;
}

/** Loads a new hash of field, value, … with its TTL (an RDB's key): false when the key exists. */
export function insertHash(
  ks: Keyspace,
  db: number,
  key: Buffer,
  pairs: readonly Buffer[],
  expireAt: number,
): boolean {
  checkMembers(pairs, 2);
  const rows: Buffer[] = [];
  const values: Buffer[] = [];
  for (let i = 0; i < pairs.length; i += 2) {
    rows.push(memberRow(COMPACT_UID, pairs[i]));
    values.push(pairs[i + 1]);
  }
  const items = CompactItems.fromRows(rows, values);
  const state = { uid: COMPACT_UID, count: items.size };
  return insertCollection(ks, db, key, KeyType.Hash, state, items, expireAt, { op: 'hset', key, pairs });
}

export function hget(ks: Keyspace, db: number, key: Buffer, field: Buffer): Buffer | null {
  const record = collection(ks, db, key, KeyType.Hash, undefined, true);
  if (record === undefined) return null;
  return ks.itemsOf(record).getBinary(memberRow(record.uid, field)) ?? null;
}

export function hmget(ks: Keyspace, db: number, key: Buffer, fields: readonly Buffer[]): (Buffer | null)[] {
  const record = collection(ks, db, key, KeyType.Hash, undefined, true);
  if (record === undefined) return fields.map(() => null);
  const items = ks.itemsOf(record);
  return fields.map((field) => items.getBinary(memberRow(record.uid, field)) ?? null);
}

export function hdel(ks: Keyspace, db: number, key: Buffer, fields: readonly Buffer[]): number {
  const removed = removeMembers(ks, db, key, KeyType.Hash, fields);
  if (removed.length > 0) ks.emit(db, { op: 'hdel', key, fields: removed });
  return removed.length;
}

/** HGETALL: [field, value] pairs in storage order. */
export function hgetall(ks: Keyspace, db: number, key: Buffer): [Buffer, Buffer][] {
  const record = collection(ks, db, key, KeyType.Hash, undefined, true);
  if (record === undefined) return [];
  const out: [Buffer, Buffer][] = [];
  for (const { key: itemRow, value } of ks.itemsOf(record).getRange({
    start: uidPrefix(record.uid),
    end: uidEnd(record.uid),
  })) {
    out.push([memberOfRow(itemRow, false), value]);
  }
  return out;
}

export function hlen(ks: Keyspace, db: number, key: Buffer): number {
  return collection(ks, db, key, KeyType.Hash, undefined, true)?.count ?? 0;
}

export function hexists(ks: Keyspace, db: number, key: Buffer, field: Buffer): boolean {
  const record = collection(ks, db, key, KeyType.Hash, undefined, true);
  return record !== undefined && ks.itemsOf(record).doesExist(memberRow(record.uid, field));
}

export function hstrlen(ks: Keyspace, db: number, key: Buffer, field: Buffer): number {
  return hget(ks, db, key, field)?.length ?? 0;
}

function setField(ks: Keyspace, db: number, key: Buffer, field: Buffer, value: Buffer): void {
  hset(ks, db, key, [field, value]);
}

export function hincrBy(
  ks: Keyspace,
  db: number,
  key: Buffer,
  field: Buffer,
  delta: number | bigint,
): number | bigint {
  checkMembers([field]);
  const current = hget(ks, db, key, field);
  let base: number | bigint = 0;
  if (current !== null) {
    const parsed = parseInt64(current);
    if (parsed === undefined) throw hashNotInteger();
    base = parsed;
  }
  const next = addInt64(base, delta);
  if (next === undefined) throw overflow();
  setField(ks, db, key, field, Buffer.from(String(next), 'latin1'));
  return next;
}

export function hincrByFloat(ks: Keyspace, db: number, key: Buffer, field: Buffer, delta: number): Buffer {
  checkMembers([field]);
  const current = hget(ks, db, key, field);
  let base = 0;
  if (current !== null) {
    const parsed = parseDouble(current);
    if (parsed === undefined) throw hashNotFloat();
    base = parsed;
  }
  const next = base + delta;
  if (!Number.isFinite(next)) throw nanOrInfinity();
  const value = Buffer.from(formatHumanDouble(next), 'latin1');
  setField(ks, db, key, field, value);
  return value;
}

export function hscan(
  ks: Keyspace,
  db: number,
  key: Buffer,
  cursor: number,
  count: number,
  pattern?: Buffer,
): ScanResult<[Buffer, Buffer]> {
  const record = collection(ks, db, key, KeyType.Hash, undefined, true);
  if (record === undefined) return { cursor: 0, items: [] };
  return scanMembers(ks.itemsOf(record), record.uid, undefined, cursor, count, pattern, (f, v) => [f, v]);
}

/** HRANDFIELD without a count: a random field and its value; null when the key is missing. */
export function hrandfield(ks: Keyspace, db: number, key: Buffer): [Buffer, Buffer] | null {
  const all = hgetall(ks, db, key);
  return all.length === 0 ? null : all[Math.floor(Math.random() * all.length)];
}

/** HRANDFIELD with a count: `randomPicks` of the fields and their values. */
export function hrandfields(ks: Keyspace, db: number, key: Buffer, count: number): [Buffer, Buffer][] {
  return randomPicks(hgetall(ks, db, key), count);
}
