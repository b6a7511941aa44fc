/**
 * The replication job in-process with two HTTP endpoints against real peers
 * in separate processes: a Doppel node and a pouchdb-server. One-shot
 * replications both ways with updates, deletes, an attachment and a conflict;
 * resuming from the checkpoint; doc_ids and selector filters; Doppel → Doppel
 * copies (pull and push) with the target user's rights.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChangesFilterOptions, ReplicationEndpoint } from '../src/engines/replication/endpoint.js';
import { ReplicationJob, type ReplicationResult } from '../src/engines/replication/replication-job.js';
import { ErrorKind } from '../src/errors.js';
import { HttpEndpoint } from '../src/services/replicator/http-endpoint.js';
import { DoppelProcess, fetchJson } from './support/doppel-process.js';
import { PouchServer } from './support/pouchdb-server.js';

const DOCS = 300;

interface Peer {
  url: string;
  auth: string | null;
  endpoint(db: string): ReplicationEndpoint;
}

async function req<T = unknown>(peer: Peer, path: string, method = 'GET', body?: unknown): Promise<T> {
  const res = await fetchJson<T>(`${peer.url}${path}`, {
    method,
    auth: peer.auth,
    ...(body === undefined ? {} : { body }),
  });
  assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${res.text}`);
  return res.json;
}

async function replicate(
  source: ReplicationEndpoint,
  target: ReplicationEndpoint,
  filter: ChangesFilterOptions = { kind: 'none' },
): Promise<Extract<ReplicationResult, { status: 'completed' }>> {
  const job = new ReplicationJob(source, target, { createTarget: true, filter, workerBatchSize: 50 });
  const result = await job.run(new AbortController().signal);
  if (result.status !== 'completed')
    assert.fail(`replication ${result.status}: ${result.status === 'failed' ? result.error.message : ''}`);
  return result;
}

/** id → sorted leaf revs (+ deleted flag of the winner), from `_changes?style=all_docs`. */
async function leafMap(peer: Peer, db: string): Promise<Map<string, string>> {
  const body = await req<{ results: { id: string; changes: { rev: string }[]; deleted?: boolean }[] }>(
    peer,
    `/${db}/_changes?style=all_docs`,
  );
  const out = new Map<string, string>();
  for (const row of body.results) {
    const revs = row.changes.map((c) => c.rev).sort();
    out.set(row.id, `${revs.join(',')}${row.deleted === true ? ' deleted' : ''}`);
  }
  return out;
}

async function assertSameDocs(a: Peer, adb: string, b: Peer, bdb: string): Promise<void> {
  const [la, lb] = await Promise.all([leafMap(a, adb), leafMap(b, bdb)]);
  assert.equal(la.size, lb.size, 'document counts');
  for (const [id, leaves] of la) assert.equal(lb.get(id), leaves, `leaves of ${id}`);
  for (const id of ['conflicted', 'with-att', 'd010', 'd100']) {
    const [da, dbb] = await Promise.all([
      req<Record<string, unknown>>(a, `/${adb}/${id}?conflicts=true`),
      req<Record<string, unknown>>(b, `/${bdb}/${id}?conflicts=true`),
    ]);
    assert.equal(dbb['_rev'], da['_rev'], `winner of ${id}`);
    assert.deepEqual(dbb['_conflicts'], da['_conflicts'], `conflicts of ${id}`);
  }
  const att = await fetchJson(`${b.url}/${bdb}/with-att/hello.txt`, { auth: b.auth });
  assert.equal(att.text, 'hello, attachment');
}

