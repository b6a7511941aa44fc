/**
 * Doppel as a replica of a real redis-server 7.0, end to end with real
 * processes: a full sync of 100,000 keys of every type (with TTLs) while a
 * writer keeps writing, disk-based and diskless; a killed link that resumes
 * with a partial resync (+CONTINUE, no second full copy); and REPLICAOF NO
 * ONE. After each step every key's type, value and TTL must match Redis.
 *
 * Needs Debian's redis-server (`apt-get install redis-server redis-tools`);
 * without it the test fails saying so.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DoppelProcess } from './support/doppel-process.js';
import { int, prng, type Rng } from './support/prng.js';
import { RedisPeer } from './support/redis-peer.js';
import { RespClient, RespError, type Arg, type Reply } from './support/resp-client.js';

const KEYS = 100_000;
const BATCH = 2000;

/** The commands that create key `i` (every type, some big enough to leave the compact encodings). */
function keyCommands(i: number): Arg[][] {
  const ttl = i % 3 === 0 ? 600 + (i % 1000) : 0;
  const big = i % 500 === 7;
  const kind = i % 5;
  const out: Arg[][] = [];
  const key = `k:${kind}:${i}`;
  switch (kind) {
    case 0: {
      const value = big ? `lzf-${'abcdef'.repeat(1000)}-${i}` : i % 4 === 0 ? String(i * 7) : `value-${i}`;
      out.push(ttl === 0 ? ['SET', key, value] : ['SET', key, value, 'EX', ttl]);
      break;
    }
    case 1: {
      const n = big ? 300 : 3 + (i % 3);
      out.push([
        'RPUSH',
        key,
        ...Array.from({ length: n }, (_, j) => (j === 5 && big ? 'L'.repeat(9000) : `e${j}-${i}`)),
      ]);
      break;
    }
    case 2: {
      const n = big ? 700 : 4;
      out.push([
        'SADD',
        key,
        ...Array.from({ length: n }, (_, j) => (i % 2 === 0 ? String(j * 1000 + i) : `m${j}`)),
      ]);
      break;
    }
    case 3: {
      const n = big ? 600 : 3;
      const args: Arg[] = [];
      for (let j = 0; j < n; j++) args.push(`f${j}`, j === 1 && i % 7 === 0 ? 'V'.repeat(100) : `v${j}-${i}`);
      out.push(['HSET', key, ...args]);
      break;
    }
    default: {
      const n = big ? 200 : 3;
      const args: Arg[] = [];
      for (let j = 0; j < n; j++) args.push(String(j === 0 ? i : (i % 97) / (j + 1)), `z${j}`);
      out.push(['ZADD', key, ...args]);
    }
  }
  if (ttl !== 0 && kind !== 0) out.push(['EXPIRE', key, ttl]);
  return out;
}

async function load(redis: RedisPeer): Promise<void> {
  const client = await redis.client();
  try {
    let batch: Arg[][] = [];
    for (let i = 0; i < KEYS; i++) {
      const db = i % 10 === 0 ? 1 : 0;
      batch.push(['SELECT', db], ...keyCommands(i));
      if (batch.length >= BATCH || i === KEYS - 1) {
        const replies = await client.pipeline(batch);
        const failed = replies.find((r) => r instanceof RespError);
        assert.equal(failed, undefined, `loading failed: ${String(failed)}`);
        batch = [];
      }
    }
  } finally {
    client.close();
  }
}

/** Random writes of every kind Redis propagates, over the loaded keys, until stopped. */
class Writer {
  #stopped = false;
  readonly done: Promise<number>;

  constructor(redis: RedisPeer, seed: number) {
    this.done = this.#run(redis, prng(seed));
  }

  async stop(): Promise<number> {
    this.#stopped = true;
    return this.done;
  }

  async #run(redis: RedisPeer, rng: Rng): Promise<number> {
    const client = await redis.client();
    let written = 0;
    try {
      while (!this.#stopped) {
        const batch: Arg[][] = [];
        for (let n = 0; n < 100; n++) batch.push(...randomWrite(rng));
        await client.pipeline(batch);
        written += batch.length;
        await sleep(2);
      }
    } finally {
      client.close();
    }
    return written;
  }
}

