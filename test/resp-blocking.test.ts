/**
 * Blocking pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN,
 * BZPOPMAX, BZMPOP) against a real redis-server 7.0 side by side where they
 * do not wait (served at once, errors, timeouts, inside MULTI, RESP3); then
 * waiting clients on Doppel: served first come first served inside the write
 * that pushed, chains (BLMOVE into a key another client waits on), pipelines
 * held behind a waiting command, CLIENT UNBLOCK, disconnects, a Doppel
 * replica that receives exactly the pops that happened, and REPLICAOF
 * releasing waiting clients with Redis' UNBLOCKED error.
 *
 * Needs Debian's redis-server (`apt-get install redis-server redis-tools`);
 * without it the test fails saying so.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DoppelProcess } from './support/doppel-process.js';
import { field, waitFor } from './support/keyspace-workload.js';
import { RedisPeer } from './support/redis-peer.js';
import { RespClient, RespError, type Arg, type RespMap } from './support/resp-client.js';

/** Runs each command on both servers in turn; the replies must be equal. */
async function sideBySide(redis: RespClient, doppel: RespClient, commands: readonly Arg[][]): Promise<void> {
  for (const args of commands) {
    const [want, got] = [await redis.call(...args), await doppel.call(...args)];
    assert.deepEqual(got, want, args.join(' '));
  }
}

function respPort(node: DoppelProcess): number {
  return Number(node.respAddress?.split(':').at(-1));
}

/** Whether `promise` settled within `ms`. */
async function settles(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return await Promise.race([promise.then(() => true), sleep(ms).then(() => false)]);
}

