/**
 * Doppel → Doppel whole-node replication (REPLICAOF), end to end with real
 * processes: a primary with 100,000 keys of every type and databases of
 * documents (conflicts, deletions, attachments, local docs, security, a
 * user); a replica that full-syncs while writers keep writing; a second
 * replica chained behind the first; writes refused on replicas on both
 * doors; Pub/Sub messages carried to both replicas' listeners; the primary's
 * `_replicator` jobs waiting on replicas, and a replica
 * as a replication source; `kill -9` of a replica, which comes back with a
 * partial resync; `kill -9` of the primary, whose replicas continue with a
 * partial resync once it restarts; and the primary killed, the replica killed and restarted
 * (still read-only), then promoted with REPLICAOF NO ONE, keeping every write
 * WAIT acknowledged.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DoppelProcess } from './support/doppel-process.js';
import { assertSameKeyspace, field, KEYS, loadKeys, waitFor, Writer } from './support/keyspace-workload.js';
import { RespClient, RespError } from './support/resp-client.js';

const DBS = ['alpha', 'beta'];

function respPort(node: DoppelProcess): number {
  return Number(node.respAddress?.split(':').at(-1));
}

/** Connects as the primary's admin: a replica takes over its primary's users in the full sync. */
function connect(node: DoppelProcess, primary: DoppelProcess): Promise<RespClient> {
  return RespClient.open(respPort(node), primary.adminUser, primary.adminPassword);
}

/**
 * A replica of `of`, authenticating (and administered) with the primary's admin
 * password; a restarted one keeps its data and its port (its own replica follows that).
 */
function startReplica(of: DoppelProcess, restarted?: DoppelProcess): Promise<DoppelProcess> {
  return DoppelProcess.start({
    ...(restarted === undefined ? {} : { dataDir: restarted.dataDir }),
    adminPassword: of.adminPassword,
    args: [
      '--replicaof',
      `127.0.0.1 ${respPort(of)}`,
      '--masterauth',
      of.adminPassword,
      ...(restarted === undefined ? [] : ['--resp-port', String(respPort(restarted))]),
    ],
  });
}

/** A node of its own, ready to become a replica of `primary` (its admin and `masterauth`). */
function startStandalone(primary: DoppelProcess): Promise<DoppelProcess> {
  return DoppelProcess.start({
    adminPassword: primary.adminPassword,
    args: ['--masterauth', primary.adminPassword],
  });
}

async function ok(node: DoppelProcess, path: string, init: Parameters<DoppelProcess['request']>[1] = {}) {
  const res = await node.request(path, init);
  assert.ok(res.status < 300, `${init.method ?? 'GET'} ${path}: ${res.status} ${res.text}`);
  return res.json as Record<string, unknown>;
}

/** Registers `target` on `node` as the Doppel remote `name`, with `target`'s admin credentials. */
async function addRemote(node: DoppelProcess, name: string, target: DoppelProcess): Promise<void> {
  await ok(node, `/_doppel/remotes/${name}`, {
    method: 'PUT',
    body: { kind: 'doppel', url: target.url, username: target.adminUser, password: target.adminPassword },
  });
}