function randomWrite(rng: Rng): Arg[][] {
  const i = int(rng, KEYS);
  const db = i % 10 === 0 ? 1 : 0;
  const kind = i % 5;
  const key = `k:${kind}:${i}`;
  const select: Arg[] = ['SELECT', db];
  const pick = int(rng, 20);
  switch (pick) {
    case 0:
      return [select, ['DEL', key]];
    case 1:
      return [select, ['EXPIRE', key, 300 + int(rng, 300)]];
    case 2:
      return [select, ['PERSIST', key]];
    case 3:
      return [select, ['SET', `short:${int(rng, 500)}`, 'x', 'PX', 300 + int(rng, 700)]];
    case 4:
      return [
        select,
        ['MULTI'],
        ['INCR', `counter:${int(rng, 50)}`],
        ['LPUSH', `mlist:${int(rng, 50)}`, 'a', 'b'],
        ['EXEC'],
      ];
    case 5:
      return [select, ['INCRBYFLOAT', `float:${int(rng, 50)}`, '1.5']];
    case 6:
      return [select, ['RENAME', key, `renamed:${i}`]];
    case 7:
      return [select, ['GETDEL', key]];
    default:
      break;
  }
  switch (kind) {
    case 0:
      return [
        select,
        pick % 2 === 0 ? ['APPEND', key, '+'] : ['SET', key, `new-${int(rng, 1e6)}`, 'KEEPTTL'],
      ];
    case 1:
      return [
        select,
        pick % 3 === 0 ? ['LPOP', key] : pick % 3 === 1 ? ['RPUSH', key, 'pushed'] : ['LTRIM', key, 1, -1],
      ];
    case 2:
      return [
        select,
        pick % 3 === 0
          ? ['SPOP', key]
          : pick % 3 === 1
            ? ['SADD', key, `n${int(rng, 9)}`]
            : ['SREM', key, 'm1'],
      ];
    case 3:
      return [
        select,
        pick % 3 === 0
          ? ['HINCRBY', key, 'count', 1]
          : pick % 3 === 1
            ? ['HSET', key, 'f9', 'x']
            : ['HDEL', key, 'f0'],
      ];
    default:
      return [select, pick % 2 === 0 ? ['ZINCRBY', key, 2.5, 'z1'] : ['ZREM', key, 'z0']];
  }
}

async function scanAll(client: RespClient, db: number): Promise<string[]> {
  await client.call('SELECT', db);
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = (await client.call('SCAN', cursor, 'COUNT', 5000)) as [string, string[]];
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys.sort();
}

/** type, value (canonical), PEXPIRETIME of each key. */
async function describeKeys(
  client: RespClient,
  db: number,
  keys: string[],
): Promise<[string, string, number][]> {
  await client.call('SELECT', db);
  const out: [string, string, number][] = [];
  for (let at = 0; at < keys.length; at += 1000) {
    const slice = keys.slice(at, at + 1000);
    const types = (await client.pipeline(slice.map((k) => ['TYPE', k]))) as string[];
    const reads: Arg[][] = [];
    slice.forEach((key, j) => {
      const read: Record<string, Arg[]> = {
        string: ['GET', key],
        list: ['LRANGE', key, 0, -1],
        set: ['SMEMBERS', key],
        hash: ['HGETALL', key],
        zset: ['ZRANGE', key, 0, -1, 'WITHSCORES'],
      };
      reads.push(read[types[j]] ?? ['TYPE', key], ['PEXPIRETIME', key]);
    });
    const replies = await client.pipeline(reads);
    slice.forEach((_, j) => {
      const value = replies[2 * j];
      const type = types[j];
      let text: string;
      if (type === 'set') text = JSON.stringify([...(value as string[])].sort());
      else if (type === 'hash') {
        const pairs = value as string[];
        const fields: string[] = [];
        for (let p = 0; p < pairs.length; p += 2) fields.push(`${pairs[p]}=${pairs[p + 1]}`);
        text = JSON.stringify(fields.sort());
      } else if (type === 'zset') {
        // Compared as numbers: Redis 7.0 prints %.17g, Doppel the shortest exact form (same double).
        const pairs = value as string[];
        const members: string[] = [];
        for (let p = 0; p < pairs.length; p += 2) members.push(`${pairs[p]}=${Number(pairs[p + 1])}`);
        text = JSON.stringify(members);
      } else text = JSON.stringify(value);
      out.push([type, text, replies[2 * j + 1] as number]);
    });
  }
  return out;
}

