import type { AttachmentMeta } from '../journal/journal-entry.js';
import { ancestry, leaves, RevFlag, revisionsOf, revPos, sortedLeaves, type RevTree } from './rev-tree.js';

/** A stored revision: the body as JSON text, and its attachments' metadata. */
export interface StoredRevision {
  readonly b: string;
  readonly a?: Readonly<Record<string, AttachmentMeta>>;
}

export interface RenderOptions {
  readonly revs?: boolean;
  readonly revsInfo?: boolean;
  readonly conflicts?: boolean;
  readonly deletedConflicts?: boolean;
  /** Include attachment bodies (base64) instead of stubs. */
  readonly attachments?: boolean;
  /** Include bodies only of attachments newer than the newest of these revisions. */
  readonly attsSince?: readonly string[];
  readonly localSeq?: number;
}

/** Reads an attachment's bytes; returns undefined when they are gone. */
export type AttachmentReader = (digest: string) => Buffer | undefined;

function attachmentsJson(
  atts: Readonly<Record<string, AttachmentMeta>>,
  tree: RevTree,
  rev: string,
  options: RenderOptions,
  read: AttachmentReader,
): string {
  let sincePos = 0;
  if (options.attsSince !== undefined) {
    const ancestors = new Set(ancestry(tree, rev));
    for (const r of options.attsSince) if (ancestors.has(r)) sincePos = Math.max(sincePos, revPos(r));
  }
  const parts: string[] = [];
  for (const name of Object.keys(atts)) {
    const meta = atts[name];
    const withData =
      options.attachments === true || (options.attsSince !== undefined && meta.revpos > sincePos);
    const bytes = withData ? read(meta.digest) : undefined;
    const head = `"content_type":${JSON.stringify(meta.content_type)},"revpos":${meta.revpos},"digest":${JSON.stringify(meta.digest)}`;
    parts.push(
      bytes === undefined
        ? `${JSON.stringify(name)}:{${head},"length":${meta.length},"stub":true}`
        : `${JSON.stringify(name)}:{${head},"data":"${bytes.toString('base64')}"}`,
    );
  }
  return `{${parts.join(',')}}`;
}

/**
 * Renders one revision as CouchDB JSON text by splicing the stored body, so
 * reading a document never parses it.
 */
export function renderDoc(
  id: string,
  rev: string,
  tree: RevTree,
  stored: StoredRevision | undefined,
  options: RenderOptions,
  read: AttachmentReader,
): string {
  const deleted = ((tree[rev]?.[1] ?? 0) & RevFlag.Deleted) !== 0;
  let out = `{"_id":${JSON.stringify(id)},"_rev":${JSON.stringify(rev)}`;
  const body = stored?.b ?? '{}';
  if (body.length > 2) out += `,${body.slice(1, -1)}`;
  if (stored?.a !== undefined && Object.keys(stored.a).length > 0) {
    out += `,"_attachments":${attachmentsJson(stored.a, tree, rev, options, read)}`;
  }
  if (deleted) out += ',"_deleted":true';
  if (options.localSeq !== undefined) out += `,"_local_seq":${options.localSeq}`;
  if (options.conflicts === true || options.deletedConflicts === true) {
    const others = sortedLeaves(tree).filter((l) => l !== rev);
    const live = others.filter((l) => (tree[l][1] & RevFlag.Deleted) === 0);
    const dead = others.filter((l) => (tree[l][1] & RevFlag.Deleted) !== 0);
    if (options.conflicts === true && live.length > 0) out += `,"_conflicts":${JSON.stringify(live)}`;
    if (options.deletedConflicts === true && dead.length > 0)
      out += `,"_deleted_conflicts":${JSON.stringify(dead)}`;
  }
  if (options.revs === true) out += `,"_revisions":${JSON.stringify(revisionsOf(tree, rev))}`;
  if (options.revsInfo === true) {
    const info = ancestry(tree, rev).map((r) => {
      const flags = tree[r][1];
      const status =
        (flags & RevFlag.Deleted) !== 0
          ? 'deleted'
          : (flags & RevFlag.Available) !== 0
            ? 'available'
            : 'missing';
      return { rev: r, status };
    });
    out += `,"_revs_info":${JSON.stringify(info)}`;
  }
  return `${out}}`;
}

/** Leaves of the tree, for `_changes` style=all_docs rows (winner first). */
export const changeRevs = (tree: RevTree, style: 'all_docs' | 'main_only'): string[] =>
  style === 'main_only' ? sortedLeaves(tree).slice(0, 1) : sortedLeaves(tree);

export { leaves };
