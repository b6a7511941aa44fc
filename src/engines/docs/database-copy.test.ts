import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DoppelError, ErrorKind } from '../../errors.js';
import { Storage } from '../../storage/environment.js';
import { Journal, type RetentionLimits } from '../journal/journal.js';
import type { AttachmentMeta } from '../journal/journal-entry.js';
import type { CopiedDoc, CopyGuard } from './database-copy.js';
import { md5Digest, parseDocEdit } from './doc-input.js';
import { decodeRevision, encodeRevision } from './doc-records.js';
import { DocumentStore, type WriteResult } from './document-store.js';
import { leaves, revPos, type RevTree } from './rev-tree.js';
import { changesQuery } from '../../../test/support/changes-query.js';

// ---- environment -----------------------------------------------------------------

const LIMITS: RetentionLimits = { maxBytes: 1 << 30, maxAgeMs: 1e9, backlogBytes: 1 << 26 };
const MAX_BODY = 1 << 20;

interface Env {
  readonly dir: string;
  readonly storage: Storage;
  readonly journal: Journal;
  readonly store: DocumentStore;
}

let env: Env;
before(() => {
  const dir = mkdtempSync(join(tmpdir(), 'doppel-copy-test-'));
  const storage = new Storage({ path: dir, durability: 'flush', maxUnsyncedMs: 1000 });
  const journal = new Journal(storage, LIMITS);
  env = { dir, storage, journal, store: new DocumentStore(storage, journal, { defaultRevsLimit: 1000 }) };
});
after(async () => {
  await env.storage.close();
  rmSync(env.dir, { recursive: true, force: true });
});

let dbCounter = 0;
async function newDb(): Promise<string> {
  const name = `copy${++dbCounter}`;
  await env.store.create(name, 'database', { admins: { names: [], roles: [] } });
  return name;
}

// ---- helpers -----------------------------------------------------------------------

type Json = Record<string, unknown>;

async function write(db: string, docs: readonly unknown[], newEdits: boolean): Promise<WriteResult[]> {
  return env.store.bulkWrite(
    db,
    docs.map((d) => parseDocEdit(d, { newEdits })),
    { newEdits },
  );
}

async function put(db: string, doc: Json): Promise<string> {
  const [r] = await write(db, [doc], true);
  assert.ok(r !== undefined && r.ok, `put ${JSON.stringify(doc)}: ${JSON.stringify(r)}`);
  return r.rev;
}

async function graft(db: string, doc: Json): Promise<void> {
  const [r] = await write(db, [doc], false);
  assert.ok(r !== undefined && r.ok, `graft ${JSON.stringify(doc)}: ${JSON.stringify(r)}`);
}

/** `_revisions` for a path of full revs, newest first. */
const revisions = (...path: string[]): { start: number; ids: string[] } => ({
  start: revPos(path[0]),
  ids: path.map((r) => r.slice(r.indexOf('-') + 1)),
});

const b64 = (s: string): string => Buffer.from(s).toString('base64');

function counts(db: string): { docs: number; deleted: number; seq: number } {
  const i = env.store.info(db);
  return { docs: i.doc_count, deleted: i.doc_del_count, seq: i.update_seq };
}

/** Every leaf rendered (with attachment data inline), sorted by rev. */
function leafDocs(db: string, id: string): Json[] {
  return env.store
    .openRevs(db, id, 'all', false, { attachments: true })
    .map((r) => {
      assert.ok('ok' in r, `${id}: ${JSON.stringify(r)}`);
      return JSON.parse(r.ok) as Json;
    })
    .sort((a, b) => String(a['_rev']).localeCompare(String(b['_rev'])));
}

/**
 * What a copy carries of a tree: every revision's parent and every leaf's
 * flags. Non-leaf revisions arrive as a replication grafts them (ancestors on
 * a path, without body or deletion flag), so their flags are left out.
 */