/** Waits until Doppel applied everything Redis sent (equal offsets), then compares every key of both dbs. */
async function assertSameData(redis: RespClient, doppel: RespClient): Promise<number> {
  // The writer's short TTLs (under 1 s) run out first, so both sides agree on them.
  await sleep(1100);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const master = field(await redis.call('INFO', 'replication'), 'master_repl_offset');
    const replica = field(await doppel.call('INFO', 'replication'), 'slave_repl_offset');
    if (master === replica) break;
    if (Date.now() > deadline)
      assert.fail(`Doppel did not catch up: redis at ${master}, doppel at ${replica}`);
    await sleep(50);
  }
  let compared = 0;
  for (const db of [0, 1]) {
    const [redisKeys, doppelKeys] = await Promise.all([scanAll(redis, db), scanAll(doppel, db)]);
    const doppelSet = new Set(doppelKeys);
    const redisSet = new Set(redisKeys);
    const missing = redisKeys.filter((k) => !doppelSet.has(k));
    const extra = doppelKeys.filter((k) => !redisSet.has(k));
    assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, `db ${db}: the same keys`);
    const [want, got] = await Promise.all([
      describeKeys(redis, db, redisKeys),
      describeKeys(doppel, db, redisKeys),
    ]);
    for (let i = 0; i < want.length; i++) {
      const [type, value, ttl] = want[i];
      const [gotType, gotValue, gotTtl] = got[i];
      const key = redisKeys[i];
      assert.equal(gotType, type, `db ${db} ${key}: type`);
      assert.equal(gotValue, value, `db ${db} ${key}: value`);
      // Absolute expiry times: the primary sends them as PEXPIREAT/PXAT ms, so they match exactly.
      assert.equal(gotTtl, ttl, `db ${db} ${key}: expire time`);
    }
    compared += want.length;
  }
  return compared;
}