/** Documents of every shape: plain, updated, deleted, conflicting branches, attachments, local docs. */
async function seedDocuments(primary: DoppelProcess): Promise<void> {
  for (const db of DBS) {
    await ok(primary, `/${db}`, { method: 'PUT' });
    const docs = Array.from({ length: 1000 }, (_, i) => ({ _id: `doc-${i}`, n: i, text: `body ${i}` }));
    const written = (await ok(primary, `/${db}/_bulk_docs`, { body: { docs } })) as unknown as {
      id: string;
      rev: string;
    }[];
    const updates = written.slice(0, 200).map((r, i) => ({ _id: r.id, _rev: r.rev, n: -i }));
    await ok(primary, `/${db}/_bulk_docs`, { body: { docs: updates } });
    const deletes = written.slice(900).map((r) => ({ _id: r.id, _rev: r.rev, _deleted: true }));
    await ok(primary, `/${db}/_bulk_docs`, { body: { docs: deletes } });
    await ok(primary, `/${db}/_bulk_docs`, {
      body: {
        new_edits: false,
        docs: [
          { _id: 'conflicted', _rev: '1-aaa', side: 'a' },
          { _id: 'conflicted', _rev: '1-bbb', side: 'b' },
        ],
      },
    });
    await ok(primary, `/${db}/with-attachment`, {
      method: 'PUT',
      body: {
        _attachments: {
          'a.txt': { content_type: 'text/plain', data: Buffer.from(`attached to ${db}`).toString('base64') },
        },
      },
    });
    await ok(primary, `/${db}/_local/checkpoint`, { method: 'PUT', body: { seq: 42 } });
    await ok(primary, `/${db}/_security`, {
      method: 'PUT',
      body: { admins: { names: [], roles: [] }, members: { names: ['reader'], roles: [] } },
    });
  }
  await ok(primary, '/_users/org.couchdb.user:reader', {
    method: 'PUT',
    body: { name: 'reader', password: 'reader-pw', roles: [], type: 'user' },
  });
}

/** Document writes on the primary until stopped: new docs, updates and deletes, one batch at a time. */
class DocWriter {
  #stopped = false;
  written = 0;
  readonly done: Promise<void>;

  constructor(primary: DoppelProcess, prefix: string) {
    this.done = this.#run(primary, prefix);
  }

  async stop(): Promise<number> {
    this.#stopped = true;
    await this.done;
    return this.written;
  }

  async #run(primary: DoppelProcess, prefix: string): Promise<void> {
    let round = 0;
    while (!this.#stopped) {
      const db = DBS[round % DBS.length];
      const docs = Array.from({ length: 50 }, (_, i) => ({ _id: `${prefix}-${round}-${i}`, round }));
      const written = (await ok(primary, `/${db}/_bulk_docs`, { body: { docs } })) as unknown as {
        id: string;
        rev: string;
      }[];
      const changes = written
        .slice(0, 10)
        .map((r, i) =>
          i % 2 === 0
            ? { _id: r.id, _rev: r.rev, round, updated: true }
            : { _id: r.id, _rev: r.rev, _deleted: true },
        );
      await ok(primary, `/${db}/_bulk_docs`, { body: { docs: changes } });
      this.written += docs.length + changes.length;
      round++;
      await sleep(5);
    }
  }
}

/** What a replica must hold exactly as its primary: every database's documents, local docs, security, users. */
async function documentState(node: DoppelProcess): Promise<unknown> {
  const out: Record<string, unknown> = {};
  for (const db of [...DBS, '_users']) {
    const info = await ok(node, `/${db}`);
    const changes = await ok(
      node,
      `/${db}/_changes?style=all_docs&include_docs=true&conflicts=true&attachments=true`,
    );
    out[db] = {
      update_seq: info['update_seq'],
      doc_count: info['doc_count'],
      doc_del_count: info['doc_del_count'],
      changes,
      security: db === '_users' ? null : await ok(node, `/${db}/_security`),
      local: db === '_users' ? null : await ok(node, `/${db}/_local/checkpoint`),
    };
  }
  out['dbs'] = await ok(node, '/_all_dbs');
  return out;
}

async function caughtUp(primary: RespClient, replica: RespClient): Promise<void> {
  await waitFor('the replica to catch up', async () => {
    const head = field(await primary.call('INFO', 'replication'), 'master_repl_offset');
    const applied = field(await replica.call('INFO', 'replication'), 'slave_repl_offset');
    return head !== '' && head === applied;
  });
}

