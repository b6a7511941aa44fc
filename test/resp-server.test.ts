/**
 * The Redis protocol door end to end: a real node process, real TCP
 * sockets, raw RESP. Every command family, pipelining, inline commands,
 * RESP3, MULTI/EXEC/WATCH, TTL expiry (lazy and active), Redis' exact
 * error texts, NOAUTH, malformed frames, SAVE/BGSAVE, persistence across a restart and
 * across kill -9, and the journal entry behind each mutation.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DoppelProcess, makeTempDir, removeTempDir } from './support/doppel-process.js';
import { waitFor } from './support/keyspace-workload.js';
import {
  RespClient,
  RespDouble,
  RespError,
  RespMap,
  RespSet,
  type Arg,
  type Reply,
} from './support/resp-client.js';

function respPort(node: DoppelProcess): number {
  assert.ok(node.respAddress !== undefined, `the node logged no "resp listening" line:\n${node.output}`);
  return Number(node.respAddress.slice(node.respAddress.lastIndexOf(':') + 1));
}

function errorText(reply: Reply): string {
  assert.ok(reply instanceof RespError, `expected an error reply, got ${JSON.stringify(reply)}`);
  return reply.message;
}

/**
 * The journal's head once it stopped moving: an acknowledged write (logged
 * ahead) reaches the journal's committed head a moment later.
 */
async function headLsn(node: DoppelProcess): Promise<number> {
  const read = async (): Promise<number> => {
    const response = await node.request<{ head_lsn: number }>('/_doppel/journal');
    assert.equal(response.status, 200);
    return response.json.head_lsn;
  };
  let head = await read();
  for (;;) {
    await sleep(30);
    const again = await read();
    if (again === head) return head;
    head = again;
  }
}

function str(reply: Reply): string {
  assert.equal(typeof reply, 'string', `expected a string reply, got ${JSON.stringify(reply)}`);
  return reply as string;
}

const sorted = (reply: Reply): string[] => {
  const items = reply instanceof RespSet ? reply.items : (reply as Reply[]);
  return items.map(String).sort();
};

