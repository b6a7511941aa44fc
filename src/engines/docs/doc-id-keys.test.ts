/**
 * Document-id keys: every id reads back exactly and keeps its order, and the
 * upgrade from storage format 2 rewrites the rows ordered-binary got wrong.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { open, type RootDatabase } from 'lmdb';
import { docIdKeyEncoder, escapeKeyString, unescapeKeyString, upgradeDocIdKeys } from './doc-id-keys.js';

/** lmdb-js' types do not declare `keyEncoder` on a named database's options. */
const docKeys = { keyEncoder: docIdKeyEncoder };
const structured = { encoding: 'msgpack', sharedStructuresKey: Symbol.for('structures') } as const;
const long = (s: string): string => 'x'.repeat(70) + s;
/** Ids ordered-binary alone gets wrong (long, with U+0000–U+0004) or that the escape must handle. */
const AWKWARD = [
  'plain',
  '\u0001short',
  'a\u0005b',
  long('\u0001y'),
  long('\u0000'),
  long('\u0004\u0001'),
  '\u0003' + long(''),
  '\u0001'.repeat(63),
  '\u0004\u0001'.repeat(63),
  long('\u00055'),
];

const utf8Order = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

void describe('document-id keys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'doppel-doc-keys-'));
  const roots: RootDatabase[] = [];
  after(async () => {
    for (const root of roots) await root.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const openRoot = (name: string): RootDatabase => {
    const root = open({ path: join(dir, name), maxDbs: 4 });
    roots.push(root);
    return root;
  };

  void it('escaping keeps every string and its order', () => {
    const strings = [...AWKWARD, '', '\u0005', '\u0006', 'a', 'a\u0000', 'a\u0001', 'a\u0006', '\u00050'];
    for (const s of strings) assert.equal(unescapeKeyString(escapeKeyString(s)), s);
    const byEscaped = [...strings].sort((a, b) => utf8Order(escapeKeyString(a), escapeKeyString(b)));
    assert.deepEqual(byEscaped, [...strings].sort(utf8Order));
    assert.equal(escapeKeyString('plain'), 'plain');
  });

  void it('every id reads back exactly, in order, and has its own row', async () => {
    const root = openRoot('exact');
    const docs = root.openDB<number, [number, string]>('docs', { encoding: 'msgpack', ...docKeys });
    const revs = root.openDB<number, [number, string, string]>('revs', { encoding: 'msgpack', ...docKeys });
    await root.transaction(() => {
      AWKWARD.forEach((id, i) => {
        docs.putSync([7, id], i);
        revs.putSync([7, id, '1-abc'], i);
        revs.putSync([7, id, '2-def'], i);
      });
    });
    const ids = [...docs.getKeys({ start: [7], end: [8] })].map((key) => key[1]);
    assert.deepEqual(ids, [...AWKWARD].sort(utf8Order));
    AWKWARD.forEach((id, i) => assert.equal(docs.get([7, id]), i, JSON.stringify(id)));
    const revKeys = [...revs.getKeys({ start: [7], end: [8] })];
    assert.equal(revKeys.length, AWKWARD.length * 2);
    for (const id of AWKWARD) {
      const mine = [...revs.getKeys({ start: [7, id], end: [7, `${id}\u0000`] })];
      assert.deepEqual(mine, [
        [7, id, '1-abc'],
        [7, id, '2-def'],
      ]);
    }
  });

  void it('the upgrade from format 2 moves the rows it must, and only those', async () => {
    const ids = AWKWARD.filter((id) => id !== '\u0004\u0001'.repeat(63)); // shares a key with '\u0001'×63 there
    {
      // Format 2: lmdb-js' default keys, written by an earlier process (lmdb-js must not see one
      // table opened with two kinds of keys).
      const old = open({ path: join(dir, 'upgrade'), maxDbs: 4 });
      // Structured, as the engine's: the table also holds its msgpack structures (under a symbol key).
      const oldDocs = old.openDB<{ n: number }, [number, string]>('docs', structured);
      const oldRevs = old.openDB<number, [number, string, string]>('revs', {});
      await old.transaction(() => {
        ids.forEach((id, i) => {
          oldDocs.putSync([3, id], { n: i });
          oldRevs.putSync([3, id, '1-abc'], i);
        });
      });
      await old.close();
    }
    const root = openRoot('upgrade');
    const rawDocs = root.openDB<Buffer, Buffer>('docs', { encoding: 'binary', keyEncoding: 'binary' });
    const rawRevs = root.openDB<Buffer, Buffer>('revs', { encoding: 'binary', keyEncoding: 'binary' });
    let moved = 0;
    await root.transaction(() => {
      moved = upgradeDocIdKeys(rawDocs, 2) + upgradeDocIdKeys(rawRevs, 3);
    });
    assert.equal(moved, 2 * (ids.length - 1), 'every id but "plain" moved');
    // lmdb-js' shared read snapshot may predate that commit within this task.
    root.resetReadTxn();
    const docs = root.openDB<{ n: number }, [number, string]>('docs', { ...structured, ...docKeys });
    const revs = root.openDB<number, [number, string, string]>('revs', { encoding: 'msgpack', ...docKeys });
    ids.forEach((id, i) => {
      assert.deepEqual(docs.get([3, id]), { n: i }, JSON.stringify(id));
      assert.equal(revs.get([3, id, '1-abc']), i, JSON.stringify(id));
    });
    assert.deepEqual(
      [...docs.getKeys({ start: [3], end: [4] })].map((key) => key[1]),
      [...ids].sort(utf8Order),
    );
  });
});
