/** Sorted-set commands. */
import { formatDouble } from '../../engines/kv/numbers.js';
import * as algebra from '../../engines/kv/zset-algebra.js';
import * as zsets from '../../engines/kv/zsets.js';
import {
  cardinalityLimit,
  TOO_MANY_KEYS,
  cursor,
  float,
  int,
  numberedKeys,
  popTail,
  randomCount,
  scanOptions,
  scoreBound,
  word,
} from '../args.js';
import type { Client } from '../client.js';
import { command, Flag, keyCommand, type CommandSpec } from '../command-spec.js';
import { respError, syntaxError } from '../errors.js';

const W = Flag.Write;
const R = Flag.ReadOnly;
const F = Flag.Fast;

function zaddCommand(c: Client, argv: Buffer[]): void {
  let i = 2;
  let nx = false;
  let xx = false;
  let gt = false;
  let lt = false;
  let ch = false;
  let incr = false;
  for (; i < argv.length; i++) {
    const option = word(argv[i]);
    if (option === 'NX') nx = true;
    else if (option === 'XX') xx = true;
    else if (option === 'GT') gt = true;
    else if (option === 'LT') lt = true;
    else if (option === 'CH') ch = true;
    else if (option === 'INCR') incr = true;
    else break;
  }
  const rest = argv.length - i;
  if (rest === 0 || rest % 2 !== 0) throw syntaxError();
  if (nx && xx) throw respError('XX and NX options at the same time are not compatible');
  if ((gt && nx) || (lt && nx) || (gt && lt)) {
    throw respError('GT, LT, and/or NX options at the same time are not compatible');
  }
  if (incr && rest > 2) throw respError('INCR option supports a single increment-element pair');
  const scores: number[] = [];
  const members: Buffer[] = [];
  for (; i < argv.length; i += 2) {
    scores.push(float(argv[i]));
    members.push(argv[i + 1]);
  }
  const options: zsets.ZAddOptions = {
    ...(nx ? { condition: 'nx' as const } : xx ? { condition: 'xx' as const } : {}),
    ...(gt ? { compare: 'gt' as const } : lt ? { compare: 'lt' as const } : {}),
    changed: ch,
    incr,
  };
  const result = zsets.zadd(c.server.keyspace, c.db, argv[1], scores, members, options);
  if (incr) {
    if (result === null) c.reply.nullBulk();
    else c.reply.double(result);
  } else c.reply.integer(result ?? 0);
}

function scoredReply(c: Client, items: readonly zsets.ScoredMember[], withScores: boolean): void {
  if (!withScores) {
    c.reply.array(items.length);
    for (const item of items) c.reply.bulk(item.member);
    return;
  }
  if (c.reply.resp3) {
    c.reply.array(items.length);
    for (const item of items) {
      c.reply.array(2);
      c.reply.bulk(item.member);
      c.reply.double(item.score);
    }
    return;
  }
  c.reply.array(items.length * 2);
  for (const item of items) {
    c.reply.bulk(item.member);
    c.reply.double(item.score);
  }
}

interface LexBound {
  readonly value: Buffer | null;
  readonly exclusive: boolean;
  readonly infinite: -1 | 0 | 1;
}

function lexBound(arg: Buffer): LexBound {
  if (arg.length === 1 && arg[0] === 0x2d) return { value: null, exclusive: false, infinite: -1 };
  if (arg.length === 1 && arg[0] === 0x2b) return { value: null, exclusive: false, infinite: 1 };
  if (arg[0] === 0x28 || arg[0] === 0x5b)
    return { value: arg.subarray(1), exclusive: arg[0] === 0x28, infinite: 0 };
  throw respError('min or max not valid string range item');
}

function lexAbove(member: Buffer, min: LexBound): boolean {
  if (min.infinite !== 0) return min.infinite < 0;
  const cmp = Buffer.compare(member, min.value!);
  return min.exclusive ? cmp > 0 : cmp >= 0;
}

function lexBelow(member: Buffer, max: LexBound): boolean {
  if (max.infinite !== 0) return max.infinite > 0;
  const cmp = Buffer.compare(member, max.value!);
  return max.exclusive ? cmp < 0 : cmp <= 0;
}

