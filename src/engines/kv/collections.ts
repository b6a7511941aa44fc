/** Helpers shared by the collection types (hashes, lists, sets, sorted sets). */
import { hashOfMemberRow, MAX_KEY_BYTES, memberCursor, memberOfRow, memberRow, uidEnd } from './codec.js';
import type { CompactItems, ItemStore } from './compact-items.js';
import { globMatch } from './glob.js';
import type { Keyspace, KvOp, ScanResult } from './keyspace.js';
import { keyTooLong, wrongType } from './kv-errors.js';
import type { CollectionState, KeyRecord, KeyType } from './record.js';

/** The live record of a collection key of `type`; throws WRONGTYPE for another type. */
export function collection(
  ks: Keyspace,
  db: number,
  key: Buffer,
  type: KeyType,
  row?: Buffer,
  read = false,
): KeyRecord | undefined {
  const record = read ? ks.lookupRead(db, key) : ks.lookup(db, key, row);
  if (record !== undefined && record.type !== type) throw wrongType();
  return record;
}

/**
 * Removes members of a hash or set (deleting the key when none remain) and
 * returns the ones that were there, for the caller's journal entry.
 */
export function removeMembers(
  ks: Keyspace,
  db: number,
  key: Buffer,
  type: KeyType,
  members: readonly Buffer[],
): Buffer[] {
  const row = ks.row(db, key);
  const old = collection(ks, db, key, type, row);
  if (old === undefined) return [];
  const items = ks.itemsOf(old);
  const removed: Buffer[] = [];
  for (const member of members) {
    if (items.remove(memberRow(old.uid, member))) removed.push(member);
  }
  if (removed.length === 0) return removed;
  const count = old.count - removed.length;
  if (count === 0) ks.removeRecord(db, key, row, old);
  else ks.putCollection(db, key, row, type, { uid: old.uid, count }, old, items);
  return removed;
}

/**
 * Loads a new collection built in `items` (an RDB's key; see
 * `Keyspace.insertCollection`), journaled as `op` and its TTL: false when
 * the key exists.
 */
export function insertCollection(
  ks: Keyspace,
  db: number,
  key: Buffer,
  type: KeyType,
  state: CollectionState,
  items: CompactItems,
  expireAt: number,
  op: KvOp,
): boolean {
  if (!ks.insertCollection(db, key, type, state, items, expireAt)) return false;
  ks.emit(db, op);
  if (expireAt !== 0) ks.emit(db, { op: 'pexpireat', key, pxat: expireAt });
  return true;
}

export function checkMembers(members: readonly Buffer[], step = 1, from = 0): void {
  for (let i = from; i < members.length; i += step) if (members[i].length > MAX_KEY_BYTES) throw keyTooLong();
}

/**
 * HSCAN/SSCAN/ZSCAN over member rows ordered by member hash: about `count`
 * members from hash position `cursor`, stopping only between hash values.
 */
export function scanMembers<T>(
  store: ItemStore,
  uid: number,
  tag: number | undefined,
  cursor: number,
  count: number,
  pattern: Buffer | undefined,
  make: (member: Buffer, value: Buffer) => T,
): ScanResult<T> {
  const items: T[] = [];
  if (cursor > 0xffffffff) return { cursor: 0, items };
  const tagged = tag !== undefined;
  let seen = 0;
  let lastHash = -1;
  for (const { key, value } of store.getRange({
    start: memberCursor(uid, cursor, tag),
    end: uidEnd(uid, tag),
  })) {
    const hash = hashOfMemberRow(key, tagged);
    if (seen >= count && hash !== lastHash) return { cursor: hash, items };
    seen++;
    lastHash = hash;
    const member = memberOfRow(key, tagged);
    if (pattern !== undefined && !globMatch(pattern, member)) continue;
    items.push(make(member, value));
  }
  return { cursor: 0, items };
}

/**
 * SRANDMEMBER / HRANDFIELD / ZRANDMEMBER with a count: `count` distinct
 * elements in random order (all of them when count ≥ size), or, for a
 * negative count, -count picks that may repeat. Shuffles `all` in place.
 */
export function randomPicks<T>(all: T[], count: number): T[] {
  if (all.length === 0) return [];
  if (count < 0) {
    const out: T[] = [];
    for (let i = 0; i < -count; i++) out.push(all[Math.floor(Math.random() * all.length)]);
    return out;
  }
  const take = Math.min(count, all.length);
  for (let i = 0; i < take; i++) {
    const j = i + Math.floor(Math.random() * (all.length - i));
    [all[i], all[j]] = [all[j], all[i]];
  }
  return all.slice(0, take);
}
