import { createHash, hash as oneShotHash } from 'node:crypto';
import { badRequest, DoppelError, ErrorKind } from '../../errors.js';
import { parseRev, revPos } from './rev-tree.js';
import type { AttachmentMeta } from '../journal/journal-entry.js';

/** Top-level members CouchDB accepts on a document; any other `_` member is refused. */
const SPECIAL_MEMBERS = new Set([
  '_id',
  '_rev',
  '_attachments',
  '_deleted',
  '_revisions',
  '_revs_info',
  '_conflicts',
  '_deleted_conflicts',
  '_local_seq',
]);

/** Special members CouchDB keeps in the stored body (the replicator's bookkeeping, access lists). */
const BODY_SPECIAL_MEMBERS = new Set([
  '_replication_state',
  '_replication_state_time',
  '_replication_state_reason',
  '_replication_id',
  '_replication_stats',
  '_access',
]);

export type AttachmentInput =
  | { readonly kind: 'data'; readonly contentType: string; readonly bytes: Buffer; readonly digest: string }
  | { readonly kind: 'stub'; readonly digest: string | undefined; readonly revpos: number | undefined }
  /** A node replica's copy of its primary's stored metadata (the bytes are already stored). */
  | { readonly kind: 'replica'; readonly meta: AttachmentMeta };

/** A document as a write request carries it, validated and split into its parts. */
export interface DocEdit {
  readonly id: string;
  /** `_rev` as sent (the parent for an edit, the revision itself with new_edits=false). */
  readonly rev: string | undefined;
  readonly deleted: boolean;
  /** JSON text of the user members only (no `_` members). */
  readonly body: string;
  /** New-edits=false path, newest first, as full revs. */
  readonly path: readonly string[] | undefined;
  readonly attachments: ReadonlyMap<string, AttachmentInput> | undefined;
  /** The revision this edit gets when it has no parent, hashed ahead of the write. */
  readonly firstRev?: string;
}

/** One-shot hashing (`crypto.hash`, Node ≥ 20.12) avoids a Hash object per document. */
const md5Hex: (text: string) => string =
  typeof oneShotHash === 'function'
    ? (text) => oneShotHash('md5', text, 'hex')
    : (text) => createHash('md5').update(text).digest('hex');

export const md5Digest = (bytes: Buffer): string => `md5-${createHash('md5').update(bytes).digest('base64')}`;

export function validateDocId(id: unknown, options: { allowDesign: boolean }): string {
  if (typeof id !== 'string') throw badRequest('Document id must be a string', 'illegal_docid');
  if (id === '') throw badRequest('Document id must not be empty', 'illegal_docid');
  if (id.startsWith('_') && !(options.allowDesign && id.startsWith('_design/') && id.length > 8)) {
    throw badRequest('Only reserved document ids may start with underscore.', 'illegal_docid');
  }
  if (id.includes('\u0000')) throw badRequest('Document id must not contain NUL', 'illegal_docid');
  return id;
}

function parseRevisions(value: unknown, rev: string | undefined): string[] {
  const fail = (): never => {
    throw badRequest('_revisions must be {"start": integer, "ids": [string, ...]}', 'doc_validation');
  };
  if (typeof value !== 'object' || value === null) return fail();
  const { start, ids } = value as { start?: unknown; ids?: unknown };
  if (typeof start !== 'number' || !Number.isSafeInteger(start) || start < 1) return fail();
  if (!Array.isArray(ids) || ids.length === 0 || ids.length > start) return fail();
  const path = ids.map((hash: unknown, i) => {
    if (typeof hash !== 'string') return fail();
    const full = `${start - i}-${hash}`;
    if (parseRev(full) === null) return fail();
    return full;
  });
  if (rev !== undefined && path[0] !== rev) {
    throw badRequest('_rev does not match the newest entry of _revisions', 'doc_validation');
  }
  return path;
}

function parseAttachments(value: unknown): Map<string, AttachmentInput> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badRequest('_attachments must be an object', 'doc_validation');
  }
  const out = new Map<string, AttachmentInput>();
  for (const [name, raw] of Object.entries(value as Record<string, unknown>)) {
    if (name === '' || name.startsWith('_')) {
      throw badRequest(`Attachment name '${name}' must not be empty or start with underscore`, 'bad_request');
    }
    if (typeof raw !== 'object' || raw === null) throw badRequest(`Attachment ${name} must be an object`);
    const att = raw as Record<string, unknown>;
    if (att['stub'] === true) {
      const revpos = att['revpos'];
      out.set(name, {
        kind: 'stub',
        digest: typeof att['digest'] === 'string' ? att['digest'] : undefined,
        revpos: typeof revpos === 'number' ? revpos : undefined,
      });
      continue;
    }
    if (att['follows'] === true) {
      throw badRequest(
        `Attachment ${name}: "follows" needs a multipart request; send "data" (base64) instead`,
      );
    }
    const data = att['data'];
    if (typeof data !== 'string')
      throw badRequest(`Attachment ${name} needs "data" (base64) or "stub": true`);
    if (!/^[A-Za-z0-9+/\r\n]*={0,2}[\r\n]*$/.test(data)) {
      throw badRequest(`Invalid attachment data for ${name}`, 'bad_request');
    }
    const bytes = Buffer.from(data, 'base64');
    const contentType =
      typeof att['content_type'] === 'string' ? att['content_type'] : 'application/octet-stream';
    const digest = md5Digest(bytes);
    out.set(name, { kind: 'data', contentType, bytes, digest });
  }
  return out;
}

