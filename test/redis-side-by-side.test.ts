/**
 * Commands a Redis primary propagates beyond the core set (LMOVE, RPOPLPUSH,
 * LINSERT, SMOVE, SINTERSTORE/SUNIONSTORE/SDIFFSTORE, ZREMRANGEBYSCORE/RANK/LEX,
 * ZPOPMIN/ZPOPMAX), sent to a real redis-server and to Doppel side by side:
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
import { RedisPeer } from './support/redis-peer.js';
import { RespClient, type Arg } from './support/resp-client.js';

/** One absolute expiry for both servers (relative ones would differ by the time between the two calls). */
const AT = Date.now() + 3_600_000;

/** Runs each command on both servers in turn; the replies must be equal. */
async function sideBySide(redis: RespClient, doppel: RespClient, commands: readonly Arg[][]): Promise<void> {
  for (const command of commands) {
    const [want, got] = [await redis.call(...command), await doppel.call(...command)];
    assert.deepEqual(got, want, `${command.join(' ')}`);
  }
}

void describe('propagated commands beyond the core set, against redis-server', { timeout: 60_000 }, () => {
  let redis: RedisPeer;
  let doppel: DoppelProcess;
  let r: RespClient;
  let d: RespClient;

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

  void it('ZPOPMIN and ZPOPMAX in RESP3: a pair without a count, pairs with one', async () => {
    const [r3, d3] = [
      await redis.client(),
      await RespClient.open(
        Number(doppel.respAddress?.split(':').at(-1)),
        doppel.adminUser,
        doppel.adminPassword,
      ),
    ];
    try {
      await r3.call('HELLO', 3);
      await d3.call('HELLO', 3);
      await sideBySide(r3, d3, [
        ['ZADD', 'z3', 1, 'a', 2, 'b', 3, 'c'],
        ['ZPOPMIN', 'z3'],
        ['ZPOPMAX', 'z3', 1],
        ['ZPOPMIN', 'z3', 5],
        ['ZPOPMIN', 'z3'],
      ]);
    } finally {
      r3.close();
      d3.close();
    }
  });

  void it('leaves the same keyspace', async () => {
    const compared = await assertSameKeyspace(r, d);
    assert.ok(compared >= 10, `compared ${compared} keys`);
  });
});