function treeShape(t: RevTree | undefined): Record<string, [string | null, number]> {
  assert.ok(t !== undefined);
  const ls = new Set(leaves(t));
  const out: Record<string, [string | null, number]> = {};
  for (const rev of Object.keys(t)) {
    const [parent, flags] = t[rev];
    out[rev] = [parent, ls.has(rev) ? flags : 0];
  }
  return out;
}

/** The attachment bodies a batch of copied documents refers to, read from the copy. */
function attachmentsOf(
  docs: readonly CopiedDoc[],
  read: (digest: string) => Buffer | undefined,
): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const doc of docs) {
    for (const leaf of doc.leaves) {
      for (const meta of Object.values(decodeRevision(leaf.stored).a ?? {})) {
        const bytes = read(meta.digest);
        assert.ok(bytes !== undefined, `the copy holds ${meta.digest} of ${doc.id}`);
        out.set(meta.digest, Buffer.from(bytes));
      }
    }
  }
  return out;
}

/** The ids a copy of `db` after `afterId` yields. */
function copiedIds(db: string, afterId?: string): string[] {
  const copy = env.store.openCopy(db, afterId);
  try {
    return [...copy.docs()].map((d) => d.id);
  } finally {
    copy.close();
  }
}

/**
 * Copies `src` into `dst` in batches of `batch` documents (as a follower's
 * bootstrap does), from after `afterId`. Returns every write result.
 */
async function copyInto(
  src: string,
  dst: string,
  options: { afterId?: string; batch?: number; stopAfter?: number } = {},
): Promise<WriteResult[]> {
  const copy = env.store.openCopy(src, options.afterId);
  const guard: CopyGuard = { failed: false };
  const results: WriteResult[] = [];
  let taken = 0;
  try {
    let pending: CopiedDoc[] = [];
    const flush = async (): Promise<void> => {
      if (pending.length === 0) return;
      const atts = attachmentsOf(pending, (d) => copy.attachment(d));
      results.push(...(await env.store.restoreCopy(dst, pending, atts, MAX_BODY, guard, true)));
      pending = [];
    };
    for (const doc of copy.docs()) {
      if (options.stopAfter !== undefined && taken >= options.stopAfter) break;
      // The copy's buffers are only valid in its transaction: keep our own.
      pending.push({ id: doc.id, leaves: doc.leaves.map((l) => ({ ...l, stored: Buffer.from(l.stored) })) });
      taken++;
      if (pending.length >= (options.batch ?? 1000)) await flush();
    }
    await flush();
  } finally {
    copy.close();
  }
  assert.equal(guard.failed, false);
  return results;
}

/** A copied document with one leaf, built by hand. */
function handDoc(
  id: string,
  path: string[],
  stored: { b: string; a?: Record<string, AttachmentMeta> } | Buffer,
  deleted = false,
): CopiedDoc {
  return {
    id,
    leaves: [{ path, deleted, stored: Buffer.isBuffer(stored) ? stored : encodeRevision(stored) }],
  };
}

// ---- a source database with every kind of document ----------------------------------

interface Source {
  readonly db: string;
  readonly ids: string[];
  readonly attBytes: Buffer;
}