async function assertSameNode(
  primary: DoppelProcess,
  p: RespClient,
  replica: DoppelProcess,
  r: RespClient,
): Promise<void> {
  await caughtUp(p, r);
  assert.deepEqual(
    await documentState(replica),
    await documentState(primary),
    'documents, local docs, security',
  );
  // The writer's short TTLs (under 1 s) run out first, so both sides agree on them.
  await sleep(1100);
  const compared = await assertSameKeyspace(p, r);
  assert.ok(compared > KEYS * 0.9, `compared ${compared} keys`);
}

void describe('Doppel → Doppel node replication (REPLICAOF)', { timeout: 240_000 }, () => {
  let primary: DoppelProcess;
  let replica: DoppelProcess;
  let chained: DoppelProcess;
  let p: RespClient;
  let r: RespClient;

  before(async () => {
    primary = await DoppelProcess.start();
    p = await connect(primary, primary);
    await loadKeys(await connect(primary, primary));
    await seedDocuments(primary);
  });

  after(async () => {
    p?.close();
    r?.close();
    await chained?.stop();
    await replica?.stop();
    await primary?.stop();
  });

  void it('full sync while writers write, then the journal stream: an exact copy', async () => {
    const keys = new Writer(() => connect(primary, primary), 11);
    const docs = new DocWriter(primary, 'sync');
    await sleep(200);
    replica = await startReplica(primary);
    r = await connect(replica, primary);
    await waitFor(
      'the link to come up',
      async () => field(await r.call('INFO', 'replication'), 'master_link_status') === 'up',
    );
    await sleep(500);
    assert.ok((await keys.stop()) > 1000, 'keys were written during the sync');
    assert.ok((await docs.stop()) > 100, 'documents were written during the sync');
    await assertSameNode(primary, p, replica, r);
    assert.match(replica.output, /node replica: full sync loaded/);
    // Both ends of the link on the control plane and in /metrics.
    const replicaAt = `127.0.0.1:${respPort(replica)}`;
    const primaryAt = `127.0.0.1:${respPort(primary)}`;
    const links = async (node: DoppelProcess) =>
      (await ok(node, '/_doppel/replications'))['replications'] as Record<string, unknown>[];
    const toReplica = (await links(primary)).find((row) => row['id'] === `replica:${replicaAt}`);
    assert.equal(toReplica?.['kind'], 'node_link');
    assert.equal(toReplica['state'], 'running');
    // Lag as records and seconds; it returns to 0 (the primary's expiry may still be journaling DELs).
    await waitFor('the link to report no lag', async () => {
      const row = (await links(replica)).find((r) => r['id'] === `primary:${primaryAt}`);
      return row?.['state'] === 'running' && JSON.stringify(row['lag']) === '{"records":0,"seconds":0}';
    });
    assert.match(
      (await primary.request('/metrics')).text,
      new RegExp(`^doppel_connected_replica_lag_records\\{replica="${replicaAt}"\\} \\d+$`, 'm'),
    );
    assert.match(
      (await replica.request('/metrics')).text,
      new RegExp(`^doppel_replica_link_up\\{primary="${primaryAt}"\\} 1$`, 'm'),
    );
    const role = await p.call('ROLE');
    assert.ok(Array.isArray(role) && role[0] === 'master' && Array.isArray(role[2]) && role[2].length === 1);
    // The primary's users are the replica's: its admin and the `reader` user log in there.
    const asReader = await replica.request('/alpha/doc-1', {
      auth: `Basic ${Buffer.from('reader:reader-pw').toString('base64')}`,
    });
    assert.equal(asReader.status, 200);
  });

  void it('a replica refuses writes on every door, naming its primary', async () => {
    const put = await replica.request('/alpha/nope', { method: 'PUT', body: { x: 1 } });
    assert.equal(put.status, 403);
    assert.match(JSON.stringify(put.json), /read-only replica of 127\.0\.0\.1:\d+/);
    assert.equal((await replica.request('/alpha', { method: 'DELETE' })).status, 403);
    assert.equal((await replica.request('/newdb', { method: 'PUT' })).status, 403);
    const refused = await r.call('SET', 'nope', '1');
    assert.ok(refused instanceof RespError && refused.message.startsWith('READONLY'));
  });

  void it("a replica copies the primary's _replicator jobs without running them", async () => {
    await ok(primary, '/_replicator/alpha-copy', {
      method: 'PUT',
      body: { source: 'alpha', target: 'alpha-copy', create_target: true, continuous: true },
    });
    await waitFor('the job to run on the primary', async () => {
      const res = await primary.request('/_scheduler/docs/_replicator/alpha-copy');
      return (res.json as Record<string, unknown>)['state'] === 'running';
    });
    const alphaDocs = (await ok(primary, '/alpha'))['doc_count'];
    await waitFor('the job to copy alpha', async () => {
      const res = await primary.request('/alpha-copy');
      return (res.json as Record<string, unknown>)['doc_count'] === alphaDocs;
    });
    await caughtUp(p, r);
    const onReplica = await replica.request('/_scheduler/docs/_replicator/alpha-copy');
    assert.equal(onReplica.status, 200);
    assert.equal((onReplica.json as Record<string, unknown>)['state'], 'pending');
    assert.match(JSON.stringify(onReplica.json), /read-only replica of 127\.0\.0\.1/);
    assert.equal(
      (await ok(replica, '/alpha-copy'))['doc_count'],
      (await ok(primary, '/alpha-copy'))['doc_count'],
    );
    // A replica is a fine replication source: it refuses the source checkpoint (403), the
    // target keeps it, and the copy completes.
    const fromReplica = await ok(primary, '/_replicate', {
      method: 'POST',
      body: {
        source: {
          url: `${replica.url}/alpha`,
          headers: { authorization: primary.adminAuthHeader },
        },
        target: 'alpha-from-replica',
        create_target: true,
      },
    });
    assert.equal(fromReplica['ok'], true);
    assert.equal((await ok(primary, '/alpha-from-replica'))['doc_count'], alphaDocs);
  });

  void it('a replica copies follower databases, read-only, but runs no follower', async () => {
    await addRemote(primary, 'self', primary);
    await ok(primary, '/_plugins/_replication/alpha-f/_start', {
      method: 'PUT',
      body: { leader_alias: 'self', leader_index: 'alpha' },
    });
    const alphaDocs = (await ok(primary, '/alpha'))['doc_count'];
    await waitFor('the follower to copy alpha', async () => {
      const res = await primary.request('/alpha-f');
      return (res.json as Record<string, unknown>)['doc_count'] === alphaDocs;
    });
    await caughtUp(p, r);
    assert.equal((await ok(replica, '/alpha-f'))['doc_count'], alphaDocs);
    const status = await ok(replica, '/_plugins/_replication/alpha-f/_status');
    assert.equal(status['status'], 'REPLICATION NOT IN PROGRESS');
    const rows = (await ok(replica, '/_doppel/replications'))['replications'] as Record<string, unknown>[];
    assert.ok(
      rows.every((row) => row['kind'] !== 'follower'),
      JSON.stringify(rows),
    );
  });

  void it('a replica of the replica (chained) copies the primary too', async () => {
    chained = await startReplica(replica);
    const c = await connect(chained, primary);
    try {
      const keys = new Writer(() => connect(primary, primary), 12);
      const docs = new DocWriter(primary, 'chain');
      await sleep(800);
      await keys.stop();
      await docs.stop();
      // SWAPDB travels as one journal entry that each replica replays.
      assert.deepEqual(
        await p.pipeline([
          ['SELECT', 1],
          ['SET', 'swapped', 'from-1'],
          ['SELECT', 0],
        ]),
        ['OK', 'OK', 'OK'],
      );
      assert.equal(await p.call('SWAPDB', 0, 1), 'OK');
      await caughtUp(p, r);
      await assertSameNode(primary, p, chained, c);
      assert.equal(await c.call('GET', 'swapped'), 'from-1');
      assert.equal(field(await c.call('INFO', 'replication'), 'master_port'), String(respPort(replica)));
    } finally {
      c.close();
    }
  });

  void it("Pub/Sub: the primary's messages reach listeners on its replicas, behind the writes before them", async () => {
    const nodes = [replica, chained];
    const listeners = await Promise.all(nodes.map((node) => connect(node, primary)));
    const readers = await Promise.all(nodes.map((node) => connect(node, primary)));
    const next = (listener: RespClient): Promise<unknown> =>
      Promise.race([
        listener.next(),
        sleep(10_000).then(() => Promise.reject(new Error('no message within 10 s'))),
      ]);
    try {
      for (const listener of listeners) {
        assert.deepEqual(await listener.call('SUBSCRIBE', 'news'), ['subscribe', 'news', 1]);
        assert.deepEqual(await listener.call('PSUBSCRIBE', 'n*'), ['psubscribe', 'n*', 2]);
        assert.deepEqual(await listener.call('SSUBSCRIBE', 'shard-news'), ['ssubscribe', 'shard-news', 1]);
      }
      const STORIES = 20;
      for (let i = 0; i < STORIES; i++) {
        // The write and its announcement in one transaction (MULTI journals its writes at EXEC's end).
        await p.pipeline([['MULTI'], ['SET', 'headline', i], ['PUBLISH', 'news', i], ['EXEC']]);
      }
      // Published with no write before it: the feed is idle when it comes.
      await caughtUp(p, r);
      assert.equal(await p.call('SPUBLISH', 'shard-news', 'sharded'), 0);
      for (const [n, listener] of listeners.entries()) {
        for (let i = 0; i < STORIES; i++) {
          assert.deepEqual(await next(listener), ['message', 'news', String(i)]);
          // A listener that reads what it was told of finds it (or something newer).
          assert.ok(Number(await readers[n].call('GET', 'headline')) >= i, `headline ${i} readable`);
          assert.deepEqual(await next(listener), ['pmessage', 'n*', 'news', String(i)]);
        }
        assert.deepEqual(await next(listener), ['smessage', 'shard-news', 'sharded']);
      }
    } finally {
      for (const client of [...listeners, ...readers]) client.close();
    }
  });

  void it('kill -9 of a replica: it comes back with a partial resync, no second full copy', async () => {
    const statsBefore = await p.call('INFO', 'stats');
    const keys = new Writer(() => connect(primary, primary), 13);
    const docs = new DocWriter(primary, 'crash');
    await sleep(300);
    r.close();
    await replica.kill('SIGKILL');
    await sleep(300);
    replica = await startReplica(primary, replica);
    r = await connect(replica, primary);
    await waitFor(
      'the link to come back',
      async () => field(await r.call('INFO', 'replication'), 'master_link_status') === 'up',
    );
    await sleep(300);
    await keys.stop();
    await docs.stop();
    const statsAfter = await p.call('INFO', 'stats');
    const linkLog = (node: DoppelProcess): string =>
      node.output
        .split('\n')
        .filter((line) => /node replica|node replication|link failed/.test(line))
        .join('\n');
    assert.equal(
      Number(field(statsAfter, 'sync_partial_ok')),
      Number(field(statsBefore, 'sync_partial_ok')) + 1,
      `a partial resync (sync_partial_err ${field(statsAfter, 'sync_partial_err')})\n` +
        `replica:\n${linkLog(replica)}\nprimary:\n${linkLog(primary).slice(-3000)}`,
    );
    assert.equal(field(statsAfter, 'sync_full'), field(statsBefore, 'sync_full'), 'no second full copy');
    await assertSameNode(primary, p, replica, r);
    // The chained replica reconnected to the restarted one and continued too.
    const c = await connect(chained, primary);
    try {
      await caughtUp(p, c);
    } finally {
      c.close();
    }
  });

  void it('kill -9 of the primary under writes: restarted, its replicas continue with a partial resync', async () => {
    const statsBefore = await r.call('INFO', 'stats');
    const keys = new Writer(() => connect(primary, primary), 17);
    // Its connection breaks with the primary.
    const writes = keys.done.catch(() => 0);
    await sleep(500);
    p.close();
    await primary.kill('SIGKILL');
    void keys.stop().catch(() => 0);
    await writes;
    // Same data directory and RESP port: its replica reconnects to it on its own.
    primary = await DoppelProcess.start({
      dataDir: primary.dataDir,
      adminPassword: primary.adminPassword,
      args: ['--resp-port', String(respPort(primary))],
    });
    p = await connect(primary, primary);
    await waitFor(
      'the replica to reconnect',
      async () => field(await r.call('INFO', 'replication'), 'master_link_status') === 'up',
    );
    const statsAfter = await p.call('INFO', 'stats');
    assert.equal(field(statsAfter, 'sync_full'), '0', 'the restarted primary sent no full copy');
    assert.equal(field(statsAfter, 'sync_partial_ok'), '1', 'a partial resync');
    // The replica never got an entry the primary lost: the same history, the same data.
    await assertSameNode(primary, p, replica, r);
    assert.equal(
      field(await r.call('INFO', 'stats'), 'sync_full'),
      field(statsBefore, 'sync_full'),
      'no second full copy on the replica either',
    );
  });

  void it('primary and replica killed: REPLICAOF NO ONE keeps every write WAIT acknowledged', async () => {
    const acked: string[] = [];
    for (let i = 0; i < 200; i++) {
      await p.call('SET', `waited:${i}`, String(i));
      if (i % 20 === 0) {
        await ok(primary, `/alpha/waited-${i}`, { method: 'PUT', body: { i } });
      }
      assert.equal(
        await p.call('WAIT', 1, 5000),
        1,
        'the replica acknowledged (the chained one is not a replica of the primary)',
      );
      acked.push(`waited:${i}`);
    }
    await primary.kill('SIGKILL');
    // The replica crashes too and comes back while its primary is gone: still a read-only
    // replica (its link cannot come up) until it is promoted.
    r.close();
    await replica.kill('SIGKILL');
    replica = await startReplica(primary, replica);
    r = await connect(replica, primary);
    const refused = await r.call('SET', 'before-promotion', '1');
    assert.ok(
      refused instanceof RespError && refused.message.startsWith('READONLY'),
      JSON.stringify(refused),
    );
    assert.equal((await replica.request('/alpha/before-promotion', { method: 'PUT', body: {} })).status, 403);
    assert.equal(await r.call('REPLICAOF', 'NO', 'ONE'), 'OK');
    for (const key of acked) assert.equal(await r.call('GET', key), key.split(':')[1], key);
    for (let i = 0; i < 200; i += 20) assert.equal((await replica.request(`/alpha/waited-${i}`)).status, 200);
    // Promoted: the _replicator jobs run here now.
    await waitFor('the job to run on the promoted node', async () => {
      const res = await replica.request('/_scheduler/docs/_replicator/alpha-copy');
      return (res.json as Record<string, unknown>)['state'] === 'running';
    });
    // A follower database copied from the primary has no follower here: `_stop`, as its
    // read-only reason says, makes it writable.
    const followerWrite = await replica.request('/alpha-f/mine', { method: 'PUT', body: {} });
    assert.equal(followerWrite.status, 403);
    assert.match(JSON.stringify(followerWrite.json), /_replication\/alpha-f\/_stop/);
    await ok(replica, '/_plugins/_replication/alpha-f/_stop', { method: 'POST', body: {} });
    assert.equal((await replica.request('/alpha-f/mine', { method: 'PUT', body: {} })).status, 201);
    // Writable on both doors, and its own replica follows the new history.
    assert.equal(await r.call('SET', 'after-promotion', 'yes'), 'OK');
    assert.equal(
      (await replica.request('/alpha/after-promotion', { method: 'PUT', body: { ok: true } })).status,
      201,
    );
    const c = await connect(chained, primary);
    try {
      await waitFor(
        "the chained replica to get the promoted node's writes",
        async () => (await c.call('GET', 'after-promotion')) === 'yes',
      );
      // The document was written after the key: it may arrive a moment later.
      await waitFor(
        "the chained replica to get the promoted node's document",
        async () => (await chained.request('/alpha/after-promotion')).status === 200,
      );
      assert.match(chained.output, /node replica: partial resync/);
    } finally {
      c.close();
    }
  });
});

