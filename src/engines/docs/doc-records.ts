import type { AttachmentMeta } from '../journal/journal-entry.js';
import type { StoredRevision } from './doc-output.js';
import { ancestry, emptyTree, leaves, type RevTree } from './rev-tree.js';

/**
 * Storage encodings of the document engine's rows. Revision trees are stored
 * as flat arrays, never as objects keyed by revision: msgpack would otherwise
 * record a new structure for every document's unique set of keys.
 */

/** What the store keeps per document: its revision tree and last update seq. */
export interface DocInfo {
  readonly t: RevTree;
  readonly s: number;
}

/** `[seq, rev, parent, flags, rev, parent, flags, …]` */
export type StoredDocInfo = readonly (string | number | null)[];

export function encodeInfo(tree: RevTree, seq: number): StoredDocInfo {
  const out: (string | number | null)[] = [seq];
  for (const rev in tree) {
    const node = tree[rev];
    out.push(rev, node[0], node[1]);
  }
  return out;
}

export function decodeInfo(stored: StoredDocInfo): DocInfo {
  const t = emptyTree();
  for (let i = 1; i < stored.length; i += 3) {
    t[stored[i] as string] = [stored[i + 1] as string | null, stored[i + 2] as number];
  }
  return { t, s: stored[0] as number };
}

/** A leaf revision of a stored tree with its flags and its ancestry, newest first. */
export interface StoredLeaf {
  readonly rev: string;
  readonly flags: number;
  readonly path: string[];
}

/** Every leaf of a stored tree; a single branch stored root first (most trees) is read without decoding. */
export function storedLeaves(stored: StoredDocInfo): StoredLeaf[] {
  let chain = stored.length >= 4 && stored[2] === null;
  for (let i = 4; chain && i < stored.length; i += 3) chain = stored[i + 1] === stored[i - 3];
  if (chain) {
    const path: string[] = [];
    for (let i = stored.length - 3; i >= 1; i -= 3) path.push(stored[i] as string);
    return [{ rev: path[0], flags: stored[stored.length - 1] as number, path }];
  }
  const tree = decodeInfo(stored).t;
  return leaves(tree).map((rev) => ({ rev, flags: tree[rev][1], path: ancestry(tree, rev) }));
}

/**
 * A `_changes` row's facts, kept in the by-seq index so a feed needs no tree
 * decode for the common case: `[docId, winningRev, deleted (0|1), leafCount]`.
 */
export type SeqEntry = readonly [id: string, rev: string, deleted: 0 | 1, leaves: number];

/**
 * A stored revision as bytes: a flag byte, then for attachments a 4-byte
 * length and their JSON, then the body's JSON text (kept as written).
 */
export function encodeRevision(stored: StoredRevision): Buffer {
  if (stored.a === undefined) {
    const out = Buffer.allocUnsafe(1 + Buffer.byteLength(stored.b));
    out[0] = 0;
    out.write(stored.b, 1);
    return out;
  }
  const body = Buffer.from(stored.b, 'utf8');
  const atts = Buffer.from(JSON.stringify(stored.a), 'utf8');
  const head = Buffer.allocUnsafe(5);
  head[0] = 1;
  head.writeUInt32LE(atts.length, 1);
  return Buffer.concat([head, atts, body]);
}

/** Scratch space for `encodeRevisionForPut` (grown when a revision does not fit). */
let scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * `encodeRevision` into a shared scratch buffer: the bytes are valid only until
 * the next call. For a synchronous put inside a write transaction, which copies
 * the value; it saves allocating (and collecting) a buffer per revision.
 */
export function encodeRevisionForPut(stored: StoredRevision): Buffer {
  if (stored.a !== undefined) return encodeRevision(stored);
  const bound = 1 + 3 * stored.b.length;
  if (bound > scratch.length) scratch = Buffer.allocUnsafe(Math.max(bound, scratch.length * 2));
  scratch[0] = 0;
  const written = scratch.write(stored.b, 1);
  return scratch.subarray(0, 1 + written);
}

export function decodeRevision(bytes: Buffer): StoredRevision {
  const a = decodeAttachments(bytes);
  if (a === undefined) return { b: bytes.toString('utf8', 1) };
  return { b: bytes.toString('utf8', 5 + bytes.readUInt32LE(1)), a };
}

/** A stored revision's attachment metadata, without decoding its body; undefined when it has none. */
export function decodeAttachments(bytes: Buffer): Record<string, AttachmentMeta> | undefined {
  if (bytes[0] === 0) return undefined;
  const length = bytes.readUInt32LE(1);
  return JSON.parse(bytes.toString('utf8', 5, 5 + length)) as Record<string, AttachmentMeta>;
}
