/**
 * Sorted-set commands. Each member has two rows: `[uid][0][hash][member]` →
 * its score (float64 BE), and `[uid][1][sortable score][member]` (empty), the
 * (score, member) order that ranges walk.
 */
import {
  memberOfScoreRow,
  memberRow,
  scoreBound,
  scoreOfRow,
  scoreRow,
  uidEnd,
  uidTagStart,
  ZSET_MEMBER_TAG,
  ZSET_SCORE_TAG,
} from './codec.js';
import { CompactItems, type ItemStore } from './compact-items.js';
import { checkMembers, collection, insertCollection, randomPicks, scanMembers } from './collections.js';
import type { Keyspace, ScanResult } from './keyspace.js';
import { scoreNaN } from './kv-errors.js';
import { COMPACT_UID, KeyType, type KeyRecord } from './record.js';

const EMPTY = Buffer.alloc(0);

export interface ZAddOptions {
  readonly condition?: 'nx' | 'xx';
  readonly compare?: 'gt' | 'lt';
  /** Count updated members too (CH). */
  readonly changed?: boolean;
  /** ZADD … INCR: one pair; the reply is the new score or null. */
  readonly incr?: boolean;
}

function scoreOf(items: ItemStore, uid: number, member: Buffer): number | undefined {
  const raw = items.getBinaryFast(memberRow(uid, member, ZSET_MEMBER_TAG));
  return raw === undefined ? undefined : raw.readDoubleBE(0);
}

function writeScore(
  items: ItemStore,
  uid: number,
  member: Buffer,
  score: number,
  old: number | undefined,
): void {
  if (old !== undefined) items.remove(scoreRow(uid, old, member));
  const value = Buffer.allocUnsafe(8);
  value.writeDoubleBE(score, 0);
  items.put(memberRow(uid, member, ZSET_MEMBER_TAG), value);
  items.put(scoreRow(uid, score, member), EMPTY);
}

/**
 * ZADD: `scores[i]` goes with `members[i]`. Returns the number added (or
 * added + changed with CH), or with INCR the new score (null when a
 * condition refused it).
 */
export function zadd(
  ks: Keyspace,
  db: number,
  key: Buffer,
  scores: readonly number[],
  members: readonly Buffer[],
  options: ZAddOptions = {},
): number | null {
  checkMembers(members);
  const row = ks.row(db, key);
  const old = collection(ks, db, key, KeyType.ZSet, row);
  if (old === undefined && options.condition === 'xx') return options.incr === true ? null : 0;
  const items = ks.itemsOf(old);
  const uid = old?.uid ?? COMPACT_UID;
  let count = old?.count ?? 0;
  let added = 0;
  let updated = 0;
  const outScores: number[] = [];
  const outMembers: Buffer[] = [];
  let lastScore: number | null = null;
  // Validate INCR results before the first write.
  if (options.incr === true) {
    const current = scoreOf(items, uid, members[0]);
    if (current !== undefined && Number.isNaN(current + scores[0])) throw scoreNaN();
  }
  for (let i = 0; i < members.length; i++) {
    const member = members[i];
    const current = scoreOf(items, uid, member);
    let score = scores[i];
    if (current === undefined) {
      if (options.condition === 'xx') continue;
    } else {
      if (options.condition === 'nx') continue;
      if (options.incr === true) score = current + score;
      if (options.compare === 'gt' && !(score > current)) continue;
      if (options.compare === 'lt' && !(score < current)) continue;
    }
    lastScore = score;
    if (current === score) continue;
    writeScore(items, uid, member, score, current);
    outScores.push(score);
    outMembers.push(member);
    if (current === undefined) {
      count++;
      added++;
    } else updated++;
  }
  if (outMembers.length > 0) {
    ks.putCollection(db, key, row, KeyType.ZSet, { uid, count }, old, items);
    ks.emit(db, { op: 'zadd', key, scores: outScores, members: outMembers });
  }
  if (options.incr === true) return lastScore;
  return options.changed === true ? added + updated : added;
}