async function fillSource(): Promise<Source> {
  const db = await newDb();
  const ids: string[] = [];
  // Plain documents, some edited.
  for (let i = 0; i < 8; i++) {
    const id = `plain-${i}`;
    let rev = await put(db, { _id: id, n: i, nested: { list: [i, 'x', null, true] } });
    for (let k = 0; k < i % 3; k++) rev = await put(db, { _id: id, _rev: rev, n: i, edit: k });
    ids.push(id);
  }
  // Two conflicting live leaves over a shared ancestor.
  await graft(db, {
    _id: 'conflicted',
    _rev: '2-aaaa',
    _revisions: revisions('2-aaaa', '1-root'),
    side: 'a',
  });
  await graft(db, {
    _id: 'conflicted',
    _rev: '3-bbbb',
    _revisions: revisions('3-bbbb', '2-bbbb', '1-root'),
    side: 'b',
  });
  ids.push('conflicted');
  // A live leaf and a deleted conflict.
  await graft(db, { _id: 'half-deleted', _rev: '1-live', v: 'live' });
  await graft(db, {
    _id: 'half-deleted',
    _rev: '2-dead',
    _revisions: revisions('2-dead', '1-gone'),
    _deleted: true,
  });
  ids.push('half-deleted');
  // A tombstone, with a body kept on its deletion.
  const t1 = await put(db, { _id: 'tombstone', v: 1 });
  await put(db, { _id: 'tombstone', _rev: t1, _deleted: true, why: 'removed' });
  ids.push('tombstone');
  // Deleted and recreated: the deleted revision is not a leaf.
  const d1 = await put(db, { _id: 'reborn', v: 1 });
  await put(db, { _id: 'reborn', _rev: d1, _deleted: true });
  await put(db, { _id: 'reborn', v: 'again' });
  ids.push('reborn');
  // A design document.
  await put(db, {
    _id: '_design/app',
    language: 'javascript',
    views: { byN: { map: 'function (doc) { emit(doc.n, null); }' } },
  });
  ids.push('_design/app');
  // Attachments: one document with two, a conflict leaf sharing one of them, and an
  // attachment on a document edited since (the stub keeps it).
  const attBytes = Buffer.from([0, 1, 2, 250, 251, 252, 255, ...Buffer.from('binary attachment')]);
  const a1 = await put(db, {
    _id: 'with-att',
    _attachments: {
      'bin.dat': { content_type: 'application/octet-stream', data: attBytes.toString('base64') },
      'note.txt': { content_type: 'text/plain', data: b64('hello attachment') },
    },
  });
  await put(db, { _id: 'with-att', _rev: a1, edited: true, _attachments: { 'bin.dat': { stub: true } } });
  await graft(db, {
    _id: 'with-att',
    _rev: '2-zzzz',
    _revisions: revisions('2-zzzz', a1),
    branch: true,
    _attachments: { 'other.txt': { content_type: 'text/plain', data: b64('hello attachment') } },
  });
  ids.push('with-att');
  // Ids outside ASCII and in the body.
  for (const id of ['émile', '日本語', '😀-smile']) {
    await put(db, { _id: id, text: `ünïcødé ${id}` });
    ids.push(id);
  }
  return { db, ids, attBytes };
}

const utf8Order = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

// ---- tests -------------------------------------------------------------------------

