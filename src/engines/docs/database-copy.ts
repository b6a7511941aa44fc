/**
 * A database copied whole, as a follower's bootstrap reads it from its leader:
 * every document (tombstones too) with its leaf revisions, each leaf with its
 * ancestry and its stored bytes, from one consistent snapshot. The receiving
 * side grafts each leaf as a replication with `new_edits=false` would.
 */
import { decodeAttachments } from './doc-records.js';

/** One leaf revision of a copied document. */
export interface CopiedRevision {
  /** The leaf and its ancestors, newest first (as `_revisions` gives them). */
  readonly path: readonly string[];
  readonly deleted: boolean;
  /** The revision as stored (`encodeRevision`): its attachments' metadata and its JSON body. */
  readonly stored: Buffer;
}

export interface CopiedDoc {
  readonly id: string;
  readonly leaves: readonly CopiedRevision[];
}

/** An open copy: read `docs()` and `attachment()`, then `close()` (it holds a read transaction). */
export interface DatabaseCopy {
  /** The database's update seq at the snapshot: changes after it are not in the copy. */
  readonly seq: number;
  readonly docCount: number;
  readonly delCount: number;
  /** Documents with an id after `afterId` (all when undefined), in id order. */
  docs(): Generator<CopiedDoc>;
  /**
   * Documents `docs()` left out so far because a leaf's stored body could not be
   * found by the id read back from its key (LMDB's key encoding does not give
   * back some ids with control characters); a copy with any is incomplete.
   */
  readonly unreadable: number;
  /** An attachment body the copied revisions refer to, by digest. */
  attachment(digest: string): Buffer | undefined;
  close(): void;
}

/**
 * Shared by the batches of one restore: set by a batch whose transaction
 * failed, after which later batches refuse to commit (batches already queued
 * behind it would otherwise commit past the gap).
 */
export interface CopyGuard {
  failed: boolean;
}

/** The snapshot a copy was made from: its seq and document counters. */
export interface CopyHeader {
  readonly seq: number;
  readonly doc_count: number;
  readonly doc_del_count: number;
}

/** A copy as its reader decodes it: the header, each document and attachment body, the end. */
export type CopyFrame =
  | { readonly kind: 'header'; readonly header: CopyHeader }
  | { readonly kind: 'attachment'; readonly digest: string; readonly bytes: Buffer }
  | { readonly kind: 'doc'; readonly doc: CopiedDoc }
  | { readonly kind: 'end'; readonly docs: number; readonly unreadable: number };

/** Attachment digests a copy remembers as sent; past this many it forgets them (and may send a body twice). */
const MAX_REMEMBERED_DIGESTS = 100_000;

/**
 * Appends `doc`'s frames to `out`: the bodies of its attachments not in
 * `sent` yet (as `bodyOf` finds them), then the document. A reader keeps the
 * bodies for the documents after it.
 */
export function pushDocFrames(
  out: CopyFrame[],
  doc: CopiedDoc,
  bodyOf: (digest: string) => Buffer | undefined,
  sent: Set<string>,
): void {
  for (const leaf of doc.leaves) {
    for (const meta of Object.values(decodeAttachments(leaf.stored) ?? {})) {
      if (sent.has(meta.digest)) continue;
      const bytes = bodyOf(meta.digest);
      if (bytes === undefined) continue;
      out.push({ kind: 'attachment', digest: meta.digest, bytes });
      if (sent.size >= MAX_REMEMBERED_DIGESTS) sent.clear();
      sent.add(meta.digest);
    }
  }
  out.push({ kind: 'doc', doc });
}