/** Loads a new sorted set (`scores[i]` with `members[i]`) with its TTL (an RDB's key): false when the key exists. */
export function insertZSet(
  ks: Keyspace,
  db: number,
  key: Buffer,
  scores: readonly number[],
  members: readonly Buffer[],
  expireAt: number,
): boolean {
  checkMembers(members);
  const rows: Buffer[] = [];
  const values: Buffer[] = [];
  for (let i = 0; i < members.length; i++) {
    const score = Buffer.allocUnsafe(8);
    score.writeDoubleBE(scores[i], 0);
    rows.push(
      memberRow(COMPACT_UID, members[i], ZSET_MEMBER_TAG),
      scoreRow(COMPACT_UID, scores[i], members[i]),
    );
    values.push(score, EMPTY);
  }
  let items = CompactItems.fromRows(rows, values);
  if (items.size !== rows.length) {
    // A member given twice (never in an RDB Redis wrote): the last score wins, as in ZADD.
    items = new CompactItems();
    for (let i = 0; i < members.length; i++) {
      writeScore(items, COMPACT_UID, members[i], scores[i], scoreOf(items, COMPACT_UID, members[i]));
    }
  }
  const state = { uid: COMPACT_UID, count: items.size / 2 };
  return insertCollection(ks, db, key, KeyType.ZSet, state, items, expireAt, {
    op: 'zadd',
    key,
    scores,
    members,
  });
}

export function zincrby(ks: Keyspace, db: number, key: Buffer, delta: number, member: Buffer): number {
  return zadd(ks, db, key, [delta], [member], { incr: true })!;
}

export function zrem(ks: Keyspace, db: number, key: Buffer, members: readonly Buffer[]): number {
  const row = ks.row(db, key);
  const old = collection(ks, db, key, KeyType.ZSet, row);
  if (old === undefined) return 0;
  const items = ks.itemsOf(old);
  const removed: Buffer[] = [];
  for (const member of members) {
    const score = scoreOf(items, old.uid, member);
    if (score === undefined) continue;
    items.remove(memberRow(old.uid, member, ZSET_MEMBER_TAG));
    items.remove(scoreRow(old.uid, score, member));
    removed.push(member);
  }
  if (removed.length === 0) return 0;
  const count = old.count - removed.length;
  if (count === 0) ks.removeRecord(db, key, row, old);
  else ks.putCollection(db, key, row, KeyType.ZSet, { uid: old.uid, count }, old, items);
  ks.emit(db, { op: 'zrem', key, members: removed });
  return removed.length;
}

export function zscore(ks: Keyspace, db: number, key: Buffer, member: Buffer): number | null {
  const record = collection(ks, db, key, KeyType.ZSet, undefined, true);
  if (record === undefined) return null;
  return scoreOf(ks.itemsOf(record), record.uid, member) ?? null;
}

export function zcard(ks: Keyspace, db: number, key: Buffer): number {
  return collection(ks, db, key, KeyType.ZSet, undefined, true)?.count ?? 0;
}

export interface ScoreBound {
  readonly value: number;
  readonly exclusive: boolean;
}

export interface ScoredMember {
  readonly member: Buffer;
  readonly score: number;
}

function inRange(score: number, min: ScoreBound, max: ScoreBound): boolean {
  return (
    (min.exclusive ? score > min.value : score >= min.value) &&
    (max.exclusive ? score < max.value : score <= max.value)
  );
}

/** Walks the score index of `record` in order (or reverse), from `offset`, at most `limit` rows. */
function* walk(
  ks: Keyspace,
  record: KeyRecord,
  reverse: boolean,
  offset: number,
  limit: number,
  min?: ScoreBound,
  max?: ScoreBound,
): Generator<ScoredMember> {
  const low =
    min === undefined
      ? uidTagStart(record.uid, ZSET_SCORE_TAG)
      : scoreBound(record.uid, min.value, min.exclusive);
  const high =
    max === undefined
      ? uidEnd(record.uid, ZSET_SCORE_TAG)
      : scoreBound(record.uid, max.value, !max.exclusive);
  const items = ks.itemsOf(record);
  const range = reverse
    ? items.getKeys({ start: high, end: low, reverse: true })
    : items.getKeys({ start: low, end: high });
  let skipped = 0;
  let taken = 0;
  for (const row of range) {
    if (taken >= limit) return;
    const score = scoreOfRow(row);
    if (min !== undefined && max !== undefined && !inRange(score, min, max)) continue;
    if (row.length < 15 || row[6] !== ZSET_SCORE_TAG) continue;
    if (skipped < offset) {
      skipped++;
      continue;
    }
    taken++;
    yield { member: memberOfScoreRow(row), score };
  }
}

/** ZRANGE by rank (inclusive, negative from the end). */
export function zrangeByRank(
  ks: Keyspace,
  db: number,
  key: Buffer,
  start: number,
  stop: number,
  reverse: boolean,
): ScoredMember[] {
  const record = collection(ks, db, key, KeyType.ZSet, undefined, true);
  if (record === undefined) return [];
  const length = record.count;
  if (start < 0) start += length;
  if (stop < 0) stop += length;
  if (start < 0) start = 0;
  if (start > stop || start >= length) return [];
  if (stop >= length) stop = length - 1;
  return [...walk(ks, record, reverse, start, stop - start + 1)];
}

