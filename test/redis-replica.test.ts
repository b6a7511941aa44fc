/**
 * Doppel as a replica of a real redis-server 7.0, end to end with real
 * processes: a full sync of 100,000 keys of every type (with TTLs) while a
 * writer keeps writing, disk-based and diskless; a killed link, and a replica
 * killed with -9 and restarted, that resume with a partial resync (+CONTINUE,
 * no second full copy); a Doppel replica chained from the node; REPLICAOF
 * NO ONE; and full syncs of 1.5M keys, which load for seconds while the node
 * answers: promoted, stopped, or cut off mid-transfer during the load. After
 * each step every key's type, value and TTL must match Redis.
 *
 * Needs Debian's redis-server (`apt-get install redis-server redis-tools`);
 * without it the test fails saying so.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DoppelProcess, removeTempDir } from './support/doppel-process.js';
import { FaultProxy } from './support/fault-proxy.js';
import { assertSameKeyspace, field, KEYS, loadKeys, waitFor, Writer } from './support/keyspace-workload.js';
import { RedisPeer } from './support/redis-peer.js';
import { RespClient, RespError, type Reply } from './support/resp-client.js';

/** Where Doppel spools a Redis primary's RDB (in its data directory) until it is loaded. */
const RDB_SPOOL = 'replica-sync.rdb';

/** A RESP connection to `doppel`, authenticated as its admin. */
function adminClient(doppel: DoppelProcess): Promise<RespClient> {
  return RespClient.open(
    Number(doppel.respAddress?.split(':').at(-1)),
    doppel.adminUser,
    doppel.adminPassword,
  );
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
  return assertSameKeyspace(redis, doppel);
}

