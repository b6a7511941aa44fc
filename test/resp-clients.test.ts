/**
 * Real Redis clients against a real Doppel process: ioredis (commands of
 * every type the way applications use them, pipelines, MULTI/EXEC, WATCH,
 * SCAN streams, AUTH as the admin and as a `_users` user) and redis-cli
 * (commands, `--pipe` mass insert, INFO). Where Redis' behaviour is the
 * reference (error texts, EXPIRE's NX/XX/GT/LT), a real redis-server runs
 * beside Doppel and both must answer alike.
 *
 * Needs redis-server and redis-cli (Debian: redis-server, redis-tools) and
 * the ioredis devDependency; a missing one fails with how to install it.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis, type RedisOptions } from 'ioredis';
import { DoppelProcess, makeTempDir, removeTempDir } from './support/doppel-process.js';
import { RedisPeer, REDIS_INSTALL_HINT, redisBinary } from './support/redis-peer.js';
import { RespClient, RespError, type Arg, type Reply } from './support/resp-client.js';

function respPort(node: DoppelProcess): number {
  assert.ok(node.respAddress !== undefined, `the node logged no "resp listening" line:\n${node.output}`);
  return Number(node.respAddress.slice(node.respAddress.lastIndexOf(':') + 1));
}

interface CliResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs redis-cli with `args`, feeding `input` on stdin. */
function redisCli(args: readonly string[], input?: string | Buffer): Promise<CliResult> {
  const binary = redisBinary('redis-cli');
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('exit', (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** redis-cli's flags to reach `node` as its admin. */
function cliAuth(node: DoppelProcess): string[] {
  return [
    '-h',
    '127.0.0.1',
    '-p',
    String(respPort(node)),
    '--no-auth-warning',
    '--user',
    node.adminUser,
    '-a',
    node.adminPassword,
  ];
}

/** The text of an error reply (or of a thrown ioredis ReplyError). */
function errorText(reply: unknown): string {
  assert.ok(reply instanceof Error, `expected an error, got ${JSON.stringify(reply)}`);
  return reply.message;
}

async function rejection(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return errorText(err);
  }
  assert.fail('expected the command to fail');
}

void describe('Redis clients against Doppel', () => {
  let node: DoppelProcess;
  let port: number;
  let redis: RedisPeer;
  const clients: Redis[] = [];
  let nextDb = 0;

  /** An ioredis client as the admin on a fresh logical database (tests must not see each other's keys). */
  async function admin(options: RedisOptions = {}): Promise<Redis> {
    const db = nextDb++ % 16;
    const client = new Redis({
      host: '127.0.0.1',
      port,
      username: node.adminUser,
      password: node.adminPassword,
      db,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      ...options,
    });
    clients.push(client);
    await client.connect();
    await client.flushdb();
    return client;
  }

  before(async () => {
    // Fail (not skip) with the install hint when a peer is missing.
    redisBinary('redis-cli');
    node = await DoppelProcess.start();
    port = respPort(node);
    redis = await RedisPeer.start();
  });

  after(async () => {
    for (const client of clients) client.disconnect();
    await redis?.stop();
    await node?.stop();
  });

  void describe('ioredis', () => {
    void it('uses strings the way applications do', async () => {
      const r = await admin();
      assert.equal(await r.set('greeting', 'hello'), 'OK');
      assert.equal(await r.get('greeting'), 'hello');
      assert.equal(await r.append('greeting', ' world'), 11);
      assert.equal(await r.strlen('greeting'), 11);
      assert.equal(await r.getrange('greeting', 0, 4), 'hello');
      assert.equal(await r.set('session', 'data', 'EX', 60), 'OK');
      const ttl = await r.ttl('session');
      assert.ok(ttl > 58 && ttl <= 60, String(ttl));
      assert.equal(await r.set('lock', 'me', 'PX', 10_000, 'NX'), 'OK');
      assert.equal(await r.set('lock', 'you', 'PX', 10_000, 'NX'), null);
      assert.equal(await r.incr('counter'), 1);
      assert.equal(await r.incrby('counter', 41), 42);
      assert.equal(await r.decr('counter'), 41);
      assert.equal(await r.incrbyfloat('price', '10.5'), '10.5');
      assert.equal(await r.mset({ a: '1', b: '2' }), 'OK');
      assert.deepEqual(await r.mget('a', 'b', 'missing'), ['1', '2', null]);
      assert.equal(await r.getdel('a'), '1');
      assert.equal(await r.exists('a', 'b'), 1);
      const bytes = Buffer.from([0, 255, 13, 10, 1]);
      await r.set('binary', bytes);
      assert.deepEqual(await r.getBuffer('binary'), bytes);
      assert.equal(await r.type('b'), 'string');
      assert.equal(await r.del('b', 'binary', 'nothing'), 2);
    });

    void it('uses hashes, lists, sets and sorted sets', async () => {
      const r = await admin();
      assert.equal(await r.hset('user:1', { name: 'Ada', visits: '1' }), 2);
      assert.equal(await r.hincrby('user:1', 'visits', 2), 3);
      assert.deepEqual(await r.hgetall('user:1'), { name: 'Ada', visits: '3' });
      assert.deepEqual(await r.hmget('user:1', 'name', 'nope'), ['Ada', null]);
      assert.equal(await r.hexists('user:1', 'name'), 1);
      assert.equal(await r.hdel('user:1', 'name'), 1);
      assert.equal(await r.hlen('user:1'), 1);

      assert.equal(await r.rpush('queue', 'a', 'b', 'c'), 3);
      assert.equal(await r.lpush('queue', 'z'), 4);
      assert.deepEqual(await r.lrange('queue', 0, -1), ['z', 'a', 'b', 'c']);
      assert.equal(await r.lpop('queue'), 'z');
      assert.equal(await r.rpop('queue'), 'c');
      assert.equal(await r.llen('queue'), 2);
      assert.equal(await r.lindex('queue', 1), 'b');

      assert.equal(await r.sadd('tags', 'x', 'y', 'z', 'x'), 3);
      assert.equal(await r.sismember('tags', 'y'), 1);
      assert.equal(await r.srem('tags', 'y'), 1);
      assert.deepEqual((await r.smembers('tags')).sort(), ['x', 'z']);
      assert.equal(await r.scard('tags'), 2);

      assert.equal(await r.zadd('board', 10, 'ann', 20, 'bob', 15, 'cid'), 3);
      assert.equal(await r.zincrby('board', 10, 'ann'), '20');
      assert.deepEqual(await r.zrange('board', 0, -1, 'WITHSCORES'), ['cid', '15', 'ann', '20', 'bob', '20']);
      assert.deepEqual(await r.zrevrange('board', 0, 0), ['bob']);
      assert.equal(await r.zscore('board', 'cid'), '15');
      assert.equal(await r.zrank('board', 'bob'), 2);
      assert.deepEqual(await r.zrangebyscore('board', 16, '+inf'), ['ann', 'bob']);
      assert.equal(await r.zrem('board', 'ann'), 1);
      assert.equal(await r.zcard('board'), 2);

      assert.equal(await r.expire('board', 100), 1);
      assert.ok((await r.pttl('board')) > 98_000);
      assert.equal(await r.persist('board'), 1);
      assert.equal(await r.ttl('board'), -1);
      assert.equal(await r.type('board'), 'zset');
      assert.equal(await r.rename('board', 'board2'), 'OK');
      assert.equal(await r.exists('board'), 0);
    });

    void it('runs pipelines and keeps their order', async () => {
      const r = await admin();
      const pipeline = r.pipeline();
      for (let i = 0; i < 200; i++) pipeline.set(`p:${i}`, String(i)).incr('p:count').get(`p:${i}`);
      pipeline.hset('p:hash', 'f', 'v').lrange('p:missing', 0, -1).get('p:hash');
      const results = await pipeline.exec();
      assert.ok(results !== null);
      for (let i = 0; i < 200; i++) {
        assert.deepEqual(results[i * 3], [null, 'OK']);
        assert.deepEqual(results[i * 3 + 1], [null, i + 1]);
        assert.deepEqual(results[i * 3 + 2], [null, String(i)]);
      }
      const tail = results.slice(600);
      assert.deepEqual(tail[0], [null, 1]);
      assert.deepEqual(tail[1], [null, []]);
      assert.equal(
        errorText(tail[2][0]),
        'WRONGTYPE Operation against a key holding the wrong kind of value',
      );
      assert.equal(await r.dbsize(), 202);
    });

    void it('runs MULTI/EXEC transactions', async () => {
      const r = await admin();
      const results = await r.multi().set('m:a', '1').incr('m:a').lpush('m:list', 'x').get('m:a').exec();
      assert.deepEqual(results, [
        [null, 'OK'],
        [null, 2],
        [null, 1],
        [null, '2'],
      ]);
      // A command that fails at run time fails alone; the others still apply.
      const mixed = await r.multi().set('m:s', 'v').lpush('m:s', 'x').set('m:t', 'w').exec();
      assert.ok(mixed !== null);
      assert.deepEqual(mixed[0], [null, 'OK']);
      assert.match(errorText(mixed[1][0]), /^WRONGTYPE/);
      assert.deepEqual(mixed[2], [null, 'OK']);
      // A command refused while queueing aborts the whole transaction.
      const aborted = await rejection(r.multi().set('m:u', '1').call('SET', 'only-key').exec());
      assert.match(aborted, /EXECABORT Transaction discarded because of previous errors/);
      assert.equal(await r.exists('m:u'), 0);
    });

    void it('aborts EXEC when a WATCHed key changed', async () => {
      const a = await admin();
      const b = new Redis({
        host: '127.0.0.1',
        port,
        username: node.adminUser,
        password: node.adminPassword,
        db: a.options.db ?? 0,
      });
      clients.push(b);
      await a.set('balance', '100');
      assert.equal(await a.watch('balance'), 'OK');
      const seen = Number(await a.get('balance'));
      assert.equal(await b.incrby('balance', 5), 105);
      assert.equal(
        await a
          .multi()
          .set('balance', String(seen - 10))
          .exec(),
        null,
      );
      assert.equal(await a.get('balance'), '105');
      // Unchanged since WATCH: EXEC applies.
      assert.equal(await a.watch('balance'), 'OK');
      assert.deepEqual(await a.multi().decrby('balance', 10).exec(), [[null, 95]]);
    });

    void it('subscribes and publishes (channels and patterns), also after a reconnect', async () => {
      const subscriber = await admin();
      const publisher = await admin();
      const heard: string[] = [];
      subscriber.on('message', (channel: string, message: string) => heard.push(`${channel}:${message}`));
      subscriber.on('pmessageBuffer', (pattern: Buffer, channel: Buffer, message: Buffer) =>
        heard.push(`${pattern.toString()}>${channel.toString()}:${message.toString('hex')}`),
      );
      assert.equal(await subscriber.subscribe('orders', 'invoices'), 2);
      assert.equal(await subscriber.psubscribe('bin.*'), 3);
      assert.equal(await publisher.publish('orders', 'o-1'), 1);
      assert.equal(await publisher.publish('bin.raw', Buffer.from([0, 0xff, 0x0d, 0x0a])), 1);
      assert.equal(await publisher.publish('nobody', 'x'), 0);
      assert.deepEqual(await publisher.pubsub('NUMSUB', 'orders', 'nobody'), ['orders', 1, 'nobody', 0]);
      // ioredis resubscribes on its own after a dropped connection.
      subscriber.disconnect(true);
      await new Promise((resolve) => subscriber.once('ready', resolve));
      for (let i = 0; i < 100 && Number((await publisher.pubsub('NUMSUB', 'invoices'))[1]) === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal(await publisher.publish('invoices', 'i-1'), 1);
      for (let i = 0; i < 100 && heard.length < 3; i++)
        await new Promise((resolve) => setTimeout(resolve, 20));
      assert.deepEqual(heard, ['orders:o-1', 'bin.*>bin.raw:00ff0d0a', 'invoices:i-1']);
      assert.equal(await subscriber.unsubscribe('orders', 'invoices'), 1);
      assert.equal(await subscriber.punsubscribe('bin.*'), 0);
      assert.equal(await subscriber.set('after', 'subscribed'), 'OK');
    });

    void it('feeds a job queue to workers waiting in BRPOP, each job once', async () => {
      const producer = await admin();
      const db = (await producer.client('INFO')).match(/ db=(\d+) /)?.[1];
      const workers = [await admin({ db: Number(db) }), await admin({ db: Number(db) })];
      const done: string[] = [];
      const work = async (worker: Redis): Promise<void> => {
        for (;;) {
          const popped = await worker.brpop('jobs', 5);
          if (popped === null) assert.fail('a worker waited 5 s for a job');
          if (popped[1] === 'stop') return;
          done.push(popped[1]);
        }
      };
      const running = workers.map(work);
      for (let i = 0; i < 200; i++) await producer.lpush('jobs', `job-${i}`);
      await producer.lpush('jobs', 'stop', 'stop');
      await Promise.all(running);
      assert.equal(done.length, 200);
      assert.equal(new Set(done).size, 200);
      assert.equal(await producer.exists('jobs'), 0);
    });

    void it('iterates keys and collections with SCAN streams', async () => {
      const r = await admin();
      const pipeline = r.pipeline();
      for (let i = 0; i < 500; i++) pipeline.set(`scan:${i}`, 'x');
      for (let i = 0; i < 50; i++) pipeline.set(`other:${i}`, 'x');
      for (let i = 0; i < 300; i++) {
        pipeline.hset('scan-hash', `f${i}`, String(i));
        pipeline.sadd('scan-set', `m${i}`);
        pipeline.zadd('scan-zset', i, `z${i}`);
      }
      await pipeline.exec();

      // Each chunk of a SCAN stream is one page: an array of keys (or of field/value pairs).
      const collect = async (stream: AsyncIterable<unknown>): Promise<string[]> => {
        const out: string[] = [];
        for await (const page of stream) out.push(...(page as string[]));
        return out;
      };
      const keys = await collect(r.scanStream({ match: 'scan:*', count: 37 }));
      assert.equal(new Set(keys).size, 500);
      assert.ok(keys.every((key) => key.startsWith('scan:')));
      const all = await collect(r.scanStream({ count: 100 }));
      assert.equal(new Set(all).size, 553);
      const strings = await collect(r.scanStream({ type: 'string', count: 100 }));
      assert.equal(new Set(strings).size, 550);

      const hash = await collect(r.hscanStream('scan-hash', { count: 20 }));
      const fields = new Map<string, string>();
      for (let i = 0; i < hash.length; i += 2) fields.set(hash[i], hash[i + 1]);
      assert.equal(fields.size, 300);
      assert.equal(fields.get('f123'), '123');
      const members = await collect(r.sscanStream('scan-set', { match: 'm1*', count: 25 }));
      assert.equal(new Set(members).size, 111);
      const zset = await collect(r.zscanStream('scan-zset', { count: 50 }));
      assert.equal(zset.length, 600);
    });

    void it('authenticates as the admin and as a _users user, with their rights', async () => {
      // A one-argument AUTH logs in as the server admin.
      const byPassword = new Redis({
        host: '127.0.0.1',
        port,
        password: node.adminPassword,
        lazyConnect: true,
      });
      clients.push(byPassword);
      await byPassword.connect();
      assert.equal(await byPassword.ping(), 'PONG');

      const created = await node.request('/_users/org.couchdb.user:redis-app', {
        method: 'PUT',
        body: {
          _id: 'org.couchdb.user:redis-app',
          name: 'redis-app',
          password: 's3cret',
          roles: [],
          type: 'user',
        },
      });
      assert.equal(created.status, 201, created.text);
      const user = new Redis({
        host: '127.0.0.1',
        port,
        username: 'redis-app',
        password: 's3cret',
        db: 15,
        lazyConnect: true,
      });
      clients.push(user);
      await user.connect();
      assert.equal(await user.set('app-key', 'v'), 'OK');
      assert.equal(await user.get('app-key'), 'v');
      assert.equal(
        await rejection(user.flushall()),
        "NOPERM this user has no permissions to run the 'flushall' command",
      );
      // The connection list shows every user's addresses and names: admins only, as Redis' @admin.
      assert.equal(
        await rejection(user.client('LIST')),
        "NOPERM this user has no permissions to run the 'client|list' command",
      );
      assert.match(String(await user.client('INFO')), /user=redis-app/);
      await user.del('app-key');

      const wrong = new Redis({
        host: '127.0.0.1',
        port,
        username: 'redis-app',
        password: 'nope',
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      clients.push(wrong);
      // ioredis reports a refused AUTH as an `error` event, then gives up on the connection.
      const refused = new Promise<Error>((resolve) => wrong.once('error', resolve));
      await rejection(wrong.connect());
      assert.equal((await refused).message, 'WRONGPASS invalid username-password pair or user is disabled.');
      // No ready check: its INFO would already get NOAUTH.
      const anonymous = new Redis({
        host: '127.0.0.1',
        port,
        lazyConnect: true,
        enableReadyCheck: false,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      clients.push(anonymous);
      await anonymous.connect();
      assert.equal(await rejection(anonymous.get('x')), 'NOAUTH Authentication required.');
    });
  });

  void describe('the same answers as redis-server', () => {
    let doppel: RespClient;
    let real: RespClient;

    before(async () => {
      doppel = await RespClient.open(port, node.adminUser, node.adminPassword);
      assert.equal(await doppel.call('SELECT', 9), 'OK');
      assert.equal(await doppel.call('FLUSHDB'), 'OK');
      real = await redis.client();
      assert.equal(await real.call('SELECT', 9), 'OK');
      assert.equal(await real.call('FLUSHDB'), 'OK');
    });

    after(() => {
      doppel?.close();
      real?.close();
    });

    /** Runs `args` on both servers; returns both replies. */
    async function both(...args: Arg[]): Promise<[Reply, Reply]> {
      return [await doppel.call(...args), await real.call(...args)];
    }

    void it('answers bad commands with the same errors', async () => {
      const setup: Arg[][] = [
        ['SET', 'str', 'text'],
        ['SET', 'num', '10'],
        ['SET', 'big', '9223372036854775807'],
        ['RPUSH', 'list', 'a'],
        ['HSET', 'hash', 'f', 'v'],
        ['SADD', 'set', 'm'],
        ['ZADD', 'zset', '1', 'm'],
      ];
      for (const command of setup) await both(...command);
      const bad: Arg[][] = [
        ['NOSUCHCOMMAND'],
        ['NOSUCHCOMMAND', 'a', 'b'],
        ['GET'],
        ['GET', 'a', 'b'],
        ['SET', 'k'],
        ['SET', 'k', 'v', 'EX'],
        ['SET', 'k', 'v', 'EX', 'abc'],
        ['SET', 'k', 'v', 'EX', '0'],
        ['SET', 'k', 'v', 'EX', '-5'],
        ['SET', 'k', 'v', 'NX', 'XX'],
        ['SET', 'k', 'v', 'EX', '10', 'PX', '10'],
        ['SET', 'k', 'v', 'BOGUS'],
        ['INCR', 'str'],
        ['INCR', 'big'],
        ['INCRBY', 'num', 'x'],
        ['INCRBYFLOAT', 'str', '1'],
        ['INCRBYFLOAT', 'num', 'abc'],
        ['LPUSH', 'str', 'x'],
        ['GET', 'list'],
        ['HGET', 'list', 'f'],
        ['SADD', 'hash', 'x'],
        ['ZADD', 'zset', 'notanumber', 'm'],
        ['ZADD', 'zset', 'NX', 'XX', '1', 'm'],
        ['ZADD', 'zset', 'GT', 'LT', '1', 'm'],
        ['ZADD', 'zset', '1'],
        ['ZINCRBY', 'zset', 'x', 'm'],
        ['HINCRBY', 'hash', 'f', '1'],
        ['HINCRBY', 'hash', 'g', 'x'],
        ['LRANGE', 'list', 'a', '1'],
        ['LINDEX', 'list', 'x'],
        ['LSET', 'nolist', '0', 'x'],
        ['LSET', 'list', '5', 'x'],
        ['EXPIRE', 'str', 'abc'],
        ['EXPIRE', 'str', '10', 'FOO'],
        ['EXPIRE', 'str', 'abc', 'FOO'],
        ['EXPIRE', 'str', '10', 'NX', 'XX'],
        ['EXPIRE', 'str', '10', 'GT', 'LT'],
        ['EXPIRE', 'str', '10', 'NX', 'XX', 'FOO'],
        ['EXPIRE', 'str', '9223372036854775'],
        ['PEXPIRE', 'str', '9223372036854775807'],
        ['EXPIREAT', 'str', '9223372036854775807'],
        ['RENAME', 'nokey', 'x'],
        ['SELECT', '16'],
        ['SELECT', 'x'],
        ['SCAN', 'x'],
        ['SCAN', '0', 'COUNT', '0'],
        ['SCAN', '0', 'MATCH'],
        ['GETRANGE', 'str', 'a', '1'],
        ['SETRANGE', 'str', '-1', 'x'],
        ['MSET', 'a'],
        ['HSET', 'hash', 'f'],
        ['EXEC'],
        ['DISCARD'],
        ['MULTI', 'x'],
      ];
      const differences: string[] = [];
      for (const command of bad) {
        const [ours, theirs] = await both(...command);
        const text = (reply: Reply): string =>
          reply instanceof RespError ? `-${reply.message}` : `(not an error) ${JSON.stringify(reply)}`;
        assert.ok(theirs instanceof RespError, `redis-server accepted ${command.join(' ')}`);
        if (text(ours) !== text(theirs)) {
          differences.push(`${command.join(' ')}\n  doppel: ${text(ours)}\n  redis:  ${text(theirs)}`);
        }
      }
      assert.deepEqual(differences, [], `different errors:\n${differences.join('\n')}`);
    });

    void it('applies EXPIRE with NX, XX, GT and LT (and their combinations) as Redis 7 does', async () => {
      const optionSets = [
        [],
        ['NX'],
        ['XX'],
        ['GT'],
        ['LT'],
        ['XX', 'GT'],
        ['XX', 'LT'],
        ['GT', 'XX'],
        ['LT', 'XX'],
        ['xx', 'lt'],
        ['XX', 'XX'],
        ['LT', 'LT'],
      ];
      // Key states: no key, a key without a TTL, a key with a TTL of 100 s.
      const states = ['missing', 'persistent', 'ttl'] as const;
      const differences: string[] = [];
      for (const options of optionSets) {
        for (const state of states) {
          for (const seconds of ['50', '200', '-1']) {
            await both('DEL', 'e');
            if (state !== 'missing') await both('SET', 'e', 'v');
            if (state === 'ttl') await both('EXPIRE', 'e', '100');
            const command = ['EXPIRE', 'e', seconds, ...options];
            const [ours, theirs] = await both(...command);
            const [ourTtl, theirTtl] = await both('TTL', 'e');
            // TTLs in whole seconds may straddle a second boundary between the two servers.
            const close =
              typeof ourTtl === 'number' && typeof theirTtl === 'number' && Math.abs(ourTtl - theirTtl) <= 1;
            if (JSON.stringify(ours) !== JSON.stringify(theirs) || !close) {
              differences.push(
                `${state}: ${command.join(' ')} → doppel ${JSON.stringify(ours)} ttl ${JSON.stringify(ourTtl)}, ` +
                  `redis ${JSON.stringify(theirs)} ttl ${JSON.stringify(theirTtl)}`,
              );
            }
          }
        }
      }
      assert.deepEqual(differences, [], differences.join('\n'));
    });
  });

  void describe('redis-cli', () => {
    const auth = (): string[] => cliAuth(node);

    void it('runs commands', async () => {
      const ping = await redisCli([...auth(), 'PING']);
      assert.equal(ping.status, 0, ping.stderr);
      assert.equal(ping.stdout, 'PONG\n');
      const set = await redisCli([...auth(), '-n', '14', 'SET', 'cli-key', 'cli value']);
      assert.equal(set.stdout, 'OK\n');
      const get = await redisCli([...auth(), '-n', '14', 'GET', 'cli-key']);
      assert.equal(get.stdout, 'cli value\n');
      const password = await redisCli([
        '-p',
        String(port),
        '--no-auth-warning',
        '-a',
        node.adminPassword,
        '-n',
        '14',
        'DEL',
        'cli-key',
      ]);
      assert.equal(password.stdout, '1\n');
      const denied = await redisCli(['-p', String(port), 'GET', 'cli-key']);
      assert.match(denied.stdout, /NOAUTH Authentication required/);
    });

    void it('mass-inserts with --pipe', async () => {
      const lines: string[] = [];
      const count = 20_000;
      for (let i = 0; i < count; i++) {
        const key = `mass:${i}`;
        const value = `value-${i}`;
        lines.push(`*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$${value.length}\r\n${value}\r\n`);
      }
      const result = await redisCli([...auth(), '-n', '13', '--pipe'], lines.join(''));
      assert.equal(result.status, 0, result.stdout + result.stderr);
      assert.match(result.stdout, new RegExp(`errors: 0, replies: ${count}`));
      const size = await redisCli([...auth(), '-n', '13', 'DBSIZE']);
      assert.equal(size.stdout, `${count}\n`);
      const last = await redisCli([...auth(), '-n', '13', 'GET', `mass:${count - 1}`]);
      assert.equal(last.stdout, `value-${count - 1}\n`);
      await redisCli([...auth(), '-n', '13', 'FLUSHDB']);
    });

    void it('prints INFO', async () => {
      const info = await redisCli([...auth(), 'INFO']);
      assert.equal(info.status, 0, info.stderr);
      for (const section of ['# Server', '# Clients', '# Memory', '# Stats', '# Replication', '# Keyspace']) {
        assert.ok(info.stdout.includes(section), `INFO lacks ${section}:\n${info.stdout}`);
      }
      assert.match(info.stdout, /redis_version:\d+\.\d+\.\d+/);
      assert.match(info.stdout, /role:master/);
      const server = await redisCli([...auth(), 'INFO', 'server']);
      assert.match(server.stdout, /tcp_port:\d+/);
      assert.ok(!server.stdout.includes('# Keyspace'));
    });
  });

  void it('has its peers installed', () => {
    // The hint every missing peer fails with (see before()).
    assert.match(REDIS_INSTALL_HINT, /apt-get install redis-server redis-tools/);
    const version = spawnSync(redisBinary('redis-server'), ['--version'], { encoding: 'utf8' }).stdout;
    assert.match(version, /v=7\./, `the tests compare with Redis 7 (${version.trim()})`);
  });
});

void describe('SHUTDOWN', () => {
  void it('refuses what Redis refuses, and then stops nothing', async () => {
    const node = await DoppelProcess.start();
    try {
      const port = respPort(node);
      const client = await RespClient.open(port, node.adminUser, node.adminPassword);
      assert.equal(errorText(await client.call('SHUTDOWN', 'SAVE', 'NOSAVE')), 'ERR syntax error');
      assert.equal(errorText(await client.call('SHUTDOWN', 'LATER')), 'ERR syntax error');
      // Doppel never waits for its replicas before stopping: there is nothing to abort.
      assert.equal(errorText(await client.call('SHUTDOWN', 'ABORT')), 'ERR No shutdown in progress.');
      assert.equal(await client.call('MULTI'), 'OK');
      assert.equal(errorText(await client.call('SHUTDOWN')), 'ERR Command not allowed inside a transaction');
      assert.match(errorText(await client.call('EXEC')), /^EXECABORT/);
      const anonymous = await RespClient.connect(port);
      assert.match(errorText(await anonymous.call('SHUTDOWN')), /^NOAUTH/);
      anonymous.close();
      assert.equal(await client.call('PING'), 'PONG');
      client.close();
    } finally {
      await node.stop();
    }
  });

  void it('stops the node as SIGTERM does: no reply, exit code 0, every write kept', async () => {
    const dataDir = makeTempDir();
    const node = await DoppelProcess.start({ dataDir });
    try {
      const port = respPort(node);
      const client = await RespClient.open(port, node.adminUser, node.adminPassword);
      assert.equal(await client.call('SET', 'before-shutdown', 'kept'), 'OK');
      client.close();
      const cli = await redisCli([...cliAuth(node), 'SHUTDOWN', 'NOSAVE']);
      // As with redis-server: redis-cli sees the connection close, prints nothing, exits 0.
      assert.equal(cli.status, 0, cli.stderr);
      assert.equal(cli.stdout, '');
      const exited = await Promise.race([node.exited, sleep(15_000, 'still running', { ref: false })]);
      assert.deepEqual(exited, { code: 0, signal: null }, node.output);
      assert.match(node.output, /shutdown requested/);
      const again = await DoppelProcess.start({ dataDir, adminPassword: node.adminPassword });
      try {
        const reader = await RespClient.open(respPort(again), again.adminUser, again.adminPassword);
        assert.equal(await reader.call('GET', 'before-shutdown'), 'kept');
        reader.close();
      } finally {
        await again.stop();
      }
    } finally {
      // Already gone when SHUTDOWN worked.
      await node.stop();
      await removeTempDir(dataDir);
    }
  });
});
