/**
 * The replicator's control plane against real peers in separate processes:
 * `POST /_replicate`, `_replicator` documents (also in `other/_replicator`),
 * `_scheduler/jobs|docs`, `_active_tasks`, `/_doppel/replications` and
 * `/_doppel/remotes`, pulling from and pushing to a pouchdb-server and a
 * second Doppel node with every kind of filter, while a PouchDB client keeps
 * syncing with the node; `user_ctx` rules; a bad credential; and restarts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DoppelProcess, fetchJson } from './support/doppel-process.js';
import { memoryPouch, remotePouch } from './support/pouchdb.js';
import { PouchServer } from './support/pouchdb-server.js';
import { eventually, ok } from './support/eventually.js';

type Json = Record<string, unknown>;

/** Polls `probe` until it returns a value that is not undefined. */

async function docIds(url: string, auth: string | null): Promise<string[]> {
  const res = await fetchJson<{ rows: { id: string }[] }>(`${url}/_all_docs`, { auth });
  return ok(res, `_all_docs of ${url}`).rows.map((r) => r.id);
}

async function schedulerDoc(node: DoppelProcess, db: string, id: string): Promise<Json> {
  return ok(await node.request<Json>(`/_scheduler/docs/${db}/${id}`), `_scheduler/docs/${db}/${id}`);
}

function stateIs(
  node: DoppelProcess,
  db: string,
  id: string,
  states: string[],
): () => Promise<Json | undefined> {
  return async () => {
    const res = await node.request<Json>(`/_scheduler/docs/${db}/${id}`);
    return res.status === 200 && states.includes(String(res.json['state'])) ? res.json : undefined;
  };
}

