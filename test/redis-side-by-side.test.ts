/**
 * Commands a Redis primary propagates beyond the core set (LMOVE, RPOPLPUSH,
 * LINSERT, SMOVE, SINTERSTORE/SUNIONSTORE/SDIFFSTORE, ZREMRANGEBYSCORE/RANK/LEX,
 * ZPOPMIN/ZPOPMAX, ZUNIONSTORE and its family, bitmaps and BITFIELD, HyperLogLogs, COPY,
 * MOVE, ZRANGEBYLEX), and what MULTI queues, refuses or runs at once, sent to a real
 * redis-server and to Doppel side by side:
 * every reply must be the same, errors included, and so must the keyspaces
 * they leave (type, value and expiry of every key).
 *
 * Needs Debian's redis-server (`apt-get install redis-server redis-tools`);
 * without it the test fails saying so.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DoppelProcess } from './support/doppel-process.js';
import { assertSameKeyspace } from './support/keyspace-workload.js';
import { int, pick, prng } from './support/prng.js';
import { RedisPeer } from './support/redis-peer.js';
import { RespClient, type Arg, type Reply } from './support/resp-client.js';

/** One absolute expiry for both servers (relative ones would differ by the time between the two calls). */
const AT = Date.now() + 3_600_000;

/**
 * Scores as numbers: Redis 7.0 prints them with 17 significant digits (0.7 as
 * 0.69999999999999996); Doppel, as Redis 7.2 does, with the fewest digits that
 * read back as the same double.
 */
function sameScores(reply: Reply): Reply {
  if (typeof reply === 'string' && /^-?\d*\.\d{15,}(e[-+]\d+)?$/.test(reply)) return String(Number(reply));
  if (Array.isArray(reply)) return reply.map(sameScores);
  return reply;
}

/** Runs each command on both servers in turn; the replies must be equal. */
async function sideBySide(redis: RespClient, doppel: RespClient, commands: readonly Arg[][]): Promise<void> {
  for (const command of commands) {
    const [want, got] = [await redis.call(...command), await doppel.call(...command)];
    assert.deepEqual(sameScores(got), sameScores(want), `${command.join(' ')}`);
  }
}