/** ZRANGE BYSCORE / ZRANGEBYSCORE: `min`, `max` as given (reverse walks from max down). */
export function zrangeByScore(
  ks: Keyspace,
  db: number,
  key: Buffer,
  min: ScoreBound,
  max: ScoreBound,
  reverse: boolean,
  offset = 0,
  limit = Infinity,
): ScoredMember[] {
  const record = collection(ks, db, key, KeyType.ZSet, undefined, true);
  if (record === undefined || offset < 0) return [];
  if (min.value > max.value || (min.value === max.value && (min.exclusive || max.exclusive))) return [];
  return [...walk(ks, record, reverse, offset, limit < 0 ? Infinity : limit, min, max)];
}

export function zcount(ks: Keyspace, db: number, key: Buffer, min: ScoreBound, max: ScoreBound): number {
  return zrangeByScore(ks, db, key, min, max, false).length;
}

/** Removes `items`' members (already validated as this key's): how many. */
function removeScored(ks: Keyspace, db: number, key: Buffer, items: readonly ScoredMember[]): number {
  return items.length === 0
    ? 0
    : zrem(
        ks,
        db,
        key,
        items.map((item) => item.member),
      );
}

/** Members that outlive the reads and writes that follow (a range's rows may be views). */
function owned(items: readonly ScoredMember[]): ScoredMember[] {
  return items.map((item) => ({ member: Buffer.from(item.member), score: item.score }));
}

/** ZREMRANGEBYRANK: removes ranks `start`…`stop` (negative from the end); how many. */
export function zremRangeByRank(ks: Keyspace, db: number, key: Buffer, start: number, stop: number): number {
  return removeScored(ks, db, key, owned(zrangeByRank(ks, db, key, start, stop, false)));
}

/** ZREMRANGEBYSCORE: removes the members scored within `min`…`max`; how many. */
export function zremRangeByScore(
  ks: Keyspace,
  db: number,
  key: Buffer,
  min: ScoreBound,
  max: ScoreBound,
): number {
  return removeScored(ks, db, key, owned(zrangeByScore(ks, db, key, min, max, false)));
}

/** ZPOPMIN / ZPOPMAX: removes and returns up to `count` members from the low (or high) end. */
export function zpop(ks: Keyspace, db: number, key: Buffer, highest: boolean, count: number): ScoredMember[] {
  if (count <= 0) return [];
  const popped = owned(zrangeByRank(ks, db, key, 0, count - 1, highest));
  removeScored(ks, db, key, popped);
  return popped;
}

/** ZRANK / ZREVRANK: the member's rank, or null. */
export function zrank(
  ks: Keyspace,
  db: number,
  key: Buffer,
  member: Buffer,
  reverse: boolean,
): number | null {
  const record = collection(ks, db, key, KeyType.ZSet, undefined, true);
  if (record === undefined) return null;
  const items = ks.itemsOf(record);
  const score = scoreOf(items, record.uid, member);
  if (score === undefined) return null;
  // Count the rows before (score, member) in the index.
  const target = scoreRow(record.uid, score, member);
  const before = items.getCount({ start: uidTagStart(record.uid, ZSET_SCORE_TAG), end: target });
  return reverse ? record.count - 1 - before : before;
}

export function zscan(
  ks: Keyspace,
  db: number,
  key: Buffer,
  cursor: number,
  count: number,
  pattern?: Buffer,
): ScanResult<ScoredMember> {
  const record = collection(ks, db, key, KeyType.ZSet, undefined, true);
  if (record === undefined) return { cursor: 0, items: [] };
  return scanMembers(
    ks.itemsOf(record),
    record.uid,
    ZSET_MEMBER_TAG,
    cursor,
    count,
    pattern,
    (member, value) => ({
      member,
      score: value.readDoubleBE(0),
    }),
  );
}

/** ZRANDMEMBER without a count: a random member and its score; null when the key is missing. */
export function zrandmember(ks: Keyspace, db: number, key: Buffer): ScoredMember | null {
  const all = zrangeByRank(ks, db, key, 0, -1, false);
  return all.length === 0 ? null : all[Math.floor(Math.random() * all.length)];
}

/** ZRANDMEMBER with a count: `randomPicks` of the members and their scores. */
export function zrandmembers(ks: Keyspace, db: number, key: Buffer, count: number): ScoredMember[] {
  return randomPicks(zrangeByRank(ks, db, key, 0, -1, false), count);
}