void describe('replicator scheduler and control plane', () => {
  let node: DoppelProcess;
  let other: DoppelProcess;
  let pouch: PouchServer;

  before(async () => {
    const args = ['--replicator-crash-backoff-ms', '300', '--replicator-interval-ms', '500'];
    [node, other, pouch] = await Promise.all([
      DoppelProcess.start({ args }),
      DoppelProcess.start(),
      PouchServer.start(),
    ]);
    ok(await node.request('/src', { method: 'PUT' }), 'create src');
    const docs = Array.from({ length: 200 }, (_, i) => ({
      _id: `d${String(i).padStart(3, '0')}`,
      n: i,
      color: i % 2 === 0 ? 'red' : 'blue',
    }));
    ok(await node.request('/src/_bulk_docs', { body: { docs } }), 'load src');
    ok(
      await node.request('/src/_design/f', {
        method: 'PUT',
        body: { filters: { by_color: 'function(doc, req) { return doc.color === req.query.color; }' } },
      }),
      'design doc',
    );
  });

  after(async () => {
    await Promise.all([node?.stop(), other?.stop(), pouch?.stop()]);
  });

  void it('POST /_replicate runs a one-shot job and answers with its history', async () => {
    const res = await node.request<Json>('/_replicate', {
      body: { source: 'src', target: 'copy1', create_target: true },
    });
    const body = ok(res, '_replicate');
    assert.equal(body['ok'], true);
    assert.equal(body['replication_id_version'], 4);
    const history = body['history'] as Json[];
    assert.equal(history.length, 1);
    assert.equal(history[0]?.['docs_written'], 201);
    assert.equal((await docIds(`${node.url}/copy1`, node.adminAuthHeader)).length, 201);
    // One-shot transient jobs leave the scheduler once done.
    const jobs = ok(await node.request<Json>('/_scheduler/jobs'), 'jobs');
    assert.equal(jobs['total_rows'], 0);
  });

  void it('refuses bad replication bodies with 400 and writes nothing', async () => {
    const bad: [Json, RegExp][] = [
      [{ source: 'src' }, /target/],
      [{ target: 'x' }, /source/],
      [
        { source: 'src', target: 'bad-x', create_target: true, doc_ids: ['a'], selector: { a: 1 } },
        /mutually exclusive/,
      ],
      [{ source: 'src', target: 'bad-x', create_target: true, proxy: 'socks5://127.0.0.1:1080' }, /socks/],
      [{ source: 'src', target: 'bad-x', create_target: true, worker_processes: 0 }, /worker_processes/],
      [{ source: 'src', target: 'bad-x', create_target: true, continuous: 'yes' }, /continuous/],
      [{ source: 'src', target: 'bad-x', create_target: true, filter: 'nofilter' }, /ddoc\/name/],
      [{ source: 'ftp://x/y', target: 'bad-x' }, /source|endpoint|url/i],
    ];
    for (const [body, reason] of bad) {
      const res = await node.request<Json>('/_replicate', { body });
      assert.equal(res.status, 400, `${JSON.stringify(body)} → ${res.text}`);
      assert.equal(res.json['error'], 'bad_request');
      assert.match(String(res.json['reason']), reason);
    }
    const notJson = await node.request<Json>('/_replicate', {
      body: '{"source":',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(notJson.status, 400);
    assert.equal((await node.request('/bad-x')).status, 404, 'no target was created');
    const missing = await node.request<Json>('/_replicate', { body: { source: 'nope', target: 'bad-y' } });
    assert.equal(missing.status, 404);
    assert.equal(missing.json['error'], 'db_not_found');
    assert.equal((await node.request('/bad-y')).status, 404);
  });

  void it('runs a continuous _replicate job, shows it everywhere, and cancels it', async () => {
    const res = await node.request<Json>('/_replicate', {
      body: { source: node.authUrl('src'), target: 'copy2', create_target: true, continuous: true },
    });
    assert.equal(res.status, 202, res.text);
    const id = String(res.json['_local_id']);
    assert.match(id, /^[0-9a-f]{32}\+continuous\+create_target$/);
    ok(await node.request('/src/live1', { method: 'PUT', body: { n: 'live' } }), 'write');
    await eventually('live1 on copy2', async () =>
      (await node.request('/copy2/live1')).status === 200 ? true : undefined,
    );

    const job = ok(await node.request<Json>(`/_scheduler/jobs/${id}`), 'job');
    assert.equal(job['id'], id);
    assert.equal(job['database'], null);
    assert.match(String(job['source']), /\*\*\*\*\*/);
    assert.doesNotMatch(JSON.stringify(job), new RegExp(node.adminPassword));
    const types = (job['history'] as Json[]).map((h) => h['type']);
    assert.deepEqual(types.slice(-2), ['started', 'added']);
    const tasks = ok(await node.request<Json[]>('/_active_tasks'), 'tasks');
    const task = tasks.find((t) => t['replication_id'] === id);
    assert.ok(task !== undefined);
    assert.equal(task['type'], 'replication');
    assert.equal(task['continuous'], true);
    await eventually('changes_pending 0', async () => {
      const t = ok(await node.request<Json[]>('/_active_tasks'), 'tasks').find(
        (x) => x['replication_id'] === id,
      );
      return t?.['changes_pending'] === 0 ? true : undefined;
    });
    const board = ok(await node.request<{ replications: Json[] }>('/_doppel/replications'), 'board');
    const row = board.replications.find((r) => r['id'] === id);
    assert.equal(row?.['kind'], 'replicator');
    assert.equal(row?.['state'], 'running');
    assert.deepEqual(row?.['lag'], { records: 0, seconds: 0 });

    const cancel = await node.request<Json>('/_replicate', { body: { cancel: true, id } });
    assert.equal(cancel.status, 200, cancel.text);
    assert.equal(cancel.json['_local_id'], id);
    assert.equal((await node.request(`/_scheduler/jobs/${id}`)).status, 404);
    assert.equal((await node.request('/_replicate', { body: { cancel: true, id } })).status, 404);
  });

  void it('keeps remote secrets write-only and replicates through a named remote', async () => {
    const put = await node.request<Json>('/_doppel/remotes/peer', {
      method: 'PUT',
      body: { url: other.url, username: other.adminUser, password: other.adminPassword },
    });
    assert.equal(put.status, 201, put.text);
    const listed = ok(await node.request('/_doppel/remotes'), 'remotes');
    const one = ok(await node.request('/_doppel/remotes/peer'), 'remote');
    for (const shown of [put.text, JSON.stringify(listed), JSON.stringify(one)])
      assert.doesNotMatch(shown, new RegExp(other.adminPassword));
    assert.equal((await node.request('/_doppel/remotes/peer', { auth: null })).status, 401);
    const badRemote = await node.request<Json>('/_doppel/remotes/bad', {
      method: 'PUT',
      body: { url: 'nope' },
    });
    assert.equal(badRemote.status, 400);
    assert.equal((await node.request('/_doppel/remotes/bad')).status, 404);

    // Push to the other node (creating the database there), then pull a filtered copy back.
    ok(
      await node.request('/_replicator/push-peer', {
        method: 'PUT',
        body: { source: 'src', target: 'peer/fromnode', create_target: true },
      }),
      'push doc',
    );
    const done = await eventually(
      'push-peer completed',
      stateIs(node, '_replicator', 'push-peer', ['completed']),
    );
    assert.equal((done['info'] as Json)['docs_written'], 202);
    ok(
      await node.request('/_replicator/pull-peer', {
        method: 'PUT',
        body: {
          source: { remote: 'peer', db: 'fromnode' },
          target: 'pulled',
          create_target: true,
          selector: { color: 'red' },
        },
      }),
      'pull doc',
    );
    await eventually('pull-peer completed', stateIs(node, '_replicator', 'pull-peer', ['completed']));
    const pulled = await docIds(`${node.url}/pulled`, node.adminAuthHeader);
    assert.equal(pulled.length, 100);
    // The document was updated with the outcome, in CouchDB's fields.
    const doc = ok(await node.request<Json>('/_replicator/pull-peer'), 'doc');
    assert.equal(doc['_replication_state'], 'completed');
    assert.match(String(doc['_replication_state_time']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
    assert.equal((doc['_replication_stats'] as Json)['docs_written'], 100);

    // Taking the state fields out of a completed document runs it again.
    ok(await other.request('/fromnode/extra-red', { method: 'PUT', body: { color: 'red' } }), 'new red doc');
    const rerun = Object.fromEntries(Object.entries(doc).filter(([k]) => !k.startsWith('_replication_')));
    ok(await node.request('/_replicator/pull-peer', { method: 'PUT', body: rerun }), 'rerun');
    await eventually('extra-red pulled by the rerun', async () =>
      (await node.request('/pulled/extra-red')).status === 200 ? true : undefined,
    );
    await eventually('pull-peer completed again', stateIs(node, '_replicator', 'pull-peer', ['completed']));
  });

  void it('pulls from and pushes to pouchdb-server with doc_ids, selector and JS filters', async () => {
    ok(await fetchJson(`${pouch.url}/psrc`, { method: 'PUT' }), 'create psrc');
    const docs = Array.from({ length: 50 }, (_, i) => ({ _id: `p${i}`, color: i < 10 ? 'red' : 'green' }));
    ok(await fetchJson(`${pouch.url}/psrc/_bulk_docs`, { body: { docs } }), 'load psrc');
    const jobs: [string, Json][] = [
      ['pull-all', { source: `${pouch.url}/psrc`, target: 'frompouch', create_target: true }],
      [
        'pull-ids',
        {
          source: `${pouch.url}/psrc`,
          target: 'frompouch-ids',
          create_target: true,
          doc_ids: ['p1', 'p2', 'p3'],
        },
      ],
      [
        'push-js',
        {
          source: 'src',
          target: `${pouch.url}/topouch-js`,
          create_target: true,
          filter: 'f/by_color',
          query_params: { color: 'blue' },
        },
      ],
      [
        'push-live',
        {
          source: 'src',
          target: `${pouch.url}/topouch-live`,
          create_target: true,
          continuous: true,
          selector: { color: 'red' },
        },
      ],
    ];
    for (const [id, body] of jobs) ok(await node.request(`/_replicator/${id}`, { method: 'PUT', body }), id);
    for (const [id] of jobs.slice(0, 3))
      await eventually(`${id} completed`, stateIs(node, '_replicator', id, ['completed']));
    assert.equal((await docIds(`${node.url}/frompouch`, node.adminAuthHeader)).length, 50);
    assert.deepEqual(await docIds(`${node.url}/frompouch-ids`, node.adminAuthHeader), ['p1', 'p2', 'p3']);
    const blue = await docIds(`${pouch.url}/topouch-js`, null);
    assert.equal(blue.length, 100);
    await eventually('push-live running and caught up', async () => {
      const ids = await docIds(`${pouch.url}/topouch-live`, null);
      return ids.length === 100 ? true : undefined;
    });
    // Live: a new red document arrives, a blue one does not.
    ok(await node.request('/src/live-red', { method: 'PUT', body: { color: 'red' } }), 'red');
    ok(await node.request('/src/live-blue', { method: 'PUT', body: { color: 'blue' } }), 'blue');
    await eventually('live-red on pouchdb-server', async () =>
      (await fetchJson(`${pouch.url}/topouch-live/live-red`)).status === 200 ? true : undefined,
    );
    assert.equal((await fetchJson(`${pouch.url}/topouch-live/live-blue`)).status, 404);
    const row = await schedulerDoc(node, '_replicator', 'push-live');
    assert.equal(row['state'], 'running');
    assert.match(String(row['id']), /\+continuous\+create_target$/);
  });

  void it('lets a PouchDB client live-sync with a database that Doppel jobs replicate', async () => {
    ok(await node.request('/shared', { method: 'PUT' }), 'create shared');
    ok(
      await node.request('/_replicator/shared-out', {
        method: 'PUT',
        body: { source: 'shared', target: `${pouch.url}/shared-out`, create_target: true, continuous: true },
      }),
      'job',
    );
    const local = memoryPouch('client');
    const sync = local.sync(remotePouch(node.authUrl('shared')), { live: true, retry: true });
    try {
      await local.bulkDocs(Array.from({ length: 40 }, (_, i) => ({ _id: `c${i}`, from: 'client' })));
      ok(
        await node.request('/shared/server-side', { method: 'PUT', body: { from: 'server' } }),
        'server write',
      );
      await eventually('client docs on pouchdb-server through Doppel', async () => {
        const ids = await docIds(`${pouch.url}/shared-out`, null);
        return ids.length === 41 ? true : undefined;
      });
      await eventually('server doc on the client', async () => {
        const got = await local.get('server-side').catch(() => undefined);
        return got === undefined ? undefined : true;
      });
    } finally {
      sync.cancel();
      await local.destroy();
    }
  });

  void it('restarts on document updates, cancels on delete, fails duplicates, and serves other/_replicator', async () => {
    ok(await node.request('/team%2F_replicator', { method: 'PUT' }), 'create team/_replicator');
    const body = { source: 'src', target: 'team-copy', create_target: true, continuous: true };
    const put = ok(await node.request<Json>('/team%2F_replicator/a', { method: 'PUT', body }), 'team doc');
    const first = await eventually('team doc running', stateIs(node, 'team/_replicator', 'a', ['running']));
    const dup = ok(await node.request<Json>('/team%2F_replicator/b', { method: 'PUT', body }), 'duplicate');
    const failed = await eventually('duplicate failed', stateIs(node, 'team/_replicator', 'b', ['failed']));
    assert.match(String((failed['info'] as Json)['error']), /already started, triggered by document `a`/);
    // Update: a new target; the old job goes away, the new one runs.
    const moved = { ...body, target: 'team-copy2', _rev: put['rev'] };
    ok(await node.request('/team%2F_replicator/a', { method: 'PUT', body: moved }), 'update');
    await eventually('job moved to team-copy2', async () => {
      const row = await schedulerDoc(node, 'team/_replicator', 'a');
      return row['state'] === 'running' && row['target'] === 'team-copy2' && row['id'] !== first['id']
        ? true
        : undefined;
    });
    assert.equal((await node.request(`/_scheduler/jobs/${String(first['id'])}`)).status, 404);
    await eventually('team-copy2 filled', async () =>
      (await docIds(`${node.url}/team-copy2`, node.adminAuthHeader)).length >= 200 ? true : undefined,
    );
    // Delete: the job is cancelled.
    const current = ok(await node.request<Json>('/team%2F_replicator/a'), 'current');
    ok(
      await node.request(`/team%2F_replicator/a?rev=${String(current['_rev'])}`, { method: 'DELETE' }),
      'delete',
    );
    await eventually('job gone', async () =>
      (await node.request('/_scheduler/docs/team/_replicator/a')).status === 404 ? true : undefined,
    );
    const docsList = ok(await node.request<Json>('/_scheduler/docs/team%2F_replicator'), 'list');
    assert.deepEqual(
      (docsList['docs'] as Json[]).map((d) => d['doc_id']),
      ['b'],
    );
    const completed = ok(await node.request<Json>('/_scheduler/docs?states=completed'), 'completed');
    assert.ok((completed['docs'] as Json[]).every((d) => d['state'] === 'completed'));
    assert.ok(dup['ok']);
  });

  void it('enforces user_ctx for non-admins and runs their jobs with their rights', async () => {
    ok(
      await node.request('/_users/org.couchdb.user:bob', {
        method: 'PUT',
        body: { name: 'bob', password: 'bobpw', roles: [], type: 'user' },
      }),
      'user',
    );
    ok(
      await node.request('/_replicator/_security', {
        method: 'PUT',
        body: { admins: { names: [], roles: [] }, members: { names: ['bob'], roles: [] } },
      }),
      'security',
    );
    const bob = `Basic ${Buffer.from('bob:bobpw').toString('base64')}`;
    const asAlice = await node.request<Json>('/_replicator/bob1', {
      method: 'PUT',
      auth: bob,
      body: { source: 'src', target: 'bobcopy', user_ctx: { name: 'alice', roles: [] } },
    });
    assert.equal(asAlice.status, 403, asAlice.text);
    const noCtx = await node.request<Json>('/_replicator/bob1', {
      method: 'PUT',
      auth: bob,
      body: { source: 'src', target: 'bobcopy' },
    });
    assert.equal(noCtx.status, 403, noCtx.text);
    const asAdminRole = await node.request<Json>('/_replicator/bob1', {
      method: 'PUT',
      auth: bob,
      body: { source: 'src', target: 'bobcopy', user_ctx: { name: 'bob', roles: ['_admin'] } },
    });
    assert.equal(asAdminRole.status, 403, asAdminRole.text);
    // Bob may write his own job; it runs with his rights, which do not reach `src` (admin only).
    ok(
      await node.request('/_replicator/bob1', {
        method: 'PUT',
        auth: bob,
        body: { source: 'src', target: 'bobcopy', create_target: true, user_ctx: { name: 'bob', roles: [] } },
      }),
      'bob own job',
    );
    const crashing = await eventually('bob job crashing', stateIs(node, '_replicator', 'bob1', ['crashing']));
    assert.match(
      String((crashing['info'] as Json)['error']),
      /unauthorized|forbidden|not a server admin|access/i,
    );
    // POST /_replicate as bob: his own rights again.
    const direct = await node.request<Json>('/_replicate', {
      auth: bob,
      body: { source: 'src', target: 'bobcopy2' },
    });
    assert.ok(direct.status === 401 || direct.status === 403, direct.text);
    // CouchDB answers non-admins with 401 "You are not a server admin."
    assert.equal((await node.request('/_scheduler/jobs', { auth: bob })).status, 401);
    // Someone else's job is not bob's to change, delete or shadow with a replicated branch.
    const adminJob = ok(
      await node.request<Json>('/_replicator/adminjob', {
        method: 'PUT',
        body: { source: 'src', target: 'admincopy', create_target: true },
      }),
      'admin job',
    );
    const rev = String(adminJob['rev']);
    const own = { source: 'src', target: 'bobcopy3', user_ctx: { name: 'bob', roles: [] } };
    const takeOver = await node.request('/_replicator/adminjob', {
      method: 'PUT',
      auth: bob,
      body: { ...own, _rev: rev },
    });
    assert.equal(takeOver.status, 403, takeOver.text);
    const remove = await node.request(`/_replicator/adminjob?rev=${rev}`, { method: 'DELETE', auth: bob });
    assert.equal(remove.status, 403, remove.text);
    const branch = await node.request('/_replicator/adminjob?new_edits=false', {
      method: 'PUT',
      auth: bob,
      body: { ...own, _rev: '999-0123456789abcdef0123456789abcdef' },
    });
    assert.equal(branch.status, 403, branch.text);
    const bobJob = ok(await node.request<Json>('/_replicator/bob1', { auth: bob }), 'bob job');
    ok(
      await node.request(`/_replicator/bob1?rev=${String(bobJob['_rev'])}`, { method: 'DELETE', auth: bob }),
      'bob deletes his own job',
    );
  });

  void it('shows a bad credential as crashing with a clear reason, backing off', async () => {
    ok(
      await node.request('/_doppel/remotes/wrongpw', {
        method: 'PUT',
        body: { url: other.url, username: other.adminUser, password: 'not-the-password' },
      }),
      'remote',
    );
    ok(
      await node.request('/_replicator/badcred', {
        method: 'PUT',
        body: { source: 'src', target: 'wrongpw/never', create_target: true, continuous: true },
      }),
      'job',
    );
    const row = await eventually('badcred crashing', stateIs(node, '_replicator', 'badcred', ['crashing']));
    assert.match(String((row['info'] as Json)['error']), /unauthorized/i);
    await sleep(1500);
    const later = await schedulerDoc(node, '_replicator', 'badcred');
    // 300 ms doubling: a handful of attempts in 1.5 s, not hundreds.
    assert.ok(Number(later['error_count']) <= 5, `error_count ${String(later['error_count'])}`);
    const board = ok(await node.request<{ replications: Json[] }>('/_doppel/replications'), 'board');
    const entry = board.replications.find(
      (r) => (r['details'] as Json | undefined)?.['doc_id'] === 'badcred',
    );
    // Between its retries the job is crashing; during one it runs; the reason stays either way.
    assert.ok(['crashing', 'running'].includes(String(entry?.['state'])), String(entry?.['state']));
    assert.match(String(entry?.['last_error']), /unauthorized/i);
  });

  void it('does not rerun completed documents after a restart and resumes continuous ones', async () => {
    const before = ok(await node.request<Json>('/_replicator/pull-all'), 'pull-all');
    await node.kill('SIGTERM');
    node = await DoppelProcess.start({
      dataDir: node.dataDir,
      adminUser: node.adminUser,
      adminPassword: node.adminPassword,
      args: ['--replicator-crash-backoff-ms', '300', '--replicator-interval-ms', '500'],
    });
    const row = await eventually(
      'pull-all completed after restart',
      stateIs(node, '_replicator', 'pull-all', ['completed']),
    );
    assert.equal(row['id'], null);
    const afterRestart = ok(await node.request<Json>('/_replicator/pull-all'), 'pull-all again');
    assert.equal(afterRestart['_rev'], before['_rev'], 'a completed document is not rewritten');
    await eventually('push-live running again', stateIs(node, '_replicator', 'push-live', ['running']));
    ok(await node.request('/src/after-restart', { method: 'PUT', body: { color: 'red' } }), 'write');
    await eventually('after-restart on pouchdb-server', async () =>
      (await fetchJson(`${pouch.url}/topouch-live/after-restart`)).status === 200 ? true : undefined,
    );
  });
});