type RangeBy = 'rank' | 'score' | 'lex';
type Limit = { offset: number; count: number } | undefined;

/** The shared ZRANGE family's selection. `by` is how start/stop read; `rev` walks from the top. */
function selectRange(
  c: Client,
  key: Buffer,
  start: Buffer,
  stop: Buffer,
  by: RangeBy,
  rev: boolean,
  limit: Limit,
): zsets.ScoredMember[] {
  const ks = c.server.keyspace;
  if (by === 'rank') return zsets.zrangeByRank(ks, c.db, key, int(start), int(stop), rev);
  // With REV the first bound given is the maximum.
  const [lowArg, highArg] = rev ? [stop, start] : [start, stop];
  if (by === 'score') {
    const min = scoreBound(lowArg);
    const max = scoreBound(highArg);
    return zsets.zrangeByScore(ks, c.db, key, min, max, rev, limit?.offset ?? 0, limit?.count ?? -1);
  }
  const min = lexBound(lowArg);
  const max = lexBound(highArg);
  const all = zsets.zrangeByRank(ks, c.db, key, 0, -1, rev);
  const matching = all.filter((item) => lexAbove(item.member, min) && lexBelow(item.member, max));
  const offset = limit?.offset ?? 0;
  const count = limit === undefined || limit.count < 0 ? Infinity : limit.count;
  return offset < 0 ? [] : matching.slice(offset, offset + count);
}

function range(
  c: Client,
  argv: Buffer[],
  by: RangeBy,
  rev: boolean,
  withScores: boolean,
  limit: Limit,
): void {
  scoredReply(c, selectRange(c, argv[1], argv[2], argv[3], by, rev, limit), withScores);
}

function parseLimit(argv: Buffer[], i: number): { offset: number; count: number } {
  if (argv[i + 2] === undefined) throw syntaxError();
  return { offset: int(argv[i + 1]), count: int(argv[i + 2]) };
}

/** ZRANGE's and ZRANGESTORE's options from `from` on, in Redis' rules (each at most once; WITHSCORES not when storing). */
function rangeOptions(
  argv: Buffer[],
  from: number,
  store: boolean,
): { by: RangeBy; rev: boolean; withScores: boolean; limit: Limit } {
  let by: RangeBy | undefined;
  let rev = false;
  let withScores = false;
  let limit: Limit;
  for (let i = from; i < argv.length; i++) {
    const option = word(argv[i]);
    if (!store && option === 'WITHSCORES') withScores = true;
    else if (option === 'LIMIT' && argv.length - i - 1 >= 2) {
      limit = parseLimit(argv, i);
      i += 2;
    } else if (!rev && option === 'REV') rev = true;
    else if (by === undefined && option === 'BYLEX') by = 'lex';
    else if (by === undefined && option === 'BYSCORE') by = 'score';
    else throw syntaxError();
  }
  by ??= 'rank';
  if (limit !== undefined && by === 'rank') {
    throw respError('syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX');
  }
  if (withScores && by === 'lex') {
    throw respError('syntax error, WITHSCORES not supported in combination with BYLEX');
  }
  return { by, rev, withScores, limit };
}

function zrangeCommand(c: Client, argv: Buffer[]): void {
  const { by, rev, withScores, limit } = rangeOptions(argv, 4, false);
  range(c, argv, by, rev, withScores, limit);
}

function zrangestoreCommand(c: Client, argv: Buffer[]): void {
  const { by, rev, limit } = rangeOptions(argv, 5, true);
  const items = selectRange(c, argv[2], argv[3], argv[4], by, rev, limit);
  c.reply.integer(algebra.replaceWith(c.server.keyspace, c.db, argv[1], items));
}

function byScoreCommand(rev: boolean) {
  return (c: Client, argv: Buffer[]): void => {
    let withScores = false;
    let limit: { offset: number; count: number } | undefined;
    for (let i = 4; i < argv.length; i++) {
      const option = word(argv[i]);
      if (option === 'WITHSCORES') withScores = true;
      else if (option === 'LIMIT') {
        limit = parseLimit(argv, i);
        i += 2;
      } else throw syntaxError();
    }
    range(c, argv, 'score', rev, withScores, limit);
  };
}