void describe('database copy: openCopy → restoreCopy', () => {
  void it('reproduces every document, revision tree, leaf body, counter and attachment', async () => {
    const src = await fillSource();
    const dst = await newDb();
    const before = counts(src.db);

    const copy = env.store.openCopy(src.db, undefined);
    assert.equal(copy.seq, before.seq);
    assert.equal(copy.docCount, before.docs);
    assert.equal(copy.delCount, before.deleted);
    copy.close();

    const results = await copyInto(src.db, dst, { batch: 4 });
    for (const r of results) assert.ok(r.ok, JSON.stringify(r));
    // One result per leaf: two for each conflicted document.
    assert.equal(results.length, src.ids.length + 3);

    const after = counts(dst);
    assert.deepEqual(
      { docs: after.docs, deleted: after.deleted },
      { docs: before.docs, deleted: before.deleted },
    );
    assert.equal(before.docs, src.ids.length - 1);
    assert.equal(before.deleted, 1);
    assert.deepEqual(counts(src.db), before, 'the source is unchanged');

    for (const id of src.ids) {
      const t = env.store.tree(dst, id);
      assert.ok(t !== undefined, `${id} was copied`);
      assert.deepEqual(treeShape(t), treeShape(env.store.tree(src.db, id)), `tree of ${id}`);
      assert.deepEqual(leafDocs(dst, id), leafDocs(src.db, id), `leaves of ${id}`);
    }
    // Spot checks that do not lean on the comparisons above.
    assert.equal(leaves(env.store.tree(dst, 'conflicted')!).length, 2);
    assert.deepEqual(JSON.parse(env.store.get(dst, 'conflicted', undefined, {})), {
      _id: 'conflicted',
      _rev: '3-bbbb',
      side: 'b',
    });
    assert.deepEqual(JSON.parse(env.store.get(dst, 'half-deleted', '2-dead', {})), {
      _id: 'half-deleted',
      _rev: '2-dead',
      _deleted: true,
    });
    assert.throws(
      () => env.store.get(dst, 'tombstone', undefined, {}),
      (err: unknown) =>
        err instanceof DoppelError && err.kind === ErrorKind.NotFound && err.reason === 'deleted',
    );
    const [tombRev] = leaves(env.store.tree(dst, 'tombstone')!);
    assert.deepEqual(JSON.parse(env.store.get(dst, 'tombstone', tombRev, {})), {
      _id: 'tombstone',
      _rev: tombRev,
      why: 'removed',
      _deleted: true,
    });
    assert.deepEqual((JSON.parse(env.store.get(dst, '_design/app', undefined, {})) as Json)['views'], {
      byN: { map: 'function (doc) { emit(doc.n, null); }' },
    });

    // The attachment bodies are stored in the target database itself.
    assert.deepEqual(env.store.readAttachmentBytes(dst, md5Digest(src.attBytes)), src.attBytes);
    assert.deepEqual(
      env.store.readAttachmentBytes(dst, md5Digest(Buffer.from('hello attachment'))),
      Buffer.from('hello attachment'),
    );
    const inline = leafDocs(dst, 'with-att').map((d) => d['_attachments'] as Record<string, Json>);
    const bin = inline.find((a) => 'bin.dat' in a)?.['bin.dat'];
    assert.ok(bin !== undefined);
    assert.equal(Buffer.from(String(bin['data']), 'base64').compare(src.attBytes), 0);
  });

  void it('yields documents in id order, each leaf with its full ancestry and stored bytes', async () => {
    const src = await fillSource();
    const copy = env.store.openCopy(src.db, undefined);
    try {
      const docs = [...copy.docs()];
      const ids = docs.map((d) => d.id);
      assert.deepEqual(ids, [...src.ids].sort(utf8Order));
      const conflicted = docs.find((d) => d.id === 'conflicted')!;
      assert.deepEqual(conflicted.leaves.map((l) => l.path).sort(), [
        ['2-aaaa', '1-root'],
        ['3-bbbb', '2-bbbb', '1-root'],
      ]);
      const half = docs.find((d) => d.id === 'half-deleted')!;
      assert.deepEqual(half.leaves.map((l) => [l.path[0], l.deleted]).sort(), [
        ['1-live', false],
        ['2-dead', true],
      ]);
      const tomb = docs.find((d) => d.id === 'tombstone')!;
      assert.equal(tomb.leaves.length, 1);
      assert.equal(tomb.leaves[0].deleted, true);
      assert.deepEqual(JSON.parse(decodeRevision(tomb.leaves[0].stored).b), { why: 'removed' });
      const plain = docs.find((d) => d.id === 'plain-2')!;
      assert.equal(plain.leaves[0].path.length, 3);
      assert.deepEqual(JSON.parse(decodeRevision(plain.leaves[0].stored).b), { n: 2, edit: 1 });
      const withAtt = docs.find((d) => d.id === 'with-att')!;
      const names = withAtt.leaves.map((l) => Object.keys(decodeRevision(l.stored).a ?? {}).sort()).sort();
      assert.deepEqual(names, [['bin.dat'], ['other.txt']]);
      assert.equal(copy.attachment('md5-nothing-stored-under-this'), undefined);
    } finally {
      copy.close();
    }
  });

  void it('openCopy with afterId yields only the ids after it, whether it exists or not', async () => {
    const src = await fillSource();
    const all = copiedIds(src.db);
    assert.ok(all.length > 10);
    assert.deepEqual(copiedIds(src.db, 'plain-3'), all.slice(all.indexOf('plain-3') + 1));
    assert.deepEqual(
      copiedIds(src.db, 'plain-35'),
      all.filter((id) => utf8Order(id, 'plain-35') > 0),
    );
    assert.deepEqual(copiedIds(src.db, 'plain-35')[0], 'plain-4');
    assert.deepEqual(copiedIds(src.db, ''), all);
    assert.deepEqual(copiedIds(src.db, all[all.length - 1]), []);
    assert.deepEqual(copiedIds(src.db, '\u{10ffff}'), []);
    // The counters are the whole database's, whatever part is read.
    const part = env.store.openCopy(src.db, 'plain-3');
    assert.equal(part.docCount, counts(src.db).docs);
    part.close();
  });

  void it('an interrupted copy continues after the target’s lastDocId and ends up complete', async () => {
    const src = await fillSource();
    const dst = await newDb();
    assert.equal(env.store.lastDocId(dst), undefined);
    const first = await copyInto(src.db, dst, { stopAfter: 6, batch: 2 });
    for (const r of first) assert.ok(r.ok, JSON.stringify(r));
    const resumeAfter = env.store.lastDocId(dst);
    assert.equal(resumeAfter, copiedIds(src.db)[5]);
    assert.ok(counts(dst).docs + counts(dst).deleted < counts(src.db).docs, 'only part was copied');
    await copyInto(src.db, dst, { afterId: resumeAfter, batch: 3 });
    const s = counts(src.db);
    const d = counts(dst);
    assert.deepEqual([d.docs, d.deleted], [s.docs, s.deleted]);
    for (const id of src.ids) assert.deepEqual(leafDocs(dst, id), leafDocs(src.db, id), id);
  });

  void it('lastDocId is the greatest id of that database only, tombstones included', async () => {
    const a = await newDb();
    const b = await newDb();
    const empty = await newDb();
    const c = await newDb();
    await put(a, { _id: 'm' });
    await put(a, { _id: 'b' });
    await put(a, { _id: 'k' });
    await put(b, { _id: 'zzz' });
    await put(b, { _id: 'aaa' });
    await put(c, { _id: 'c-only' });
    assert.equal(env.store.lastDocId(a), 'm');
    assert.equal(env.store.lastDocId(b), 'zzz');
    assert.equal(env.store.lastDocId(empty), undefined);
    assert.equal(env.store.lastDocId(c), 'c-only');
    const r = await put(a, { _id: 'x-deleted' });
    await put(a, { _id: 'x-deleted', _rev: r, _deleted: true });
    assert.equal(env.store.lastDocId(a), 'x-deleted');
    await put(a, { _id: 'é' });
    assert.equal(env.store.lastDocId(a), 'é');
    assert.throws(
      () => env.store.lastDocId('no-such-db'),
      (err: unknown) => err instanceof DoppelError,
    );
  });

  void it('a copy is one snapshot: later writes to the source are not in it, seq is the seq at open', async () => {
    const db = await newDb();
    const r1 = await put(db, { _id: 'a', v: 1 });
    const r2 = await put(db, { _id: 'b', v: 1 });
    await put(db, { _id: 'c', v: 1 });
    const seqAtOpen = counts(db).seq;
    const copy = env.store.openCopy(db, undefined);
    try {
      // Written after the copy opened, before a single document is read from it.
      await put(db, { _id: 'a', _rev: r1, v: 2 });
      await put(db, { _id: 'b', _rev: r2, _deleted: true });
      await put(db, { _id: 'aa-new', v: 1 });
      await put(db, { _id: 'zz-new', v: 1 });
      assert.equal(counts(db).seq, seqAtOpen + 4);

      assert.equal(copy.seq, seqAtOpen);
      assert.equal(copy.docCount, 3);
      assert.equal(copy.delCount, 0);
      const docs = [...copy.docs()];
      assert.deepEqual(
        docs.map((d) => d.id),
        ['a', 'b', 'c'],
      );
      for (const d of docs) {
        assert.equal(d.leaves.length, 1);
        assert.equal(d.leaves[0].deleted, false, d.id);
        assert.equal(revPos(d.leaves[0].path[0]), 1, d.id);
        assert.deepEqual(JSON.parse(decodeRevision(d.leaves[0].stored).b), { v: 1 });
      }
    } finally {
      copy.close();
    }
    // A copy opened now sees them.
    assert.deepEqual(copiedIds(db), ['a', 'aa-new', 'b', 'c', 'zz-new']);
  });

  // LMDB's key encoding does not give back some ids (a control character in an id longer
  // than 64 characters), and orders others unlike their UTF-8 bytes (lone surrogates). A copy
  // must never lose such a document silently: it is copied, or counted as unreadable (the
  // follower then replicates from the start).
  void it('accounts for every document whatever its id', async () => {
    for (const ids of [
      ['a\u0001', `a\u0002${'x'.repeat(70)}`],
      ['\ud800', '\uf000'],
    ]) {
      const db = await newDb();
      for (const id of ids) await put(db, { _id: id, v: 1 });
      assert.equal(counts(db).docs, 2);
      const copy = env.store.openCopy(db, undefined);
      try {
        const copied = [...copy.docs()].map((d) => d.id);
        for (const id of copied)
          assert.ok(ids.includes(id), `copied an id that does not exist: ${JSON.stringify(id)}`);
        assert.equal(copied.length + copy.unreadable, ids.length, JSON.stringify(copied));
      } finally {
        copy.close();
      }
    }
  });

  void it('openCopy of a database that does not exist is not_found', () => {
    assert.throws(
      () => env.store.openCopy('no-such-db', undefined),
      (err: unknown) => err instanceof DoppelError && err.kind === ErrorKind.NotFound,
    );
  });
});

