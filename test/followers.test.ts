/**
 * Follower databases (OpenSearch cross-cluster replication API) between two
 * Doppel nodes in separate processes: bootstrap of a populated leader, live
 * writes/updates/deletes, the read-only follower (403), pause/resume, stop,
 * the leader deleted and recreated (PAUSED, plain resume refused,
 * force_resume bootstraps again), auto-follow, settings, stats, use_roles,
 * OpenSearch's error format; then a fault proxy between the nodes (resets, a
 * blackhole) and a `kill -9` of the follower node.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { basicAuth, DoppelProcess, makeTempDir, type JsonResponse } from './support/doppel-process.js';
import { FaultProxy } from './support/fault-proxy.js';
import { eventually, ok } from './support/eventually.js';

type Json = Record<string, unknown>;

/** Quick leader checks and checkpoints, so state changes show within a second. */
const FOLLOWER_ARGS = [
  '--follower-poll-interval-ms',
  '200',
  '--follower-checkpoint-interval-ms',
  '200',
  '--follower-heartbeat-ms',
  '500',
  '--follower-connection-timeout-ms',
  '2000',
  '--replicator-retries-per-request',
  '2',
];

async function call<T = Json>(node: DoppelProcess, path: string, method = 'GET', body?: unknown): Promise<T> {
  return ok(
    await node.request<T>(path, { method, ...(body === undefined ? {} : { body }) }),
    `${method} ${path}`,
  );
}

const R = '/_plugins/_replication';

async function status(node: DoppelProcess, follower: string, verbose = false): Promise<Json> {
  return call(node, `${R}/${follower}/_status${verbose ? '?verbose=true' : ''}`);
}

function statusIs(node: DoppelProcess, follower: string, wanted: string): () => Promise<Json | undefined> {
  return async () => {
    const s = await status(node, follower);
    return s['status'] === wanted ? s : undefined;
  };
}

/** SYNCING with the follower at the leader's current seq. */
function inSync(
  leader: DoppelProcess,
  db: string,
  follower: DoppelProcess,
  name: string,
): () => Promise<Json | undefined> {
  return async () => {
    const info = await call<{ update_seq: number }>(leader, `/${db}`);
    const s = await status(follower, name);
    const d = s['syncing_details'] as { leader_checkpoint: number; follower_checkpoint: number } | undefined;
    return s['status'] === 'SYNCING' &&
      d !== undefined &&
      d.follower_checkpoint === info.update_seq &&
      d.leader_checkpoint === info.update_seq
      ? s
      : undefined;
  };
}

/** id → "winning rev [deleted]" of every document, from `_changes`. */
async function contents(node: DoppelProcess, db: string): Promise<Map<string, string>> {
  const body = await call<{ results: { id: string; changes: { rev: string }[]; deleted?: boolean }[] }>(
    node,
    `/${db}/_changes?style=all_docs`,
  );
  return new Map(
    body.results.map((r) => [
      r.id,
      `${r.changes
        .map((c) => c.rev)
        .sort()
        .join(',')}${r.deleted === true ? ' deleted' : ''}`,
    ]),
  );
}

function sameContents(
  leader: DoppelProcess,
  db: string,
  follower: DoppelProcess,
  name: string,
): () => Promise<true | undefined> {
  return async () => {
    const [a, b] = await Promise.all([contents(leader, db), contents(follower, name)]);
    if (a.size !== b.size) return undefined;
    for (const [id, v] of a) if (b.get(id) !== v) return undefined;
    return true;
  };
}

/** `operations_read` of a follower since its node started (-1 when it has none). */
async function operationsRead(node: DoppelProcess, name: string): Promise<number> {
  const stats = await call<Json>(node, `${R}/follower_stats`);
  return (stats['index_stats'] as Record<string, { operations_read: number }>)[name]?.operations_read ?? -1;
}

