/**
 * Acceptance test of the foundation: PouchDB 9 from npm, unmodified,
 * replicates with a Doppel node in both directions and keeps a live two-way
 * sync, with generations, deletes, attachments and conflicts, and both sides
 * end up with the same winners, conflicts, bodies and attachments — the ones
 * a model of the workload predicts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DoppelProcess } from './support/doppel-process.js';
import {
  memoryPouch,
  remotePouch,
  type PouchDatabase,
  type ReplicationResult,
  type Sync,
} from './support/pouchdb.js';
import {
  assertMatchesModel,
  AWKWARD_IDS,
  differences,
  Model,
  Rng,
  Workload,
  type Leaf,
} from './support/workload.js';

/** Documents per one-shot direction; with the sync test the file writes 10,000+ documents. */
const ONE_SHOT_DOCS = 4000;
const SYNC_DOCS_PER_SIDE = 1000;

function assertClean(result: ReplicationResult, label: string): void {
  assert.equal(result.ok, true, `${label}: ok`);
  assert.equal(result.doc_write_failures, 0, `${label}: doc_write_failures`);
  assert.deepEqual(result.errors, [], `${label}: errors`);
}

/**
 * A typical history: creation, two rounds of edits, deletes, a few
 * resurrections, and conflict branches (live, longer, deleted, and on deleted
 * documents, where a live branch wins).
 */
async function richHistory(
  db: PouchDatabase,
  work: Workload,
  prefix: string,
  count: number,
): Promise<string[]> {
  const { rng } = work;
  const ids = await work.create(db, prefix, count, {
    attachmentShare: 0.06,
    extraIds: AWKWARD_IDS.map((s) => `${prefix}:${s}`),
  });
  await work.createDesignDocs(db, prefix);
  const edited = rng.sample(ids, Math.floor(ids.length * 0.4));
  await work.editMany(db, edited);
  await work.editMany(db, rng.sample(edited, Math.floor(edited.length * 0.4)));
  const deleted = rng.sample(ids, Math.floor(ids.length * 0.1));
  await work.remove(db, deleted);
  const resurrected = rng.sample(deleted, Math.floor(deleted.length * 0.1));
  await work.recreate(db, resurrected, { resurrected: true });
  const live = ids.filter((id) => !work.model.winner(id)[1].deleted);
  const conflicted = rng.sample(live, Math.floor(ids.length * 0.06));
  const third = Math.floor(conflicted.length / 3);
  await work.branch(db, conflicted.slice(0, third), { length: 1 });
  await work.branch(db, conflicted.slice(third, 2 * third), { length: 4 });
  await work.branch(db, conflicted.slice(2 * third), { length: 2, deleted: true });
  // Two branches on the same documents: several conflicts at once.
  await work.branch(db, conflicted.slice(0, 20), { length: 3 });
  // A live branch on deleted documents brings them back as the winner.
  const stillDeleted = deleted.filter((id) => work.model.winner(id)[1].deleted);
  await work.branch(db, stillDeleted.slice(0, 25), { length: 1 });
  return ids;
}

function syncStopped(sync: Sync): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error('live sync did not complete within 20 s of cancel()')),
      20_000,
    );
    sync.once('complete', () => {
      clearTimeout(timer);
      resolve();
    });
    sync.cancel();
  });
}

/** Waits until both databases hold exactly what the model says, or fails with the remaining differences. */
async function converge(
  a: PouchDatabase,
  b: PouchDatabase,
  model: Model,
  timeoutMs: number,
  label: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: string[] = [];
  for (;;) {
    const [da, db] = await Promise.all([differences(a, model), differences(b, model)]);
    last = [...da.map((d) => `local ${d}`), ...db.map((d) => `doppel ${d}`)];
    if (last.length === 0) return;
    if (Date.now() > deadline) break;
    await sleep(500);
  }
  assert.fail(
    `${label}: not converged after ${timeoutMs} ms; ${last.length} differences, e.g.\n${last.slice(0, 10).join('\n')}`,
  );
}

