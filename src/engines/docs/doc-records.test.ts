import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeInfo, encodeInfo, storedLeaves, type StoredDocInfo } from './doc-records.js';
import { addChild, ancestry, emptyTree, graftPath, leaves, RevFlag, stem, type RevTree } from './rev-tree.js';
import { int, pick, prng } from '../../../test/support/prng.js';

const A = RevFlag.Available;
const D = RevFlag.Deleted;

/** What decoding the whole tree gives: the reference `storedLeaves` must agree with. */
function decodedLeaves(stored: StoredDocInfo): { rev: string; flags: number; path: string[] }[] {
  const tree = decodeInfo(stored).t;
  return leaves(tree).map((rev) => ({ rev, flags: tree[rev][1], path: ancestry(tree, rev) }));
}

void describe('storedLeaves', () => {
  void it('reads a one-revision document', () => {
    const stored = encodeInfo(addChild(emptyTree(), null, '1-a', A), 7);
    assert.deepEqual(storedLeaves(stored), [{ rev: '1-a', flags: A, path: ['1-a'] }]);
  });

  void it('reads a single branch, newest first, with the leaf flags', () => {
    let tree: RevTree = emptyTree();
    tree = addChild(tree, null, '1-a', 0);
    tree = addChild(tree, '1-a', '2-b', 0);
    tree = addChild(tree, '2-b', '3-c', A | D);
    assert.deepEqual(storedLeaves(encodeInfo(tree, 3)), [
      { rev: '3-c', flags: A | D, path: ['3-c', '2-b', '1-a'] },
    ]);
  });

  void it('reads a branch stored out of order or a stemmed one as the decoded tree gives it', () => {
    const reversed: StoredDocInfo = [5, '2-b', '1-a', A, '1-a', null, 0];
    assert.deepEqual(storedLeaves(reversed), decodedLeaves(reversed));
    assert.deepEqual(storedLeaves(reversed), [{ rev: '2-b', flags: A, path: ['2-b', '1-a'] }]);
    const stemmed: StoredDocInfo = [9, '3-c', '2-b', 0, '4-d', '3-c', A];
    assert.deepEqual(storedLeaves(stemmed), decodedLeaves(stemmed));
  });

  void it('agrees with the decoded tree on random trees with conflicts, grafts and stemming', () => {
    const rng = prng(42);
    for (let round = 0; round < 500; round++) {
      let tree: RevTree = emptyTree();
      const revs: string[] = [];
      const steps = 1 + int(rng, 12);
      for (let i = 0; i < steps; i++) {
        const parent = revs.length === 0 || int(rng, 5) === 0 ? null : pick(rng, revs);
        const pos = parent === null ? 1 : Number(parent.split('-')[0]) + 1;
        const rev = `${pos}-r${round}x${i}`;
        const flags = A | (int(rng, 4) === 0 ? D : 0);
        tree =
          int(rng, 3) === 0 && parent !== null
            ? (graftPath(tree, [rev, parent], flags) ?? tree)
            : addChild(tree, parent, rev, flags);
        revs.push(rev);
      }
      if (int(rng, 3) === 0) tree = stem(tree, 1 + int(rng, 4)).tree;
      const stored = encodeInfo(tree, round);
      const sort = (xs: { rev: string }[]): { rev: string }[] =>
        [...xs].sort((a, b) => a.rev.localeCompare(b.rev));
      assert.deepEqual(sort(storedLeaves(stored)), sort(decodedLeaves(stored)), JSON.stringify(stored));
    }
  });
});