async function fill(node: DoppelProcess, db: string, count: number, prefix = 'd'): Promise<void> {
  for (let start = 0; start < count; start += 1000) {
    const docs = Array.from({ length: Math.min(1000, count - start) }, (_, i) => ({
      _id: `${prefix}${String(start + i).padStart(6, '0')}`,
      n: start + i,
      text: 'x'.repeat(50),
    }));
    await call(node, `/${db}/_bulk_docs`, 'POST', { docs });
  }
}

async function registerRemote(
  follower: DoppelProcess,
  name: string,
  leader: DoppelProcess,
  url = leader.url,
): Promise<void> {
  await call(follower, `/_doppel/remotes/${name}`, 'PUT', {
    url,
    username: leader.adminUser,
    password: leader.adminPassword,
  });
}

void describe('follower databases (OpenSearch replication API)', () => {
  let leader: DoppelProcess;
  let follower: DoppelProcess;

  before(async () => {
    [leader, follower] = await Promise.all([
      DoppelProcess.start(),
      DoppelProcess.start({
        args: [...FOLLOWER_ARGS, '--autofollow-poll-interval-ms', '500', '--follower-roles', 'follower_role'],
      }),
    ]);
    await registerRemote(follower, 'leader', leader);
    await call(leader, '/movies', 'PUT');
    await fill(leader, 'movies', 2500);
  });

  after(async () => {
    await Promise.all([leader?.stop(), follower?.stop()]);
  });

  void it('bootstraps a populated leader, then syncs', async () => {
    const started = await follower.request(`${R}/movies-f/_start`, {
      method: 'PUT',
      body: { leader_alias: 'leader', leader_index: 'movies' },
    });
    assert.equal(started.status, 200, started.text);
    assert.deepEqual(started.json, { acknowledged: true });
    const s = await eventually('movies-f in sync', inSync(leader, 'movies', follower, 'movies-f'));
    assert.equal(s['leader_alias'], 'leader');
    assert.equal(s['leader_index'], 'movies');
    assert.equal(s['follower_index'], 'movies-f');
    await eventually('same documents', sameContents(leader, 'movies', follower, 'movies-f'));
    const info = await call<{ doc_count: number; update_seq: number }>(follower, '/movies-f');
    assert.equal(info.doc_count, 2500);
    const details = s['syncing_details'] as { seq_no: number };
    assert.equal(details.seq_no, info.update_seq, 'seq_no is the follower database seq');
    const verbose = await status(follower, 'movies-f', true);
    assert.ok(Array.isArray(verbose['shard_replication_details']), JSON.stringify(verbose));
    const board = await call<{ replications: Json[] }>(follower, '/_doppel/replications');
    const row = board.replications.find((r) => r['kind'] === 'follower' && r['id'] === 'movies-f');
    assert.ok(row !== undefined, JSON.stringify(board));
    assert.equal(row['state'], 'running');
  });

  void it('carries new writes, updates and deletes', async () => {
    const created = await call<{ rev: string }>(leader, '/movies/new-doc', 'PUT', { title: 'new' });
    const existing = await call<{ _rev: string }>(leader, '/movies/d000001');
    const updated = await call<{ rev: string }>(leader, '/movies/d000001', 'PUT', {
      _rev: existing._rev,
      n: -1,
    });
    const gone = await call<{ _rev: string }>(leader, '/movies/d000002');
    await call(leader, `/movies/d000002?rev=${gone._rev}`, 'DELETE');
    await eventually('writes on the follower', async () => {
      const [a, b, c] = await Promise.all([
        follower.request<{ _rev: string }>('/movies-f/new-doc'),
        follower.request<{ _rev: string }>('/movies-f/d000001'),
        follower.request('/movies-f/d000002'),
      ]);
      return a.json?._rev === created.rev && b.json?._rev === updated.rev && c.status === 404
        ? true
        : undefined;
    });
    await eventually('in sync', inSync(leader, 'movies', follower, 'movies-f'));
  });

  void it('refuses writes and deletion on the follower with 403 naming the leader', async () => {
    const put = await follower.request<Json>('/movies-f/mine', { method: 'PUT', body: { a: 1 } });
    assert.equal(put.status, 403, put.text);
    assert.match(String(put.json['reason']), /follower of "movies" on remote "leader"/);
    const bulk = await follower.request('/movies-f/_bulk_docs', {
      method: 'POST',
      body: { docs: [{ _id: 'x' }] },
    });
    assert.equal(bulk.status, 403, bulk.text);
    const local = await follower.request('/movies-f/_local/x', { method: 'PUT', body: { a: 1 } });
    assert.equal(local.status, 403, local.text);
    const del = await follower.request<Json>('/movies-f', { method: 'DELETE' });
    assert.equal(del.status, 403, del.text);
    assert.match(String(del.json['reason']), /_stop/);
    assert.equal((await follower.request('/movies-f')).status, 200);
  });

  void it('pauses keeping its position and resumes from it; stats agree with _status', async () => {
    await call(follower, `${R}/movies-f/_pause`, 'POST', { reason: 'maintenance' });
    const paused = await status(follower, 'movies-f');
    assert.equal(paused['status'], 'PAUSED');
    assert.equal(paused['reason'], 'maintenance');
    const again = await follower.request<Json>(`${R}/movies-f/_pause`, { method: 'POST', body: {} });
    assert.equal(again.status, 400, again.text);
    await call(leader, '/movies/while-paused', 'PUT', { a: 1 });
    await sleep(800);
    assert.equal(
      (await follower.request('/movies-f/while-paused')).status,
      404,
      'nothing arrives while paused',
    );
    const stats = await call<Json>(follower, `${R}/follower_stats`);
    assert.equal(stats['num_paused_indices'], 1);
    const readBefore =
      (stats['index_stats'] as Record<string, { operations_read: number }>)['movies-f']?.operations_read ?? 0;
    await call(follower, `${R}/movies-f/_resume`, 'POST', {});
    await eventually('the paused write arrives', async () =>
      (await follower.request('/movies-f/while-paused')).status === 200 ? true : undefined,
    );
    const s = await eventually('in sync', inSync(leader, 'movies', follower, 'movies-f'));
    const after = await call<Json>(follower, `${R}/follower_stats`);
    const index = (
      after['index_stats'] as Record<
        string,
        { operations_read: number; follower_checkpoint: number; leader_checkpoint: number }
      >
    )['movies-f'];
    assert.ok(index !== undefined);
    assert.ok(
      index.operations_read - readBefore < 10,
      `resume re-read ${index.operations_read - readBefore} docs`,
    );
    const d = s['syncing_details'] as { leader_checkpoint: number; follower_checkpoint: number };
    assert.equal(index.follower_checkpoint, d.follower_checkpoint);
    assert.equal(index.leader_checkpoint, d.leader_checkpoint);
    assert.equal(after['num_syncing_indices'], 1);
  });

  void it('applies _update settings live', async () => {
    await call(follower, `${R}/movies-f/_update`, 'PUT', {
      settings: {
        'plugins.replication.follower.index.ops_batch_size': 64,
        'plugins.replication.follower.poll_interval': '100ms',
      },
    });
    const v = await status(follower, 'movies-f', true);
    const settings = (v['doppel'] as { settings: Json }).settings;
    assert.equal(settings['plugins.replication.follower.index.ops_batch_size'], 64);
    await fill(leader, 'movies', 300, 'u');
    await eventually('in sync after update', inSync(leader, 'movies', follower, 'movies-f'));
    const bad = await follower.request<Json>(`${R}/movies-f/_update`, {
      method: 'PUT',
      body: { settings: { nope: 1 } },
    });
    assert.equal(bad.status, 400, bad.text);
  });

  void it('answers in OpenSearch error format', async () => {
    assert.deepEqual(await status(follower, 'nothing-here'), { status: 'REPLICATION NOT IN PROGRESS' });
    const noRemote = await follower.request<Json>(`${R}/x/_start`, {
      method: 'PUT',
      body: { leader_alias: 'nope', leader_index: 'movies' },
    });
    assert.equal(noRemote.status, 404, noRemote.text);
    const err = noRemote.json['error'] as {
      root_cause: { type: string; reason: string }[];
      type: string;
      reason: string;
    };
    assert.equal(err.type, 'no_such_remote_cluster_exception');
    assert.equal(err.root_cause[0]?.type, err.type);
    assert.equal(noRemote.json['status'], 404);
    const noLeader = await follower.request<Json>(`${R}/x/_start`, {
      method: 'PUT',
      body: { leader_alias: 'leader', leader_index: 'no-such-db' },
    });
    assert.equal(noLeader.status, 404, noLeader.text);
    assert.equal((noLeader.json['error'] as Json)['type'], 'index_not_found_exception');
    const twice = await follower.request<Json>(`${R}/movies-f/_start`, {
      method: 'PUT',
      body: { leader_alias: 'leader', leader_index: 'movies' },
    });
    assert.equal(twice.status, 400, twice.text);
    assert.equal((twice.json['error'] as Json)['type'], 'resource_already_exists_exception');
    const missing = await follower.request<Json>(`${R}/x/_start`, {
      method: 'PUT',
      body: { leader_index: 'movies' },
    });
    assert.equal(missing.status, 400, missing.text);
    const pauseUnknown = await follower.request<Json>(`${R}/nothing-here/_pause`, {
      method: 'POST',
      body: {},
    });
    assert.equal(pauseUnknown.status, 404, pauseUnknown.text);
    const anonymous = await follower.request<Json>(`${R}/follower_stats`, { auth: null });
    assert.equal(anonymous.status, 401, anonymous.text);
    assert.ok(anonymous.json['error'] !== undefined, anonymous.text);
  });

  void it('pauses on leader deletion; plain resume refused; force_resume bootstraps the recreated leader', async () => {
    await call(leader, '/phoenix', 'PUT');
    await fill(leader, 'phoenix', 50, 'old');
    await call(follower, `${R}/phoenix-f/_start`, 'PUT', { leader_alias: 'leader', leader_index: 'phoenix' });
    await eventually('phoenix-f in sync', inSync(leader, 'phoenix', follower, 'phoenix-f'));
    await call(leader, '/phoenix', 'DELETE');
    const paused = await eventually('phoenix-f paused', statusIs(follower, 'phoenix-f', 'PAUSED'));
    assert.match(String(paused['reason']), /AutoPaused: .*deleted/);
    // Failure isolation: the other follower keeps syncing.
    await call(leader, '/movies/isolation', 'PUT', { a: 1 });
    await eventually('movies-f still syncing', async () =>
      (await follower.request('/movies-f/isolation')).status === 200 ? true : undefined,
    );
    assert.equal((await status(follower, 'movies-f'))['status'], 'SYNCING');

    await call(leader, '/phoenix', 'PUT');
    await fill(leader, 'phoenix', 20, 'new');
    const plain = await follower.request<Json>(`${R}/phoenix-f/_resume`, { method: 'POST', body: {} });
    assert.equal(plain.status, 400, plain.text);
    assert.match(JSON.stringify(plain.json), /force_resume/);
    await call(follower, `${R}/phoenix-f/_resume`, 'POST', { force_resume: true });
    await eventually('phoenix-f bootstrapped again', sameContents(leader, 'phoenix', follower, 'phoenix-f'));
    const ids = [...(await contents(follower, 'phoenix-f')).keys()];
    assert.ok(
      ids.every((id) => id.startsWith('new')),
      `old documents remain: ${ids.slice(0, 5).join(',')}`,
    );
    await eventually('phoenix-f in sync', inSync(leader, 'phoenix', follower, 'phoenix-f'));
  });

  void it('with replicate.delete_index, stops and deletes the follower when its leader is deleted', async () => {
    await call(leader, '/ephemeral', 'PUT');
    await fill(leader, 'ephemeral', 20);
    await call(follower, `${R}/ephemeral-f/_start`, 'PUT', {
      leader_alias: 'leader',
      leader_index: 'ephemeral',
      settings: { 'plugins.replication.replicate.delete_index': true },
    });
    await eventually('ephemeral-f in sync', inSync(leader, 'ephemeral', follower, 'ephemeral-f'));
    await call(leader, '/ephemeral', 'DELETE');
    await eventually('ephemeral-f deleted', async () =>
      (await follower.request('/ephemeral-f')).status === 404 ? true : undefined,
    );
    assert.equal((await status(follower, 'ephemeral-f'))['status'], 'REPLICATION NOT IN PROGRESS');
    // The name is free again: a database of that name is an ordinary, writable one.
    await call(follower, '/ephemeral-f', 'PUT');
    await call(follower, '/ephemeral-f/mine', 'PUT', { a: 1 });
  });

  void it('fails plainly when the leader is recreated under a running follower', async () => {
    await call(leader, '/reborn', 'PUT');
    await fill(leader, 'reborn', 30, 'a');
    await call(follower, `${R}/reborn-f/_start`, 'PUT', { leader_alias: 'leader', leader_index: 'reborn' });
    await eventually('reborn-f in sync', inSync(leader, 'reborn', follower, 'reborn-f'));
    // Deleted and recreated at once, with fewer changes: the leader's seq went back.
    await call(leader, '/reborn', 'DELETE');
    await call(leader, '/reborn', 'PUT');
    await fill(leader, 'reborn', 5, 'b');
    const s = await eventually('reborn-f failed or paused', async () => {
      const st = await status(follower, 'reborn-f');
      return st['status'] === 'FAILED' || st['status'] === 'PAUSED' ? st : undefined;
    });
    assert.match(String(s['reason']), /deleted|recreated|history/);
    await call(follower, `${R}/reborn-f/_resume`, 'POST', { force_resume: true });
    await eventually('reborn-f copies the new leader', sameContents(leader, 'reborn', follower, 'reborn-f'));
  });

  void it('stops: the follower becomes writable, idempotently', async () => {
    await call(follower, `${R}/phoenix-f/_stop`, 'POST', {});
    assert.equal((await status(follower, 'phoenix-f'))['status'], 'STOPPED');
    await call(follower, `${R}/phoenix-f/_stop`, 'POST', {});
    await call(follower, '/phoenix-f/mine', 'PUT', { a: 1 });
    await call(leader, '/phoenix/after-stop', 'PUT', { a: 1 });
    await sleep(600);
    assert.equal((await follower.request('/phoenix-f/after-stop')).status, 404);
    await call(follower, '/phoenix-f', 'DELETE');
  });

  void it('auto-follows existing and new databases; deleting the rule keeps its followers', async () => {
    await call(leader, '/logs-a', 'PUT');
    await fill(leader, 'logs-a', 20);
    await call(leader, '/other', 'PUT');
    await call(follower, `${R}/_autofollow`, 'POST', {
      leader_alias: 'leader',
      name: 'logs-rule',
      pattern: 'logs-*',
      follower_index_pattern: '{{leader_index}}-copy',
      settings: { 'plugins.replication.autofollow.fetch_poll_interval': '500ms' },
    });
    await eventually('logs-a-copy in sync', inSync(leader, 'logs-a', follower, 'logs-a-copy'));
    await call(leader, '/logs-b', 'PUT');
    await fill(leader, 'logs-b', 10);
    await eventually('logs-b-copy in sync', inSync(leader, 'logs-b', follower, 'logs-b-copy'));
    assert.equal((await status(follower, 'other'))['status'], 'REPLICATION NOT IN PROGRESS');
    const rules = await call<{ autofollow_rules: Json[] }>(follower, `${R}/_autofollow`);
    assert.equal(rules.autofollow_rules.length, 1);
    assert.equal(rules.autofollow_rules[0]?.['pattern'], 'logs-*');
    assert.deepEqual(rules.autofollow_rules[0]?.['followers'], ['logs-a-copy', 'logs-b-copy']);
    const stats = await call<Json>(follower, `${R}/autofollow_stats`);
    assert.equal(stats['num_success_start_replication'], 2);
    assert.equal(stats['num_failed_start_replication'], 0);
    const perRule = stats['autofollow_stats'] as Json[];
    assert.equal(perRule[0]?.['name'], 'logs-rule');
    const board = await call<{ replications: Json[] }>(follower, '/_doppel/replications');
    assert.ok(
      board.replications.some((r) => r['kind'] === 'autofollow'),
      JSON.stringify(board),
    );

    const withPattern = await follower.request(`${R}/_autofollow`, {
      method: 'DELETE',
      body: { leader_alias: 'leader', name: 'logs-rule', pattern: 'logs-*' },
    });
    assert.equal(withPattern.status, 400, withPattern.text);
    await call(follower, `${R}/_autofollow`, 'DELETE', { leader_alias: 'leader', name: 'logs-rule' });
    assert.deepEqual((await call<Json>(follower, `${R}/_autofollow`))['autofollow_rules'], []);
    await call(leader, '/logs-b/after-rule', 'PUT', { a: 1 });
    await eventually('logs-b-copy keeps following', async () =>
      (await follower.request('/logs-b-copy/after-rule')).status === 200 ? true : undefined,
    );
    await call(leader, '/logs-c', 'PUT');
    await sleep(1200);
    assert.equal((await status(follower, 'logs-c-copy'))['status'], 'REPLICATION NOT IN PROGRESS');
  });

  void it('bulk pause, resume and stop by pattern', async () => {
    const paused = await call<Json>(follower, `${R}/_bulk_pause`, 'POST', { pattern: 'logs-*' });
    assert.deepEqual(paused['indices'], ['logs-a-copy', 'logs-b-copy']);
    assert.equal((await status(follower, 'logs-a-copy'))['status'], 'PAUSED');
    await call(follower, `${R}/_bulk_resume`, 'POST', { pattern: 'logs-*' });
    await eventually('logs-a-copy syncing', statusIs(follower, 'logs-a-copy', 'SYNCING'));
    const stopped = await call<Json>(follower, `${R}/_bulk_stop`, 'POST', { pattern: 'logs-*' });
    assert.equal(stopped['acknowledged'], true);
    assert.equal((await status(follower, 'logs-b-copy'))['status'], 'STOPPED');
  });

  void it('use_roles: the follower role is required, and the leader must admit the leader role', async () => {
    await call(follower, '/_users/org.couchdb.user:fran', 'PUT', {
      name: 'fran',
      password: 'fran-pw',
      roles: ['follower_role', 'other_role'],
      type: 'user',
    });
    await call(leader, '/guarded', 'PUT');
    await call(leader, '/guarded/_security', 'PUT', {
      admins: { names: [], roles: [] },
      members: { names: [], roles: ['leader_role'] },
    });
    await call(leader, '/guarded/doc', 'PUT', { a: 1 });
    const fran = basicAuth('fran', 'fran-pw');
    /** fran starts guarded-f, with `use_roles` [leader role, follower role] when given. */
    const startAsFran = (roles?: [string, string]): Promise<JsonResponse<Json>> =>
      follower.request<Json>(`${R}/guarded-f/_start`, {
        method: 'PUT',
        auth: fran,
        body: {
          leader_alias: 'leader',
          leader_index: 'guarded',
          ...(roles === undefined
            ? {}
            : { use_roles: { leader_cluster_role: roles[0], follower_cluster_role: roles[1] } }),
        },
      });
    const noRoles = await startAsFran();
    assert.equal(noRoles.status, 403, noRoles.text);
    assert.equal((noRoles.json['error'] as Json)['type'], 'security_exception');
    const wrongLeaderRole = await startAsFran(['other_role', 'follower_role']);
    assert.equal(wrongLeaderRole.status, 403, wrongLeaderRole.text);
    // A role fran holds, but that no admin made a follower role (--follower-roles), grants nothing.
    const notAFollowerRole = await startAsFran(['leader_role', 'other_role']);
    assert.equal(notAFollowerRole.status, 403, notAFollowerRole.text);
    assert.match(notAFollowerRole.text, /not a follower role/);
    // System roles are every database's defaults, never replication roles.
    const systemRole = await startAsFran(['_admin', 'follower_role']);
    assert.equal(systemRole.status, 400, systemRole.text);
    // A follower named like a replicator database would run the leader's documents as jobs here.
    const replicatorDb = await follower.request<Json>(
      `${R}/${encodeURIComponent('evil/_replicator')}/_start`,
      {
        method: 'PUT',
        body: { leader_alias: 'leader', leader_index: 'guarded' },
      },
    );
    assert.equal(replicatorDb.status, 400, replicatorDb.text);
    assert.match(replicatorDb.text, /replicator database cannot be a follower/);
    const started = await startAsFran(['leader_role', 'follower_role']);
    assert.equal(started.status, 200, started.text);
    const s = await follower.request<Json>(`${R}/guarded-f/_status`, { auth: fran });
    assert.equal(s.status, 200, s.text);
    await eventually('guarded-f in sync', inSync(leader, 'guarded', follower, 'guarded-f'));
  });

  void it('leader_stats on the leader counts what followers read', async () => {
    const stats = await call<Json>(leader, `${R}/leader_stats`);
    assert.ok((stats['num_replicated_indices'] as number) >= 2, JSON.stringify(stats));
    const movies = (stats['index_stats'] as Record<string, { operations_read: number; bytes_read: number }>)[
      'movies'
    ];
    assert.ok(
      movies !== undefined && movies.operations_read >= 2500 && movies.bytes_read > 0,
      JSON.stringify(stats),
    );
  });
});