void describe('restoreCopy: where its rows go', () => {
  /** Every change of `db` in seq order: id, winning rev, deleted. */
  async function changeList(db: string): Promise<[string, string, boolean][]> {
    const { rows } = await env.store.changes(db, changesQuery());
    return rows.map((r) => [r.id, r.changes[0] ?? '', r.deleted]);
  }

  // Rows are appended when they sort last in their table, else put: both must give the same
  // database, and a newer database's rows (sorting after the restored ones) must stay as they are.
  void it('restores into the newest database and into an older one alike, leaving newer ones intact', async () => {
    const src = await fillSource();
    const older = await newDb();
    const newer = await newDb();
    const rev = await put(newer, { _id: 'a-newer-doc', n: 1 });
    const newerChanges = await changeList(newer);

    for (const r of await copyInto(src.db, older, { batch: 5 })) assert.ok(r.ok, JSON.stringify(r));
    const newest = await newDb();
    for (const r of await copyInto(src.db, newest, { batch: 5 })) assert.ok(r.ok, JSON.stringify(r));

    for (const dst of [older, newest]) {
      assert.deepEqual(counts(dst), { ...counts(src.db), seq: counts(dst).seq }, dst);
      for (const id of src.ids) {
        assert.deepEqual(
          treeShape(env.store.tree(dst, id)),
          treeShape(env.store.tree(src.db, id)),
          `${dst}/${id}`,
        );
        assert.deepEqual(leafDocs(dst, id), leafDocs(src.db, id), `${dst}/${id}`);
      }
    }
    assert.deepEqual(await changeList(older), await changeList(newest));
    assert.deepEqual(
      (await changeList(older)).map(([id]) => id).sort(utf8Order),
      [...src.ids].sort(utf8Order),
    );
    assert.deepEqual(await changeList(newer), newerChanges);
    assert.deepEqual(JSON.parse(env.store.get(newer, 'a-newer-doc', undefined, {})), {
      _id: 'a-newer-doc',
      _rev: rev,
      n: 1,
    });
  });
});