/** Validates one document of a write request and splits it into a `DocEdit`. */
export function parseDocEdit(
  raw: unknown,
  options: { readonly newEdits: boolean; readonly id?: string; readonly maxBytes?: number },
): DocEdit {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw badRequest('Document must be a JSON object', 'bad_request');
  }
  const doc = raw as Record<string, unknown>;
  const body: Record<string, unknown> = {};
  for (const key in doc) {
    if (key.charCodeAt(0) === 95 /* _ */ && !BODY_SPECIAL_MEMBERS.has(key)) {
      if (!SPECIAL_MEMBERS.has(key))
        throw badRequest(`Bad special document member: ${key}`, 'doc_validation');
    } else if (key === '__proto__') {
      // A member named `__proto__` stays a member, never a prototype.
      Object.defineProperty(body, key, {
        value: doc[key],
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else {
      body[key] = doc[key];
    }
  }
  const rawId = options.id ?? doc['_id'];
  const id = validateDocId(rawId, { allowDesign: true });
  if (options.id !== undefined && doc['_id'] !== undefined && doc['_id'] !== options.id) {
    throw badRequest('Document id in the body does not match the URL', 'bad_request');
  }
  let rev: string | undefined;
  if (doc['_rev'] !== undefined) {
    if (parseRev(doc['_rev']) === null) throw badRequest('Invalid rev format', 'bad_request');
    rev = doc['_rev'] as string;
  }
  const deletedRaw = doc['_deleted'];
  if (deletedRaw !== undefined && typeof deletedRaw !== 'boolean') {
    throw badRequest('_deleted must be a boolean', 'doc_validation');
  }
  let path: string[] | undefined;
  if (!options.newEdits) {
    if (doc['_revisions'] !== undefined) path = parseRevisions(doc['_revisions'], rev);
    else if (rev !== undefined) path = [rev];
    else throw badRequest('new_edits=false needs _rev or _revisions on every document', 'bad_request');
  }
  const attachments = doc['_attachments'] === undefined ? undefined : parseAttachments(doc['_attachments']);
  const text = JSON.stringify(body);
  // UTF-8 takes at most 3 bytes per UTF-16 unit: most bodies need no byte count.
  const maxBytes = options.maxBytes;
  if (maxBytes !== undefined && text.length * 3 > maxBytes && Buffer.byteLength(text) > maxBytes) {
    throw new DoppelError(ErrorKind.TooLarge, id, { errorName: 'document_too_large' });
  }
  return { id, rev: path?.[0] ?? rev, deleted: deletedRaw === true, body: text, path, attachments };
}

/**
 * A new revision's hash: md5 over the parent, the deletion flag, the body and
 * the attachment digests, so the same edit of the same parent always yields
 * the same revision on every node.
 */
export function newRevision(parent: string | null, edit: DocEdit, attDigests: readonly string[]): string {
  const pos = parent === null ? 0 : revPos(parent);
  // The body is hashed as the text we store; only the small fields go through JSON.
  const hash = md5Hex(JSON.stringify([edit.deleted, pos, parent ?? '', attDigests]) + edit.body);
  return `${pos + 1}-${hash}`;
}

/**
 * Checks a revision copied from another node's storage (a database copy) as
 * a write request would be checked: a valid id, a path of consecutive valid
 * revisions, a body that is a JSON object without special members other
 * than those CouchDB keeps. Throws `bad_request` / `doc_validation`.
 */
export function validateCopiedRevision(
  id: string,
  path: readonly string[],
  body: string,
  atts: Readonly<Record<string, unknown>> | undefined,
): void {
  validateDocId(id, { allowDesign: true });
  const first = parseRev(path[0]);
  if (first === null || path.length > first.pos)
    throw badRequest(`Invalid revision path of ${id}`, 'bad_request');
  for (let i = 1; i < path.length; i++) {
    if (parseRev(path[i])?.pos !== first.pos - i)
      throw badRequest(`Invalid revision path of ${id}`, 'bad_request');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw badRequest(`The body of ${id} is not JSON`, 'bad_request');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw badRequest(`The body of ${id} is not a JSON object`, 'bad_request');
  for (const key in parsed) {
    if (key.charCodeAt(0) === 95 /* _ */ && !BODY_SPECIAL_MEMBERS.has(key))
      throw badRequest(`Bad special document member: ${key}`, 'doc_validation');
  }
  for (const [name, meta] of Object.entries(atts ?? {})) {
    const m = (meta ?? {}) as Record<string, unknown>;
    if (
      typeof m['content_type'] !== 'string' ||
      typeof m['digest'] !== 'string' ||
      !Number.isSafeInteger(m['length']) ||
      !Number.isSafeInteger(m['revpos'])
    )
      throw badRequest(`Invalid attachment ${name} of ${id}`, 'bad_request');
  }
}