void describe('followers through faults and crashes', () => {
  let leader: DoppelProcess;
  let proxy: FaultProxy;

  before(async () => {
    leader = await DoppelProcess.start();
    proxy = await FaultProxy.start(leader.port);
  });

  after(async () => {
    await proxy?.close();
    await leader?.stop();
  });

  void it('recovers without loss after resets and a blackhole', async () => {
    const follower = await DoppelProcess.start({ args: FOLLOWER_ARGS });
    try {
      await registerRemote(follower, 'via-proxy', leader, proxy.url);
      await call(leader, '/faulty', 'PUT');
      await fill(leader, 'faulty', 500);
      await call(follower, `${R}/faulty-f/_start`, 'PUT', {
        leader_alias: 'via-proxy',
        leader_index: 'faulty',
      });
      await eventually('faulty-f in sync', inSync(leader, 'faulty', follower, 'faulty-f'));
      let writing = true;
      let written = 0;
      const writer = (async () => {
        while (writing) {
          await call(leader, '/faulty/_bulk_docs', 'POST', {
            docs: Array.from({ length: 10 }, (_, i) => ({
              _id: `w${String(written + i).padStart(6, '0')}`,
              n: written + i,
            })),
          });
          written += 10;
          await sleep(20);
        }
      })();
      await sleep(500);
      proxy.reset();
      await sleep(700);
      proxy.pass();
      await sleep(700);
      proxy.blackhole();
      await sleep(3000);
      proxy.pass();
      await sleep(500);
      writing = false;
      await writer;
      assert.ok(written > 100, `only ${written} writes`);
      await eventually(
        'faulty-f has every write',
        sameContents(leader, 'faulty', follower, 'faulty-f'),
        60_000,
      );
      await eventually('faulty-f in sync', inSync(leader, 'faulty', follower, 'faulty-f'), 30_000);
    } finally {
      await follower.stop();
    }
  });

  void it('resumes from its checkpoint after kill -9 of the follower node', async () => {
    const dataDir = makeTempDir('doppel-follower-');
    let follower = await DoppelProcess.start({ dataDir, args: FOLLOWER_ARGS });
    try {
      await registerRemote(follower, 'leader', leader);
      await call(leader, '/crashy', 'PUT');
      await fill(leader, 'crashy', 3000);
      await call(follower, `${R}/crashy-f/_start`, 'PUT', { leader_alias: 'leader', leader_index: 'crashy' });
      await eventually('crashy-f in sync', inSync(leader, 'crashy', follower, 'crashy-f'));
      await sleep(500); // a checkpoint after the bootstrap
      await fill(leader, 'crashy', 100, 'before-kill-');
      await sleep(100);
      await follower.kill('SIGKILL');
      await fill(leader, 'crashy', 100, 'after-kill-');
      follower = await DoppelProcess.start({ dataDir, args: FOLLOWER_ARGS });
      await eventually(
        'crashy-f complete after restart',
        sameContents(leader, 'crashy', follower, 'crashy-f'),
        30_000,
      );
      await eventually('crashy-f in sync', inSync(leader, 'crashy', follower, 'crashy-f'));
      const read = await operationsRead(follower, 'crashy-f');
      assert.ok(read >= 0 && read < 1000, `after the restart it read ${read} documents: it started over`);
      const put = await follower.request('/crashy-f/x', { method: 'PUT', body: { a: 1 } });
      assert.equal(put.status, 403, 'still read-only after the crash');
    } finally {
      await follower.stop();
    }
  });

  void it('a bootstrap copy cut by kill -9 continues after the last copied document', async () => {
    const dataDir = makeTempDir('doppel-follower-copy-');
    let follower = await DoppelProcess.start({ dataDir, args: FOLLOWER_ARGS });
    const total = 30_000;
    try {
      await registerRemote(follower, 'leader', leader);
      await call(leader, '/copied', 'PUT');
      await fill(leader, 'copied', total);
      // A conflict and a tombstone: the copy carries every leaf and deletions.
      await call(leader, '/copied/_bulk_docs', 'POST', {
        new_edits: false,
        docs: [{ _id: 'd000001', _rev: '1-ffffffffffffffffffffffffffffffff', other: 'branch' }],
      });
      const gone = await call<{ _rev: string }>(leader, '/copied/d000002');
      await call(leader, `/copied/d000002?rev=${gone._rev}`, 'DELETE');
      const missing = await leader.request('/no-such-db/_doppel_copy');
      assert.equal(missing.status, 404);
      await call(follower, `${R}/copied-f/_start`, 'PUT', { leader_alias: 'leader', leader_index: 'copied' });
      await eventually(
        'copied-f part way through its copy',
        async () => {
          const info = await follower.request<{ doc_count: number }>('/copied-f');
          const n = info.status === 200 ? info.json.doc_count : 0;
          if (n >= total - 1) throw new Error('the copy ended before the kill: nothing to resume');
          return n > 0 ? true : undefined;
        },
        30_000,
        2,
      );
      await follower.kill('SIGKILL');
      await fill(leader, 'copied', 100, 'after-kill-');
      follower = await DoppelProcess.start({ dataDir, args: FOLLOWER_ARGS });
      await eventually(
        'copied-f complete after restart',
        sameContents(leader, 'copied', follower, 'copied-f'),
        60_000,
      );
      await eventually('copied-f in sync', inSync(leader, 'copied', follower, 'copied-f'));
      const read = await operationsRead(follower, 'copied-f');
      assert.ok(read >= 0 && read < total, `after the restart it read ${read} documents: it started over`);
      const conflicted = await call<{ _conflicts?: string[] }>(follower, '/copied-f/d000001?conflicts=true');
      assert.equal(conflicted._conflicts?.length, 1, 'the conflicting leaf was copied');
      const put = await follower.request('/copied-f/x', { method: 'PUT', body: { a: 1 } });
      assert.equal(put.status, 403, 'read-only during and after the copy');
    } finally {
      await follower.stop();
    }
  });
});