void describe('restoreCopy: what it refuses', () => {
  const meta = (digest: string, length: number): AttachmentMeta => ({
    content_type: 'text/plain',
    digest,
    length,
    revpos: 1,
  });

  void it('refuses broken revisions one by one and writes the others of the batch', async () => {
    const db = await newDb();
    const lackingDigest = md5Digest(Buffer.from('never sent'));
    const batch: CopiedDoc[] = [
      handDoc('good-1', ['1-a'], { b: '{"v":1}' }),
      handDoc('not-json', ['1-a'], Buffer.concat([Buffer.from([0]), Buffer.from('{"v":')])),
      handDoc('not-object', ['1-a'], { b: '[1,2]' }),
      handDoc('special', ['1-a'], { b: '{"_foo":1}' }),
      handDoc('gap', ['3-a', '1-b'], { b: '{}' }),
      handDoc('too-long', ['2-a', '1-a', '0-a'], { b: '{}' }),
      handDoc('bad-rev', ['x-y'], { b: '{}' }),
      handDoc('_bad_id', ['1-a'], { b: '{}' }),
      handDoc('lacking', ['1-a'], { b: '{}', a: { 'f.txt': meta(lackingDigest, 10) } }),
      handDoc('huge', ['1-a'], { b: JSON.stringify({ s: 'x'.repeat(2000) }) }),
      handDoc('good-2', ['2-b', '1-b'], { b: '{"v":2}' }),
    ];
    const guard: CopyGuard = { failed: false };
    const results = await env.store.restoreCopy(db, batch, new Map(), 1000, guard, true);
    assert.equal(guard.failed, false, 'refused revisions do not fail the batch');
    assert.deepEqual(
      results.map((r) => [r.id, r.ok]),
      batch.map((d) => [d.id, d.id.startsWith('good-')]),
    );
    const byId = new Map(results.map((r) => [r.id, r]));
    const errorOf = (id: string): string | undefined => {
      const r = byId.get(id);
      return r !== undefined && !r.ok ? r.error : undefined;
    };
    for (const id of ['not-json', 'not-object', 'gap', 'too-long', 'bad-rev', '_bad_id', 'lacking'])
      assert.equal(errorOf(id), 'bad_request', id);
    assert.ok(errorOf('special') !== undefined);
    assert.equal(errorOf('huge'), 'document_too_large');
    const special = byId.get('special');
    assert.ok(
      special !== undefined && !special.ok && /_foo/.test(special.reason ?? ''),
      JSON.stringify(special),
    );
    const lacking = byId.get('lacking');
    assert.ok(lacking !== undefined && !lacking.ok && (lacking.reason ?? '').includes(lackingDigest));

    for (const d of batch) {
      if (d.id.startsWith('good-')) assert.ok(env.store.tree(db, d.id) !== undefined, d.id);
      else assert.equal(env.store.tree(db, d.id), undefined, `${d.id} was not written`);
    }
    assert.deepEqual(counts(db), { docs: 2, deleted: 0, seq: 2 });
    assert.deepEqual(JSON.parse(env.store.get(db, 'good-2', undefined, {})), {
      _id: 'good-2',
      _rev: '2-b',
      v: 2,
    });
  });

  void it('an attachment is accepted when its bytes are given or already stored, refused otherwise', async () => {
    const db = await newDb();
    const bytes = Buffer.from('attachment body');
    const digest = md5Digest(bytes);
    const withAtt = (id: string): CopiedDoc =>
      handDoc(id, ['1-a'], { b: '{}', a: { 'f.txt': meta(digest, bytes.length) } });
    const guard: CopyGuard = { failed: false };

    const [refused] = await env.store.restoreCopy(db, [withAtt('first')], new Map(), MAX_BODY, guard, true);
    assert.equal(refused.ok, false);
    assert.equal(env.store.tree(db, 'first'), undefined);
    assert.equal(env.store.readAttachmentBytes(db, digest), undefined);

    // Bytes that are not what the digest names are refused, and not stored under it.
    for (const forged of [Buffer.from('attachment bodX'), Buffer.from('attachment body, longer')]) {
      const [wrong] = await env.store.restoreCopy(
        db,
        [withAtt('first')],
        new Map([[digest, forged]]),
        MAX_BODY,
        guard,
        true,
      );
      assert.equal(wrong.ok, false);
      assert.match(wrong.ok ? '' : wrong.reason, /does not match/);
      assert.equal(env.store.readAttachmentBytes(db, digest), undefined);
    }

    const [given] = await env.store.restoreCopy(
      db,
      [withAtt('first')],
      new Map([[digest, bytes]]),
      MAX_BODY,
      guard,
      true,
    );
    assert.ok(given.ok, JSON.stringify(given));
    assert.deepEqual(env.store.readAttachmentBytes(db, digest), bytes);

    const [stored] = await env.store.restoreCopy(db, [withAtt('second')], new Map(), MAX_BODY, guard, true);
    assert.ok(stored.ok, JSON.stringify(stored));
    const doc = JSON.parse(env.store.get(db, 'second', undefined, { attachments: true })) as Json;
    const att = (doc['_attachments'] as Record<string, Json>)['f.txt'];
    assert.equal(Buffer.from(String(att['data']), 'base64').toString(), 'attachment body');
    assert.equal(guard.failed, false);
  });

  void it('restoring the same copy twice changes nothing the second time', async () => {
    const src = await fillSource();
    const dst = await newDb();
    await copyInto(src.db, dst);
    const once = counts(dst);
    const again = await copyInto(src.db, dst);
    for (const r of again) assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(counts(dst), once);
  });
});