void describe('replication core (HTTP endpoints, real peers)', () => {
  let doppel: DoppelProcess;
  let pouch: PouchServer;
  let dp: Peer;
  let pp: Peer;
  const timings: Record<string, number> = {};

  before(async () => {
    [doppel, pouch] = await Promise.all([DoppelProcess.start(), PouchServer.start()]);
    const d = doppel;
    dp = {
      url: d.url,
      auth: d.adminAuthHeader,
      endpoint: (db) =>
        new HttpEndpoint({
          url: `${d.url}/${db}`,
          auth: { basic: { username: d.adminUser, password: d.adminPassword } },
        }),
    };
    const p = pouch;
    pp = { url: p.url, auth: null, endpoint: (db) => new HttpEndpoint(`${p.url}/${db}`) };

    // The source: DOCS documents, updates, deletes, an attachment and a conflict.
    await req(dp, '/src', 'PUT');
    const docs = Array.from({ length: DOCS }, (_, i) => ({
      _id: `d${String(i).padStart(3, '0')}`,
      n: i,
      kind: i % 2 === 0 ? 'even' : 'odd',
    }));
    const written = await req<{ id: string; rev: string }[]>(dp, '/src/_bulk_docs', 'POST', { docs });
    const updates = written.slice(0, 60).map((w, i) => ({ _id: w.id, _rev: w.rev, n: i, kind: 'odd', v: 2 }));
    const updated = await req<{ id: string; rev: string }[]>(dp, '/src/_bulk_docs', 'POST', {
      docs: updates,
    });
    const deletes = updated.slice(40, 60).map((w) => ({ _id: w.id, _rev: w.rev, _deleted: true }));
    await req(dp, '/src/_bulk_docs', 'POST', { docs: deletes });
    await req(dp, '/src/with-att', 'PUT', {
      kind: 'odd',
      _attachments: {
        'hello.txt': {
          content_type: 'text/plain',
          data: Buffer.from('hello, attachment').toString('base64'),
        },
      },
    });
    await req(dp, '/src/_bulk_docs', 'POST', {
      new_edits: false,
      docs: [
        { _id: 'conflicted', _rev: `1-${'a'.repeat(32)}`, side: 'a', kind: 'odd' },
        { _id: 'conflicted', _rev: `1-${'b'.repeat(32)}`, side: 'b', kind: 'odd' },
      ],
    });
  });

  after(async () => {
    await Promise.all([doppel?.stop(), pouch?.stop()]);
    process.stderr.write(`replication-core timings (ms): ${JSON.stringify(timings)}\n`);
  });

  void it('replicates Doppel → pouchdb-server and resumes from the checkpoint', async () => {
    let t = Date.now();
    const first = await replicate(dp.endpoint('src'), pp.endpoint('tgt'));
    timings['doppel→pouch'] = Date.now() - t;
    assert.equal(first.stats.doc_write_failures, 0);
    assert.equal(first.stats.docs_written, DOCS + 2 + 1);
    assert.equal(first.history.length, 1);
    await assertSameDocs(dp, 'src', pp, 'tgt');

    // Both sides hold the same checkpoint, in CouchDB's format.
    const [cs, ct] = await Promise.all([
      req<Record<string, unknown>>(dp, `/src/_local/${first.ids.baseId}`),
      req<Record<string, unknown>>(pp, `/tgt/_local/${first.ids.baseId}`),
    ]);
    assert.equal(cs['session_id'], first.sessionId);
    assert.equal(ct['session_id'], first.sessionId);
    assert.equal(cs['replication_id_version'], 4);
    assert.deepEqual(cs['history'], ct['history']);

    t = Date.now();
    const again = await replicate(dp.endpoint('src'), pp.endpoint('tgt'));
    timings['doppel→pouch again'] = Date.now() - t;
    assert.equal(again.stats.docs_read, 0);
    assert.equal(again.stats.revisions_checked, 0);

    await req(dp, '/src/_bulk_docs', 'POST', {
      docs: [
        { _id: 'new1' },
        { _id: 'new2' },
        { _id: 'd000', _deleted: true, _rev: (await leafMap(dp, 'src')).get('d000') },
      ],
    });
    const third = await replicate(dp.endpoint('src'), pp.endpoint('tgt'));
    assert.equal(third.stats.docs_read, 3);
    assert.equal(third.stats.docs_written, 3);
    assert.equal(third.history.length, 2, 'a resumed run adds a history entry');
    assert.equal(third.history[0]?.docs_written, DOCS + 3 + 3, 'history counters are cumulative');
    await assertSameDocs(dp, 'src', pp, 'tgt');
  });

  void it('copies Doppel → Doppel over HTTP into an empty database, then follows changes', async () => {
    const first = await replicate(dp.endpoint('src'), dp.endpoint('copied'));
    assert.equal(first.stats.doc_write_failures, 0);
    await assertSameDocs(dp, 'src', dp, 'copied');
    // Copied (_doppel_copy → _doppel_restore): written in id order, unlike the source's changes.
    const ids = (await req<{ results: { id: string }[] }>(dp, '/copied/_changes')).results.map((r) => r.id);
    assert.deepEqual(ids, [...ids].sort());
    const srcIds = (await req<{ results: { id: string }[] }>(dp, '/src/_changes')).results.map((r) => r.id);
    assert.notDeepEqual(srcIds, [...srcIds].sort());
    const again = await replicate(dp.endpoint('src'), dp.endpoint('copied'));
    assert.equal(again.stats.revisions_checked, 0, 'the copy checkpointed at its seq');

    // The restore door: only its own content type, only copy batches, only for members.
    const restore = (type: string, body: Buffer, auth = dp.auth): Promise<{ status: number; text: string }> =>
      fetch(`${dp.url}/copied/_doppel_restore`, {
        method: 'POST',
        headers: { 'content-type': type, ...(auth === null ? {} : { authorization: auth }) },
        body,
      }).then(async (r) => ({ status: r.status, text: await r.text() }));
    assert.equal((await restore('application/json', Buffer.from('{}'))).status, 415);
    const garbage = await restore('application/x-doppel-database-copy', Buffer.from('not a copy'));
    assert.equal(garbage.status, 400, garbage.text);
    assert.equal((await restore('application/x-doppel-database-copy', Buffer.alloc(0), null)).status, 401);
    assert.deepEqual(await leafMap(dp, 'copied'), await leafMap(dp, 'src'));
  });

  void it("pushes into a Doppel database by the target user's rights: a member's copy, a stranger's refusal", async () => {
    await req(dp, '/_users/org.couchdb.user:pusher', 'PUT', {
      name: 'pusher',
      password: 'pusher-password',
      roles: [],
      type: 'user',
    });
    for (const [db, member] of [
      ['members-only', 'pusher'],
      ['strangers', 'someone-else'],
    ] as const) {
      await req(dp, `/${db}`, 'PUT');
      await req(dp, `/${db}/_security`, 'PUT', { members: { names: [member], roles: [] } });
    }
    const as = (db: string): HttpEndpoint =>
      new HttpEndpoint({
        url: `${doppel.url}/${db}`,
        auth: { basic: { username: 'pusher', password: 'pusher-password' } },
      });
    // A member: copied, except the design document a member may not write.
    await req(dp, '/pushed', 'PUT');
    const docs = [
      { _id: '_design/app', views: {} },
      ...Array.from({ length: 40 }, (_, i) => ({ _id: `p${39 - i}` })),
    ];
    for (const doc of docs) await req(dp, `/pushed/${doc._id}`, 'PUT', doc);
    const copied = await new ReplicationJob(dp.endpoint('pushed'), as('members-only')).run(
      new AbortController().signal,
    );
    assert.equal(copied.status, 'completed');
    assert.equal(copied.stats.doc_write_failures, 1);
    const ids = (await req<{ results: { id: string }[] }>(dp, '/members-only/_changes')).results.map(
      (r) => r.id,
    );
    assert.deepEqual(ids, [...ids].sort(), 'copied in id order');
    const want = await leafMap(dp, 'pushed');
    want.delete('_design/app');
    assert.deepEqual(await leafMap(dp, 'members-only'), want);
    // Not a member: refused, in _bulk_docs' words, and nothing written.
    const refused = await new ReplicationJob(dp.endpoint('pushed'), as('strangers')).run(
      new AbortController().signal,
    );
    assert.equal(refused.status, 'failed');
    assert.equal(refused.status === 'failed' && refused.error.kind, ErrorKind.Forbidden);
    assert.equal((await leafMap(dp, 'strangers')).size, 0);
  });

  void it('replicates pouchdb-server → Doppel', async () => {
    const t = Date.now();
    const result = await replicate(pp.endpoint('tgt'), dp.endpoint('back'));
    timings['pouch→doppel'] = Date.now() - t;
    assert.equal(result.stats.doc_write_failures, 0);
    await assertSameDocs(pp, 'tgt', dp, 'back');
    const again = await replicate(pp.endpoint('tgt'), dp.endpoint('back'));
    assert.equal(again.stats.docs_read, 0);
  });

  void it('filters by doc_ids', async () => {
    const ids = ['d001', 'd002', 'conflicted', 'with-att'];
    const result = await replicate(dp.endpoint('src'), pp.endpoint('ids'), { kind: 'doc_ids', docIds: ids });
    assert.equal(result.stats.doc_write_failures, 0);
    const all = await req<{ rows: { id: string }[] }>(pp, '/ids/_all_docs');
    assert.deepEqual(all.rows.map((r) => r.id).sort(), [...ids].sort());
    const conflicted = await req<Record<string, unknown>>(pp, '/ids/conflicted?conflicts=true');
    assert.equal((conflicted['_conflicts'] as unknown[]).length, 1);
  });

  void it('filters by selector', async () => {
    const t = Date.now();
    const result = await replicate(dp.endpoint('src'), pp.endpoint('sel'), {
      kind: 'selector',
      selector: { kind: 'odd' },
    });
    timings['selector'] = Date.now() - t;
    assert.equal(result.stats.doc_write_failures, 0);
    const found = await req<{ docs: { _id: string }[] }>(dp, '/src/_find', 'POST', {
      selector: { kind: 'odd' },
      fields: ['_id'],
      limit: 10_000,
    });
    const all = await req<{ rows: { id: string; doc: { kind?: string } }[] }>(
      pp,
      '/sel/_all_docs?include_docs=true',
    );
    assert.ok(all.rows.every((r) => r.doc.kind === 'odd'));
    assert.deepEqual(all.rows.map((r) => r.id).sort(), found.docs.map((d) => d._id).sort());
  });

  void it('runs continuously until aborted, with checkpoints', async () => {
    await req(dp, '/live', 'PUT');
    const job = new ReplicationJob(dp.endpoint('live'), pp.endpoint('live'), {
      continuous: true,
      createTarget: true,
      checkpointInterval: 200,
      heartbeatMs: 500,
    });
    const controller = new AbortController();
    const running = job.run(controller.signal);
    await req(dp, '/live/a', 'PUT', { n: 1 });
    const deadline = Date.now() + 10_000;
    const arrived = async (id: string): Promise<void> => {
      while ((await fetchJson(`${pp.url}/live/${id}`)).status !== 200) {
        assert.ok(Date.now() < deadline, `${id} did not arrive`);
        await sleep(50);
      }
    };
    await arrived('a');
    await req(dp, '/live/b', 'PUT', { n: 2 });
    await arrived('b');
    await sleep(400);
    assert.equal(job.stats.docs_written, 2);
    assert.notEqual(job.stats.checkpointed_source_seq, 0);
    controller.abort();
    const result = await running;
    assert.equal(result.status, 'stopped');
    assert.equal(job.ids?.jobId, `${job.ids?.baseId ?? ''}+continuous+create_target`);
  });
});