/** Waits until `db` reports, for each id, the winning rev the model predicts. */
async function delivered(
  db: PouchDatabase,
  model: Model,
  ids: readonly string[],
  timeoutMs: number,
  label: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let pending: string[] = [];
  for (;;) {
    const { rows } = await db.allDocs({ keys: ids });
    pending = rows.filter((row, i) => row.value?.rev !== model.winner(ids[i])[0]).map((row) => row.key);
    if (pending.length === 0) return;
    if (Date.now() > deadline) break;
    await sleep(200);
  }
  assert.fail(
    `${label}: ${pending.length} of ${ids.length} changes not delivered within ${timeoutMs} ms (e.g. ${pending.slice(0, 5).join(', ')})`,
  );
}

void describe('PouchDB 9 interop', () => {
  let node: DoppelProcess;

  before(async () => {
    node = await DoppelProcess.start();
  });

  after(async () => {
    // PouchDB's connections and cancelled live feeds must not hold up a graceful stop.
    const status = await node?.stop();
    assert.equal(status?.code, 0, `graceful stop (SIGTERM) exit status ${JSON.stringify(status)}`);
  });

  void it('Doppel → PouchDB one-shot replication, then an incremental one', async () => {
    const model = new Model();
    const work = new Workload(model, new Rng(1));
    const remote = remotePouch(node.authUrl('interop-pull'));
    const local = memoryPouch('pull');
    const ids = await richHistory(remote, work, 'pull', ONE_SHOT_DOCS);
    await assertMatchesModel(remote, model, 'doppel before replication');

    assertClean(await local.replicate.from(remote), 'pull');
    await assertMatchesModel(local, model, 'pouchdb after pull');

    // More history on the source; the next run resumes from its checkpoint.
    const changed = work.rng.sample(
      ids.filter((id) => !model.winner(id)[1].deleted),
      300,
    );
    await work.editMany(remote, changed.slice(0, 200));
    await work.remove(remote, changed.slice(200, 250));
    await work.branch(remote, changed.slice(250), { length: 2 });
    const second = await local.replicate.from(remote);
    assertClean(second, 'second pull');
    assert.ok(second.docs_read >= 300, `second pull read ${second.docs_read} docs`);
    assert.ok(
      second.docs_read < 1000,
      `second pull read ${second.docs_read} docs: it did not resume from its checkpoint`,
    );
    await assertMatchesModel(local, model, 'pouchdb after second pull');
    await assertMatchesModel(remote, model, 'doppel after second pull');
    await local.destroy();
  });

  void it('PouchDB → Doppel one-shot replication, then an incremental one', async () => {
    const model = new Model();
    const work = new Workload(model, new Rng(2));
    const local = memoryPouch('push');
    const remote = remotePouch(node.authUrl('interop-push'));
    const ids = await richHistory(local, work, 'push', ONE_SHOT_DOCS);
    await assertMatchesModel(local, model, 'pouchdb before replication');

    assertClean(await local.replicate.to(remote), 'push');
    await assertMatchesModel(remote, model, 'doppel after push');

    const changed = work.rng.sample(
      ids.filter((id) => !model.winner(id)[1].deleted),
      300,
    );
    await work.editMany(local, changed.slice(0, 200));
    await work.remove(local, changed.slice(200, 250));
    await work.branch(local, changed.slice(250), { length: 2 });
    const second = await local.replicate.to(remote);
    assertClean(second, 'second push');
    assert.ok(second.docs_written >= 300, `second push wrote ${second.docs_written} docs`);
    assert.ok(
      second.docs_read < 1000,
      `second push read ${second.docs_read} docs: it did not resume from its checkpoint`,
    );
    await assertMatchesModel(remote, model, 'doppel after second push');
    await assertMatchesModel(local, model, 'pouchdb after second push');
    await local.destroy();
  });

  void it('live two-way sync: conflicting edits made apart, then changes made while it runs', async (t) => {
    const model = new Model();
    const work = new Workload(model, new Rng(3));
    const local = memoryPouch('sync');
    const remote = remotePouch(node.authUrl('interop-sync'));
    const localIds = await work.create(local, 'sync-local', SYNC_DOCS_PER_SIDE, { attachmentShare: 0.05 });
    const remoteIds = await work.create(remote, 'sync-remote', SYNC_DOCS_PER_SIDE, { attachmentShare: 0.05 });
    await work.editMany(local, work.rng.sample(localIds, 200));
    await work.editMany(remote, work.rng.sample(remoteIds, 200));
    await work.remove(remote, work.rng.sample(remoteIds, 50));

    const failures: unknown[] = [];
    const watch = (sync: Sync): Sync =>
      sync
        .on('denied', (err) => failures.push({ denied: err }))
        .on('error', (err) => failures.push({ error: err }));

    let sync = watch(local.sync(remote, { live: true, retry: true }));
    // A failed assertion must not leave a live sync retrying forever.
    t.after(() => sync.cancel());
    await converge(local, remote, model, 90_000, 'first live sync');
    await syncStopped(sync);

    // Apart: the same documents edited differently on both sides.
    const all = [...localIds, ...remoteIds].filter(
      (id) => !model.winner(id)[1].deleted && model.leafCount(id) === 1,
    );
    const picked = work.rng.sample(all, 260);
    const bothEdit = picked.slice(0, 150);
    const deleteLocalEditRemote = picked.slice(150, 190);
    const editLocalDeleteRemote = picked.slice(190, 230);
    const twiceLocalOnceRemote = picked.slice(230);
    const base = new Map(picked.map((id) => [id, model.winner(id)]));
    const deleted = (): Leaf => ({ deleted: true, body: {}, atts: new Map() });
    const fork = (
      db: PouchDatabase,
      ids: readonly string[],
      change: 'edit' | 'delete',
      side: string,
    ): Promise<void> =>
      work.update(
        db,
        ids,
        (id, leaf) => (change === 'delete' ? deleted() : work.edit(id, leaf, { side })),
        base,
      );
    await fork(local, bothEdit, 'edit', 'local');
    await fork(remote, bothEdit, 'edit', 'remote');
    await fork(local, deleteLocalEditRemote, 'delete', 'local');
    await fork(remote, deleteLocalEditRemote, 'edit', 'remote');
    await fork(local, editLocalDeleteRemote, 'edit', 'local');
    await fork(remote, editLocalDeleteRemote, 'delete', 'remote');
    await fork(local, twiceLocalOnceRemote, 'edit', 'local');
    await work.editMany(local, twiceLocalOnceRemote, { again: true });
    await fork(remote, twiceLocalOnceRemote, 'edit', 'remote');
    const conflicted = picked.filter((id) => model.leafCount(id) === 2);
    assert.equal(conflicted.length, picked.length, 'every picked document has two leaves in the model');

    sync = watch(local.sync(remote, { live: true, retry: true }));
    await converge(local, remote, model, 90_000, 'sync after conflicting edits');

    // While it runs: new documents and edits on each side, and conflict resolutions.
    const newLocal = await work.create(local, 'late-local', 150, { attachmentShare: 0.1 });
    const newRemote = await work.create(remote, 'late-remote', 150, { attachmentShare: 0.1 });
    const editedLocal = work.rng.sample(
      localIds.filter((id) => !picked.includes(id) && !model.winner(id)[1].deleted),
      50,
    );
    const editedRemote = work.rng.sample(
      remoteIds.filter((id) => !picked.includes(id) && !model.winner(id)[1].deleted),
      50,
    );
    await work.editMany(local, editedLocal, { late: 'local' });
    await work.editMany(remote, editedRemote, { late: 'remote' });
    await delivered(remote, model, [...newLocal, ...editedLocal], 30_000, 'PouchDB → Doppel while live');
    await delivered(local, model, [...newRemote, ...editedRemote], 30_000, 'Doppel → PouchDB while live');

    // Resolve conflicts on Doppel by deleting the losing live leaf; PouchDB must see the result.
    const resolvable = bothEdit.slice(0, 40);
    const losers = resolvable.map((id) => model.expected(id).conflicts[0]);
    const results = await remote.bulkDocs(
      resolvable.map((id, i) => ({ _id: id, _rev: losers[i], _deleted: true })),
    );
    results.forEach((r, i) => {
      assert.equal(r.ok, true, `resolving ${resolvable[i]}: ${JSON.stringify(r)}`);
      model.revised(resolvable[i], losers[i], r.rev!, { deleted: true, body: {}, atts: new Map() });
    });
    await converge(local, remote, model, 30_000, 'conflict resolutions while live');
    await syncStopped(sync);

    assert.deepEqual(failures, [], 'the live syncs reported no denied writes or errors');
    await assertMatchesModel(local, model, 'pouchdb after sync');
    await assertMatchesModel(remote, model, 'doppel after sync');
    await local.destroy();
  });
});
