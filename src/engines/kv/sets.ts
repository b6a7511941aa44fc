/** Set commands. Members are rows `[uid][hash32(member)][member]` with empty values. */
import { memberCursor, memberRow, memberOfRow, uidEnd, uidPrefix } from './codec.js';
import {
  checkMembers,
  collection,
  insertCollection,
  randomPicks,
  removeMembers,
  scanMembers,
} from './collections.js';
import type { Keyspace, ScanResult } from './keyspace.js';
import { CompactItems, type ItemStore } from './compact-items.js';
import { COMPACT_UID, KeyType } from './record.js';

const EMPTY = Buffer.alloc(0);

export function sadd(ks: Keyspace, db: number, key: Buffer, members: readonly Buffer[]): number {
  checkMembers(members);
  const row = ks.row(db, key);
  const old = collection(ks, db, key, KeyType.Set, row);
  const items = ks.itemsOf(old);
  const uid = old?.uid ?? COMPACT_UID;
  const added: Buffer[] = [];
  for (const member of members) {
    const itemRow = memberRow(uid, member);
    if (items.doesExist(itemRow)) continue;
    items.put(itemRow, EMPTY);
    added.push(member);
  }
  if (added.length === 0) return 0;
  ks.putCollection(db, key, row, KeyType.Set, { uid, count: (old?.count ?? 0) + added.length }, old, items);
  ks.emit(db, { op: 'sadd', key, members: added });
  return added.length;
}

/** Loads a new set with its TTL (an RDB's key): false when the key exists. */
export function insertSet(
  ks: Keyspace,
  db: number,
  key: Buffer,
  members: readonly Buffer[],
  expireAt: number,
): boolean {
  checkMembers(members);
  const items = CompactItems.fromRows(
    members.map((member) => memberRow(COMPACT_UID, member)),
    members.map(() => EMPTY),
  );
  const state = { uid: COMPACT_UID, count: items.size };
  return insertCollection(ks, db, key, KeyType.Set, state, items, expireAt, { op: 'sadd', key, members });
}

export function srem(ks: Keyspace, db: number, key: Buffer, members: readonly Buffer[]): number {
  const removed = removeMembers(ks, db, key, KeyType.Set, members);
  if (removed.length > 0) ks.emit(db, { op: 'srem', key, members: removed });
  return removed.length;
}

function members(items: ItemStore, uid: number): Buffer[] {
  const out: Buffer[] = [];
  for (const itemRow of items.getKeys({ start: uidPrefix(uid), end: uidEnd(uid) })) {
    out.push(memberOfRow(itemRow, false));
  }
  return out;
}

export function smembers(ks: Keyspace, db: number, key: Buffer): Buffer[] {
  const record = collection(ks, db, key, KeyType.Set, undefined, true);
  return record === undefined ? [] : members(ks.itemsOf(record), record.uid);
}

export function sismember(ks: Keyspace, db: number, key: Buffer, member: Buffer): boolean {
  const record = collection(ks, db, key, KeyType.Set, undefined, true);
  return record !== undefined && ks.itemsOf(record).doesExist(memberRow(record.uid, member));
}

export function smismember(ks: Keyspace, db: number, key: Buffer, candidates: readonly Buffer[]): boolean[] {
  const record = collection(ks, db, key, KeyType.Set, undefined, true);
  if (record === undefined) return candidates.map(() => false);
  const items = ks.itemsOf(record);
  return candidates.map((m) => items.doesExist(memberRow(record.uid, m)));
}

export function scard(ks: Keyspace, db: number, key: Buffer): number {
  return collection(ks, db, key, KeyType.Set, undefined, true)?.count ?? 0;
}

/** One member at a random hash position (wrapping around). */
function randomMember(items: ItemStore, uid: number): Buffer | undefined {
  const cursor = Math.floor(Math.random() * 0x100000000);
  for (const start of [memberCursor(uid, cursor), uidPrefix(uid)]) {
    for (const itemRow of items.getKeys({ start, end: uidEnd(uid), limit: 1 }))
      return memberOfRow(itemRow, false);
  }
  return undefined;
}