void describe('RESP server', () => {
  let node: DoppelProcess;
  let port: number;
  let r: RespClient;
  let db = 0;

  /** A client on a fresh logical database, so tests do not see each other's keys. */
  async function fresh(): Promise<RespClient> {
    const client = await RespClient.open(port, node.adminUser, node.adminPassword);
    db = (db + 1) % 16;
    assert.equal(await client.call('SELECT', db), 'OK');
    assert.equal(await client.call('FLUSHDB'), 'OK');
    return client;
  }

  before(async () => {
    node = await DoppelProcess.start();
    port = respPort(node);
    r = await RespClient.open(port, node.adminUser, node.adminPassword);
  });

  after(async () => {
    r?.close();
    await node?.stop();
  });

  void describe('authentication', () => {
    void it('allows only AUTH, HELLO, PING and QUIT before AUTH', async () => {
      const c = await RespClient.connect(port);
      assert.equal(await c.call('PING'), 'PONG');
      assert.equal(errorText(await c.call('GET', 'a')), 'NOAUTH Authentication required.');
      assert.equal(errorText(await c.call('SET', 'a', '1')), 'NOAUTH Authentication required.');
      assert.match(errorText(await c.call('HELLO', '3')), /^NOAUTH HELLO must be called/);
      assert.equal(
        errorText(await c.call('AUTH', node.adminUser, 'wrong')),
        'WRONGPASS invalid username-password pair or user is disabled.',
      );
      assert.equal(
        errorText(await c.call('AUTH', 'wrong')),
        'WRONGPASS invalid username-password pair or user is disabled.',
      );
      // AUTH <password> logs in as the server admin.
      assert.equal(await c.call('AUTH', node.adminPassword), 'OK');
      assert.equal(await c.call('GET', 'a'), null);
      assert.equal(await c.call('QUIT'), 'OK');
      await c.closed;
    });

    void it('authenticates with HELLO AUTH and switches to RESP3', async () => {
      const c = await RespClient.connect(port);
      const hello = await c.call('HELLO', '3', 'AUTH', node.adminUser, node.adminPassword, 'SETNAME', 'me');
      assert.ok(hello instanceof RespMap);
      assert.equal(hello.get('server'), 'redis');
      assert.equal(hello.get('proto'), 3);
      assert.equal(hello.get('role'), 'master');
      assert.equal(await c.call('CLIENT', 'GETNAME'), 'me');
      assert.equal(errorText(await c.call('HELLO', '4')), 'NOPROTO unsupported protocol version');
      c.close();
    });

    void it('CLIENT KILL by address, by filters (ID, TYPE, ADDR, SKIPME), with Redis errors', async () => {
      const [admin, victim, listener] = [await fresh(), await fresh(), await fresh()];
      const addressOf = async (client: RespClient): Promise<string> =>
        /addr=(\S+)/.exec(str(await client.call('CLIENT', 'INFO')))![1];
      assert.equal(
        await listener.call('SUBSCRIBE', 'news').then((reply) => (reply as Reply[])[0]),
        'subscribe',
      );
      assert.equal(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub'), 1);
      await listener.closed;
      assert.equal(await admin.call('CLIENT', 'KILL', await addressOf(victim)), 'OK');
      await victim.closed;
      assert.equal(errorText(await admin.call('CLIENT', 'KILL', '1.2.3.4:5')), 'ERR No such client');
      assert.equal(
        errorText(await admin.call('CLIENT', 'KILL', 'ID', 'x')),
        'ERR client-id should be greater than 0',
      );
      assert.equal(
        errorText(await admin.call('CLIENT', 'KILL', 'TYPE', 'foo')),
        "ERR Unknown client type 'foo'",
      );
      assert.equal(errorText(await admin.call('CLIENT', 'KILL', 'SKIPME', 'maybe')), 'ERR syntax error');
      assert.equal(errorText(await admin.call('CLIENT', 'KILL', 'ID', 1, 'SKIPME')), 'ERR syntax error');
      assert.equal(
        errorText(await admin.call('CLIENT', 'KILL')),
        "ERR wrong number of arguments for 'client|kill' command",
      );
      const self = (await admin.call('CLIENT', 'ID')) as number;
      assert.equal(await admin.call('CLIENT', 'KILL', 'ID', self), 0);
      // SKIPME no: the caller itself, after its reply.
      assert.equal(await admin.call('CLIENT', 'KILL', 'ID', self, 'SKIPME', 'no'), 1);
      await admin.closed;
    });

    void it('refuses oversized frames from unauthenticated clients', async () => {
      const c = await RespClient.connect(port);
      c.writeRaw('*11\r\n');
      assert.equal(errorText(await c.next()), 'ERR Protocol error: unauthenticated multibulk length');
      await c.closed;
    });
  });

  void describe('strings', () => {
    void it('GET, SET and its options', async () => {
      const c = await fresh();
      assert.equal(await c.call('SET', 'k', 'v1'), 'OK');
      assert.equal(await c.call('GET', 'k'), 'v1');
      assert.equal(await c.call('SET', 'k', 'v2', 'NX'), null);
      assert.equal(await c.call('SET', 'k', 'v2', 'XX', 'GET'), 'v1');
      assert.equal(await c.call('SET', 'nokey', 'v', 'XX'), null);
      assert.equal(await c.call('SET', 'k', 'v3', 'EX', '100'), 'OK');
      const ttl = (await c.call('TTL', 'k')) as number;
      assert.ok(ttl > 98 && ttl <= 100, String(ttl));
      assert.equal(await c.call('SET', 'k', 'v4', 'KEEPTTL'), 'OK');
      assert.ok(((await c.call('PTTL', 'k')) as number) > 98_000);
      assert.equal(await c.call('SET', 'k', 'v5'), 'OK');
      assert.equal(await c.call('TTL', 'k'), -1);
      assert.equal(await c.call('SET', 'k', 'v', 'PXAT', String(Date.now() + 60_000)), 'OK');
      assert.ok(((await c.call('PTTL', 'k')) as number) > 50_000);
      assert.equal(await c.call('SET', 'k', 'v', 'EXAT', String(Math.floor(Date.now() / 1000) + 60)), 'OK');
      assert.equal(
        errorText(await c.call('SET', 'k', 'v', 'EX', '0')),
        "ERR invalid expire time in 'set' command",
      );
      assert.equal(errorText(await c.call('SET', 'k', 'v', 'NX', 'XX')), 'ERR syntax error');
      assert.equal(errorText(await c.call('SET', 'k', 'v', 'EX', '1', 'PX', '1')), 'ERR syntax error');
      assert.equal(await c.call('SETEX', 'e', '100', 'x'), 'OK');
      assert.equal(await c.call('PSETEX', 'p', '100000', 'x'), 'OK');
      assert.ok(((await c.call('PTTL', 'p')) as number) > 90_000);
      assert.equal(await c.call('SETNX', 'e', 'y'), 0);
      assert.equal(await c.call('SETNX', 'n', 'y'), 1);
      assert.equal(await c.call('MSET', 'a', '1', 'b', '2'), 'OK');
      assert.deepEqual(await c.call('MGET', 'a', 'b', 'missing'), ['1', '2', null]);
      c.close();
    });

    void it('counters, APPEND, ranges, GETDEL and GETEX', async () => {
      const c = await fresh();
      assert.equal(await c.call('INCR', 'n'), 1);
      assert.equal(await c.call('INCRBY', 'n', '41'), 42);
      assert.equal(await c.call('DECR', 'n'), 41);
      assert.equal(await c.call('DECRBY', 'n', '1'), 40);
      assert.equal(await c.call('INCRBYFLOAT', 'n', '0.5'), '40.5');
      assert.equal(await c.call('SET', 'big', '9223372036854775806'), 'OK');
      assert.equal(await c.call('INCR', 'big'), 9223372036854775807n);
      assert.equal(errorText(await c.call('INCR', 'big')), 'ERR increment or decrement would overflow');
      assert.equal(await c.call('SET', 's', 'abc'), 'OK');
      assert.equal(errorText(await c.call('INCR', 's')), 'ERR value is not an integer or out of range');
      assert.equal(
        errorText(await c.call('INCRBY', 'n', 'x')),
        'ERR value is not an integer or out of range',
      );
      assert.equal(errorText(await c.call('INCRBYFLOAT', 's', '1')), 'ERR value is not a valid float');
      assert.equal(await c.call('APPEND', 's', 'def'), 6);
      assert.equal(await c.call('STRLEN', 's'), 6);
      assert.equal(await c.call('GETRANGE', 's', '1', '-2'), 'bcde');
      assert.equal(await c.call('GETRANGE', 's', '10', '20'), '');
      assert.equal(await c.call('SETRANGE', 's', '8', 'xy'), 10);
      assert.equal(await c.call('GET', 's'), 'abcdef\0\0xy');
      assert.equal(errorText(await c.call('SETRANGE', 's', '-1', 'x')), 'ERR offset is out of range');
      assert.equal(await c.call('GETDEL', 's'), 'abcdef\0\0xy');
      assert.equal(await c.call('EXISTS', 's'), 0);
      assert.equal(await c.call('SET', 'g', 'v'), 'OK');
      assert.equal(await c.call('GETEX', 'g', 'EX', '100'), 'v');
      assert.ok(((await c.call('TTL', 'g')) as number) > 90);
      assert.equal(await c.call('GETEX', 'g', 'PERSIST'), 'v');
      assert.equal(await c.call('TTL', 'g'), -1);
      c.close();
    });

    void it('keeps keys and values binary safe', async () => {
      const c = await RespClient.open(port, node.adminUser, node.adminPassword, { buffers: true });
      const key = Buffer.from([0, 1, 2, 0xff, 13, 10]);
      const value = Buffer.from([0xff, 0, 13, 10, 36, 42, 0]);
      assert.deepEqual(await c.call('SET', key, value), 'OK');
      assert.deepEqual(await c.call('GET', key), value);
      const big = Buffer.alloc(1_000_000, 0x61);
      assert.equal(await c.call('SET', 'bigvalue', big), 'OK');
      assert.deepEqual(await c.call('GET', 'bigvalue'), big);
      await c.call('DEL', key, 'bigvalue');
      c.close();
    });
  });

  void describe('keys', () => {
    void it('DEL, EXISTS, TYPE, RENAME, KEYS, SCAN, DBSIZE, FLUSHDB', async () => {
      const c = await fresh();
      await c.pipeline([
        ['SET', 's', '1'],
        ['HSET', 'h', 'f', 'v'],
        ['RPUSH', 'l', 'a'],
        ['SADD', 'st', 'm'],
        ['ZADD', 'z', '1', 'm'],
      ]);
      assert.deepEqual(
        await c.pipeline([
          ['TYPE', 's'],
          ['TYPE', 'h'],
          ['TYPE', 'l'],
          ['TYPE', 'st'],
          ['TYPE', 'z'],
          ['TYPE', 'x'],
        ]),
        ['string', 'hash', 'list', 'set', 'zset', 'none'],
      );
      assert.equal(await c.call('EXISTS', 's', 'h', 'x', 's'), 3);
      assert.equal(await c.call('DBSIZE'), 5);
      assert.deepEqual(sorted(await c.call('KEYS', '*')), ['h', 'l', 's', 'st', 'z']);
      assert.deepEqual(sorted(await c.call('KEYS', 's*')), ['s', 'st']);
      assert.equal(await c.call('RENAME', 'h', 'h2'), 'OK');
      assert.deepEqual(await c.call('HGETALL', 'h2'), ['f', 'v']);
      assert.equal(errorText(await c.call('RENAME', 'nokey', 'x')), 'ERR no such key');
      assert.equal(await c.call('DEL', 's', 'l', 'x'), 2);
      assert.equal(await c.call('UNLINK', 'st'), 1);
      assert.equal(await c.call('DBSIZE'), 2);
      assert.equal(await c.call('FLUSHDB'), 'OK');
      assert.equal(await c.call('DBSIZE'), 0);
      c.close();
    });

    void it('SCAN visits every key once the cursor returns to 0', async () => {
      const c = await fresh();
      const keys = Array.from({ length: 300 }, (_, i) => `key:${i}`);
      await c.pipeline(keys.map((k) => ['SET', k, 'x']));
      await c.call('HSET', 'ahash', 'f', 'v');
      const seen = new Set<string>();
      let cursor = '0';
      let rounds = 0;
      do {
        const [next, page] = (await c.call('SCAN', cursor, 'COUNT', '25')) as [string, string[]];
        for (const key of page) seen.add(key);
        cursor = next;
        rounds++;
      } while (cursor !== '0' && rounds < 1000);
      assert.equal(seen.size, 301);
      const [, strings] = (await c.call(
        'SCAN',
        '0',
        'COUNT',
        '1000',
        'MATCH',
        'key:1*',
        'TYPE',
        'string',
      )) as [string, string[]];
      assert.equal(strings.length, keys.filter((k) => k.startsWith('key:1')).length);
      assert.equal(errorText(await c.call('SCAN', 'x')), 'ERR invalid cursor');
      c.close();
    });

    void it('EXPIRE family, TTL, PERSIST', async () => {
      const c = await fresh();
      await c.call('SET', 'k', 'v');
      assert.equal(await c.call('EXPIRE', 'k', '100'), 1);
      assert.equal(await c.call('EXPIRE', 'k', '200', 'NX'), 0);
      assert.equal(await c.call('EXPIRE', 'k', '50', 'GT'), 0);
      assert.equal(await c.call('EXPIRE', 'k', '50', 'LT'), 1);
      assert.equal(await c.call('TTL', 'k'), 50);
      assert.equal(await c.call('PEXPIRE', 'k', '100000'), 1);
      assert.equal(await c.call('PEXPIREAT', 'k', String(Date.now() + 300_000)), 1);
      assert.equal(await c.call('EXPIREAT', 'k', String(Math.floor(Date.now() / 1000) + 400)), 1);
      assert.ok(((await c.call('TTL', 'k')) as number) > 390);
      assert.equal(await c.call('PERSIST', 'k'), 1);
      assert.equal(await c.call('PERSIST', 'k'), 0);
      assert.equal(await c.call('TTL', 'k'), -1);
      assert.equal(await c.call('TTL', 'nokey'), -2);
      assert.equal(await c.call('EXPIRE', 'nokey', '10'), 0);
      assert.equal(
        errorText(await c.call('EXPIRE', 'k', '10', 'NX', 'XX')),
        'ERR NX and XX, GT or LT options at the same time are not compatible',
      );
      // A time in the past deletes the key.
      assert.equal(await c.call('EXPIREAT', 'k', '1'), 1);
      assert.equal(await c.call('EXISTS', 'k'), 0);
      c.close();
    });

    void it('SELECT isolates the 16 databases', async () => {
      const c = await fresh();
      await c.call('SET', 'iso', 'here');
      const other = await RespClient.open(port, node.adminUser, node.adminPassword);
      await other.call('SELECT', String((db + 1) % 16));
      assert.equal(await other.call('GET', 'iso'), null);
      assert.equal(errorText(await other.call('SELECT', '16')), 'ERR DB index is out of range');
      other.close();
      c.close();
    });
  });

  void describe('collections', () => {
    void it('hashes', async () => {
      const c = await fresh();
      assert.equal(await c.call('HSET', 'h', 'a', '1', 'b', '2'), 2);
      assert.equal(await c.call('HSET', 'h', 'a', '10', 'c', '3'), 1);
      assert.equal(await c.call('HGET', 'h', 'a'), '10');
      assert.equal(await c.call('HGET', 'h', 'x'), null);
      assert.deepEqual(await c.call('HMGET', 'h', 'a', 'x', 'c'), ['10', null, '3']);
      assert.equal(await c.call('HLEN', 'h'), 3);
      assert.equal(await c.call('HEXISTS', 'h', 'b'), 1);
      assert.equal(await c.call('HEXISTS', 'h', 'x'), 0);
      assert.deepEqual(sorted(await c.call('HKEYS', 'h')), ['a', 'b', 'c']);
      assert.deepEqual(sorted(await c.call('HVALS', 'h')), ['10', '2', '3']);
      const all = (await c.call('HGETALL', 'h')) as string[];
      assert.equal(all.length, 6);
      assert.equal(await c.call('HINCRBY', 'h', 'a', '5'), 15);
      assert.equal(await c.call('HINCRBY', 'h', 'new', '-5'), -5);
      await c.call('HSET', 'h', 'text', 'abc');
      assert.equal(errorText(await c.call('HINCRBY', 'h', 'text', '1')), 'ERR hash value is not an integer');
      assert.equal(await c.call('HDEL', 'h', 'a', 'b', 'x'), 2);
      const [cursor, page] = (await c.call('HSCAN', 'h', '0', 'COUNT', '100')) as [string, string[]];
      assert.equal(cursor, '0');
      assert.equal(page.length, 6);
      assert.equal(await c.call('HDEL', 'h', 'c', 'new', 'text'), 3);
      assert.equal(await c.call('EXISTS', 'h'), 0, 'an emptied hash is deleted');
      assert.equal(
        errorText(await c.call('HSET', 'h', 'a')),
        "ERR wrong number of arguments for 'hset' command",
      );
      c.close();
    });

    void it('lists', async () => {
      const c = await fresh();
      assert.equal(await c.call('RPUSH', 'l', 'a', 'b', 'c'), 3);
      assert.equal(await c.call('LPUSH', 'l', 'z', 'y'), 5);
      assert.deepEqual(await c.call('LRANGE', 'l', '0', '-1'), ['y', 'z', 'a', 'b', 'c']);
      assert.deepEqual(await c.call('LRANGE', 'l', '-2', '100'), ['b', 'c']);
      assert.equal(await c.call('LLEN', 'l'), 5);
      assert.equal(await c.call('LINDEX', 'l', '-1'), 'c');
      assert.equal(await c.call('LINDEX', 'l', '9'), null);
      assert.equal(await c.call('LSET', 'l', '1', 'Z'), 'OK');
      assert.equal(errorText(await c.call('LSET', 'l', '9', 'x')), 'ERR index out of range');
      assert.equal(errorText(await c.call('LSET', 'nolist', '0', 'x')), 'ERR no such key');
      assert.equal(await c.call('LPOP', 'l'), 'y');
      assert.equal(await c.call('RPOP', 'l'), 'c');
      assert.deepEqual(await c.call('RPUSH', 'l', 'a', 'x', 'a'), 6);
      assert.equal(await c.call('LREM', 'l', '-2', 'a'), 2);
      assert.deepEqual(await c.call('LRANGE', 'l', '0', '-1'), ['Z', 'a', 'b', 'x']);
      assert.equal(await c.call('LTRIM', 'l', '1', '2'), 'OK');
      assert.deepEqual(await c.call('LRANGE', 'l', '0', '-1'), ['a', 'b']);
      assert.deepEqual(await c.call('LPOP', 'l', '5'), ['a', 'b']);
      assert.equal(await c.call('EXISTS', 'l'), 0);
      assert.equal(await c.call('LPOP', 'l'), null);
      c.close();
    });

    void it('sets', async () => {
      const c = await fresh();
      assert.equal(await c.call('SADD', 's1', 'a', 'b', 'c', 'a'), 3);
      assert.equal(await c.call('SADD', 's2', 'b', 'c', 'd'), 3);
      assert.deepEqual(sorted(await c.call('SMEMBERS', 's1')), ['a', 'b', 'c']);
      assert.equal(await c.call('SISMEMBER', 's1', 'a'), 1);
      assert.equal(await c.call('SISMEMBER', 's1', 'z'), 0);
      assert.equal(await c.call('SCARD', 's1'), 3);
      assert.deepEqual(sorted(await c.call('SINTER', 's1', 's2')), ['b', 'c']);
      assert.deepEqual(sorted(await c.call('SUNION', 's1', 's2')), ['a', 'b', 'c', 'd']);
      assert.deepEqual(sorted(await c.call('SDIFF', 's1', 's2')), ['a']);
      assert.equal(await c.call('SREM', 's1', 'a', 'z'), 1);
      const member = (await c.call('SRANDMEMBER', 's2')) as string;
      assert.ok(['b', 'c', 'd'].includes(member));
      assert.equal(((await c.call('SRANDMEMBER', 's2', '-5')) as string[]).length, 5);
      const popped = (await c.call('SPOP', 's2', '2')) as string[];
      assert.equal(popped.length, 2);
      assert.equal(await c.call('SCARD', 's2'), 1);
      const [cursor, page] = (await c.call('SSCAN', 's1', '0')) as [string, string[]];
      assert.equal(cursor, '0');
      assert.deepEqual(page.sort(), ['b', 'c']);
      assert.equal(
        errorText(await c.call('SPOP', 's1', '-1')),
        'ERR value is out of range, must be positive',
      );
      c.close();
    });

    void it('sorted sets', async () => {
      const c = await fresh();
      assert.equal(await c.call('ZADD', 'z', '1', 'a', '2', 'b', '3', 'c'), 3);
      assert.equal(await c.call('ZADD', 'z', 'NX', '10', 'a', '4', 'd'), 1);
      assert.equal(await c.call('ZADD', 'z', 'XX', 'CH', '5', 'd', '9', 'e'), 1);
      assert.equal(await c.call('ZADD', 'z', 'GT', 'CH', '0', 'a'), 0);
      assert.equal(await c.call('ZADD', 'z', 'INCR', '1.5', 'a'), '2.5');
      assert.equal(await c.call('ZADD', 'z', 'XX', 'INCR', '1', 'nope'), null);
      assert.equal(await c.call('ZSCORE', 'z', 'a'), '2.5');
      assert.equal(await c.call('ZINCRBY', 'z', '-0.5', 'a'), '2');
      assert.equal(await c.call('ZCARD', 'z'), 4);
      assert.deepEqual(await c.call('ZRANGE', 'z', '0', '-1'), ['a', 'b', 'c', 'd']);
      // A member repeated in one ZADD of a new key: the last score wins, counted once.
      assert.equal(await c.call('ZADD', 'dup', '1', 'a', '2', 'a'), 1);
      assert.equal(await c.call('ZCARD', 'dup'), 1);
      assert.deepEqual(await c.call('ZRANGEBYSCORE', 'dup', '-inf', '+inf', 'WITHSCORES'), ['a', '2']);
      assert.equal(await c.call('ZADD', 'dupnx', 'NX', '1', 'a', '2', 'a'), 1);
      assert.equal(await c.call('ZSCORE', 'dupnx', 'a'), '1');
      assert.equal(await c.call('HSET', 'hdup', 'f', '1', 'f', '2'), 1);
      assert.equal(await c.call('HLEN', 'hdup'), 1);
      assert.equal(await c.call('HGET', 'hdup', 'f'), '2');
      assert.equal(await c.call('SADD', 'sdup', 'a', 'a', 'b'), 2);
      assert.equal(await c.call('SCARD', 'sdup'), 2);
      assert.equal(await c.call('ZADD', 'dupgt', 'GT', '5', 'a', '3', 'a'), 1);
      assert.deepEqual(await c.call('ZRANGE', 'dupgt', '0', '-1', 'WITHSCORES'), ['a', '5']);
      assert.deepEqual(await c.call('ZRANGE', 'z', '0', '1', 'WITHSCORES'), ['a', '2', 'b', '2']);
      assert.deepEqual(await c.call('ZRANGE', 'z', '0', '0', 'REV'), ['d']);
      assert.deepEqual(await c.call('ZRANGE', 'z', '(2', '+inf', 'BYSCORE'), ['c', 'd']);
      assert.deepEqual(await c.call('ZRANGE', 'z', '+inf', '-inf', 'BYSCORE', 'REV', 'LIMIT', '1', '2'), [
        'c',
        'b',
      ]);
      assert.deepEqual(await c.call('ZRANGEBYSCORE', 'z', '2', '3', 'WITHSCORES'), [
        'a',
        '2',
        'b',
        '2',
        'c',
        '3',
      ]);
      assert.deepEqual(await c.call('ZRANGEBYSCORE', 'z', '-inf', '+inf', 'LIMIT', '1', '1'), ['b']);
      assert.deepEqual(await c.call('ZREVRANGEBYSCORE', 'z', '+inf', '3'), ['d', 'c']);
      assert.equal(await c.call('ZRANK', 'z', 'c'), 2);
      assert.equal(await c.call('ZREVRANK', 'z', 'c'), 1);
      assert.equal(await c.call('ZRANK', 'z', 'nope'), null);
      assert.equal(await c.call('ZCOUNT', 'z', '2', '(5'), 3);
      assert.equal(await c.call('ZREM', 'z', 'a', 'nope'), 1);
      const [cursor, page] = (await c.call('ZSCAN', 'z', '0')) as [string, string[]];
      assert.equal(cursor, '0');
      assert.equal(page.length, 6);
      assert.equal(
        errorText(await c.call('ZADD', 'z', 'NX', 'XX', '1', 'a')),
        'ERR XX and NX options at the same time are not compatible',
      );
      assert.equal(
        errorText(await c.call('ZADD', 'z', 'GT', 'LT', '1', 'a')),
        'ERR GT, LT, and/or NX options at the same time are not compatible',
      );
      assert.equal(errorText(await c.call('ZADD', 'z', 'x', 'a')), 'ERR value is not a valid float');
      assert.equal(errorText(await c.call('ZRANGEBYSCORE', 'z', 'a', 'b')), 'ERR min or max is not a float');
      assert.equal(
        errorText(await c.call('ZRANGE', 'z', '0', '1', 'LIMIT', '0', '1')),
        'ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX',
      );
      c.close();
    });
  });

  void describe('errors', () => {
    void it("answers wrong types, arity and unknown commands in Redis' words", async () => {
      const c = await fresh();
      await c.call('SET', 's', 'x');
      const wrongType = 'WRONGTYPE Operation against a key holding the wrong kind of value';
      for (const command of [
        ['LPUSH', 's', 'a'],
        ['HGET', 's', 'f'],
        ['SADD', 's', 'm'],
        ['ZADD', 's', '1', 'm'],
        ['LRANGE', 's', '0', '1'],
      ]) {
        assert.equal(errorText(await c.call(...command)), wrongType, command.join(' '));
      }
      await c.call('RPUSH', 'l', 'a');
      assert.equal(errorText(await c.call('GET', 'l')), wrongType);
      assert.equal(errorText(await c.call('GET')), "ERR wrong number of arguments for 'get' command");
      assert.equal(
        errorText(await c.call('GET', 'a', 'b')),
        "ERR wrong number of arguments for 'get' command",
      );
      assert.equal(errorText(await c.call('SET', 'a')), "ERR wrong number of arguments for 'set' command");
      assert.equal(
        errorText(await c.call('FOO', 'a', 'b')),
        "ERR unknown command 'FOO', with args beginning with: 'a' 'b' ",
      );
      assert.equal(errorText(await c.call('SELECT', 'x')), 'ERR value is not an integer or out of range');
      c.close();
    });

    void it('closes only the connection that sent a malformed frame', async () => {
      const bad = await RespClient.open(port, node.adminUser, node.adminPassword);
      const good = await fresh();
      bad.writeRaw('*1\r\n$3\r\nGET\r\nPING\r\n*2\r\n$x\r\n');
      assert.equal(errorText(await bad.next()), "ERR wrong number of arguments for 'get' command");
      assert.equal(await bad.next(), 'PONG');
      assert.equal(errorText(await bad.next()), 'ERR Protocol error: invalid bulk length');
      await bad.closed;
      assert.equal(await good.call('PING'), 'PONG');
      const other = await RespClient.open(port, node.adminUser, node.adminPassword);
      other.writeRaw('*1\r\nxyz\r\n');
      assert.equal(errorText(await other.next()), "ERR Protocol error: expected '$', got 'x'");
      await other.closed;
      assert.equal(await good.call('PING'), 'PONG');
      good.close();
    });
  });

  void describe('input limits', () => {
    /** Bytes the node has read from all its clients. */
    async function inputBytes(): Promise<number> {
      const info = str(await r.call('INFO', 'stats'));
      const line = info.split('\r\n').find((l) => l.startsWith('total_net_input_bytes:'));
      assert.ok(line !== undefined, info);
      return Number(line.slice(line.indexOf(':') + 1));
    }

    void it('reads no more from a client whose command waits (WAIT), nor after QUIT', async () => {
      const flood = Buffer.from('PING\r\n'.repeat(1024 * 1024));
      for (const first of ['WAIT 1 0\r\n', 'QUIT\r\n']) {
        const client = await RespClient.open(port, node.adminUser, node.adminPassword);
        const before = await inputBytes();
        client.writeRaw(first);
        for (let i = 0; i < 8; i++) client.writeRaw(flood);
        // Until the node stops reading (it may read slowly, copying what it holds).
        let read = -1;
        for (let waited = 0; waited < 60_000; waited += 500) {
          await sleep(500);
          const now = (await inputBytes()) - before;
          if (now === read) break;
          read = now;
        }
        // The socket buffers hold a few MB; the other 40 MB must stay with the client.
        assert.ok(
          read < 16 * 1024 * 1024,
          `after ${first.trim()} the node read ${read} of ${8 * flood.length} bytes`,
        );
        client.close();
      }
      assert.equal(await r.call('PING'), 'PONG');
    });
  });

  void describe('pipelining and inline commands', () => {
    void it('answers a pipeline of writes and reads in order, each read seeing the writes before it', async () => {
      const c = await fresh();
      const commands: Arg[][] = [];
      for (let i = 0; i < 200; i++) {
        commands.push(['INCR', 'counter'], ['GET', 'counter'], ['SET', `k${i}`, String(i)], ['GET', `k${i}`]);
      }
      const replies = await c.pipeline(commands);
      for (let i = 0; i < 200; i++) {
        assert.equal(replies[i * 4], i + 1);
        assert.equal(replies[i * 4 + 1], String(i + 1));
        assert.equal(replies[i * 4 + 2], 'OK');
        assert.equal(replies[i * 4 + 3], String(i));
      }
      c.close();
    });

    void it('handles a pipeline split across many small writes', async () => {
      const c = await fresh();
      const bytes = Buffer.from(
        Array.from(
          { length: 50 },
          (_, i) => `*3\r\n$3\r\nSET\r\n$2\r\nk${i % 10}\r\n$1\r\n${i % 10}\r\n`,
        ).join(''),
      );
      for (let i = 0; i < bytes.length; i += 7) {
        c.writeRaw(bytes.subarray(i, i + 7));
        if (i % 70 === 0) await sleep(1);
      }
      for (let i = 0; i < 50; i++) assert.equal(await c.next(), 'OK');
      assert.equal(await c.call('GET', 'k3'), '3');
      c.close();
    });

    void it('accepts inline commands', async () => {
      const c = await fresh();
      c.writeRaw('SET inline "hello world"\r\nGET inline\nPING\r\n\r\nEXISTS inline\r\n');
      assert.equal(await c.next(), 'OK');
      assert.equal(await c.next(), 'hello world');
      assert.equal(await c.next(), 'PONG');
      assert.equal(await c.next(), 1);
      c.close();
    });
  });

  void describe('RESP3', () => {
    void it('uses maps, sets, doubles and nulls after HELLO 3', async () => {
      const c = await fresh();
      const hello = await c.call('HELLO', '3');
      assert.ok(hello instanceof RespMap);
      await c.call('HSET', 'h', 'f', 'v');
      const map = await c.call('HGETALL', 'h');
      assert.ok(map instanceof RespMap);
      assert.deepEqual(map.toObject(), { f: 'v' });
      await c.call('SADD', 's', 'a');
      assert.ok((await c.call('SMEMBERS', 's')) instanceof RespSet);
      await c.call('ZADD', 'z', '1.5', 'm');
      const score = await c.call('ZSCORE', 'z', 'm');
      assert.ok(score instanceof RespDouble);
      assert.equal(score.value, 1.5);
      assert.deepEqual(await c.call('ZRANGE', 'z', '0', '-1', 'WITHSCORES'), [['m', new RespDouble(1.5)]]);
      assert.equal(await c.call('GET', 'missing'), null);
      const info = await c.call('INFO', 'server');
      assert.match(str(info), /redis_version:/);
      assert.equal(await c.call('HELLO', '2').then((h) => Array.isArray(h)), true);
      c.close();
    });
  });

  void describe('transactions', () => {
    void it('MULTI/EXEC runs the queue atomically; DISCARD drops it', async () => {
      const c = await fresh();
      assert.equal(await c.call('MULTI'), 'OK');
      assert.equal(await c.call('SET', 'a', '1'), 'QUEUED');
      assert.equal(await c.call('INCR', 'a'), 'QUEUED');
      assert.equal(await c.call('LPUSH', 'a', 'x'), 'QUEUED');
      assert.equal(await c.call('GET', 'a'), 'QUEUED');
      const replies = (await c.call('EXEC')) as Reply[];
      assert.equal(replies[0], 'OK');
      assert.equal(replies[1], 2);
      assert.match(errorText(replies[2]), /^WRONGTYPE/);
      assert.equal(replies[3], '2');
      assert.equal(await c.call('MULTI'), 'OK');
      assert.equal(errorText(await c.call('MULTI')), 'ERR MULTI calls can not be nested');
      await c.call('SET', 'a', '100');
      assert.equal(await c.call('DISCARD'), 'OK');
      assert.equal(await c.call('GET', 'a'), '2');
      assert.equal(errorText(await c.call('EXEC')), 'ERR EXEC without MULTI');
      assert.equal(errorText(await c.call('DISCARD')), 'ERR DISCARD without MULTI');
      c.close();
    });

    void it('EXECABORT after an error while queueing', async () => {
      const c = await fresh();
      await c.call('MULTI');
      await c.call('SET', 'a', '1');
      assert.match(errorText(await c.call('NOPE')), /^ERR unknown command/);
      assert.equal(
        errorText(await c.call('EXEC')),
        'EXECABORT Transaction discarded because of previous errors.',
      );
      assert.equal(await c.call('GET', 'a'), null);
      c.close();
    });

    void it('WATCH aborts EXEC when another client changed the key', async () => {
      const c = await fresh();
      const other = await RespClient.open(port, node.adminUser, node.adminPassword);
      await other.call('SELECT', String(db));
      await c.call('SET', 'w', '1');
      assert.equal(await c.call('WATCH', 'w'), 'OK');
      await other.call('SET', 'w', '2');
      await c.call('MULTI');
      await c.call('SET', 'w', '3');
      assert.equal(await c.call('EXEC'), null);
      assert.equal(await c.call('GET', 'w'), '2');
      // Unchanged watched keys let EXEC through.
      await c.call('WATCH', 'w');
      await c.call('MULTI');
      await c.call('INCR', 'w');
      assert.deepEqual(await c.call('EXEC'), [3]);
      // A flush touches every watched key.
      await c.call('WATCH', 'w');
      await other.call('FLUSHDB');
      await c.call('MULTI');
      await c.call('SET', 'w', '1');
      assert.equal(await c.call('EXEC'), null);
      other.close();
      c.close();
    });
  });

  void describe('expiry', () => {
    void it('expires keys lazily on access', async () => {
      const c = await fresh();
      await c.call('SET', 'lazy', 'v', 'PX', '50');
      await c.call('HSET', 'lazyhash', 'f', 'v');
      await c.call('PEXPIRE', 'lazyhash', '50');
      await sleep(80);
      assert.equal(await c.call('GET', 'lazy'), null);
      assert.equal(await c.call('HGET', 'lazyhash', 'f'), null);
      assert.equal(await c.call('EXISTS', 'lazy', 'lazyhash'), 0);
      c.close();
    });

    void it('expires keys actively, with a journal entry for each', async () => {
      const c = await fresh();
      const before = await headLsn(node);
      const n = 20;
      await c.pipeline(Array.from({ length: n }, (_, i) => ['SET', `active${i}`, 'v', 'PX', String(20 + i)]));
      assert.equal(await c.call('DBSIZE'), n);
      const deadline = Date.now() + 5000;
      while ((await c.call('DBSIZE')) !== 0 && Date.now() < deadline) await sleep(50);
      assert.equal(await c.call('DBSIZE'), 0, 'the active cycle removed every key without access');
      // n sets + n expiry deletions.
      assert.equal((await headLsn(node)) - before, 2 * n);
      const info = str(await c.call('INFO', 'stats'));
      assert.match(info, /expired_keys:\d+/);
      c.close();
    });
  });

  void describe('journal', () => {
    void it('records one journal entry per mutation, none for reads or refused writes', async () => {
      const c = await fresh();
      const steps: [Arg[], number][] = [
        [['SET', 'j', '1'], 1],
        [['GET', 'j'], 0],
        [['INCR', 'j'], 1],
        [['SET', 'j', '1', 'NX'], 0],
        [['MSET', 'j1', 'a', 'j2', 'b'], 1],
        [['LPUSH', 'j', 'x'], 0],
        [['HSET', 'jh', 'a', '1', 'b', '2'], 1],
        [['HDEL', 'jh', 'zzz'], 0],
        [['SADD', 'js', 'a'], 1],
        [['ZADD', 'jz', '1', 'a'], 1],
        [['RPUSH', 'jl', 'a', 'b'], 1],
        [['EXPIRE', 'j', '100'], 1],
        [['DEL', 'j', 'j1', 'nokey'], 1],
        [['FLUSHDB'], 1],
      ];
      for (const [command, delta] of steps) {
        const before = await headLsn(node);
        await c.call(...command);
        assert.equal((await headLsn(node)) - before, delta, command.join(' '));
      }
      // A transaction is one entry.
      const before = await headLsn(node);
      await c.pipeline([['MULTI'], ['SET', 'a', '1'], ['SET', 'b', '2'], ['INCR', 'a'], ['EXEC']]);
      assert.equal((await headLsn(node)) - before, 1);
      c.close();
    });
  });

  void describe('server commands', () => {
    void it('SAVE, BGSAVE and LASTSAVE: every acknowledged write made durable now', async () => {
      const c = await fresh();
      const before = (await c.call('LASTSAVE')) as number;
      assert.ok(Math.abs(before - Date.now() / 1000) < 600, `LASTSAVE ${before}: about the start`);
      // LASTSAVE counts in seconds: a save a second later must show.
      await sleep(1100);
      await c.call('SET', 'saved', 'yes');
      assert.equal(await c.call('SAVE'), 'OK');
      const saved = (await c.call('LASTSAVE')) as number;
      assert.ok(saved > before, `LASTSAVE ${saved} after SAVE, was ${before}`);
      assert.match(node.output, /saved: every acknowledged write is on disk/);
      assert.equal(await c.call('BGSAVE'), 'Background saving started');
      assert.equal(errorText(await c.call('BGSAVE', 'NOW')), 'ERR syntax error');
      await waitFor('BGSAVE to finish', async () =>
        str(await c.call('INFO', 'persistence')).includes('rdb_bgsave_in_progress:0'),
      );
      const persistence = str(await c.call('INFO', 'persistence'));
      assert.match(persistence, /rdb_last_bgsave_status:ok/);
      assert.match(persistence, /rdb_last_save_time:\d+/);
      assert.deepEqual(await c.pipeline([['MULTI'], ['SAVE'], ['EXEC']]), [
        'OK',
        new RespError('ERR Command not allowed inside a transaction'),
        new RespError('EXECABORT Transaction discarded because of previous errors.'),
      ]);
      c.close();
    });

    void it('SYNC, which a redis-server replica falls back to when PSYNC is refused, says why too', async () => {
      assert.match(errorText(await r.call('SYNC')), /^ERR Doppel serves replication only to Doppel replicas/);
    });

    void it('INFO, CLIENT, CONFIG, COMMAND, TIME, ECHO, DBSIZE', async () => {
      const c = await fresh();
      const info = str(await c.call('INFO'));
      for (const field of [
        'redis_version:',
        'connected_clients:',
        'role:master',
        'connected_slaves:0',
        'loading:0',
      ]) {
        assert.ok(info.includes(field), field);
      }
      await c.call('SET', 'x', '1');
      assert.match(str(await c.call('INFO', 'keyspace')), new RegExp(`db${db}:keys=1,expires=0`));
      assert.equal(await c.call('CLIENT', 'SETNAME', 'tester'), 'OK');
      assert.equal(await c.call('CLIENT', 'GETNAME'), 'tester');
      const id = (await c.call('CLIENT', 'ID')) as number;
      assert.ok(id > 0);
      assert.match(str(await c.call('CLIENT', 'LIST')), new RegExp(`id=${id} .*name=tester`));
      assert.equal(
        errorText(await c.call('CLIENT', 'SETNAME', 'a b')),
        'ERR Client names cannot contain spaces, newlines or special characters.',
      );
      assert.deepEqual(await c.call('CONFIG', 'GET', 'databases'), ['databases', '16']);
      assert.equal(await c.call('CONFIG', 'SET', 'save', ''), 'OK');
      assert.equal(
        errorText(await c.call('CONFIG', 'SET', 'foo', 'bar')),
        "ERR Unknown option or number of arguments for CONFIG SET - 'foo'",
      );
      const count = (await c.call('COMMAND', 'COUNT')) as number;
      assert.ok(count > 100);
      const [get] = (await c.call('COMMAND', 'INFO', 'get')) as Reply[][];
      assert.deepEqual(get.slice(0, 6), ['get', 2, ['readonly', 'fast'], 1, 1, 1]);
      assert.ok(Array.isArray(await c.call('COMMAND', 'DOCS', 'set')));
      const [seconds, micros] = (await c.call('TIME')) as string[];
      assert.ok(Math.abs(Number(seconds) - Date.now() / 1000) < 5);
      assert.ok(Number(micros) < 1_000_000);
      assert.equal(await c.call('ECHO', 'hi'), 'hi');
      assert.equal(await c.call('PING', 'x'), 'x');
      c.close();
    });
  });
});

void describe('RESP persistence', () => {
  const dataDir = makeTempDir('doppel-resp-');
  const password = 'resp-persist-pw';

  after(async () => {
    await removeTempDir(dataDir);
  });

  void it('keeps every type and TTL across a restart, and acknowledged writes across kill -9', async () => {
    let node = await DoppelProcess.start({ dataDir, adminPassword: password });
    let c = await RespClient.open(respPort(node), 'admin', password);
    await c.pipeline([
      ['SET', 'str', 'v'],
      ['SET', 'ttl', 'v', 'EX', '1000'],
      ['HSET', 'hash', 'f', 'v'],
      ['RPUSH', 'list', 'a', 'b'],
      ['SADD', 'set', 'm'],
      ['ZADD', 'zset', '2', 'm'],
      ['SELECT', '5'],
      ['SET', 'in5', 'x'],
    ]);
    c.close();
    await node.stop();

    node = await DoppelProcess.start({ dataDir, adminPassword: password });
    c = await RespClient.open(respPort(node), 'admin', password);
    assert.equal(await c.call('GET', 'str'), 'v');
    assert.ok(((await c.call('TTL', 'ttl')) as number) > 990);
    assert.deepEqual(await c.call('HGETALL', 'hash'), ['f', 'v']);
    assert.deepEqual(await c.call('LRANGE', 'list', '0', '-1'), ['a', 'b']);
    assert.deepEqual(await c.call('SMEMBERS', 'set'), ['m']);
    assert.equal(await c.call('ZSCORE', 'zset', 'm'), '2');
    assert.equal(await c.call('DBSIZE'), 6);
    await c.call('SELECT', '5');
    assert.equal(await c.call('GET', 'in5'), 'x');

    // Acknowledged writes survive kill -9, with writes still in flight when the node dies.
    await c.call('SELECT', '1');
    const acknowledged: number[] = [];
    const writer = (async () => {
      for (let round = 0; ; round++) {
        const commands: Arg[][] = Array.from({ length: 50 }, (_, i) => [
          'SET',
          `crash:${round * 50 + i}`,
          String(round),
        ]);
        try {
          const replies = await c.pipeline(commands);
          if (replies.every((reply) => reply === 'OK')) acknowledged.push(round);
        } catch {
          return;
        }
      }
    })();
    await sleep(500);
    await node.kill('SIGKILL');
    await writer;
    assert.ok(acknowledged.length > 0);

    node = await DoppelProcess.start({ dataDir, adminPassword: password });
    c = await RespClient.open(respPort(node), 'admin', password);
    await c.call('SELECT', '1');
    for (const round of acknowledged) {
      const values = (await c.call(
        'MGET',
        ...Array.from({ length: 50 }, (_, i) => `crash:${round * 50 + i}`),
      )) as (string | null)[];
      assert.ok(
        values.every((v) => v === String(round)),
        `round ${round} was acknowledged but is missing after kill -9`,
      );
    }
    c.close();
    await node.stop();
  });
});