void describe(
  'a node that becomes a replica holds its own followers and streams',
  { timeout: 90_000 },
  () => {
    let primary: DoppelProcess;
    let node: DoppelProcess;

    before(async () => {
      primary = await DoppelProcess.start();
      node = await startStandalone(primary);
    });

    after(async () => {
      await node?.stop();
      await primary?.stop();
    });

    void it('PAUSED, naming its primary, while a replica; running again once promoted', async () => {
      // The replica's full sync replaces its databases: afterwards its follower fails with a
      // reason that says how to bootstrap it again, and its stream with its bucket gone;
      // a stream of a bucket it got from the primary runs.
      await ok(primary, '/lead', { method: 'PUT' });
      await ok(primary, '/lead/a', { method: 'PUT', body: { x: 1 } });
      await ok(primary, '/api/v2/buckets', { method: 'POST', body: { name: 'sink' } });
      await addRemote(node, 'primary', primary);
      await ok(node, '/_plugins/_replication/fol/_start', {
        method: 'PUT',
        body: { leader_alias: 'primary', leader_index: 'lead' },
      });
      await ok(node, '/api/v2/buckets', { method: 'POST', body: { name: 'edge' } });
      await ok(node, '/_doppel/streams', {
        method: 'POST',
        body: { name: 's', source: 'edge', remote: 'primary', target: 'sink' },
      });
      const followerStatus = async () => ok(node, '/_plugins/_replication/fol/_status');
      const streamState = async (name = 's') =>
        ((await ok(node, '/_doppel/streams'))['streams'] as Record<string, unknown>[]).find(
          (s) => s['name'] === name,
        );
      await waitFor('the follower to sync', async () => (await followerStatus())['status'] === 'SYNCING');
      await waitFor('the stream to run', async () => (await streamState())?.['state'] === 'running');
      // An auto-follow rule: its counters must survive the hold.
      await ok(primary, '/auto-one', { method: 'PUT' });
      await ok(node, '/_plugins/_replication/_autofollow', {
        method: 'POST',
        body: {
          leader_alias: 'primary',
          name: 'autos',
          pattern: 'auto-*',
          settings: { 'plugins.replication.autofollow.fetch_poll_interval': '200ms' },
        },
      });
      const autoStarted = async () =>
        (await ok(node, '/_plugins/_replication/autofollow_stats'))['num_success_start_replication'];
      await waitFor('the rule to start a follower', async () => (await autoStarted()) === 1);

      const r = await connect(node, primary);
      try {
        assert.equal(await r.call('REPLICAOF', '127.0.0.1', respPort(primary)), 'OK');
        await waitFor(
          'the link to come up',
          async () => field(await r.call('INFO', 'replication'), 'master_link_status') === 'up',
        );
        const held = await followerStatus();
        assert.equal(held['status'], 'PAUSED');
        assert.match(String(held['reason']), /read-only replica of 127\.0\.0\.1:\d+/);
        const stream = await streamState();
        assert.equal(stream?.['state'], 'paused');
        assert.match(String(stream?.['latest_error']), /read-only replica of 127\.0\.0\.1:\d+/);
        // A stream created here now, of a bucket that came from the primary, waits too.
        await ok(node, '/_doppel/streams', {
          method: 'POST',
          body: { name: 's2', source: 'sink', remote: 'primary', target: 'sink' },
        });
        assert.equal((await streamState('s2'))?.['state'], 'paused');

        assert.equal(await r.call('REPLICAOF', 'NO', 'ONE'), 'OK');
        await waitFor('s2 to run', async () => (await streamState('s2'))?.['state'] === 'running');
        await waitFor('s to fail', async () => (await streamState())?.['state'] === 'failed');
        assert.match(String((await streamState())?.['latest_error']), /local source "edge" was deleted/);
        // The full sync replaced this node's databases with the primary's: the follower's is gone.
        await waitFor('the follower to fail', async () => (await followerStatus())['status'] === 'FAILED');
        assert.match(String((await followerStatus())['reason']), /no longer exists.*force_resume/);
        await ok(node, '/_plugins/_replication/fol/_resume', {
          method: 'POST',
          body: { force_resume: true },
        });
        await waitFor(
          'the follower to sync again',
          async () => (await followerStatus())['status'] === 'SYNCING',
        );
        assert.equal((await ok(node, '/fol/a'))['x'], 1);
        assert.equal(await autoStarted(), 1, 'autofollow_stats kept across the hold');
      } finally {
        r.close();
      }
    });
  },
);

