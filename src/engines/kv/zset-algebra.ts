/**
 * ZUNION, ZINTER and ZDIFF over sorted sets and sets (a set's members score
 * 1), and their STORE forms. Inputs are combined in Redis' order (smallest
 * first; the first input stays first for a difference), so that floating
 * point sums come out as Redis' do.
 */
import type { Keyspace } from './keyspace.js';
import { wrongType } from './kv-errors.js';
import { KeyType } from './record.js';
import { smembers } from './sets.js';
import { zadd, zrangeByRank, type ScoredMember } from './zsets.js';

export type ZSetOperation = 'union' | 'inter' | 'diff';
export type Aggregate = 'sum' | 'min' | 'max';

export interface ZSetInputs {
  readonly keys: readonly Buffer[];
  /** One per key (1 when not given). */
  readonly weights: readonly number[];
  readonly aggregate: Aggregate;
}

/** The members and scores of a sorted set, or of a set (score 1); throws WRONGTYPE for other types. */
export function scoredMembers(ks: Keyspace, db: number, key: Buffer): ScoredMember[] {
  const record = ks.lookupRead(db, key);
  if (record === undefined) return [];
  if (record.type === KeyType.Set) return smembers(ks, db, key).map((member) => ({ member, score: 1 }));
  if (record.type !== KeyType.ZSet) throw wrongType();
  return zrangeByRank(ks, db, key, 0, -1, false);
}

/** Folds `value` into `target` as Redis does (a NaN sum is 0; comparisons keep `target` against NaN). */
function aggregated(how: Aggregate, target: number, value: number): number {
  if (how === 'min') return value < target ? value : target;
  if (how === 'max') return value > target ? value : target;
  const sum = target + value;
  return Number.isNaN(sum) ? 0 : sum;
}

/** The result, in sorted-set order (score, then member bytes). Reads every input first. */
export function combine(
  ks: Keyspace,
  db: number,
  operation: ZSetOperation,
  inputs: ZSetInputs,
): ScoredMember[] {
  const sources = inputs.keys.map((key, i) => ({
    members: scoredMembers(ks, db, key).map((item) => ({
      member: Buffer.from(item.member),
      score: item.score,
    })),
    weight: inputs.weights[i] ?? 1,
  }));
  const result = new Map<string, ScoredMember>();
  const weighted = (score: number, weight: number): number => {
    const value = score * weight;
    return Number.isNaN(value) ? 0 : value;
  };
  if (operation === 'diff') {
    const removed = new Set<string>();
    for (const source of sources.slice(1))
      for (const item of source.members) removed.add(item.member.toString('latin1'));
    for (const item of sources[0]?.members ?? []) {
      const id = item.member.toString('latin1');
      if (!removed.has(id)) result.set(id, item);
    }
  } else {
    // A stable sort by size, as Redis' (glibc's qsort is a merge sort for these).
    const ordered = [...sources].sort((a, b) => a.members.length - b.members.length);
    if (operation === 'union') {
      for (const source of ordered) {
        for (const item of source.members) {
          const id = item.member.toString('latin1');
          const score = weighted(item.score, source.weight);
          const seen = result.get(id);
          result.set(id, {
            member: item.member,
            score: seen === undefined ? score : aggregated(inputs.aggregate, seen.score, score),
          });
        }
      }
    } else {
      const [smallest, ...rest] = ordered;
      const lookups = rest.map((source) => ({
        weight: source.weight,
        scores: new Map(source.members.map((item) => [item.member.toString('latin1'), item.score])),
      }));
      for (const item of smallest?.members ?? []) {
        const id = item.member.toString('latin1');
        let score = weighted(item.score, smallest.weight);
        let everywhere = true;
        for (const other of lookups) {
          const found = other.scores.get(id);
          if (found === undefined) {
            everywhere = false;
            break;
          }
          // Unlike the first input's, these products are not rid of NaN (0 × inf): Redis' order.
          score = aggregated(inputs.aggregate, score, found * other.weight);
        }
        if (everywhere) result.set(id, { member: item.member, score });
      }
    }
  }
  return [...result.values()].sort((a, b) => a.score - b.score || Buffer.compare(a.member, b.member));
}

/** Z…STORE: replaces `destination` with the result (deleting it when empty); its size. */
export function zstore(
  ks: Keyspace,
  db: number,
  operation: ZSetOperation,
  destination: Buffer,
  inputs: ZSetInputs,
): number {
  return replaceWith(ks, db, destination, combine(ks, db, operation, inputs));
}

/** Replaces `destination` with a sorted set of `items` (deleting it when there are none); their count. */
export function replaceWith(
  ks: Keyspace,
  db: number,
  destination: Buffer,
  items: readonly ScoredMember[],
): number {
  const owned = items.map((item) => ({ member: Buffer.from(item.member), score: item.score }));
  ks.group(() => {
    ks.del(db, [destination]);
    if (owned.length > 0) {
      zadd(
        ks,
        db,
        destination,
        owned.map((item) => item.score),
        owned.map((item) => item.member),
        {},
      );
    }
  });
  return owned.length;
}