/** SPOP: one member (or null) without `count`, else up to `count` members. Journaled as `srem`. */
export function spop(ks: Keyspace, db: number, key: Buffer, count?: number): Buffer | Buffer[] | null {
  const record = collection(ks, db, key, KeyType.Set);
  if (record === undefined) return count === undefined ? null : [];
  if (count === 0) return [];
  const items = ks.itemsOf(record);
  let chosen: Buffer[];
  if (count === undefined) {
    const one = randomMember(items, record.uid);
    chosen = one === undefined ? [] : [Buffer.from(one)];
  } else {
    chosen = randomPicks(members(items, record.uid), count).map((m) => Buffer.from(m));
  }
  srem(ks, db, key, chosen);
  return count === undefined ? (chosen[0] ?? null) : chosen;
}

/** SRANDMEMBER: without `count` one member; a positive count gives distinct members, a negative one may repeat. */
export function srandmember(ks: Keyspace, db: number, key: Buffer, count?: number): Buffer | Buffer[] | null {
  const record = collection(ks, db, key, KeyType.Set, undefined, true);
  if (record === undefined) return count === undefined ? null : [];
  const items = ks.itemsOf(record);
  if (count === undefined) return randomMember(items, record.uid) ?? null;
  return randomPicks(members(items, record.uid), count);
}

function memberSet(ks: Keyspace, db: number, key: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const m of smembers(ks, db, key)) out.set(m.toString('latin1'), m);
  return out;
}

export function sinter(ks: Keyspace, db: number, keys: readonly Buffer[]): Buffer[] {
  const sets = keys.map((k) => memberSet(ks, db, k));
  sets.sort((a, b) => a.size - b.size);
  const [smallest, ...rest] = sets;
  if (smallest === undefined) return [];
  const out: Buffer[] = [];
  for (const [id, m] of smallest) if (rest.every((s) => s.has(id))) out.push(m);
  return out;
}

export function sunion(ks: Keyspace, db: number, keys: readonly Buffer[]): Buffer[] {
  const out = new Map<string, Buffer>();
  for (const key of keys) for (const [id, m] of memberSet(ks, db, key)) out.set(id, m);
  return [...out.values()];
}

export function sdiff(ks: Keyspace, db: number, keys: readonly Buffer[]): Buffer[] {
  const [first, ...rest] = keys.map((k) => memberSet(ks, db, k));
  if (first === undefined) return [];
  for (const other of rest) for (const id of other.keys()) first.delete(id);
  return [...first.values()];
}

/** SMOVE: 1 when `member` moved from `source` to `destination` (or is in `source` when they are one key). */
export function smove(ks: Keyspace, db: number, source: Buffer, destination: Buffer, member: Buffer): number {
  checkMembers([member]);
  if (collection(ks, db, source, KeyType.Set) === undefined) return 0;
  collection(ks, db, destination, KeyType.Set);
  if (!sismember(ks, db, source, member)) return 0;
  if (source.equals(destination)) return 1;
  ks.group(() => {
    srem(ks, db, source, [member]);
    sadd(ks, db, destination, [member]);
  });
  return 1;
}

/** SINTERSTORE / SUNIONSTORE / SDIFFSTORE: replaces `destination` with the result; its size. */
export function sstore(
  ks: Keyspace,
  db: number,
  operation: 'inter' | 'union' | 'diff',
  destination: Buffer,
  keys: readonly Buffer[],
): number {
  const result =
    operation === 'inter'
      ? sinter(ks, db, keys)
      : operation === 'union'
        ? sunion(ks, db, keys)
        : sdiff(ks, db, keys);
  ks.group(() => {
    ks.del(db, [destination]);
    if (result.length > 0) sadd(ks, db, destination, result);
  });
  return result.length;
}

export function sscan(
  ks: Keyspace,
  db: number,
  key: Buffer,
  cursor: number,
  count: number,
  pattern?: Buffer,
): ScanResult<Buffer> {
  const record = collection(ks, db, key, KeyType.Set, undefined, true);
  if (record === undefined) return { cursor: 0, items: [] };
  return scanMembers(ks.itemsOf(record), record.uid, undefined, cursor, count, pattern, (m) => m);
}