void describe('a full sync of a large node restores off the event loop', { timeout: 120_000 }, () => {
  const KEY_COUNT = 1_000_000;
  const PER_MSET = 1000;
  let primary: DoppelProcess;
  let node: DoppelProcess;

  before(async () => {
    primary = await DoppelProcess.start();
    const p = await connect(primary, primary);
    try {
      const commands = Array.from({ length: KEY_COUNT / PER_MSET }, (_, batch) => [
        'MSET',
        ...Array.from({ length: PER_MSET }, (_, i) => [`big:${batch * PER_MSET + i}`, `v${i}`]).flat(),
      ]);
      for (const reply of await p.pipeline(commands)) assert.equal(reply, 'OK');
    } finally {
      p.close();
    }
    node = await startStandalone(primary);
  });

  after(async () => {
    await node?.stop();
    await primary?.stop();
  });

  void it('answers meanwhile from the old data, then swaps at once', async () => {
    const n = await connect(node, primary);
    try {
      assert.equal(await n.call('SET', 'local', 'before'), 'OK');
      assert.equal(await n.call('REPLICAOF', '127.0.0.1', respPort(primary)), 'OK');
      // The old build restored on the event loop: INFO could not answer while it did.
      let answeredWhileRestoring = 0;
      await waitFor(
        'the link to come up with every key',
        async () => {
          const persistence = await n.call('INFO', 'persistence');
          if (field(persistence, 'loading') === '1') {
            assert.ok(Number(field(persistence, 'loading_total_bytes')) > 0);
            assert.equal((await node.request('/_up')).status, 200);
            // Until the restore commits (the swap may come a moment before INFO stops saying loading).
            if ((await n.call('GET', 'local')) === 'before') answeredWhileRestoring++;
          }
          return (
            field(await n.call('INFO', 'replication'), 'master_link_status') === 'up' &&
            Number(await n.call('DBSIZE')) === KEY_COUNT
          );
        },
        90_000,
      );
      assert.ok(
        answeredWhileRestoring > 0,
        'never answered from the old data while the snapshot was restored',
      );
      assert.equal(await n.call('GET', 'local'), null);
      assert.equal(await n.call('GET', `big:${KEY_COUNT - 1}`), `v${PER_MSET - 1}`);
      // The journal stream follows the restored snapshot.
      const p = await connect(primary, primary);
      assert.equal(await p.call('SET', 'after-restore', 'streamed'), 'OK');
      p.close();
      await waitFor('the stream', async () => (await n.call('GET', 'after-restore')) === 'streamed');
    } finally {
      n.close();
    }
  });
});