/** ZRANGEBYLEX / ZREVRANGEBYLEX key min max [LIMIT offset count] (max first with REV). */
function byLexCommand(rev: boolean) {
  return (c: Client, argv: Buffer[]): void => {
    let limit: Limit;
    for (let i = 4; i < argv.length; i++) {
      const option = word(argv[i]);
      if (option === 'WITHSCORES') {
        throw respError('syntax error, WITHSCORES not supported in combination with BYLEX');
      }
      if (option !== 'LIMIT') throw syntaxError();
      limit = parseLimit(argv, i);
      i += 2;
    }
    range(c, argv, 'lex', rev, false, limit);
  };
}

/** ZRANDMEMBER key [count [WITHSCORES]]: pairs as [member, score] arrays in RESP3, flat in RESP2. */
function zrandmemberCommand(c: Client, argv: Buffer[]): void {
  const { count, pairs } = randomCount(argv, 'WITHSCORES');
  const ks = c.server.keyspace;
  const r = c.reply;
  if (count === undefined) {
    r.bulk(zsets.zrandmember(ks, c.db, argv[1])?.member ?? null);
    return;
  }
  const chosen = zsets.zrandmembers(ks, c.db, argv[1], count);
  r.array(pairs && !r.resp3 ? chosen.length * 2 : chosen.length);
  for (const { member, score } of chosen) {
    if (pairs && r.resp3) r.array(2);
    r.bulk(member);
    if (pairs) r.double(score);
  }
}

function revRangeCommand(c: Client, argv: Buffer[]): void {
  let withScores = false;
  for (let i = 4; i < argv.length; i++) {
    if (word(argv[i]) === 'WITHSCORES') withScores = true;
    else throw syntaxError();
  }
  range(c, argv, 'rank', true, withScores, undefined);
}

/** ZPOPMIN / ZPOPMAX: without a count, one member and its score; with one, up to that many. */
function popCommand(highest: boolean) {
  return (c: Client, argv: Buffer[]): void => {
    if (argv.length > 3) throw syntaxError();
    let count = 1;
    if (argv.length === 3) {
      count = int(argv[2]);
      if (count < 0) throw respError('value is out of range, must be positive');
    }
    const popped = zsets.zpop(c.server.keyspace, c.db, argv[1], highest, count);
    // RESP3 nests member-score pairs only when a count was given, as Redis does.
    if (argv.length === 3 || !c.reply.resp3) scoredReply(c, popped, true);
    else {
      c.reply.array(popped.length * 2);
      for (const item of popped) {
        c.reply.bulk(item.member);
        c.reply.double(item.score);
      }
    }
  };
}

/**
 * ZUNION/ZINTER/ZDIFF and their STORE forms, parsed in Redis' order: the
 * key count, the input keys (WRONGTYPE first), then WEIGHTS, AGGREGATE and
 * (without a destination) WITHSCORES.
 */
function algebraCommand(operation: algebra.ZSetOperation, store: boolean) {
  const name = `z${operation}${store ? 'store' : ''}`;
  return (c: Client, argv: Buffer[]): void => {
    const countAt = store ? 2 : 1;
    const count = int(argv[countAt]);
    if (count < 1) throw respError(`at least 1 input key is needed for '${name}' command`);
    if (count > argv.length - countAt - 1) throw syntaxError();
    const keys = argv.slice(countAt + 1, countAt + 1 + count);
    const ks = c.server.keyspace;
    for (const key of keys) algebra.scoredMembers(ks, c.db, key);
    const weights: number[] = keys.map(() => 1);
    let aggregate: algebra.Aggregate = 'sum';
    let withScores = false;
    for (let j = countAt + 1 + count; j < argv.length;) {
      const option = word(argv[j]);
      const remaining = argv.length - j;
      if (operation !== 'diff' && option === 'WEIGHTS' && remaining >= count + 1) {
        for (let i = 0; i < count; i++) {
          try {
            weights[i] = float(argv[j + 1 + i]);
          } catch {
            throw respError('weight value is not a float');
          }
        }
        j += count + 1;
      } else if (operation !== 'diff' && option === 'AGGREGATE' && remaining >= 2) {
        const how = word(argv[j + 1]);
        if (how !== 'SUM' && how !== 'MIN' && how !== 'MAX') throw syntaxError();
        aggregate = how === 'SUM' ? 'sum' : how === 'MIN' ? 'min' : 'max';
        j += 2;
      } else if (!store && option === 'WITHSCORES') {
        withScores = true;
        j++;
      } else throw syntaxError();
    }
    const inputs = { keys, weights, aggregate };
    if (store) c.reply.integer(algebra.zstore(ks, c.db, operation, argv[1], inputs));
    else scoredReply(c, algebra.combine(ks, c.db, operation, inputs), withScores);
  };
}