void describe('restoreCopy: the guard shared by one restore', () => {
  void it('after a batch whose transaction failed, later batches refuse to commit', async () => {
    const db = await newDb();
    const guard: CopyGuard = { failed: false };
    const [ok] = await env.store.restoreCopy(
      db,
      [handDoc('before', ['1-a'], { b: '{}' })],
      new Map(),
      MAX_BODY,
      guard,
      true,
    );
    assert.ok(ok.ok);
    assert.equal(guard.failed, false);
    const seq = counts(db).seq;

    await assert.rejects(
      env.store.restoreCopy(
        'no-such-db',
        [handDoc('x', ['1-a'], { b: '{}' })],
        new Map(),
        MAX_BODY,
        guard,
        true,
      ),
      (err: unknown) => err instanceof DoppelError && err.kind === ErrorKind.NotFound,
    );
    assert.equal(guard.failed, true);

    const bytes = Buffer.from('not to be stored');
    const digest = md5Digest(bytes);
    const later: CopiedDoc[] = [
      handDoc('later', ['1-a'], { b: '{"v":1}' }),
      handDoc('later-att', ['1-a'], {
        b: '{}',
        a: { f: { content_type: 'text/plain', digest, length: bytes.length, revpos: 1 } },
      }),
    ];
    await assert.rejects(
      env.store.restoreCopy(db, later, new Map([[digest, bytes]]), MAX_BODY, guard, true),
      (err: unknown) => err instanceof DoppelError && err.kind === ErrorKind.Unavailable,
    );
    assert.equal(env.store.tree(db, 'later'), undefined);
    assert.equal(env.store.tree(db, 'later-att'), undefined);
    assert.equal(env.store.readAttachmentBytes(db, digest), undefined);
    assert.equal(counts(db).seq, seq);
    assert.equal(env.store.lastDocId(db), 'before');

    // Another restore, with its own guard, writes.
    const [fresh] = await env.store.restoreCopy(db, [later[0]], new Map(), MAX_BODY, { failed: false }, true);
    assert.ok(fresh.ok);
  });

  void it('batches queued together: the one after a failing batch does not commit', async () => {
    const db = await newDb();
    const guard: CopyGuard = { failed: false };
    const first = env.store.restoreCopy(
      'no-such-db',
      [handDoc('x', ['1-a'], { b: '{}' })],
      new Map(),
      MAX_BODY,
      guard,
      true,
    );
    const second = env.store.restoreCopy(
      db,
      [handDoc('y', ['1-a'], { b: '{}' })],
      new Map(),
      MAX_BODY,
      guard,
      true,
    );
    const [a, b] = await Promise.allSettled([first, second]);
    assert.equal(a.status, 'rejected');
    assert.equal(b.status, 'rejected');
    assert.equal(env.store.tree(db, 'y'), undefined);
    assert.equal(counts(db).seq, 0);
  });
});