void describe('propagated commands beyond the core set, against redis-server', { timeout: 60_000 }, () => {
  let redis: RedisPeer;
  let doppel: DoppelProcess;
  let r: RespClient;
  let d: RespClient;

  /** A RESP3 connection to each server. */
  async function resp3Pair(): Promise<[RespClient, RespClient]> {
    const pair: [RespClient, RespClient] = [
      await redis.client(),
      await RespClient.open(
        Number(doppel.respAddress?.split(':').at(-1)),
        doppel.adminUser,
        doppel.adminPassword,
      ),
    ];
    for (const client of pair) await client.call('HELLO', 3);
    return pair;
  }

  before(async () => {
    redis = await RedisPeer.start();
    doppel = await DoppelProcess.start();
    r = await redis.client();
    const port = Number(doppel.respAddress?.split(':').at(-1));
    d = await RespClient.open(port, doppel.adminUser, doppel.adminPassword);
    await sideBySide(r, d, [['SET', 'str', 'v']]);
  });

  after(async () => {
    r?.close();
    d?.close();
    await doppel?.stop();
    await redis?.stop();
  });

  void it('LINSERT, LMOVE, RPOPLPUSH', async () => {
    await sideBySide(r, d, [
      ['RPUSH', 'l', 'a', 'b', 'c', 'b'],
      ['PEXPIREAT', 'l', AT],
      ['LINSERT', 'l', 'BEFORE', 'b', 'x'],
      ['LINSERT', 'l', 'AFTER', 'b', 'y'],
      ['LINSERT', 'l', 'after', 'b', 'z'],
      ['LINSERT', 'l', 'BEFORE', 'a', 'head'],
      ['LINSERT', 'l', 'AFTER', 'b', 'b2'],
      ['LINSERT', 'l', 'AFTER', 'nope', 'x'],
      ['LINSERT', 'missing', 'BEFORE', 'a', 'x'],
      ['LINSERT', 'l', 'MIDDLE', 'a', 'x'],
      ['LINSERT', 'str', 'BEFORE', 'a', 'x'],
      ['LINSERT', 'l', 'BEFORE', 'a'],
      ['LRANGE', 'l', 0, -1],
      ['PEXPIRETIME', 'l'],
      ['LMOVE', 'l', 'l2', 'LEFT', 'RIGHT'],
      ['LMOVE', 'l', 'l2', 'right', 'left'],
      ['LMOVE', 'l', 'l', 'LEFT', 'RIGHT'],
      ['LMOVE', 'missing', 'l2', 'LEFT', 'LEFT'],
      ['LMOVE', 'missing', 'str', 'LEFT', 'LEFT'],
      ['LMOVE', 'l', 'l2', 'UP', 'LEFT'],
      ['LMOVE', 'l', 'str', 'LEFT', 'LEFT'],
      ['LMOVE', 'str', 'l', 'LEFT', 'LEFT'],
      ['LRANGE', 'l', 0, -1],
      ['LRANGE', 'l2', 0, -1],
      ['RPUSH', 'one', 'only'],
      ['PEXPIREAT', 'one', AT],
      ['LMOVE', 'one', 'one', 'LEFT', 'RIGHT'],
      ['PEXPIRETIME', 'one'],
      ['RPOPLPUSH', 'l', 'l'],
      ['RPOPLPUSH', 'l2', 'l3'],
      ['RPOPLPUSH', 'one', 'l3'],
      ['EXISTS', 'one'],
      ['RPOPLPUSH', 'missing', 'l3'],
      ['LRANGE', 'l', 0, -1],
      ['LRANGE', 'l3', 0, -1],
    ]);
  });

  void it('SMOVE, SINTERSTORE, SUNIONSTORE, SDIFFSTORE', async () => {
    await sideBySide(r, d, [
      ['SADD', 'a', '1', '2', '3'],
      ['SADD', 'b', '2', '3', '4'],
      ['SMOVE', 'a', 'b', '1'],
      ['SMOVE', 'a', 'b', '9'],
      ['SMOVE', 'a', 'a', '2'],
      ['SMOVE', 'a', 'a', '9'],
      ['SMOVE', 'nosuch', 'b', '1'],
      ['SMOVE', 'a', 'str', '2'],
      ['SMOVE', 'str', 'a', '2'],
      ['SADD', 'c', 'x'],
      ['SMOVE', 'c', 'new', 'x'],
      ['EXISTS', 'c'],
      ['SINTERSTORE', 'i', 'a', 'b'],
      ['SUNIONSTORE', 'u', 'a', 'b', 'nosuch'],
      ['SDIFFSTORE', 'd', 'b', 'a'],
      ['SCARD', 'i'],
      ['SCARD', 'u'],
      ['SISMEMBER', 'd', '4'],
      ['SET', 'dest', 'x', 'PXAT', AT],
      ['SUNIONSTORE', 'dest', 'a'],
      ['TYPE', 'dest'],
      ['PEXPIRETIME', 'dest'],
      ['SINTERSTORE', 'dest', 'a', 'nosuch'],
      ['EXISTS', 'dest'],
      ['SINTERSTORE', 'a', 'a', 'b'],
      ['SUNIONSTORE', 'x', 'a', 'str'],
      ['SDIFFSTORE', 'x'],
    ]);
  });

  void it('ZREMRANGEBYSCORE, ZREMRANGEBYRANK, ZREMRANGEBYLEX, ZPOPMIN, ZPOPMAX', async () => {
    await sideBySide(r, d, [
      ['ZADD', 'z', 1, 'a', 2, 'b', 3, 'c', 4, 'd', 5, 'e', 6, 'f', 7.5, 'g'],
      ['ZREMRANGEBYSCORE', 'z', '(1', 2],
      ['ZREMRANGEBYSCORE', 'z', '-inf', '(0'],
      ['ZREMRANGEBYSCORE', 'z', 'x', 1],
      ['ZREMRANGEBYRANK', 'z', -1, -1],
      ['ZREMRANGEBYRANK', 'z', 10, 20],
      ['ZREMRANGEBYRANK', 'z', 'a', 1],
      ['ZPOPMIN', 'z'],
      ['ZPOPMAX', 'z', 2],
      ['ZPOPMIN', 'z', 0],
      ['ZPOPMIN', 'z', -1],
      ['ZPOPMIN', 'z', 1, 2],
      ['ZPOPMIN', 'nosuch'],
      ['ZPOPMIN', 'nosuch', 3],
      ['ZPOPMIN', 'str'],
      ['ZRANGE', 'z', 0, -1, 'WITHSCORES'],
      ['ZPOPMAX', 'z', 10],
      ['EXISTS', 'z'],
      ['ZADD', 'lex', 0, 'a', 0, 'b', 0, 'c', 0, 'd'],
      ['PEXPIREAT', 'lex', AT],
      ['ZREMRANGEBYLEX', 'lex', '(a', '[c'],
      ['ZREMRANGEBYLEX', 'lex', 'a', 'b'],
      ['PEXPIRETIME', 'lex'],
      ['ZREMRANGEBYLEX', 'lex', '-', '+'],
      ['EXISTS', 'lex'],
      ['ZADD', 'mixed', 1, 'c', 2, 'a', 3, 'b', 4, 'd'],
      ['ZREMRANGEBYLEX', 'mixed', '[b', '(d'],
      ['ZRANGE', 'mixed', 0, -1],
      ['ZADD', 'f', 1.5, 'x', 2.25, 'y'],
      ['ZPOPMIN', 'f'],
    ]);
  });

  void it('SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP', async () => {
    await sideBySide(r, d, [
      ['SETBIT', 'bits', 7, 1],
      ['SETBIT', 'bits', 7, 1],
      ['SETBIT', 'bits', 100, 1],
      ['SETBIT', 'bits', 100, 0],
      ['SETBIT', 'bits', 3, 1],
      ['SETBIT', 'bits', 200, 0],
      ['SETBIT', 'bits', -1, 1],
      ['SETBIT', 'bits', 'x', 1],
      ['SETBIT', 'bits', 4294967296, 1],
      ['SETBIT', 'bits', 1, 2],
      ['SETBIT', 'str', 0, 1],
      ['SETBIT', 'l', 0, 1],
      ['PEXPIREAT', 'bits', AT],
      ['SETBIT', 'bits', 9, 1],
      ['PEXPIRETIME', 'bits'],
      ['GET', 'bits'],
      ['STRLEN', 'bits'],
      ['GETBIT', 'bits', 3],
      ['GETBIT', 'bits', 4],
      ['GETBIT', 'bits', 100000],
      ['GETBIT', 'nosuch', 1],
      ['GETBIT', 'bits', -1],
      ['GETBIT', 'l', 0],
      ['SET', 'b', 'foobar'],
      ['BITCOUNT', 'b'],
      ['BITCOUNT', 'b', 0, 0],
      ['BITCOUNT', 'b', 1, 1],
      ['BITCOUNT', 'b', 1, -2],
      ['BITCOUNT', 'b', -3, -1],
      ['BITCOUNT', 'b', -1, -3],
      ['BITCOUNT', 'b', 5, 30, 'BIT'],
      ['BITCOUNT', 'b', -10, -3, 'bit'],
      ['BITCOUNT', 'b', 0, 100, 'BYTE'],
      ['BITCOUNT', 'b', 0, 1, 'WORD'],
      ['BITCOUNT', 'b', 0],
      ['BITCOUNT', 'b', 'x', 1],
      ['BITCOUNT', 'nosuch', 0, 1],
      ['BITCOUNT', 'l'],
      ['SET', 'p', Buffer.from([0xff, 0xf0, 0x00])],
      ['BITPOS', 'p', 0],
      ['BITPOS', 'p', 1],
      ['BITPOS', 'p', 1, 2],
      ['BITPOS', 'p', 0, 0, 0],
      ['BITPOS', 'p', 1, 2, -1],
      ['BITPOS', 'p', 0, 2, -1],
      ['BITPOS', 'p', 1, 7, 15, 'BIT'],
      ['BITPOS', 'p', 0, 7, 15, 'BIT'],
      ['BITPOS', 'p', 0, 12, -1, 'bit'],
      ['BITPOS', 'p', 1, 5, 3],
      ['BITPOS', 'p', 2],
      ['BITPOS', 'p', 1, 0, 1, 'NIBBLE'],
      ['SET', 'ones', Buffer.from([0xff, 0xff])],
      ['BITPOS', 'ones', 0],
      ['BITPOS', 'ones', 0, 1],
      ['BITPOS', 'ones', 0, 0, -1],
      ['BITPOS', 'ones', 0, 3, 9, 'BIT'],
      ['BITPOS', 'nosuch', 0],
      ['BITPOS', 'nosuch', 1],
      ['BITPOS', 'l', 1],
      ['SET', 'k1', 'foobar'],
      ['SET', 'k2', 'abcdef!!'],
      ['BITOP', 'AND', 'and', 'k1', 'k2'],
      ['BITOP', 'or', 'or', 'k1', 'k2', 'nosuch'],
      ['BITOP', 'XOR', 'xor', 'k1', 'k2'],
      ['BITOP', 'NOT', 'not', 'k1'],
      ['BITOP', 'NOT', 'not', 'k1', 'k2'],
      ['BITOP', 'NAND', 'x', 'k1'],
      ['BITOP', 'AND', 'x', 'k1', 'l'],
      ['SET', 'dest2', 'v', 'PXAT', AT],
      ['BITOP', 'OR', 'dest2', 'k1'],
      ['PEXPIRETIME', 'dest2'],
      ['BITOP', 'AND', 'dest2', 'nosuch', 'nosuch2'],
      ['EXISTS', 'dest2'],
      ['GET', 'and'],
      ['GET', 'or'],
      ['GET', 'xor'],
      ['GET', 'not'],
    ]);
  });

  void it('ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE, ZUNION, ZINTER, ZDIFF, ZRANGESTORE', async () => {
    await sideBySide(r, d, [
      ['ZADD', 'za', 1, 'a', 2, 'b', 3, 'c', 0.1, 'd'],
      ['ZADD', 'zb', 10, 'b', 20, 'c', 30, 'e', 0.2, 'd'],
      ['ZADD', 'zc', 'inf', 'a', '-inf', 'b', 0.7, 'd'],
      ['SADD', 'sa', 'a', 'x', 'd'],
      ['ZUNIONSTORE', 'u1', 2, 'za', 'zb'],
      ['ZRANGE', 'u1', 0, -1, 'WITHSCORES'],
      ['ZUNIONSTORE', 'u2', 3, 'za', 'zb', 'sa', 'WEIGHTS', 2, 0.5, 3],
      ['ZRANGE', 'u2', 0, -1, 'WITHSCORES'],
      ['ZUNIONSTORE', 'u3', 3, 'za', 'zb', 'zc', 'AGGREGATE', 'MAX'],
      ['ZRANGE', 'u3', 0, -1, 'WITHSCORES'],
      ['ZUNIONSTORE', 'u4', 2, 'za', 'zc', 'aggregate', 'min', 'weights', 0, 1],
      ['ZRANGE', 'u4', 0, -1, 'WITHSCORES'],
      ['ZUNIONSTORE', 'u5', 3, 'za', 'zb', 'zc', 'WEIGHTS', 0.1, 0.2, 0.3],
      ['ZRANGE', 'u5', 0, -1, 'WITHSCORES'],
      ['ZINTERSTORE', 'i1', 2, 'za', 'zb'],
      ['ZRANGE', 'i1', 0, -1, 'WITHSCORES'],
      ['ZINTERSTORE', 'i2', 3, 'za', 'zb', 'zc', 'WEIGHTS', 0, 1, 1, 'AGGREGATE', 'MIN'],
      ['ZRANGE', 'i2', 0, -1, 'WITHSCORES'],
      ['ZINTERSTORE', 'i3', 2, 'za', 'sa', 'AGGREGATE', 'MAX'],
      ['ZRANGE', 'i3', 0, -1, 'WITHSCORES'],
      ['ZINTERSTORE', 'i4', 2, 'za', 'nosuch'],
      ['EXISTS', 'i4'],
      ['ZDIFFSTORE', 'd1', 2, 'za', 'zb'],
      ['ZRANGE', 'd1', 0, -1, 'WITHSCORES'],
      ['ZDIFFSTORE', 'd2', 1, 'sa'],
      ['ZRANGE', 'd2', 0, -1, 'WITHSCORES'],
      ['ZDIFFSTORE', 'd3', 2, 'za', 'zb', 'WEIGHTS', 1, 1],
      ['ZADD', 'zdest', 1, 'old'],
      ['PEXPIREAT', 'zdest', AT],
      ['ZUNIONSTORE', 'zdest', 1, 'zb'],
      ['PEXPIRETIME', 'zdest'],
      ['ZINTERSTORE', 'zdest', 2, 'zb', 'nosuch'],
      ['EXISTS', 'zdest'],
      ['ZUNIONSTORE', 'u1', 2, 'u1', 'za'],
      ['ZRANGE', 'u1', 0, -1, 'WITHSCORES'],
      ['ZUNIONSTORE', 'x', 0, 'za'],
      ['ZUNIONSTORE', 'x', -1, 'za'],
      ['ZUNIONSTORE', 'x', 3, 'za', 'zb'],
      ['ZUNIONSTORE', 'x', 'two', 'za'],
      ['ZUNIONSTORE', 'x', 2, 'za', 'str'],
      ['ZUNIONSTORE', 'x', 2, 'za', 'str', 'BOGUS'],
      ['ZUNIONSTORE', 'x', 2, 'za', 'zb', 'WEIGHTS', 1],
      ['ZUNIONSTORE', 'x', 2, 'za', 'zb', 'WEIGHTS', 1, 'x'],
      ['ZUNIONSTORE', 'x', 2, 'za', 'zb', 'AGGREGATE', 'AVG'],
      ['ZUNIONSTORE', 'x', 2, 'za', 'zb', 'WITHSCORES'],
      ['ZUNION', 2, 'za', 'zb'],
      ['ZUNION', 2, 'za', 'zb', 'WITHSCORES', 'AGGREGATE', 'MIN'],
      ['ZINTER', 2, 'za', 'sa', 'WITHSCORES'],
      ['ZDIFF', 2, 'za', 'zb', 'WITHSCORES'],
      ['ZDIFF', 1, 'nosuch'],
      ['ZINTER', 0, 'za'],
      ['ZDIFF', 2, 'za', 'l'],
      ['ZRANGESTORE', 'r1', 'zb', 0, 1],
      ['ZRANGE', 'r1', 0, -1, 'WITHSCORES'],
      ['ZRANGESTORE', 'r2', 'zb', '(10', '+inf', 'BYSCORE', 'LIMIT', 0, 1],
      ['ZRANGE', 'r2', 0, -1, 'WITHSCORES'],
      ['ZRANGESTORE', 'r3', 'zb', 30, 0, 'BYSCORE', 'REV'],
      ['ZRANGE', 'r3', 0, -1, 'WITHSCORES'],
      ['ZRANGESTORE', 'r4', 'lex', '-', '+', 'BYLEX'],
      ['ZRANGESTORE', 'r1', 'zb', 5, 9],
      ['EXISTS', 'r1'],
      ['ZRANGESTORE', 'r5', 'zb', 0, -1, 'WITHSCORES'],
      ['ZRANGESTORE', 'r5', 'zb', 0, -1, 'LIMIT', 0, 1],
      ['ZRANGESTORE', 'r5', 'sa', 0, -1],
      ['ZRANGESTORE', 'r5', 'nosuch', 0, -1],
      ['ZRANGE', 'zb', 0, -1, 'REV', 'REV'],
      ['ZRANGE', 'zb', 0, 20, 'BYSCORE', 'BYLEX'],
      ['ZRANGE', 'zb', 0, 20, 'BYSCORE', 'LIMIT', 1],
      ['ZRANGE', 'zb', '[a', '[z', 'BYLEX', 'WITHSCORES'],
    ]);
  });

  void it('COPY and MOVE, within and across databases, every type with its TTL', async () => {
    await sideBySide(r, d, [
      ['SET', 'cs', 'text', 'PXAT', AT],
      ['HSET', 'ch', 'f1', 'v1', 'f2', 'v2'],
      ['PEXPIREAT', 'ch', AT],
      ['RPUSH', 'cl', 'x', 'y', 'x'],
      ['SADD', 'cset', 'm1', 'm2'],
      ['ZADD', 'cz', 1.5, 'a', -2, 'b'],
      ['PEXPIREAT', 'cz', AT],
      ['COPY', 'cs', 'cs2'],
      ['COPY', 'ch', 'ch2'],
      ['COPY', 'cl', 'cl2'],
      ['COPY', 'cset', 'cset2'],
      ['COPY', 'cz', 'cz2', 'DB', 1],
      ['COPY', 'cs', 'cs2'],
      ['COPY', 'cl', 'cs2', 'REPLACE'],
      ['TYPE', 'cs2'],
      ['PEXPIRETIME', 'cs2'],
      ['COPY', 'cs', 'cs'],
      ['COPY', 'cs', 'cs', 'DB', 1],
      ['COPY', 'nosuch', 'x'],
      ['COPY', 'cs', 'x', 'DB', 16],
      ['COPY', 'cs', 'x', 'DB', 'one'],
      ['COPY', 'cs', 'x', 'DB'],
      ['COPY', 'cs', 'x', 'BOGUS'],
      ['MOVE', 'ch2', 1],
      ['MOVE', 'ch2', 1],
      ['MOVE', 'cset2', 0],
      ['MOVE', 'cset2', 16],
      ['MOVE', 'cset2', 'x'],
      ['COPY', 'cset2', 'cz2', 'DB', 1],
      ['MOVE', 'cset2', 1],
      ['EXISTS', 'cset2', 'ch2'],
      ['SELECT', 1],
      ['PEXPIRETIME', 'cz2'],
      ['PEXPIRETIME', 'ch2'],
      ['HGETALL', 'ch2'],
      ['ZRANGE', 'cz2', 0, -1, 'WITHSCORES'],
      ['SELECT', 0],
    ]);
  });

  void it('PFADD, PFMERGE, PFCOUNT: the same HyperLogLog bytes (sparse, then dense) and counts', async () => {
    const elements = (prefix: string, n: number): string[] =>
      Array.from({ length: n }, (_, i) => `${prefix}${i}`);
    const script: Arg[][] = [
      ['PFADD', 'h1'],
      ['GET', 'h1'],
      ['PFADD', 'h1', 'a', 'b', 'c'],
      ['PFADD', 'h1', 'a'],
      ['GET', 'h1'],
      ['PEXPIREAT', 'h1', AT],
    ];
    // Grow through the sparse form (runs split and merged) into the dense one.
    for (let round = 0; round < 40; round++) {
      script.push(['PFADD', 'h1', ...elements(`e${round}-`, 25)], ['GET', 'h1']);
    }
    script.push(
      ['PEXPIRETIME', 'h1'],
      ['STRLEN', 'h1'],
      ['PFADD', 'h2', ...elements('x', 200)],
      ['GET', 'h2'],
      ['PFADD', 'h3', ...elements('y', 3)],
      ['PFMERGE', 'm1', 'h2', 'h3'],
      ['GET', 'm1'],
      ['PFMERGE', 'm2', 'h1', 'h3'],
      ['GET', 'm2'],
      ['PFMERGE', 'h3', 'h2'],
      ['GET', 'h3'],
      ['PFMERGE', 'empty'],
      ['GET', 'empty'],
      ['PFCOUNT', 'nosuch'],
      ['PFCOUNT', 'h1', 'h2', 'nosuch'],
      ['PFCOUNT', 'h2', 'h3'],
      ['PFCOUNT', 'h1'],
      ['PFCOUNT', 'h1'],
      ['PFCOUNT', 'h2'],
      ['PFCOUNT', 'm2'],
      ['PFADD', 'str', 'a'],
      ['PFCOUNT', 'str'],
      ['PFMERGE', 'x', 'str'],
      ['PFADD', 'l', 'a'],
      ['PFCOUNT', 'h1', 'l'],
      ['SET', 'fake', 'HYLLx'],
      ['PFADD', 'fake', 'a'],
      // A client's PFCOUNT caches the count in the value on Redis only (see hyperloglog.ts).
      ['DEL', 'h1', 'h2', 'm2'],
    );
    await sideBySide(r, d, script);
  });

  void it('LPOS, LMPOP, ZMPOP, SINTERCARD, ZINTERCARD (Redis 7.0)', async () => {
    await sideBySide(r, d, [
      ['RPUSH', 'pl', 'a', 'b', 'c', 'b', 'a', 'b'],
      ['LPOS', 'pl', 'b'],
      ['LPOS', 'pl', 'b', 'RANK', 2],
      ['LPOS', 'pl', 'b', 'RANK', -1],
      ['LPOS', 'pl', 'b', 'RANK', -2, 'COUNT', 0],
      ['LPOS', 'pl', 'b', 'COUNT', 0],
      ['LPOS', 'pl', 'b', 'COUNT', 2, 'MAXLEN', 4],
      ['LPOS', 'pl', 'a', 'MAXLEN', 3, 'RANK', 2],
      ['LPOS', 'pl', 'z'],
      ['LPOS', 'pl', 'z', 'COUNT', 3],
      ['LPOS', 'nosuch', 'a'],
      ['LPOS', 'nosuch', 'a', 'COUNT', 1],
      ['LPOS', 'pl', 'a', 'RANK', 0],
      ['LPOS', 'pl', 'a', 'COUNT', -1],
      ['LPOS', 'pl', 'a', 'MAXLEN', -1],
      ['LPOS', 'pl', 'a', 'RANK'],
      ['LPOS', 'pl', 'a', 'BOGUS', 1],
      ['LPOS', 'str', 'a'],
      ['LMPOP', 2, 'nosuch', 'pl', 'LEFT'],
      ['LMPOP', 2, 'nosuch', 'pl', 'RIGHT', 'COUNT', 2],
      ['LMPOP', 1, 'pl', 'LEFT', 'COUNT', 10],
      ['LMPOP', 1, 'pl', 'LEFT'],
      ['EXISTS', 'pl'],
      ['LMPOP', 0, 'pl', 'LEFT'],
      ['LMPOP', 'x', 'pl', 'LEFT'],
      ['LMPOP', 3, 'pl', 'LEFT'],
      ['LMPOP', 1, 'pl', 'UP'],
      ['LMPOP', 1, 'pl', 'LEFT', 'COUNT', 0],
      ['LMPOP', 1, 'pl', 'LEFT', 'COUNT'],
      ['LMPOP', 2, 'str', 'pl', 'LEFT'],
      ['LMPOP', 2, 'pl', 'pl2'],
      ['ZMPOP', 2, 'pz', 'pz2'],
      ['ZADD', 'pz', 1, 'a', 2, 'b', 3.5, 'c'],
      ['ZMPOP', 2, 'nosuch', 'pz', 'MIN'],
      ['ZMPOP', 1, 'pz', 'MAX', 'COUNT', 5],
      ['ZMPOP', 1, 'pz', 'MIN'],
      ['ZMPOP', 1, 'pz', 'MIDDLE'],
      ['ZMPOP', 1, 'str', 'MIN'],
      ['ZMPOP', 0, 'pz', 'MIN'],
      ['SADD', 'c1', 'a', 'b', 'c', 'd'],
      ['SADD', 'c2', 'b', 'c', 'd', 'e'],
      ['SINTERCARD', 2, 'c1', 'c2'],
      ['SINTERCARD', 2, 'c1', 'c2', 'LIMIT', 2],
      ['SINTERCARD', 2, 'c1', 'c2', 'LIMIT', 0],
      ['SINTERCARD', 2, 'c1', 'nosuch'],
      ['SINTERCARD', 2, 'c1', 'c2', 'LIMIT', -1],
      ['SINTERCARD', 0, 'c1'],
      ['SINTERCARD', 3, 'c1', 'c2'],
      ['SINTERCARD', 1, 'str'],
      ['ZADD', 'zc1', 1, 'b', 2, 'c', 3, 'x'],
      ['ZINTERCARD', 2, 'zc1', 'c1'],
      ['ZINTERCARD', 2, 'zc1', 'c1', 'LIMIT', 1],
      ['ZINTERCARD', 1, 'str'],
      ['ZINTERCARD', 2, 'zc1', 'c1', 'LIMIT'],
    ]);
  });

  void it('ZPOPMIN and ZPOPMAX in RESP3: a pair without a count, pairs with one; ZMPOP, LMPOP', async () => {
    const [r3, d3] = await resp3Pair();
    try {
      await sideBySide(r3, d3, [
        ['ZADD', 'z3', 1, 'a', 2, 'b', 3, 'c'],
        ['ZPOPMIN', 'z3'],
        ['ZPOPMAX', 'z3', 1],
        ['ZPOPMIN', 'z3', 5],
        ['ZPOPMIN', 'z3'],
        ['ZADD', 'z3', 1, 'a', 2.5, 'b'],
        ['ZMPOP', 1, 'z3', 'MIN', 'COUNT', 2],
        ['ZMPOP', 1, 'z3', 'MIN'],
        ['LMPOP', 1, 'nosuch', 'LEFT'],
      ]);
    } finally {
      r3.close();
      d3.close();
    }
  });

  void it('BITFIELD and BITFIELD_RO: every width, offsets, overflow modes, errors', async () => {
    await sideBySide(r, d, [
      ['BITFIELD', 'bf', 'SET', 'u8', 0, 255, 'GET', 'u8', 0, 'GET', 'i8', 0, 'GET', 'u4', 4],
      ['BITFIELD', 'bf', 'INCRBY', 'u2', 100, 1, 'OVERFLOW', 'SAT', 'INCRBY', 'u2', 102, 5],
      ['BITFIELD', 'bf', 'OVERFLOW', 'FAIL', 'INCRBY', 'u2', 102, 1, 'SET', 'i4', '#3', 9, 'GET', 'u16', 0],
      ['BITFIELD', 'bf', 'SET', 'i64', 0, '-9223372036854775808', 'INCRBY', 'i64', 0, -1],
      [
        'BITFIELD',
        'bf',
        'OVERFLOW',
        'SAT',
        'INCRBY',
        'i64',
        0,
        -1,
        'INCRBY',
        'i64',
        64,
        '9223372036854775807',
      ],
      ['BITFIELD', 'bf', 'INCRBY', 'i64', 64, 1, 'GET', 'u63', 64, 'GET', 'i1', 64],
      [
        'BITFIELD',
        'bf',
        'SET',
        'u8',
        '#10',
        -1,
        'OVERFLOW',
        'SAT',
        'SET',
        'u8',
        '#11',
        -1,
        'SET',
        'i8',
        '#12',
        200,
      ],
      ['BITFIELD', 'bf', 'OVERFLOW', 'WRAP', 'SET', 'i8', '#12', -200, 'INCRBY', 'u63', 7, '-1'],
      ['BITFIELD', 'bf', 'OVERFLOW', 'FAIL', 'SET', 'u8', 1000, 300],
      ['STRLEN', 'bf'],
      ['GET', 'bf'],
      ['BITFIELD_RO', 'bf', 'GET', 'i5', 3, 'GET', 'u9', '#7'],
      ['BITFIELD', 'bf'],
      ['BITFIELD', 'missing', 'GET', 'u8', 0],
      ['EXISTS', 'missing'],
      ['BITFIELD_RO', 'bf', 'SET', 'u8', 0, 1],
      ['BITFIELD', 'bf', 'GET', 'u64', 0],
      ['BITFIELD', 'bf', 'GET', 'i65', 0],
      ['BITFIELD', 'bf', 'GET', 'x8', 0],
      ['BITFIELD', 'bf', 'GET', 'i0', 0],
      ['BITFIELD', 'bf', 'GET', 'u8', -1],
      ['BITFIELD', 'bf', 'GET', 'u8', '#-1'],
      ['BITFIELD', 'bf', 'GET', 'u8', 4294967296],
      ['BITFIELD', 'bf', 'SET', 'u8', 0, 'x'],
      ['BITFIELD', 'bf', 'SET', 'u8', 0],
      ['BITFIELD', 'bf', 'OVERFLOW', 'LOOSE', 'GET', 'u8', 0],
      ['BITFIELD', 'bf', 'FETCH', 'u8', 0],
      ['BITFIELD', 'str', 'GET', 'u8', 0],
      ['BITFIELD', 'bf', 'GET', 'u8', 0, 'SET', 'i8', 0, 1, 'GET', 'x', 0],
      ['GET', 'bf'],
      ['PEXPIREAT', 'bf', AT],
      ['BITFIELD', 'bf', 'INCRBY', 'u8', 8, 1],
      ['PEXPIRETIME', 'bf'],
    ]);
    // Random operations: widths, offsets (bits and #n), values and modes drawn from a seed.
    const rng = prng(0xb17f1e1d);
    const commands: Arg[][] = [];
    for (let i = 0; i < 400; i++) {
      const command: Arg[] = ['BITFIELD', `bfr${int(rng, 3)}`];
      for (let n = 1 + int(rng, 4); n > 0; n--) {
        const signed = rng() < 0.5;
        const bits = 1 + int(rng, signed ? 64 : 63);
        const type = `${signed ? 'i' : 'u'}${bits}`;
        const offset = rng() < 0.3 ? `#${int(rng, 8)}` : int(rng, 200);
        const big = BigInt(Math.floor(rng() * 2 ** 53)) * BigInt(1 + int(rng, 1024));
        const value = String(rng() < 0.5 ? -big : big);
        const small = String(int(rng, 21) - 10);
        switch (int(rng, 4)) {
          case 0:
            command.push('GET', type, offset);
            break;
          case 1:
            command.push('SET', type, offset, rng() < 0.5 ? small : value);
            break;
          case 2:
            command.push('INCRBY', type, offset, rng() < 0.5 ? small : value);
            break;
          default:
            command.push('OVERFLOW', pick(rng, ['WRAP', 'SAT', 'FAIL']));
        }
      }
      commands.push(command);
    }
    await sideBySide(r, d, commands);
    await sideBySide(r, d, [
      ['GET', 'bfr0'],
      ['GET', 'bfr1'],
      ['GET', 'bfr2'],
    ]);
  });

  void it('ZRANGEBYLEX, ZREVRANGEBYLEX, ZLEXCOUNT', async () => {
    await sideBySide(r, d, [
      ['ZADD', 'lex', 0, 'a', 0, 'b', 0, 'c', 0, 'd', 0, 'e', 0, 'f', 0, 'g'],
      ['ZRANGEBYLEX', 'lex', '-', '[c'],
      ['ZRANGEBYLEX', 'lex', '-', '(c'],
      ['ZRANGEBYLEX', 'lex', '[aaa', '(g'],
      ['ZRANGEBYLEX', 'lex', '-', '+', 'LIMIT', 2, 3],
      ['ZRANGEBYLEX', 'lex', '-', '+', 'LIMIT', 2, -1],
      ['ZRANGEBYLEX', 'lex', '+', '-'],
      ['ZREVRANGEBYLEX', 'lex', '[c', '-'],
      ['ZREVRANGEBYLEX', 'lex', '+', '(b', 'LIMIT', 1, 2],
      ['ZLEXCOUNT', 'lex', '-', '+'],
      ['ZLEXCOUNT', 'lex', '[b', '[f'],
      ['ZLEXCOUNT', 'missing', '-', '+'],
      ['ZRANGEBYLEX', 'lex', 'a', '[c'],
      ['ZLEXCOUNT', 'lex', '[a', 'c'],
      ['ZRANGEBYLEX', 'lex', '-', '+', 'WITHSCORES'],
      ['ZRANGEBYLEX', 'lex', '-', '+', 'LIMIT', 1],
      ['ZRANGEBYLEX', 'str', '-', '+'],
      ['ZLEXCOUNT', 'str', '-', '+'],
    ]);
  });

  void it('OBJECT ENCODING and REFCOUNT, MEMORY USAGE: what Redis 7.0 would hold', async () => {
    const fields = (n: number, prefix: string): string[] =>
      Array.from({ length: n }, (_, i) => [`${prefix}${i}`, `v${i}`]).flat();
    await sideBySide(r, d, [
      ['SET', 'o:int', '123'],
      ['SET', 'o:bigint', '-123456789012'],
      ['SET', 'o:notint', '0123'],
      ['SET', 'o:emb', 'x'.repeat(44)],
      ['SET', 'o:raw', 'x'.repeat(45)],
      ['SET', 'o:4k', 'y'.repeat(4000)],
      ['SADD', 'o:intset', 1, 2, 3, 70000],
      ['SADD', 'o:wide', 1, 2, '5000000000'],
      ['SADD', 'o:strset', 'a', 'b', 'c'],
      ['SADD', 'o:bigset', ...Array.from({ length: 600 }, (_, i) => i)],
      ['HSET', 'o:hash', ...fields(10, 'f')],
      ['HSET', 'o:hash512', ...fields(512, 'g')],
      ['HSET', 'o:hash513', ...fields(513, 'g')],
      ['HSET', 'o:longvalue', 'f', 'z'.repeat(65)],
      ['ZADD', 'o:zset', 1, 'a', 2.5, 'b', 0.1, 'c', -7, 'd', 1e300, 'e'],
      ['ZADD', 'o:longmember', 1, 'm'.repeat(65)],
    ]);
    const keys = [
      'o:int',
      'o:bigint',
      'o:notint',
      'o:emb',
      'o:raw',
      'o:4k',
      'o:intset',
      'o:wide',
      'o:strset',
      'o:bigset',
      'o:hash',
      'o:hash512',
      'o:hash513',
      'o:longvalue',
      'o:zset',
      'o:longmember',
      'o:missing',
    ];
    await sideBySide(r, d, [
      ...keys.flatMap((key) => [
        ['OBJECT', 'ENCODING', key],
        ['OBJECT', 'REFCOUNT', key],
        // A skiplist's nodes have random sizes in Redis: its figure is not exact, so not compared.
        ...(key === 'o:longmember'
          ? []
          : [
              ['MEMORY', 'USAGE', key],
              ['MEMORY', 'USAGE', key, 'SAMPLES', 0],
            ]),
      ]),
      ['RPUSH', 'o:list', 'a'],
      ['OBJECT', 'ENCODING', 'o:list'],
      ['OBJECT', 'FREQ', 'o:int'],
      ['OBJECT', 'ENCODING'],
      ['OBJECT', 'ENCODING', 'o:int', 'extra'],
      ['OBJECT', 'WHAT', 'o:int'],
      ['OBJECT', 'HELP'],
      ['MEMORY', 'USAGE'],
      ['MEMORY', 'USAGE', 'o:int', 'SAMPLES'],
      ['MEMORY', 'USAGE', 'o:int', 'SAMPLES', -1],
      ['MEMORY', 'USAGE', 'o:int', 'SAMPLES', 'x'],
      ['MEMORY', 'USAGE', 'o:int', 'OTHER', 1],
    ]);
  });

  void it('HRANDFIELD and ZRANDMEMBER: shapes, counts, errors (RESP2 and RESP3)', async () => {
    const deterministic: Arg[][] = [
      ['HSET', 'r:h1', 'f', 'v'],
      ['ZADD', 'r:z1', 1.5, 'm'],
      ['HRANDFIELD', 'r:h1'],
      ['HRANDFIELD', 'r:h1', 1],
      ['HRANDFIELD', 'r:h1', 5, 'WITHVALUES'],
      ['HRANDFIELD', 'r:h1', -3, 'withvalues'],
      ['HRANDFIELD', 'r:h1', 0],
      ['HRANDFIELD', 'r:missing'],
      ['HRANDFIELD', 'r:missing', 3],
      ['HRANDFIELD', 'r:h1', 1, 'x'],
      ['HRANDFIELD', 'r:h1', 'x'],
      ['HRANDFIELD', 'r:h1', 1, 'WITHVALUES', 'x'],
      ['HRANDFIELD', 'r:h1', '-9223372036854775807', 'WITHVALUES'],
      ['HRANDFIELD', 'r:h1', '-9223372036854775808'],
      ['HRANDFIELD', 'str', 1],
      ['ZRANDMEMBER', 'r:z1'],
      ['ZRANDMEMBER', 'r:z1', 2, 'WITHSCORES'],
      ['ZRANDMEMBER', 'r:z1', -2, 'WITHSCORES'],
      ['ZRANDMEMBER', 'r:z1', 1, 'WITHVALUES'],
      ['ZRANDMEMBER', 'r:missing'],
      ['ZRANDMEMBER', 'r:missing', -1],
      ['ZRANDMEMBER', 'str'],
    ];
    await sideBySide(r, d, deterministic);
    // Larger collections: the choice is random, what is chosen from is not.
    await sideBySide(r, d, [
      ['HSET', 'r:h', ...Array.from({ length: 40 }, (_, i) => [`f${i}`, `v${i}`]).flat()],
      ['ZADD', 'r:z', ...Array.from({ length: 40 }, (_, i) => [i / 4, `m${i}`]).flat()],
    ]);
    for (const client of [r, d]) {
      const all = (await client.call('HRANDFIELD', 'r:h', 100, 'WITHVALUES')) as string[];
      assert.equal(all.length, 80);
      assert.deepEqual(new Set(all.filter((_, i) => i % 2 === 0)).size, 40);
      const some = (await client.call('ZRANDMEMBER', 'r:z', 7)) as string[];
      assert.equal(new Set(some).size, 7);
      const repeated = (await client.call('ZRANDMEMBER', 'r:z', -100, 'WITHSCORES')) as string[];
      assert.equal(repeated.length, 200);
      for (let i = 0; i < repeated.length; i += 2) {
        assert.equal(Number(repeated[i + 1]), Number(repeated[i].slice(1)) / 4);
      }
    }
    const [r3, d3] = await resp3Pair();
    try {
      await sideBySide(r3, d3, deterministic.slice(2));
    } finally {
      r3.close();
      d3.close();
    }
  });

  void it('SORT and SORT_RO: numeric and ALPHA, BY, GET, LIMIT, STORE, errors', async () => {
    await sideBySide(r, d, [
      ['RPUSH', 's:nums', 3, 1, 2, '10', '-4.5', '1e2', 2],
      ['RPUSH', 's:words', 'pear', 'apple', 'fig', 'banana', 'apple'],
      ['SADD', 's:set', 'c', 'a', 'b', 'd'],
      ['SADD', 's:numset', 5, 3, 9, 1],
      ['ZADD', 's:z', 3, 'x', 1, 'y', 2, 'w'],
      ['MSET', 'w_3', 30, 'w_1', 10, 'w_2', 20, 'w_10', 5, 'w_-4.5', 7, 'w_1e2', 1],
      ['HSET', 'o_3', 'name', 'three', 'rank', 2],
      ['HSET', 'o_1', 'name', 'one', 'rank', 3],
      ['HSET', 'o_2', 'name', 'two', 'rank', 1],
      ['SORT', 's:nums'],
      ['SORT', 's:nums', 'DESC'],
      ['SORT', 's:nums', 'LIMIT', 1, 3],
      ['SORT', 's:nums', 'LIMIT', 5, 100],
      ['SORT', 's:nums', 'LIMIT', 100, 5],
      ['SORT', 's:nums', 'LIMIT', -2, 3],
      ['SORT', 's:nums', 'LIMIT', 2, -1],
      ['SORT', 's:nums', 'LIMIT', 0, 0],
      ['SORT', 's:words', 'ALPHA'],
      ['SORT', 's:words', 'ALPHA', 'DESC', 'LIMIT', 0, 2],
      ['SORT', 's:words'],
      ['SORT', 's:set', 'ALPHA'],
      ['SORT', 's:numset'],
      ['SORT', 's:z'],
      ['SORT', 's:z', 'ALPHA', 'DESC'],
      ['SORT', 's:nums', 'BY', 'w_*'],
      ['SORT', 's:nums', 'BY', 'w_*', 'DESC', 'GET', '#', 'GET', 'w_*'],
      ['SORT', 's:nums', 'BY', 'missing_*', 'DESC'],
      ['SORT', 's:nums', 'BY', 'w_*', 'ALPHA'],
      ['RPUSH', 's:ids', 3, 1, 2],
      [
        'SORT',
        's:ids',
        'BY',
        'o_*->rank',
        'GET',
        'o_*->name',
        'GET',
        '#',
        'GET',
        'o_*->nothing',
        'GET',
        'nostar',
      ],
      ['SORT', 's:ids', 'BY', 'o_*->name', 'ALPHA', 'GET', 'o_*->name'],
      ['SORT', 's:ids', 'BY', 'nosort'],
      ['SORT', 's:ids', 'BY', 'nosort', 'DESC'],
      ['SORT', 's:ids', 'BY', 'nosort', 'LIMIT', 0, 2],
      ['SORT', 's:ids', 'BY', 'nosort', 'DESC', 'LIMIT', 0, 2],
      ['SORT', 's:z', 'BY', 'nosort', 'DESC', 'LIMIT', 1, 1],
      ['SORT', 's:z', 'BY', 'nosort', 'LIMIT', 0, 2],
      ['SORT', 's:set', 'BY', 'nosort', 'STORE', 's:stored'],
      ['LRANGE', 's:stored', 0, -1],
      ['SORT', 's:ids', 'BY', 'o_*->rank', 'GET', 'o_*->name', 'GET', 'o_*->nothing', 'STORE', 's:stored'],
      ['LRANGE', 's:stored', 0, -1],
      ['SORT', 'missing', 'STORE', 's:stored'],
      ['EXISTS', 's:stored'],
      ['SORT', 'missing'],
      ['SORT_RO', 's:nums', 'DESC', 'LIMIT', 0, 3],
      ['SORT_RO', 's:nums', 'STORE', 'x'],
      ['SORT', 's:words'],
      ['SORT', 'str'],
      ['SORT', 's:nums', 'LIMIT', 1],
      ['SORT', 's:nums', 'LIMIT', 'x', 1],
      ['SORT', 's:nums', 'UPWARDS'],
      ['SORT', 's:nums', 'BY'],
      ['SORT', 's:nums', 'GET'],
    ]);
  });

  void it('LCS: the subsequence, LEN, IDX with MINMATCHLEN and WITHMATCHLEN, errors', async () => {
    await sideBySide(r, d, [
      ['MSET', 'lcs:a', 'ohmytext', 'lcs:b', 'mynewtext'],
      ['LCS', 'lcs:a', 'lcs:b'],
      ['LCS', 'lcs:a', 'lcs:b', 'LEN'],
      ['LCS', 'lcs:a', 'lcs:b', 'IDX'],
      ['LCS', 'lcs:a', 'lcs:b', 'IDX', 'MINMATCHLEN', 4, 'WITHMATCHLEN'],
      ['LCS', 'lcs:a', 'lcs:b', 'IDX', 'MINMATCHLEN', -3],
      ['LCS', 'lcs:a', 'missing'],
      ['LCS', 'missing', 'missing', 'IDX'],
      ['LCS', 'lcs:a', 'lcs:b', 'LEN', 'IDX'],
      ['LCS', 'lcs:a', 'lcs:b', 'MINMATCHLEN'],
      ['LCS', 'lcs:a', 'lcs:b', 'MINMATCHLEN', 'x'],
      ['LCS', 'lcs:a', 'lcs:b', 'SHORTEST'],
      ['LCS', 'lcs:a', 'l'],
      ['LCS', 'lcs:a'],
    ]);
    // Random strings over a small alphabet: many equally long subsequences to choose from.
    const rng = prng(0x1c5);
    const text = (): string =>
      Array.from({ length: int(rng, 40) }, () => pick(rng, ['a', 'b', 'c'])).join('');
    const commands: Arg[][] = [];
    for (let i = 0; i < 60; i++) {
      commands.push(['MSET', 'lcs:x', text(), 'lcs:y', text()], ['LCS', 'lcs:x', 'lcs:y']);
      commands.push(['LCS', 'lcs:x', 'lcs:y', 'IDX', 'WITHMATCHLEN', 'MINMATCHLEN', int(rng, 3)]);
    }
    await sideBySide(r, d, commands);
  });

  void it('SWAPDB: every key, TTL and element changes database', async () => {
    await sideBySide(r, d, [
      ['DBSIZE'],
      ['SELECT', 1],
      ['DBSIZE'],
      ['SET', 'only-in-1', 'one', 'PXAT', AT],
      ['SELECT', 0],
      ['SWAPDB', 0, 1],
      ['GET', 'only-in-1'],
      ['PEXPIRETIME', 'only-in-1'],
      ['DBSIZE'],
      ['SELECT', 1],
      ['DBSIZE'],
      ['LRANGE', 'l', 0, -1],
      ['SELECT', 0],
      ['SWAPDB', 0, 0],
      ['SWAPDB', 0, 16],
      ['SWAPDB', -1, 0],
      ['SWAPDB', 'x', 0],
      ['SWAPDB', 0, 'y'],
      ['SWAPDB', 0],
      ['SWAPDB', 1, 0],
      ['GET', 'only-in-1'],
      ['SWAPDB', 0, 1],
    ]);
  });

  void it('MULTI: what it queues, refuses or runs at once', async () => {
    await sideBySide(r, d, [
      // Refused (Redis' no-multi), which aborts the transaction, before the command's own checks.
      ['MULTI'],
      ['PSYNC', '?', -1],
      ['SET', 'in-multi', 'never'],
      ['EXEC'],
      ['MULTI'],
      ['SHUTDOWN', 'NOSAVE'],
      ['EXEC'],
      ['MULTI'],
      ['SHUTDOWN', 'NOT-A-MODIFIER'],
      ['EXEC'],
      ['MULTI'],
      ['SAVE'],
      ['EXEC'],
      ['MULTI'],
      ['SYNC'],
      ['EXEC'],
      ['BGSAVE', 'NOW'],
      ['LASTSAVE', 'x'],
      ['GET', 'in-multi'],
      // Queued: one reply each inside EXEC's array, WAIT's at once (it cannot block there).
      ['MULTI'],
      ['UNWATCH'],
      ['WAIT', 0, 0],
      ['WAIT', 1, 'x'],
      ['WAIT', 'x', 0],
      ['WAIT', 1, -1],
      ['REPLCONF', 'listening-port', 7777],
      ['SET', 'in-multi', 'set'],
      ['EXEC'],
      ['GET', 'in-multi'],
      // At once: the transaction goes on.
      ['MULTI'],
      ['WATCH', 'in-multi'],
      ['MULTI'],
      ['DEL', 'in-multi'],
      ['EXEC'],
    ]);
  });

  void it('leaves the same keyspace', async () => {
    const compared = await assertSameKeyspace(r, d);
    assert.ok(compared >= 10, `compared ${compared} keys`);
  });
});
