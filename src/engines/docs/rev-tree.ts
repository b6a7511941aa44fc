/**
 * Revision trees as a flat map: rev → [parent rev or null, flags]. A node
 * whose parent is null is a root, either the true first revision or the
 * oldest one kept after stemming. Leaves are the nodes nobody names as parent.
 *
 * Pure functions; the tree is treated as immutable (every change returns a
 * new map), so a failed validation can never leave a half-edited tree.
 */
export const RevFlag = {
  Deleted: 1,
  /** The revision's body is stored (not a stub grafted from a foreign path, not compacted away). */
  Available: 2,
} as const;

export type RevNode = readonly [parent: string | null, flags: number];
export type RevTree = Readonly<Record<string, RevNode>>;

/**
 * A new, empty tree object in V8's dictionary mode. Trees are keyed by
 * revision ids, unique to each document: building them as ordinary (fast)
 * objects creates a new hidden class per document, which costs microseconds
 * per tree and keeps growing V8's transition trees. Deleting a member that is
 * not the last one added switches the object to dictionary mode for good; it
 * keeps `Object.prototype` (so it still compares equal to a literal) and
 * insertion order for enumeration.
 */
export function emptyTree(): Record<string, RevNode> {
  const t: Record<string, RevNode> = { a: [null, 0], b: [null, 0] };
  delete t['a'];
  delete t['b'];
  return t;
}

/** A mutable copy of `tree` in dictionary mode (see `emptyTree`). */
function copyTree(tree: RevTree): Record<string, RevNode> {
  const t = emptyTree();
  for (const rev in tree) t[rev] = tree[rev];
  return t;
}

const REV_PATTERN = /^([1-9][0-9]{0,14})-([0-9A-Za-z_.~+-]{1,128})$/;

export interface ParsedRev {
  readonly pos: number;
  readonly hash: string;
}

export function parseRev(rev: unknown): ParsedRev | null {
  if (typeof rev !== 'string') return null;
  const m = REV_PATTERN.exec(rev);
  if (m === null) return null;
  return { pos: Number(m[1]), hash: m[2] };
}

export const revPos = (rev: string): number => Number(rev.slice(0, rev.indexOf('-')));
const revHash = (rev: string): string => rev.slice(rev.indexOf('-') + 1);

export function leaves(tree: RevTree): string[] {
  const parents = new Set<string>();
  for (const rev in tree) {
    const parent = tree[rev][0];
    if (parent !== null) parents.add(parent);
  }
  const out: string[] = [];
  for (const rev in tree) if (!parents.has(rev)) out.push(rev);
  return out;
}

const isDeleted = (tree: RevTree, rev: string): boolean => ((tree[rev]?.[1] ?? 0) & RevFlag.Deleted) !== 0;

/** Orders leaves best first: live before deleted, then higher generation, then greater hash. */
export function compareLeaves(tree: RevTree, a: string, b: string): number {
  const da = isDeleted(tree, a);
  const db = isDeleted(tree, b);
  if (da !== db) return da ? 1 : -1;
  const pa = revPos(a);
  const pb = revPos(b);
  if (pa !== pb) return pb - pa;
  const ha = revHash(a);
  const hb = revHash(b);
  return ha < hb ? 1 : ha > hb ? -1 : 0;
}

export function sortedLeaves(tree: RevTree): string[] {
  return leaves(tree).sort((a, b) => compareLeaves(tree, a, b));
}

export function winner(tree: RevTree): string {
  const all = leaves(tree);
  let best = all[0];
  for (let i = 1; i < all.length; i++) if (compareLeaves(tree, all[i], best) < 0) best = all[i]!;
  return best;
}

export function isLeaf(tree: RevTree, rev: string): boolean {
  if (!(rev in tree)) return false;
  for (const r in tree) if (tree[r][0] === rev) return false;
  return true;
}

