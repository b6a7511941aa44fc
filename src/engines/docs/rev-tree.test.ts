import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  addChild,
  ancestry,
  compareLeaves,
  graftPath,
  isLeaf,
  leaves,
  parseRev,
  RevFlag,
  revisionsOf,
  revPos,
  revsDiff,
  sortedLeaves,
  stem,
  winner,
  winnerDeleted,
  type RevNode,
  type RevTree,
} from './rev-tree.js';
import { prng, type Rng, int, pick } from '../../../test/support/prng.js';

const A = RevFlag.Available;
const D = RevFlag.Deleted;

/** Builds a tree from `[rev, parent, flags]` triples. */
function tree(...nodes: [string, string | null, number][]): RevTree {
  const out: Record<string, RevNode> = {};
  for (const [rev, parent, flags] of nodes) out[rev] = [parent, flags];
  return out;
}

const sorted = (xs: readonly string[]): string[] => [...xs].sort();

// ---- deterministic randomness ------------------------------------------------

function shuffle<T>(rng: Rng, xs: readonly T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = int(rng, i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** A 32-char lowercase hex hash; a few short alphabets make equal-prefix ties likely. */
function hash(rng: Rng): string {
  const alphabet = rng() < 0.3 ? '0f' : '0123456789abcdef';
  const len = rng() < 0.3 ? 1 + int(rng, 3) : 32;
  let s = '';
  for (let i = 0; i < len; i++) s += alphabet[int(rng, alphabet.length)];
  return s;
}

/** The "true" history of a document on the whole network: every revision ever made. */
interface Universe {
  readonly parent: Map<string, string | null>;
  readonly deleted: Map<string, boolean>;
}

function randomUniverse(rng: Rng, edits: number): Universe {
  const parent = new Map<string, string | null>();
  const deleted = new Map<string, boolean>();
  const roots = 1 + (rng() < 0.2 ? 1 : 0);
  for (let i = 0; i < roots; i++) {
    let rev = `1-${hash(rng)}`;
    while (parent.has(rev)) rev = `1-${hash(rng)}`;
    parent.set(rev, null);
    deleted.set(rev, false);
  }
  for (let i = 0; i < edits; i++) {
    const all = [...parent.keys()];
    const childless = all.filter((r) => ![...parent.values()].includes(r));
    const base = rng() < 0.7 ? pick(rng, childless) : pick(rng, all);
    let rev = `${revPos(base) + 1}-${hash(rng)}`;
    while (parent.has(rev)) rev = `${revPos(base) + 1}-${hash(rng)}`;
    parent.set(rev, base);
    deleted.set(rev, rng() < 0.3);
  }
  return { parent, deleted };
}

/** The path of `rev` in the universe, newest first, cut to at most `max` revs. */
function universePath(u: Universe, rev: string, max = Infinity): string[] {
  const out: string[] = [];
  let cur: string | null = rev;
  while (cur !== null && out.length < max) {
    out.push(cur);
    cur = u.parent.get(cur)!;
  }
  return out;
}

const universeLeaves = (u: Universe): string[] => {
  const parents = new Set([...u.parent.values()]);
  return [...u.parent.keys()].filter((r) => !parents.has(r));
};

const flagsFor = (u: Universe, rev: string): number => A | (u.deleted.get(rev) === true ? D : 0);

/** An independent winner: sort on (live, generation, hash), all descending. */
function referenceWinner(candidates: readonly string[], isDel: (rev: string) => boolean): string {
  const key = (r: string): [number, number, string] => [
    isDel(r) ? 0 : 1,
    Number(r.split('-')[0]),
    r.slice(r.indexOf('-') + 1),
  ];
  return [...candidates].sort((x, y) => {
    const [lx, px, hx] = key(x);
    const [ly, py, hy] = key(y);
    if (lx !== ly) return ly - lx;
    if (px !== py) return py - px;
    return hx < hy ? 1 : hx > hy ? -1 : 0;
  })[0];
}

function graftAll(start: RevTree, paths: readonly (readonly string[])[], u: Universe): RevTree {
  let t = start;
  for (const p of paths) t = graftPath(t, p, flagsFor(u, p[0])) ?? t;
  return t;
}

/** Canonical text of a tree, independent of insertion order. */
const canonical = (t: RevTree): string =>
  JSON.stringify(
    Object.keys(t)
      .sort()
      .map((r) => [r, t[r][0], t[r][1]]),
  );

function assertWellFormed(t: RevTree, context: string): void {
  for (const [rev, [parent]] of Object.entries(t)) {
    assert.ok(parseRev(rev) !== null, `${context}: ${rev} is a valid rev`);
    if (parent === null) continue;
    assert.ok(parent in t, `${context}: parent ${parent} of ${rev} is in the tree`);
    assert.equal(revPos(parent), revPos(rev) - 1, `${context}: ${parent} is one generation below ${rev}`);
  }
  assert.ok(leaves(t).length > 0 || Object.keys(t).length === 0, `${context}: a non-empty tree has leaves`);
}

// ---- unit tests --------------------------------------------------------------

void describe('parseRev', () => {
  void it('splits valid revs into generation and hash', () => {
    assert.deepEqual(parseRev('1-abc'), { pos: 1, hash: 'abc' });
    assert.deepEqual(parseRev('12-0123456789abcdef0123456789abcdef'), {
      pos: 12,
      hash: '0123456789abcdef0123456789abcdef',
    });
    assert.deepEqual(parseRev('999999999999999-x'), { pos: 999999999999999, hash: 'x' });
    // PouchDB-style and other opaque hashes are accepted as they are.
    assert.deepEqual(parseRev('3-A_b.c~d+e-f'), { pos: 3, hash: 'A_b.c~d+e-f' });
  });

  void it('refuses malformed revs', () => {
    for (const bad of [
      '',
      '1',
      '1-',
      '-abc',
      '0-abc',
      '01-abc',
      'a-abc',
      '1_abc',
      '1-a b',
      '1-a/b',
      ' 1-abc',
      '1-abc ',
      '1234567890123456-a',
      `1-${'a'.repeat(129)}`,
    ]) {
      assert.equal(parseRev(bad), null, JSON.stringify(bad));
    }
    assert.ok(parseRev(`1-${'a'.repeat(128)}`) !== null);
    for (const bad of [null, undefined, 1, {}, ['1-a'], true]) assert.equal(parseRev(bad), null);
  });

  void it('revPos reads the generation', () => {
    assert.equal(revPos('1-a'), 1);
    assert.equal(revPos('42-deadbeef'), 42);
  });
});

void describe('leaves and isLeaf', () => {
  const t = tree(
    ['1-a', null, 0],
    ['2-b', '1-a', 0],
    ['3-c', '2-b', A],
    ['2-x', '1-a', A | D],
    ['5-s', null, A],
  );

  void it('are the revisions nobody names as parent', () => {
    assert.deepEqual(sorted(leaves(t)), ['2-x', '3-c', '5-s']);
    for (const r of ['2-x', '3-c', '5-s']) assert.ok(isLeaf(t, r), r);
    for (const r of ['1-a', '2-b']) assert.ok(!isLeaf(t, r), r);
    assert.ok(!isLeaf(t, '9-unknown'));
  });

  void it('an empty tree has none', () => {
    assert.deepEqual(leaves({}), []);
  });
});

void describe('winner', () => {
  void it('a live leaf beats a deleted one, whatever the generations', () => {
    const t = tree(
      ['1-a', null, 0],
      ['2-live', '1-a', A],
      ['2-b', '1-a', 0],
      ['3-c', '2-b', 0],
      ['4-dead', '3-c', A | D],
    );
    assert.equal(winner(t), '2-live');
    assert.ok(!winnerDeleted(t));
  });

  void it('among live leaves, the higher generation wins', () => {
    const t = tree(['1-a', null, 0], ['2-zzz', '1-a', A], ['2-b', '1-a', 0], ['3-000', '2-b', A]);
    assert.equal(winner(t), '3-000');
  });

  void it('on equal generations, the greater hash wins (lowercase hex string compare)', () => {
    const t = tree(['1-a', null, 0], ['2-9fff', '1-a', A], ['2-a000', '1-a', A], ['2-0fff', '1-a', A]);
    assert.equal(winner(t), '2-a000');
    assert.deepEqual(sortedLeaves(t), ['2-a000', '2-9fff', '2-0fff']);
  });

  void it('generations compare as numbers, not strings', () => {
    const t = tree(['9-x', null, 0], ['10-a', '9-x', A], ['9-y', null, A]);
    assert.equal(winner(t), '10-a');
  });

  void it('when every leaf is deleted, the same order applies among them', () => {
    const t = tree(['1-a', null, 0], ['2-b', '1-a', A | D], ['2-c', '1-a', 0], ['3-d', '2-c', A | D]);
    assert.equal(winner(t), '3-d');
    assert.ok(winnerDeleted(t));
  });

  void it('compareLeaves orders best first and is antisymmetric', () => {
    const t = tree(['1-a', null, A], ['1-b', null, A | D], ['2-c', null, A]);
    assert.ok(compareLeaves(t, '1-a', '1-b') < 0);
    assert.ok(compareLeaves(t, '1-b', '1-a') > 0);
    assert.ok(compareLeaves(t, '2-c', '1-a') < 0);
    assert.equal(compareLeaves(t, '2-c', '2-c'), 0);
  });

  void it('matches a reference sort on random leaf sets', () => {
    const rng = prng(7);
    for (let round = 0; round < 300; round++) {
      const nodes: [string, string | null, number][] = [];
      const seen = new Set<string>();
      const n = 1 + int(rng, 8);
      while (nodes.length < n) {
        const rev = `${1 + int(rng, 4)}-${hash(rng)}`;
        if (seen.has(rev)) continue;
        seen.add(rev);
        nodes.push([rev, null, A | (rng() < 0.4 ? D : 0)]);
      }
      const t = tree(...nodes);
      const expected = referenceWinner(
        nodes.map((x) => x[0]),
        (r) => (t[r][1] & D) !== 0,
      );
      assert.equal(winner(t), expected, `round ${round}`);
      assert.equal(sortedLeaves(t)[0], expected);
    }
  });
});

void describe('ancestry and revisionsOf', () => {
  const t = tree(['3-c', null, 0], ['4-d', '3-c', 0], ['5-e', '4-d', A], ['5-f', '4-d', A]);

  void it('walk parent links newest first and stop at a (stemmed) root', () => {
    assert.deepEqual(ancestry(t, '5-e'), ['5-e', '4-d', '3-c']);
    assert.deepEqual(ancestry(t, '3-c'), ['3-c']);
    assert.deepEqual(ancestry(t, '9-unknown'), []);
  });

  void it('_revisions carries the start and the bare hashes, newest first', () => {
    assert.deepEqual(revisionsOf(t, '5-f'), { start: 5, ids: ['f', 'd', 'c'] });
    assert.deepEqual(revisionsOf(t, '3-c'), { start: 3, ids: ['c'] });
  });
});

void describe('addChild', () => {
  void it('returns a new tree and leaves the old one untouched', () => {
    const t0 = tree(['1-a', null, A]);
    const t1 = addChild(t0, '1-a', '2-b', A);
    assert.deepEqual(t0, tree(['1-a', null, A]));
    assert.deepEqual(t1, tree(['1-a', null, A], ['2-b', '1-a', A]));
    assert.deepEqual(addChild({}, null, '1-x', A | D), tree(['1-x', null, A | D]));
  });
});

void describe('graftPath', () => {
  void it('grafts into an empty tree: unknown ancestors become stubs without Available', () => {
    const t = graftPath({}, ['3-c', '2-b', '1-a'], A);
    assert.deepEqual(t, tree(['1-a', null, 0], ['2-b', '1-a', 0], ['3-c', '2-b', A]));
  });

  void it('keeps the deleted flag on the grafted leaf only', () => {
    const t = graftPath({}, ['2-b', '1-a'], A | D);
    assert.deepEqual(t, tree(['1-a', null, 0], ['2-b', '1-a', A | D]));
  });

  void it('a graft sharing an ancestor creates a conflict branch', () => {
    const base = tree(['1-a', null, 0], ['2-b', '1-a', A]);
    const t = graftPath(base, ['2-c', '1-a'], A)!;
    assert.deepEqual(sorted(leaves(t)), ['2-b', '2-c']);
    assert.equal(winner(t), '2-c');
    assert.deepEqual(t['1-a'], [null, 0]);
  });

  void it('extending a leaf turns it into an internal node and keeps its flags', () => {
    const base = tree(['1-a', null, A], ['2-b', '1-a', A]);
    const t = graftPath(base, ['4-d', '3-c', '2-b', '1-a'], A)!;
    assert.deepEqual(t, tree(['1-a', null, A], ['2-b', '1-a', A], ['3-c', '2-b', 0], ['4-d', '3-c', A]));
  });

  void it('a stemmed root regains its parent', () => {
    const base = tree(['3-c', null, A], ['4-d', '3-c', A]);
    const t = graftPath(base, ['5-e', '4-d', '3-c', '2-b'], A)!;
    assert.deepEqual(t['3-c'], ['2-b', A]);
    assert.deepEqual(t['2-b'], [null, 0]);
    assert.deepEqual(ancestry(t, '5-e'), ['5-e', '4-d', '3-c', '2-b']);
  });

  void it('grafting onto a stub makes it available without losing its parent', () => {
    const base = tree(['1-a', null, 0], ['2-b', '1-a', 0], ['3-c', '2-b', A]);
    const t = graftPath(base, ['2-b'], A)!;
    assert.deepEqual(t['2-b'], ['1-a', A]);
    assert.deepEqual(sorted(leaves(t)), ['3-c']);
  });

  void it('grafting an existing available leaf is a no-op returning null', () => {
    const base = tree(['1-a', null, 0], ['2-b', '1-a', A]);
    assert.equal(graftPath(base, ['2-b', '1-a'], A), null);
    assert.equal(graftPath(base, ['2-b'], A | D), null);
  });

  void it('never mutates its input', () => {
    const base = tree(['3-c', null, A]);
    const copy = structuredClone(base);
    graftPath(base, ['4-d', '3-c', '2-b'], A);
    assert.deepEqual(base, copy);
  });

  // A known leaf that is a stemmed root must regain its parent even when it
  // is the newest rev of the path; otherwise two roots stay unlinked and the
  // outcome depends on the order in which the paths arrived (see the property
  // test "winner is independent of graft order" with truncated paths).
  void it('a path naming a known available root as newest still links it to its parent', () => {
    // [2-b] then [3-c] arrived alone (e.g. from a source with revs_limit=1), then the full path.
    const base = tree(['2-b', null, A], ['3-c', null, A | D]);
    const t = graftPath(base, ['3-c', '2-b'], A | D) ?? base;
    assert.deepEqual(t['3-c'], ['2-b', A | D], '3-c learns that its parent is 2-b');
    assert.deepEqual(leaves(t), ['3-c'], '2-b is no longer a leaf (no phantom live conflict)');
    assert.ok(winnerDeleted(t), 'the document is deleted, as it is when the paths arrive in the other order');
  });
});

void describe('stem', () => {
  const linear = tree(['1-a', null, 0], ['2-b', '1-a', 0], ['3-c', '2-b', 0], ['4-d', '3-c', A]);

  void it('keeps the `limit` newest revisions of a branch; the oldest kept becomes a root', () => {
    const { tree: t, dropped } = stem(linear, 2);
    assert.deepEqual(t, tree(['3-c', null, 0], ['4-d', '3-c', A]));
    assert.deepEqual(sorted(dropped), ['1-a', '2-b']);
  });

  void it('returns the same tree and nothing dropped when within the limit', () => {
    const r = stem(linear, 4);
    assert.equal(r.tree, linear);
    assert.deepEqual(r.dropped, []);
    assert.equal(stem(linear, 1000).tree, linear);
  });

  void it('limit 1 keeps only the leaves', () => {
    const t = tree(['1-a', null, 0], ['2-b', '1-a', A], ['2-c', '1-a', A | D]);
    const r = stem(t, 1);
    assert.deepEqual(r.tree, tree(['2-b', null, A], ['2-c', null, A | D]));
    assert.deepEqual(r.dropped, ['1-a']);
  });

  void it('counts per branch: a short branch keeps an ancestor a long branch would drop', () => {
    const t = tree(
      ['1-a', null, 0],
      ['2-b', '1-a', 0],
      ['3-c', '2-b', A], // short branch leaf
      ['3-d', '2-b', 0],
      ['4-e', '3-d', 0],
      ['5-f', '4-e', A], // long branch leaf
    );
    const r = stem(t, 2);
    assert.deepEqual(sorted(Object.keys(r.tree)), ['2-b', '3-c', '4-e', '5-f']);
    assert.deepEqual(sorted(r.dropped), ['1-a', '3-d']);
    assert.deepEqual(r.tree['2-b'], [null, 0]);
    assert.deepEqual(r.tree['4-e'], [null, 0]);
  });

  // CouchDB 3's couch_key_tree:stem_tree keeps a node when it is within
  // `limit` of *some* leaf and keeps its links to kept children, so on a
  // branched tree one leaf's path may be longer than the limit. Doppel does
  // the same; this pins it down.
  void it('like CouchDB 3 stem_tree, a kept node keeps its links to kept children', () => {
    const t = tree(
      ['1-a', null, 0],
      ['2-b', '1-a', 0],
      ['3-c', '2-b', A],
      ['3-d', '2-b', 0],
      ['4-e', '3-d', A],
    );
    const r = stem(t, 2);
    assert.deepEqual(sorted(r.dropped), ['1-a']);
    assert.deepEqual(ancestry(r.tree, '4-e'), ['4-e', '3-d', '2-b']);
  });
});

void describe('revsDiff', () => {
  const t = tree(
    ['1-a', null, 0],
    ['2-b', '1-a', A],
    ['2-c', '1-a', A | D],
    ['3-s', null, A],
    ['1-z', null, A],
  );

  void it('everything is missing for an unknown document, with no possible ancestors', () => {
    assert.deepEqual(revsDiff(undefined, ['1-a', '2-b']), { missing: ['1-a', '2-b'], possibleAncestors: [] });
  });

  void it('known revisions (stubs included) are not missing', () => {
    assert.deepEqual(revsDiff(t, ['1-a', '2-b', '3-s']), { missing: [], possibleAncestors: [] });
  });

  void it('possible ancestors are the leaves of lower generation than some missing rev', () => {
    const r = revsDiff(t, ['3-x', '2-b']);
    assert.deepEqual(r.missing, ['3-x']);
    assert.deepEqual(sorted(r.possibleAncestors), ['1-z', '2-b', '2-c']);
    const r2 = revsDiff(t, ['2-q']);
    assert.deepEqual(r2.missing, ['2-q']);
    assert.deepEqual(r2.possibleAncestors, ['1-z']);
    const r3 = revsDiff(t, ['1-q']);
    assert.deepEqual(r3, { missing: ['1-q'], possibleAncestors: [] });
    const r4 = revsDiff(t, ['2-q', '9-q']);
    assert.deepEqual(sorted(r4.possibleAncestors), ['1-z', '2-b', '2-c', '3-s']);
  });
});

// ---- properties ----------------------------------------------------------------

void describe('properties over random histories', () => {
  void it('grafting full paths in any order gives the same tree and the reference winner', () => {
    for (let seed = 1; seed <= 150; seed++) {
      const rng = prng(seed);
      const u = randomUniverse(rng, 1 + int(rng, 25));
      const all = [...u.parent.keys()];
      // Every leaf, plus a random selection of internal revisions (old revisions replicated on their own).
      const chosen = [...new Set([...universeLeaves(u), ...all.filter(() => rng() < 0.3)])];
      const paths = chosen.map((r) => universePath(u, r));
      const first = graftAll({}, shuffle(rng, paths), u);
      assertWellFormed(first, `seed ${seed}`);
      assert.deepEqual(sorted(leaves(first)), sorted(universeLeaves(u)), `seed ${seed}: leaves`);
      const expected = referenceWinner(universeLeaves(u), (r) => u.deleted.get(r) === true);
      assert.equal(winner(first), expected, `seed ${seed}: winner`);
      for (let k = 0; k < 4; k++) {
        const other = graftAll({}, shuffle(rng, paths), u);
        assert.equal(canonical(other), canonical(first), `seed ${seed}: order ${k}`);
      }
    }
  });

  void it('grafting the same path twice is idempotent', () => {
    for (let seed = 1; seed <= 150; seed++) {
      const rng = prng(1000 + seed);
      const u = randomUniverse(rng, 1 + int(rng, 20));
      const all = [...u.parent.keys()];
      let t: RevTree = {};
      for (const r of shuffle(rng, all).slice(0, 1 + int(rng, all.length))) {
        const p = universePath(u, r, 1 + int(rng, 6));
        const once = graftPath(t, p, flagsFor(u, r)) ?? t;
        const twice = graftPath(once, p, flagsFor(u, r));
        assert.equal(twice, null, `seed ${seed}: second graft of ${r} is a no-op`);
        t = once;
        assertWellFormed(t, `seed ${seed}`);
      }
    }
  });

  // With paths cut short (as `_revs_limit` does on the source), CouchDB's key
  // tree merge still links a known root to the parent a later path names.
  void it('grafting truncated paths in any order gives the same winner (merge is commutative)', () => {
    const failures: string[] = [];
    for (let seed = 1; seed <= 300; seed++) {
      const rng = prng(5000 + seed);
      const u = randomUniverse(rng, 1 + int(rng, 12));
      const all = [...u.parent.keys()];
      const chosen = [...new Set([...universeLeaves(u), ...all.filter(() => rng() < 0.4)])];
      const paths = chosen.map((r) => universePath(u, r, 1 + int(rng, 4)));
      // Also send the full path of every leaf at some point, so the final
      // knowledge is the whole universe whatever the order.
      for (const l of universeLeaves(u)) paths.push(universePath(u, l));
      const expected = referenceWinner(universeLeaves(u), (r) => u.deleted.get(r) === true);
      for (let k = 0; k < 4; k++) {
        const order = shuffle(rng, paths);
        const t = graftAll({}, order, u);
        assertWellFormed(t, `seed ${seed}`);
        if (winner(t) !== expected || sorted(leaves(t)).join() !== sorted(universeLeaves(u)).join()) {
          failures.push(
            `${winner(t) === expected ? '' : '[winner] '}seed ${5000 + seed}: order ${JSON.stringify(order)} gave winner ${winner(t)} and leaves ${JSON.stringify(sorted(leaves(t)))}, expected ${expected} and ${JSON.stringify(sorted(universeLeaves(u)))}`,
          );
        }
      }
    }
    const shortest = failures.reduce((a, b) => (b.length < a.length ? b : a), failures[0] ?? '');
    const wrongWinner = failures.filter((f) => f.includes('[winner]')).length;
    assert.equal(
      failures.length,
      0,
      `${failures.length} graft orders diverged (${wrongWinner} with another winner); shortest: ${shortest}`,
    );
  });

  void it('random edits and grafts keep the tree well formed; stemming keeps leaves and winner', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const rng = prng(9000 + seed);
      const u = randomUniverse(rng, 1 + int(rng, 30));
      const all = [...u.parent.keys()];
      let t: RevTree = {};
      // Replicated paths (some truncated), then local edits on top of random leaves.
      for (const r of shuffle(rng, all).slice(0, 1 + int(rng, all.length))) {
        const p = universePath(u, r, rng() < 0.5 ? Infinity : 1 + int(rng, 8));
        t = graftPath(t, p, flagsFor(u, r)) ?? t;
      }
      for (let e = int(rng, 6); e > 0; e--) {
        const leaf = pick(rng, leaves(t));
        t = addChild(t, leaf, `${revPos(leaf) + 1}-${hash(rng)}${e}`, A | (rng() < 0.3 ? D : 0));
      }
      assertWellFormed(t, `seed ${seed}`);

      const limit = 1 + int(rng, 6);
      const before = { leaves: sorted(leaves(t)), winner: winner(t), deleted: winnerDeleted(t) };
      const { tree: s, dropped } = stem(t, limit);
      assertWellFormed(s, `seed ${seed} stemmed`);
      assert.deepEqual(sorted(leaves(s)), before.leaves, `seed ${seed}: stemming never changes leaves`);
      assert.equal(winner(s), before.winner, `seed ${seed}: same winner`);
      assert.equal(winnerDeleted(s), before.deleted);
      assert.deepEqual(
        sorted([...Object.keys(s), ...dropped]),
        sorted(Object.keys(t)),
        `seed ${seed}: partition`,
      );
      for (const r of Object.keys(s)) assert.equal(s[r][1], t[r][1], `seed ${seed}: flags of ${r} kept`);

      // A revision survives iff it is among the `limit` newest of some leaf's branch.
      const within = new Set<string>();
      for (const l of leaves(t)) for (const r of ancestry(t, l).slice(0, limit)) within.add(r);
      assert.deepEqual(sorted(Object.keys(s)), sorted([...within]), `seed ${seed}: kept set`);
      for (const l of leaves(s)) {
        const a = ancestry(s, l);
        assert.ok(
          a.length >= Math.min(limit, ancestry(t, l).length),
          `seed ${seed}: ${l} keeps its newest revs`,
        );
        assert.deepEqual(
          a,
          ancestry(t, l).slice(0, a.length),
          `seed ${seed}: ${l} keeps a prefix of its path`,
        );
      }
      // On a tree with a single leaf, the leaf keeps exactly min(limit, depth) revisions.
      if (before.leaves.length === 1) {
        const l = before.leaves[0];
        assert.equal(ancestry(s, l).length, Math.min(limit, ancestry(t, l).length), `seed ${seed}: linear`);
      }
      // Stemming is idempotent.
      assert.equal(stem(s, limit).dropped.length, 0, `seed ${seed}: stem twice`);
    }
  });

  void it('revsDiff agrees with a direct definition', () => {
    for (let seed = 1; seed <= 150; seed++) {
      const rng = prng(20000 + seed);
      const u = randomUniverse(rng, 1 + int(rng, 15));
      const all = [...u.parent.keys()];
      const known = shuffle(rng, all).slice(0, int(rng, all.length + 1));
      const t = graftAll(
        {},
        known.map((r) => universePath(u, r, 1 + int(rng, 5))),
        u,
      );
      const asked = shuffle(rng, all).slice(0, 1 + int(rng, all.length));
      const r = revsDiff(Object.keys(t).length === 0 ? undefined : t, asked);
      const missing = asked.filter((x) => !(x in t));
      assert.deepEqual(r.missing, missing, `seed ${seed}`);
      const maxMissing = Math.max(0, ...missing.map(revPos));
      const expected = missing.length === 0 ? [] : leaves(t).filter((l) => revPos(l) < maxMissing);
      assert.deepEqual(sorted(r.possibleAncestors), sorted(expected), `seed ${seed}`);
    }
  });
});