void describe('blocking pops', { timeout: 90_000 }, () => {
  let redis: RedisPeer;
  let doppel: DoppelProcess;
  const opened: RespClient[] = [];

  async function client(node = doppel): Promise<RespClient> {
    const c = await RespClient.open(respPort(node), node.adminUser, node.adminPassword);
    opened.push(c);
    return c;
  }

  /** Waits until `node` counts `n` blocked clients (INFO clients). */
  async function blockedClients(n: number, node = doppel): Promise<void> {
    const c = await client(node);
    await waitFor(
      `${n} blocked clients`,
      async () => field(await c.call('INFO', 'clients'), 'blocked_clients') === String(n),
    );
    c.close();
  }

  before(async () => {
    redis = await RedisPeer.start();
    doppel = await DoppelProcess.start();
  });

  after(async () => {
    for (const c of opened) c.close();
    await doppel?.stop();
    await redis?.stop();
  });

  void it('serves at once, refuses and times out as redis-server does (RESP2, RESP3, MULTI)', async () => {
    const r = await redis.client();
    opened.push(r);
    const d = await client();
    await sideBySide(r, d, [
      ['RPUSH', 'l', 'a', 'b', 'c'],
      ['ZADD', 'z', 1, 'm', 2, 'n', 3, 'o', 4, 'p'],
      ['SET', 's', 'x'],
      ['BLPOP', 'missing', 'l', 0],
      ['BRPOP', 'l', 'missing', 0],
      ['BLMOVE', 'l', 'l2', 'LEFT', 'RIGHT', 0],
      ['BRPOPLPUSH', 'l2', 'l3', 0],
      ['RPUSH', 'l', 'd', 'e'],
      ['BLMPOP', 0, 2, 'l3', 'l', 'LEFT', 'COUNT', 5],
      ['BLMPOP', 0, 2, 'missing', 'l', 'RIGHT'],
      ['BZPOPMIN', 'missing', 'z', 0],
      ['BZPOPMAX', 'z', 0],
      ['BZMPOP', 0, 1, 'z', 'MIN', 'COUNT', 1],
      ['BZMPOP', 0.5, 2, 'missing', 'z', 'MAX'],
      ['EXISTS', 'l', 'l2', 'l3', 'z'],
      // Errors: the timeout, the type of any key tried, the arguments.
      ['BLPOP', 'l', 'x'],
      ['BLPOP', 'l', '0.5s'],
      ['BLPOP', 'l', -1],
      ['BLPOP', 'l', '1e20'],
      ['BLPOP', 'l', 'inf'],
      ['BLPOP', 'l', 'nan'],
      ['BLPOP', 's', 0.01],
      ['BLPOP', 'missing', 's', 0.01],
      ['BLMOVE', 's', 'l', 'LEFT', 'RIGHT', 0.01],
      ['BLMOVE', 'l', 'l', 'UP', 'RIGHT', 0.01],
      ['BZPOPMIN', 's', 0.01],
      ['BLMPOP', 0.01, 0, 'l', 'LEFT'],
      ['BLMPOP', 0.01, 1, 'l', 'MIDDLE'],
      ['BLMPOP', 0.01, 3, 'l', 'LEFT'],
      ['BZMPOP', 0.01, 1, 'z', 'MIN', 'COUNT', 0],
      ['BZMPOP', 'x', 1, 'z', 'MIN'],
      ['BLPOP', 'l'],
      // Nothing arrives: the null reply after the timeout.
      ['BLPOP', 'missing', 0.05],
      ['BRPOPLPUSH', 'missing', 'l', 0.05],
      ['BLMOVE', 'missing', 's', 'LEFT', 'LEFT', 0.05],
      ['BZPOPMAX', 'missing', 0.05],
      ['BLMPOP', 0.05, 1, 'missing', 'LEFT'],
      ['BZMPOP', 0.05, 1, 'missing', 'MAX', 'COUNT', 3],
      // Inside MULTI nothing waits.
      ['MULTI'],
      ['BLPOP', 'missing', 0],
      ['BLMOVE', 'missing', 'x', 'LEFT', 'LEFT', 0],
      ['BZPOPMAX', 'missing', 0],
      ['BLMPOP', 0, 1, 'missing', 'LEFT'],
      ['RPUSH', 'q', 1, 2],
      ['BLPOP', 'q', 0],
      ['BRPOPLPUSH', 'q', 'q2', 0],
      ['BLPOP', 's', 0],
      ['EXEC'],
      ['LRANGE', 'q2', 0, -1],
    ]);
    for (const c of [r, d]) assert.equal(((await c.call('HELLO', '3')) as RespMap).get('proto'), 3);
    await sideBySide(r, d, [
      ['ZADD', 'z3', 1.5, 'a', 2.5, 'b'],
      ['BZPOPMIN', 'z3', 0],
      ['BZMPOP', 0, 1, 'z3', 'MAX'],
      ['BLPOP', 'missing', 0.05],
      ['BZPOPMIN', 'missing', 0.05],
    ]);
  });

  void it('waiting clients are served in arrival order, inside the write that pushed', async () => {
    const [a, b, pusher] = [await client(), await client(), await client()];
    const first = a.call('BLPOP', 'queue', 0);
    await blockedClients(1);
    const second = b.call('BLPOP', 'other', 'queue', 0);
    await blockedClients(2);
    const list = (await pusher.call('CLIENT', 'LIST')) as string;
    assert.equal(list.split('\n').filter((line) => / flags=b /.test(line)).length, 2, list);
    // One RPUSH of three: the first waiter gets the first element, the second the next, one stays.
    assert.equal(await pusher.call('RPUSH', 'queue', 'x', 'y', 'z'), 3);
    assert.deepEqual(await first, ['queue', 'x']);
    assert.deepEqual(await second, ['queue', 'y']);
    assert.deepEqual(await pusher.call('LRANGE', 'queue', 0, -1), ['z']);
    await blockedClients(0);

    // A BLMOVE served by a push feeds a BLPOP waiting on its destination, in the same write.
    const mover = a.call('BLMOVE', 'jobs', 'working', 'RIGHT', 'LEFT', 0);
    await blockedClients(1);
    const watcher = b.call('BLPOP', 'working', 0);
    await blockedClients(2);
    assert.equal(await pusher.call('LPUSH', 'jobs', 'job-1'), 1);
    assert.equal(await mover, 'job-1');
    assert.deepEqual(await watcher, ['working', 'job-1']);
    assert.equal(await pusher.call('EXISTS', 'jobs', 'working'), 0);

    // Sorted sets, and BLMPOP served from the second of its keys.
    const zpop = a.call('BZPOPMAX', 'scores', 0);
    const mpop = b.call('BLMPOP', 0, 2, 'first', 'second', 'LEFT', 'COUNT', 2);
    await blockedClients(2);
    assert.equal(await pusher.call('ZADD', 'scores', 5, 'low', 9, 'high'), 2);
    assert.deepEqual(await zpop, ['scores', 'high', '9']);
    assert.equal(await pusher.call('RPUSH', 'second', 's1', 's2', 's3'), 3);
    assert.deepEqual(await mpop, ['second', ['s1', 's2']]);

    // A push to a key of another type, or an empty MULTI, does not wake anyone wrongly.
    const waiting = a.call('BLPOP', 'typed', 0);
    await blockedClients(1);
    assert.equal(await pusher.call('SADD', 'typed', 'm'), 1);
    assert.equal(await settles(waiting, 200), false);
    assert.equal(await pusher.call('DEL', 'typed'), 1);
    assert.equal(await pusher.call('RPUSH', 'typed', 'v'), 1);
    assert.deepEqual(await waiting, ['typed', 'v']);
  });

  void it('holds the commands pipelined behind a waiting one, and times out on time', async () => {
    const [a, pusher] = [await client(), await client()];
    const replies = a.pipeline([['BLPOP', 'held', 0], ['PING']]);
    await blockedClients(1);
    assert.equal(await settles(replies, 150), false);
    assert.equal(await pusher.call('RPUSH', 'held', 'v'), 1);
    assert.deepEqual(await replies, [['held', 'v'], 'PONG']);

    const started = performance.now();
    assert.equal(await a.call('BRPOP', 'never', 0.3), null);
    const waited = performance.now() - started;
    assert.ok(waited >= 280 && waited < 2000, `waited ${waited} ms`);
  });

  void it('CLIENT UNBLOCK and a disconnect end a wait without taking anything', async () => {
    const [a, admin] = [await client(), await client()];
    const id = (await a.call('CLIENT', 'ID')) as number;
    const timedOut = a.call('BLPOP', 'u', 0);
    await blockedClients(1);
    assert.equal(await admin.call('CLIENT', 'UNBLOCK', id), 1);
    assert.equal(await timedOut, null);
    const failed = a.call('BZPOPMIN', 'u', 0);
    await blockedClients(1);
    assert.equal(await admin.call('CLIENT', 'UNBLOCK', id, 'ERROR'), 1);
    const error = await failed;
    assert.ok(
      error instanceof RespError && error.message === 'UNBLOCKED client unblocked via CLIENT UNBLOCK',
    );
    assert.equal(await admin.call('CLIENT', 'UNBLOCK', id), 0);
    const bad = await admin.call('CLIENT', 'UNBLOCK', id, 'LATER');
    assert.ok(
      bad instanceof RespError && bad.message === 'ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR',
    );

    const gone = await client();
    void gone.call('BLPOP', 'left-behind', 0).catch(() => undefined);
    await blockedClients(1);
    gone.close();
    await blockedClients(0);
    assert.equal(await admin.call('RPUSH', 'left-behind', 'kept'), 1);
    assert.deepEqual(await admin.call('LRANGE', 'left-behind', 0, -1), ['kept']);
  });

  void it('a Doppel replica receives the pops that served waiting clients; REPLICAOF releases waiters', async () => {
    // The primary's admin: a replica takes over its primary's users in the full sync.
    const replica = await DoppelProcess.start({
      adminUser: doppel.adminUser,
      adminPassword: doppel.adminPassword,
    });
    try {
      const control = await client(replica);
      assert.equal(await control.call('CONFIG', 'SET', 'masterauth', doppel.adminPassword), 'OK');
      assert.equal(await control.call('CONFIG', 'SET', 'masteruser', doppel.adminUser), 'OK');
      assert.equal(await control.call('REPLICAOF', '127.0.0.1', respPort(doppel)), 'OK');
      await waitFor(
        'the link to come up',
        async () => field(await control.call('INFO', 'replication'), 'master_link_status') === 'up',
      );
      const refused = await control.call('BLPOP', 'anything', 0);
      assert.ok(refused instanceof RespError && refused.message.startsWith('READONLY'));

      const [a, b, pusher] = [await client(), await client(), await client()];
      const moved = a.call('BLMOVE', 'r-src', 'r-dst', 'LEFT', 'RIGHT', 0);
      const popped = b.call('BZPOPMIN', 'r-z', 0);
      await blockedClients(2);
      assert.equal(await pusher.call('RPUSH', 'r-src', 'one', 'two'), 2);
      assert.equal(await pusher.call('ZADD', 'r-z', 1, 'a', 2, 'b'), 2);
      assert.equal(await moved, 'one');
      assert.deepEqual(await popped, ['r-z', 'a', '1']);
      assert.equal(await pusher.call('SET', 'r-marker', 'done'), 'OK');
      await waitFor(
        'the replica to catch up',
        async () => (await control.call('GET', 'r-marker')) === 'done',
      );
      for (const [args, want] of [
        [['LRANGE', 'r-src', 0, -1], ['two']],
        [['LRANGE', 'r-dst', 0, -1], ['one']],
        [
          ['ZRANGE', 'r-z', 0, -1, 'WITHSCORES'],
          ['b', '2'],
        ],
      ] as const) {
        assert.deepEqual(await control.call(...args), want, args.join(' '));
      }

      // Promoted, a client waits there; following a primary again releases it with Redis' error.
      assert.equal(await control.call('REPLICAOF', 'NO', 'ONE'), 'OK');
      const waiter = await client(replica);
      const released = waiter.call('BLPOP', 'never', 0);
      await blockedClients(1, replica);
      assert.equal(await control.call('REPLICAOF', '127.0.0.1', respPort(doppel)), 'OK');
      const error = await released;
      assert.ok(
        error instanceof RespError &&
          error.message ===
            'UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)',
        JSON.stringify(error),
      );
      assert.equal(await control.call('REPLICAOF', 'NO', 'ONE'), 'OK');
    } finally {
      await replica.stop();
    }
  });
});