/** ZMPOP's and BZMPOP's reply: [key, [[member, score] …]]. */
export function keyedPopReply(c: Client, key: Buffer, popped: readonly zsets.ScoredMember[]): void {
  c.reply.array(2);
  c.reply.bulk(key);
  c.reply.array(popped.length);
  for (const item of popped) {
    c.reply.array(2);
    c.reply.bulk(item.member);
    c.reply.double(item.score);
  }
}

/** ZMPOP: pops from the first of the keys that holds a sorted set; [key, [[member, score] …]], or a null array. */
function zmpopCommand(c: Client, argv: Buffer[]): void {
  const { keys, next } = numberedKeys(argv, 1);
  const { end, count } = popTail(argv, next, ['MIN', 'MAX']);
  const ks = c.server.keyspace;
  for (const key of keys) {
    if (zsets.zcard(ks, c.db, key) === 0) continue;
    keyedPopReply(c, key, zsets.zpop(ks, c.db, key, end === 'MAX', count));
    return;
  }
  c.reply.nullArray();
}

/** ZINTERCARD: the size of the intersection, counting up to LIMIT (0: no limit). */
function zintercardCommand(c: Client, argv: Buffer[]): void {
  const { keys, next } = numberedKeys(argv, 1, TOO_MANY_KEYS);
  const limit = cardinalityLimit(argv, next);
  const size = algebra.combine(c.server.keyspace, c.db, 'inter', {
    keys,
    weights: keys.map(() => 1),
    aggregate: 'sum',
  }).length;
  c.reply.integer(limit === 0 ? size : Math.min(size, limit));
}

function rankCommand(rev: boolean) {
  return (c: Client, argv: Buffer[]): void => {
    let withScore = false;
    if (argv.length === 4) {
      if (word(argv[3]) !== 'WITHSCORE') throw syntaxError();
      withScore = true;
    } else if (argv.length > 4) throw syntaxError();
    const ks = c.server.keyspace;
    const rank = zsets.zrank(ks, c.db, argv[1], argv[2], rev);
    if (rank === null) {
      if (withScore) c.reply.nullArray();
      else c.reply.nullBulk();
      return;
    }
    if (!withScore) {
      c.reply.integer(rank);
      return;
    }
    c.reply.array(2);
    c.reply.integer(rank);
    c.reply.double(zsets.zscore(ks, c.db, argv[1], argv[2]) ?? 0);
  };
}