export const winnerDeleted = (tree: RevTree): boolean => isDeleted(tree, winner(tree));

/** The rev and its known ancestors, newest first. */
export function ancestry(tree: RevTree, rev: string): string[] {
  const out: string[] = [];
  let cur: string | null = rev;
  while (cur !== null && cur in tree) {
    out.push(cur);
    cur = tree[cur][0];
  }
  return out;
}

/** `_revisions` for a rev: `{start, ids}`, the ids newest first. */
export function revisionsOf(tree: RevTree, rev: string): { start: number; ids: string[] } {
  const path = ancestry(tree, rev);
  return { start: revPos(rev), ids: path.map(revHash) };
}

/** Adds `rev` as a child of `parent` (an edit made here). */
export function addChild(tree: RevTree, parent: string | null, rev: string, flags: number): RevTree {
  const next = parent === null && isEmpty(tree) ? emptyTree() : copyTree(tree);
  next[rev] = [parent, flags];
  return next;
}

function isEmpty(tree: RevTree): boolean {
  for (const _ in tree) return false;
  return true;
}

/**
 * Grafts a foreign path (newest first, consecutive generations) into the
 * tree, as `_bulk_docs new_edits=false` does. Ancestors we did not know are
 * added as unavailable stubs; a known root regains its parent; a known
 * revision keeps its flags. The result does not depend on the order in which
 * paths arrive. Returns null when the path adds nothing.
 */
export function graftPath(tree: RevTree, path: readonly string[], leafFlags: number): RevTree | null {
  const next = copyTree(tree);
  let changed = false;
  for (let i = path.length - 1; i >= 0; i--) {
    const rev = path[i];
    const parent = i + 1 < path.length ? path[i + 1] : null;
    const existing = next[rev];
    if (existing === undefined) {
      next[rev] = [parent, i === 0 ? leafFlags : 0];
      changed = true;
      continue;
    }
    const linked = existing[0] ?? parent;
    const flags = i === 0 && (existing[1] & RevFlag.Available) === 0 ? leafFlags : existing[1];
    if (linked !== existing[0] || flags !== existing[1]) {
      next[rev] = [linked, flags];
      changed = true;
    }
  }
  return changed ? next : null;
}

/**
 * Keeps, on every branch, only the `limit` newest revisions (counted from
 * each leaf). Returns the stemmed tree and the revisions it dropped.
 */
export function stem(tree: RevTree, limit: number): { tree: RevTree; dropped: string[] } {
  // No branch can be longer than the whole tree: nothing to drop.
  if (Object.keys(tree).length <= limit) return { tree, dropped: [] };
  const keep = new Set<string>();
  for (const leaf of leaves(tree)) {
    let cur: string | null = leaf;
    for (let depth = 0; cur !== null && depth < limit && cur in tree; depth++) {
      keep.add(cur);
      cur = tree[cur][0];
    }
  }
  const dropped: string[] = [];
  const next = emptyTree();
  for (const rev in tree) {
    if (!keep.has(rev)) {
      dropped.push(rev);
      continue;
    }
    const [parent, flags] = tree[rev];
    next[rev] = [parent !== null && keep.has(parent) ? parent : null, flags];
  }
  return dropped.length === 0 ? { tree, dropped } : { tree: next, dropped };
}

/**
 * For `_revs_diff`: which of `revs` are unknown, and for each, the known
 * leaf revisions of lower generation (possible ancestors).
 */
export function revsDiff(
  tree: RevTree | undefined,
  revs: readonly string[],
): { missing: string[]; possibleAncestors: string[] } {
  const missing = revs.filter((r) => tree === undefined || !(r in tree));
  if (tree === undefined || missing.length === 0) return { missing, possibleAncestors: [] };
  const maxMissing = Math.max(...missing.map(revPos));
  const possibleAncestors = leaves(tree).filter((l) => revPos(l) < maxMissing);
  return { missing, possibleAncestors };
}