function field(info: Reply, name: string): string {
  const match = new RegExp(`^${name}:(.*)$`, 'm').exec(typeof info === 'string' ? info : '');
  return match?.[1]?.trim() ?? '';
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

void describe('Doppel as a replica of redis-server 7.0', { timeout: 120_000 }, () => {
  let redis: RedisPeer;
  let doppel: DoppelProcess;
  let r: RespClient;
  let d: RespClient;

  before(async () => {
    redis = await RedisPeer.start(['--repl-diskless-sync', 'no']);
    doppel = await DoppelProcess.start();
    const port = Number(doppel.respAddress?.split(':').at(-1));
    r = await redis.client();
    d = await RespClient.open(port, doppel.adminUser, doppel.adminPassword);
    await load(redis);
  });

  after(async () => {
    r?.close();
    d?.close();
    await doppel?.stop();
    await redis?.stop();
  });

  void it('full sync (disk-based RDB) while a writer writes, then the stream: every key matches', async () => {
    const writer = new Writer(redis, 1);
    await sleep(200);
    assert.equal(await d.call('REPLICAOF', '127.0.0.1', redis.port), 'OK');
    assert.equal(
      await d.call('REPLICAOF', '127.0.0.1', redis.port),
      'OK Already connected to specified master',
    );
    await waitFor(
      'the link to come up',
      async () => field(await d.call('INFO', 'replication'), 'master_link_status') === 'up',
    );
    await sleep(1000);
    const written = await writer.stop();
    assert.ok(written > 1000, `the writer wrote during the sync (${written})`);
    const role = (await d.call('ROLE')) as Reply[];
    assert.deepEqual(role.slice(0, 4), ['slave', '127.0.0.1', redis.port, 'connected']);
    const refused = await d.call('SET', 'mine', '1');
    assert.ok(
      refused instanceof RespError &&
        refused.message === "READONLY You can't write against a read only replica.",
    );
    const compared = await assertSameData(r, d);
    assert.ok(compared > KEYS * 0.9, `compared ${compared} keys`);
    assert.match(doppel.output, /redis full sync loaded/);
  });

  void it('a killed link resumes with a partial resync (+CONTINUE) and converges', async () => {
    const before = await redis.info('stats');
    const writer = new Writer(redis, 2);
    await sleep(300);
    assert.equal(await r.call('CLIENT', 'KILL', 'TYPE', 'replica'), 1);
    await sleep(500);
    await waitFor(
      'the link to come back',
      async () => field(await d.call('INFO', 'replication'), 'master_link_status') === 'up',
    );
    await sleep(500);
    await writer.stop();
    const after = await redis.info('stats');
    assert.equal(
      Number(after['sync_partial_ok']),
      Number(before['sync_partial_ok']) + 1,
      'one partial resync',
    );
    assert.equal(after['sync_full'], before['sync_full'], 'no second full copy');
    await assertSameData(r, d);
  });

  void it('diskless full sync ($EOF: framing) replaces the keyspace atomically', async () => {
    assert.equal(await r.call('CONFIG', 'SET', 'repl-diskless-sync', 'yes'), 'OK');
    assert.equal(await r.call('CONFIG', 'SET', 'repl-diskless-sync-delay', '0'), 'OK');
    const fullBefore = Number((await redis.info('stats'))['sync_full']);
    // Leaving and rejoining makes a fresh full sync (a promoted node's history is its own).
    assert.equal(await d.call('REPLICAOF', 'NO', 'ONE'), 'OK');
    const port = Number(doppel.respAddress?.split(':').at(-1));
    const watcher = await RespClient.open(port, doppel.adminUser, doppel.adminPassword);
    let smallest = Infinity;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        smallest = Math.min(smallest, Number(await watcher.call('DBSIZE')));
        await sleep(1);
      }
    })();
    const writer = new Writer(redis, 3);
    assert.equal(await d.call('REPLICAOF', '127.0.0.1', redis.port), 'OK');
    await waitFor(
      'a second full sync',
      async () => Number((await redis.info('stats'))['sync_full']) === fullBefore + 1,
    );
    await waitFor(
      'the link to come up',
      async () => field(await d.call('INFO', 'replication'), 'master_link_status') === 'up',
    );
    await sleep(500);
    await writer.stop();
    watching = false;
    await watch;
    watcher.close();
    assert.ok(
      smallest > KEYS * 0.85,
      `readers never saw an empty or half-loaded db 0 (smallest DBSIZE ${smallest})`,
    );
    assert.match(redis.log, /replicas sockets/, 'Redis streamed the RDB to the socket (diskless)');
    await assertSameData(r, d);
  });

  void it('REPLICAOF NO ONE promotes: data kept, writable, role master', async () => {
    const offset = Number(field(await d.call('INFO', 'replication'), 'slave_repl_offset'));
    const keys = Number(await d.call('DBSIZE'));
    assert.equal(await d.call('REPLICAOF', 'NO', 'ONE'), 'OK');
    assert.equal(await d.call('SET', 'after-promotion', 'yes'), 'OK');
    assert.equal(await d.call('GET', 'after-promotion'), 'yes');
    assert.equal(Number(await d.call('DBSIZE')), keys + 1);
    const info = await d.call('INFO', 'replication');
    assert.equal(field(info, 'role'), 'master');
    assert.equal(field(info, 'second_repl_offset'), String(offset + 1));
    assert.deepEqual(await d.call('ROLE'), ['master', offset, []]);
  });
});