void describe('Doppel as a replica of redis-server 7.0', { timeout: 120_000 }, () => {
  let redis: RedisPeer;
  let doppel: DoppelProcess;
  /** Data directories of nodes restarted here (the restarted process does not own its directory). */
  const restartedDirs: string[] = [];
  let r: RespClient;
  let d: RespClient;

  /** Starts the killed replica again on its data directory, as the same admin. */
  async function restartDoppel(): Promise<void> {
    const restarted = await DoppelProcess.start({
      dataDir: doppel.dataDir,
      adminPassword: doppel.adminPassword,
    });
    restartedDirs.push(doppel.dataDir);
    doppel = restarted;
    d = await adminClient(doppel);
  }

  before(async () => {
    // A backlog that outlasts a restart of Doppel under the writer (Redis' default, 1 MB,
    // holds well under a second of it): the kill -9 test continues from it.
    redis = await RedisPeer.start(['--repl-diskless-sync', 'no', '--repl-backlog-size', '64mb']);
    doppel = await DoppelProcess.start();
    r = await redis.client();
    d = await adminClient(doppel);
    await loadKeys(await redis.client());
  });

  after(async () => {
    r?.close();
    d?.close();
    await doppel?.stop();
    await redis?.stop();
    for (const dir of restartedDirs) await removeTempDir(dir);
  });

  void it('full sync (disk-based RDB) while a writer writes, then the stream: every key matches', async () => {
    const writer = new Writer(() => redis.client(), 1);
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
    assert.ok(!existsSync(join(doppel.dataDir, RDB_SPOOL)), 'the spooled RDB is removed once loaded');
    // Redis announced its key count in the RDB: every key of it was read, and the
    // control plane and /metrics say so.
    const rows = (await doppel.request<{ replications: Record<string, unknown>[] }>('/_doppel/replications'))
      .json.replications;
    const link = rows.find((row) => row['id'] === `primary:127.0.0.1:${redis.port}`);
    const last = (link?.['details'] as Record<string, unknown> | undefined)?.['last_full_sync'] as
      { keys: number; skipped_keys: number; announced_keys: number | null } | undefined;
    assert.ok(last !== undefined && last.keys >= KEYS, `last_full_sync: ${JSON.stringify(last)}`);
    assert.deepEqual([last.announced_keys, last.skipped_keys], [last.keys, 0]);
    // Every command the writer sent (LMOVE, LINSERT, SMOVE, ZREMRANGEBYSCORE … included) ran here.
    assert.equal((link?.['counters'] as Record<string, unknown> | undefined)?.['command_errors'], 0);
    assert.match(
      (await doppel.request('/metrics')).text,
      /\ndoppel_replica_full_sync_unread_keys\{primary="127\.0\.0\.1:\d+"\} 0\n/,
    );
  });

  void it('a Doppel replica of the node copies the keyspace the node loaded from Redis', async () => {
    // The load went into the node's second set of keyspace tables; the node's snapshot sends
    // whichever set is live.
    const chained = await DoppelProcess.start({
      adminPassword: doppel.adminPassword,
      args: ['--masterauth', doppel.adminPassword],
    });
    const c = await adminClient(chained);
    try {
      assert.equal(
        await c.call('REPLICAOF', '127.0.0.1', Number(doppel.respAddress?.split(':').at(-1))),
        'OK',
      );
      const keys = Number(await d.call('DBSIZE'));
      await waitFor(
        'the chained replica to copy every key',
        async () => Number(await c.call('DBSIZE')) === keys,
      );
      const compared = await assertSameKeyspace(d, c);
      assert.ok(compared > KEYS * 0.9, `compared ${compared} keys`);
    } finally {
      c.close();
      await chained.stop();
    }
  });

  /** Once the link is back up: Redis counted one more partial resync and no full one, and (the writer stopped) every key matches. */
  async function assertResumed(before: Record<string, string>, writer: Writer): Promise<void> {
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
  }

  void it('a killed link resumes with a partial resync (+CONTINUE) and converges', async () => {
    const before = await redis.info('stats');
    const writer = new Writer(() => redis.client(), 2);
    await sleep(300);
    assert.equal(await r.call('CLIENT', 'KILL', 'TYPE', 'replica'), 1);
    await sleep(500);
    await assertResumed(before, writer);
  });

  void it('kill -9 of the replica while the primary writes: restarted, it continues (+CONTINUE), no second full copy', async () => {
    const before = await redis.info('stats');
    const writer = new Writer(() => redis.client(), 4);
    await sleep(500);
    d.close();
    await doppel.kill('SIGKILL');
    await sleep(300);
    // The same data directory and admin: the node follows the same primary again.
    await restartDoppel();
    await assertResumed(before, writer);
  });

  void it('restarted, a replica continues the stream in the database the primary had selected', async () => {
    // Redis sends SELECT only when the database changes: the command after the restart
    // comes without one and belongs to database 1.
    const writer = await redis.client();
    try {
      assert.equal(await writer.call('SELECT', 1), 'OK');
      assert.equal(await writer.call('SET', 'selected-before', 'one'), 'OK');
      await waitFor('the write on the replica', async () => {
        await d.call('SELECT', 1);
        return (await d.call('GET', 'selected-before')) === 'one';
      });
      d.close();
      await doppel.kill('SIGKILL');
      assert.equal(await writer.call('SET', 'selected-after', 'one'), 'OK');
      await restartDoppel();
      assert.equal(await d.call('SELECT', 1), 'OK');
      await waitFor(
        'the write made while it was down',
        async () => (await d.call('GET', 'selected-after')) === 'one',
      );
      assert.equal(await d.call('SELECT', 0), 'OK');
      assert.equal(await d.call('EXISTS', 'selected-after'), 0, 'not applied to database 0');
      assert.equal(await writer.call('DEL', 'selected-before', 'selected-after'), 2);
    } finally {
      writer.close();
    }
  });

  void it('diskless full sync ($EOF: framing) replaces the keyspace atomically', async () => {
    assert.equal(await r.call('CONFIG', 'SET', 'repl-diskless-sync', 'yes'), 'OK');
    assert.equal(await r.call('CONFIG', 'SET', 'repl-diskless-sync-delay', '0'), 'OK');
    const fullBefore = Number((await redis.info('stats'))['sync_full']);
    // The writers of the earlier tests deleted and expired some keys: the size to keep is this one.
    const keysBefore = Number(await d.call('DBSIZE'));
    // Leaving and rejoining makes a fresh full sync (a promoted node's history is its own).
    assert.equal(await d.call('REPLICAOF', 'NO', 'ONE'), 'OK');
    const watcher = await adminClient(doppel);
    let smallest = Infinity;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        smallest = Math.min(smallest, Number(await watcher.call('DBSIZE')));
        await sleep(1);
      }
    })();
    const writer = new Writer(() => redis.client(), 3);
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
      smallest > keysBefore * 0.85,
      `readers never saw an empty or half-loaded db 0 (smallest DBSIZE ${smallest})`,
    );
    assert.match(redis.log, /replicas sockets/, 'Redis streamed the RDB to the socket (diskless)');
    assert.ok(!existsSync(join(doppel.dataDir, RDB_SPOOL)), 'the spooled RDB is removed once loaded');
    await assertSameData(r, d);
  });

  void it("a command of the primary's stream that Doppel cannot run is counted and shown", async () => {
    // Streams are a type Doppel does not have.
    await r.call('XADD', 'events', '*', 'field', 'value');
    await r.call('DEL', 'events');
    // Functions are server-side code, not data: skipped, not counted.
    const library = "#!lua name=lib\nredis.register_function('one', function() return 1 end)";
    assert.equal(await r.call('FUNCTION', 'LOAD', library), 'lib');
    assert.equal(await r.call('FUNCTION', 'DELETE', 'lib'), 'OK');
    await assertSameData(r, d);
    const rows = (await doppel.request<{ replications: Record<string, unknown>[] }>('/_doppel/replications'))
      .json.replications;
    const link = rows.find((row) => row['id'] === `primary:127.0.0.1:${redis.port}`);
    assert.equal((link?.['counters'] as Record<string, unknown> | undefined)?.['command_errors'], 1);
    assert.match(
      (await doppel.request('/metrics')).text,
      /\ndoppel_replica_command_errors\{primary="127\.0\.0\.1:\d+"\} 1\n/,
    );
    assert.match(doppel.output, /"command":"XADD".*a command from the primary failed here/);
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

void describe('Doppel as a replica of a redis-server that requires a password', { timeout: 60_000 }, () => {
  const SECRET = 'primary-secret-4f1e';
  let redis: RedisPeer;
  let doppel: DoppelProcess;
  let r: RespClient;
  let d: RespClient;

  before(async () => {
    redis = await RedisPeer.start(['--requirepass', SECRET]);
    doppel = await DoppelProcess.start();
    r = await RespClient.connect(redis.port);
    assert.equal(await r.call('AUTH', SECRET), 'OK');
    d = await adminClient(doppel);
  });

  after(async () => {
    r?.close();
    d?.close();
    await doppel?.stop();
    await redis?.stop();
  });

  void it('CONFIG SET masterauth at runtime: the next connection authenticates; CONFIG GET never shows it', async () => {
    assert.equal(await r.call('SET', 'guarded', 'value'), 'OK');
    assert.deepEqual(await d.call('CONFIG', 'GET', 'master*'), ['masteruser', '', 'masterauth', '']);
    assert.equal(await d.call('REPLICAOF', '127.0.0.1', redis.port), 'OK');
    // Without the password the primary refuses the handshake: the link stays down, retrying.
    await sleep(500);
    assert.equal(field(await d.call('INFO', 'replication'), 'master_link_status'), 'down');
    assert.equal(await d.call('GET', 'guarded'), null);

    assert.equal(await d.call('CONFIG', 'SET', 'masteruser', 'default', 'masterauth', SECRET), 'OK');
    assert.deepEqual(await d.call('CONFIG', 'GET', 'masterauth'), ['masterauth', '(hidden)']);
    assert.deepEqual(await d.call('CONFIG', 'GET', 'masteruser'), ['masteruser', 'default']);
    await waitFor('the link to come up', async () => {
      return field(await d.call('INFO', 'replication'), 'master_link_status') === 'up';
    });
    assert.equal(await d.call('GET', 'guarded'), 'value');
    assert.equal(await r.call('SET', 'later', 'streamed'), 'OK');
    await waitFor('the stream', async () => (await d.call('GET', 'later')) === 'streamed');
  });
});

void describe(
  'a full sync that loads for longer than the primary’s repl-timeout',
  { timeout: 120_000 },
  () => {
    const KEY_COUNT = 1_500_000;
    let redis: RedisPeer;
    let doppel: DoppelProcess;
    let d: RespClient;

    before(async () => {
      // Redis drops an online replica it heard nothing from for repl-timeout seconds; loading
      // this many keys takes Doppel several times that, with its event loop held.
      redis = await RedisPeer.start([
        '--repl-timeout',
        '2',
        '--repl-diskless-sync',
        'no',
        '--enable-debug-command',
        'yes',
        // The primary's PINGs (every 10 s) move its offset past a sync's: the NO ONE test
        // compares the two, so none may come between.
        '--repl-ping-replica-period',
        '3600',
      ]);
      assert.equal(await redis.call('DEBUG', 'POPULATE', KEY_COUNT), 'OK');
      doppel = await DoppelProcess.start();
      d = await adminClient(doppel);
    });

    after(async () => {
      d?.close();
      await doppel?.stop();
      await redis?.stop();
    });

    void it('loads off the event loop: answers meanwhile, takes document writes, keeps the primary’s link alive, swaps at once', async () => {
      assert.equal(await d.call('SET', 'local', 'before'), 'OK');
      assert.equal((await doppel.request('/notes', { method: 'PUT' })).status, 201);
      assert.equal(await d.call('REPLICAOF', '127.0.0.1', redis.port), 'OK');
      // While the RDB loads, INFO reports its progress and reads see the keyspace as it was
      // (until the load commits: the swap may come a moment before INFO stops saying loading).
      let oldSeenWhileLoading = 0;
      let documentsWrittenWhileLoading = 0;
      let documentWrites = 0;
      await waitFor(
        'the link to come up with every key',
        async () => {
          const persistence = await d.call('INFO', 'persistence');
          if (field(persistence, 'loading') === '1') {
            assert.ok(Number(field(persistence, 'loading_total_bytes')) > 0);
            // The load does not hold the node's other writers: a document write is
            // acknowledged while the keyspace is still loading.
            const put = await doppel.request(`/notes/n${documentWrites++}`, {
              method: 'PUT',
              body: { during: 'load' },
            });
            assert.equal(put.status, 201, put.text);
            if (field(await d.call('INFO', 'persistence'), 'loading') === '1') documentsWrittenWhileLoading++;
            if ((await d.call('GET', 'local')) === 'before') oldSeenWhileLoading++;
            assert.ok(
              [1, KEY_COUNT].includes(Number(await d.call('DBSIZE'))),
              'DBSIZE between two keyspaces',
            );
          }
          return (
            field(await d.call('INFO', 'replication'), 'master_link_status') === 'up' &&
            Number(await d.call('DBSIZE')) === KEY_COUNT
          );
        },
        90_000,
      );
      assert.ok(oldSeenWhileLoading > 0, 'never answered from the old keyspace while the RDB loaded');
      assert.ok(documentsWrittenWhileLoading > 0, 'no document write was acknowledged during the load');
      assert.equal(await d.call('GET', 'local'), null);
      // Past another repl-timeout: a replica the primary dropped would have reconnected by now.
      await sleep(3000);
      const stats = await redis.info('stats');
      assert.equal(stats['sync_full'], '1');
      assert.equal(
        stats['sync_partial_ok'],
        '0',
        'the primary dropped the loading replica, which reconnected',
      );
      assert.equal((await redis.info('replication'))['connected_slaves'], '1');
      // The keepalives did not disturb the stream.
      assert.equal(await redis.call('SET', 'after-load', 'streamed'), 'OK');
      await waitFor('the stream', async () => (await d.call('GET', 'after-load')) === 'streamed');
    });

    void it('REPLICAOF NO ONE while an RDB loads answers once it landed, with the offsets of that sync', async () => {
      assert.equal(await d.call('REPLICAOF', 'NO', 'ONE'), 'OK');
      // Moves the primary past the offset Doppel stopped at, so that the two differ.
      assert.equal(await redis.call('SET', 'moved-on', 'yes'), 'OK');
      assert.equal(await d.call('REPLICAOF', '127.0.0.1', redis.port), 'OK');
      await waitFor(
        'the load to start',
        async () => field(await d.call('INFO', 'persistence'), 'loading') === '1',
        30_000,
      );
      const syncOffset = Number((await redis.info('replication'))['master_repl_offset']);
      assert.equal(await d.call('REPLICAOF', 'NO', 'ONE'), 'OK');
      const info = await d.call('INFO', 'replication');
      assert.equal(field(info, 'role'), 'master');
      assert.equal(field(info, 'second_repl_offset'), String(syncOffset + 1));
      assert.equal(await d.call('GET', 'moved-on'), 'yes');
      assert.equal(Number(await d.call('DBSIZE')), KEY_COUNT + 2);
      assert.equal(await d.call('SET', 'writable', 'yes'), 'OK');
    });

    void it('a transfer that breaks off while its RDB loads changes nothing; the next full sync loads all of it', async () => {
      // Throttled, the RDB arrives over seconds and is loaded as it arrives.
      const proxy = await FaultProxy.start(redis.port);
      try {
        assert.equal(await d.call('SET', 'cut-marker', 'kept'), 'OK');
        const before = Number(await d.call('DBSIZE'));
        proxy.bandwidth(4 * 1024 * 1024);
        assert.equal(await d.call('REPLICAOF', '127.0.0.1', proxy.port), 'OK');
        await waitFor(
          'the transfer to be under way',
          async () =>
            Number(field(await d.call('INFO', 'replication'), 'master_sync_read_bytes')) > 4_000_000,
          30_000,
        );
        proxy.reset();
        await waitFor(
          'the link to be down',
          async () => field(await d.call('INFO', 'replication'), 'master_link_status') === 'down',
        );
        assert.equal(await d.call('GET', 'cut-marker'), 'kept');
        assert.equal(Number(await d.call('DBSIZE')), before, 'the keyspace is as it was');
        proxy.bandwidth(null);
        proxy.pass();
        const expected = Number(await redis.call('DBSIZE'));
        await waitFor(
          'a full sync with every key',
          async () =>
            field(await d.call('INFO', 'replication'), 'master_link_status') === 'up' &&
            Number(await d.call('DBSIZE')) === expected,
          90_000,
        );
        assert.equal(await d.call('GET', 'cut-marker'), null);
        assert.ok(!existsSync(join(doppel.dataDir, RDB_SPOOL)), 'the spooled RDB is removed');
        assert.equal(await d.call('REPLICAOF', 'NO', 'ONE'), 'OK');
      } finally {
        await proxy.close();
      }
    });

    void it('SIGTERM during a load abandons it: the node stops without waiting, its data as it was', async () => {
      assert.equal(await d.call('SET', 'marker', 'kept'), 'OK');
      const before = Number(await d.call('DBSIZE'));
      assert.equal(await d.call('REPLICAOF', '127.0.0.1', redis.port), 'OK');
      await waitFor(
        'the load to start',
        async () => field(await d.call('INFO', 'persistence'), 'loading') === '1',
        30_000,
      );
      d.close();
      const status = await doppel.kill('SIGTERM');
      assert.equal(status.code, 0, doppel.output);
      assert.match(doppel.output, /full sync abandoned at shutdown/);
      // Restarted, it follows the primary again (a new full sync, which takes seconds to load);
      // until then it answers from what it had, which the abandoned load did not touch.
      const restarted = await DoppelProcess.start({
        dataDir: doppel.dataDir,
        adminPassword: doppel.adminPassword,
      });
      try {
        d = await adminClient(restarted);
        assert.equal(await d.call('GET', 'marker'), 'kept');
        assert.equal(Number(await d.call('DBSIZE')), before);
      } finally {
        d.close();
        await restarted.stop();
        await removeTempDir(doppel.dataDir);
      }
    });
  },
);