export const zsetCommands: CommandSpec[] = [
  keyCommand({
    name: 'zadd',
    arity: -4,
    flags: W | F,
    group: 'sorted-set',
    since: '1.2.0',
    run: zaddCommand,
  }),
  keyCommand({
    name: 'zrem',
    arity: -3,
    flags: W | F,
    group: 'sorted-set',
    since: '1.2.0',
    run: (c, argv) => c.reply.integer(zsets.zrem(c.server.keyspace, c.db, argv[1], argv.slice(2))),
  }),
  keyCommand({
    name: 'zscore',
    arity: 3,
    flags: R | F,
    group: 'sorted-set',
    since: '1.2.0',
    run: (c, argv) => {
      const score = zsets.zscore(c.server.keyspace, c.db, argv[1], argv[2]);
      if (score === null) c.reply.nullBulk();
      else c.reply.double(score);
    },
  }),
  keyCommand({
    name: 'zmscore',
    arity: -3,
    flags: R | F,
    group: 'sorted-set',
    since: '6.2.0',
    run: (c, argv) => {
      c.reply.array(argv.length - 2);
      for (const member of argv.slice(2)) {
        const score = zsets.zscore(c.server.keyspace, c.db, argv[1], member);
        if (score === null) c.reply.nullBulk();
        else c.reply.double(score);
      }
    },
  }),
  keyCommand({
    name: 'zincrby',
    arity: 4,
    flags: W | F,
    group: 'sorted-set',
    since: '1.2.0',
    run: (c, argv) =>
      c.reply.double(zsets.zincrby(c.server.keyspace, c.db, argv[1], float(argv[2]), argv[3])),
  }),
  keyCommand({
    name: 'zcard',
    arity: 2,
    flags: R | F,
    group: 'sorted-set',
    since: '1.2.0',
    run: (c, argv) => c.reply.integer(zsets.zcard(c.server.keyspace, c.db, argv[1])),
  }),
  keyCommand({
    name: 'zcount',
    arity: 4,
    flags: R | F,
    group: 'sorted-set',
    since: '2.0.0',
    run: (c, argv) =>
      c.reply.integer(
        zsets.zcount(c.server.keyspace, c.db, argv[1], scoreBound(argv[2]), scoreBound(argv[3])),
      ),
  }),
  keyCommand({
    name: 'zrange',
    arity: -4,
    flags: R,
    group: 'sorted-set',
    since: '1.2.0',
    run: zrangeCommand,
  }),
  keyCommand({
    name: 'zrevrange',
    arity: -4,
    flags: R,
    group: 'sorted-set',
    since: '1.2.0',
    run: revRangeCommand,
  }),
  keyCommand({
    name: 'zrangebyscore',
    arity: -4,
    flags: R,
    group: 'sorted-set',
    since: '1.0.5',
    run: byScoreCommand(false),
  }),
  keyCommand({
    name: 'zrevrangebyscore',
    arity: -4,
    flags: R,
    group: 'sorted-set',
    since: '2.2.0',
    run: byScoreCommand(true),
  }),
  keyCommand({
    name: 'zrandmember',
    arity: -2,
    flags: R,
    group: 'sorted-set',
    since: '6.2.0',
    summary:
      'Random members of a sorted set (distinct with a positive count, repeating with a negative one).',
    run: zrandmemberCommand,
  }),
  keyCommand({
    name: 'zrangebylex',
    arity: -4,
    flags: R,
    group: 'sorted-set',
    since: '2.8.9',
    run: byLexCommand(false),
  }),
  keyCommand({
    name: 'zrevrangebylex',
    arity: -4,
    flags: R,
    group: 'sorted-set',
    since: '2.8.9',
    run: byLexCommand(true),
  }),
  keyCommand({
    name: 'zlexcount',
    arity: 4,
    flags: R | F,
    group: 'sorted-set',
    since: '2.8.9',
    run: (c, argv) =>
      c.reply.integer(selectRange(c, argv[1], argv[2], argv[3], 'lex', false, undefined).length),
  }),
  keyCommand({
    name: 'zrank',
    arity: -3,
    flags: R | F,
    group: 'sorted-set',
    since: '2.0.0',
    run: rankCommand(false),
  }),
  keyCommand({
    name: 'zrevrank',
    arity: -3,
    flags: R | F,
    group: 'sorted-set',
    since: '2.0.0',
    run: rankCommand(true),
  }),
  keyCommand({
    name: 'zscan',
    arity: -3,
    flags: R,
    group: 'sorted-set',
    since: '2.8.0',
    run: (c, argv) => {
      const from = cursor(argv[2]);
      const options = scanOptions(argv, 3, false);
      const result = zsets.zscan(c.server.keyspace, c.db, argv[1], from, options.count, options.match);
      c.reply.array(2);
      c.reply.bulkText(String(result.cursor));
      c.reply.array(result.items.length * 2);
      for (const item of result.items) {
        // ZSCAN replies scores as bulk strings, in RESP3 too.
        c.reply.bulk(item.member);
        c.reply.bulkText(formatDouble(item.score));
      }
    },
  }),
  keyCommand({
    name: 'zremrangebyrank',
    arity: 4,
    flags: W,
    group: 'sorted-set',
    since: '2.0.0',
    run: (c, argv) =>
      c.reply.integer(zsets.zremRangeByRank(c.server.keyspace, c.db, argv[1], int(argv[2]), int(argv[3]))),
  }),
  keyCommand({
    name: 'zremrangebyscore',
    arity: 4,
    flags: W,
    group: 'sorted-set',
    since: '1.2.0',
    run: (c, argv) =>
      c.reply.integer(
        zsets.zremRangeByScore(c.server.keyspace, c.db, argv[1], scoreBound(argv[2]), scoreBound(argv[3])),
      ),
  }),
  keyCommand({
    name: 'zremrangebylex',
    arity: 4,
    flags: W,
    group: 'sorted-set',
    since: '2.8.9',
    run: (c, argv) => {
      const min = lexBound(argv[2]);
      const max = lexBound(argv[3]);
      const ks = c.server.keyspace;
      // Redis removes the run that starts at the first member (in score order) at or above
      // `min`, up to the first one above `max`: with equal scores, every member in range.
      const all = zsets.zrangeByRank(ks, c.db, argv[1], 0, -1, false);
      const start = all.findIndex((item) => lexAbove(item.member, min));
      let end = start < 0 ? 0 : start;
      while (end < all.length && lexBelow(all[end].member, max)) end++;
      const run = all.slice(start < 0 ? 0 : start, end).map((item) => item.member);
      c.reply.integer(run.length === 0 ? 0 : zsets.zrem(ks, c.db, argv[1], run));
    },
  }),
  keyCommand({
    name: 'zpopmin',
    arity: -2,
    flags: W | F,
    group: 'sorted-set',
    since: '5.0.0',
    run: popCommand(false),
  }),
  keyCommand({
    name: 'zpopmax',
    arity: -2,
    flags: W | F,
    group: 'sorted-set',
    since: '5.0.0',
    run: popCommand(true),
  }),
  command({
    name: 'zunionstore',
    arity: -4,
    flags: W,
    firstKey: 1,
    lastKey: 1,
    step: 1,
    group: 'sorted-set',
    since: '2.0.0',
    run: algebraCommand('union', true),
  }),
  command({
    name: 'zinterstore',
    arity: -4,
    flags: W,
    firstKey: 1,
    lastKey: 1,
    step: 1,
    group: 'sorted-set',
    since: '2.0.0',
    run: algebraCommand('inter', true),
  }),
  command({
    name: 'zdiffstore',
    arity: -4,
    flags: W,
    firstKey: 1,
    lastKey: 1,
    step: 1,
    group: 'sorted-set',
    since: '6.2.0',
    run: algebraCommand('diff', true),
  }),
  command({
    name: 'zunion',
    arity: -3,
    flags: R,
    group: 'sorted-set',
    since: '6.2.0',
    run: algebraCommand('union', false),
  }),
  command({
    name: 'zinter',
    arity: -3,
    flags: R,
    group: 'sorted-set',
    since: '6.2.0',
    run: algebraCommand('inter', false),
  }),
  command({
    name: 'zdiff',
    arity: -3,
    flags: R,
    group: 'sorted-set',
    since: '6.2.0',
    run: algebraCommand('diff', false),
  }),
  command({
    name: 'zrangestore',
    arity: -5,
    flags: W,
    firstKey: 1,
    lastKey: 2,
    step: 1,
    group: 'sorted-set',
    since: '6.2.0',
    run: zrangestoreCommand,
  }),
  command({ name: 'zmpop', arity: -4, flags: W, group: 'sorted-set', since: '7.0.0', run: zmpopCommand }),
  command({
    name: 'zintercard',
    arity: -3,
    flags: R,
    group: 'sorted-set',
    since: '7.0.0',
    run: zintercardCommand,
  }),
];
