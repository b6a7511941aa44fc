import { isAscii } from 'node:buffer';
import { badRequest } from '../../errors.js';
import { newRevision, parseDocEdit, type DocEdit } from './doc-input.js';

export interface BulkDocsRequest {
  readonly newEdits: boolean;
  readonly edits: DocEdit[];
}

/** A request body as JSON text; ASCII bodies (the usual case) skip UTF-8 validation. */
export function decodeJson(bytes: Uint8Array): unknown {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buffer.length === 0) throw badRequest('Request body must be a JSON object', 'bad_request');
  try {
    return JSON.parse(buffer.toString(isAscii(buffer) ? 'latin1' : 'utf8')) as unknown;
  } catch {
    throw badRequest('invalid UTF-8 JSON', 'bad_request');
  }
}

/** The `docs` and `new_edits` members of a `_bulk_docs` body, checked. */
export function bulkDocsBody(bytes: Uint8Array): { docs: unknown[]; newEdits: boolean } {
  const body = decodeJson(bytes) as { docs?: unknown; new_edits?: unknown } | null;
  if (typeof body !== 'object' || body === null || !Array.isArray(body.docs)) {
    throw badRequest('POST body must include `docs` parameter.', 'bad_request');
  }
  if (body.new_edits !== undefined && typeof body.new_edits !== 'boolean') {
    throw badRequest('`new_edits` parameter must be a boolean.', 'bad_request');
  }
  return { docs: body.docs, newEdits: body.new_edits ?? true };
}

/**
 * Parses and validates a `_bulk_docs` body into edits. Pure and free of
 * storage, so it can run off the main thread. A new document's revision
 * (no parent, no attachments) is hashed here already; the engine uses it when
 * the document indeed has no parent.
 */
export function parseBulkDocsRequest(bytes: Uint8Array, maxDocumentBytes: number): BulkDocsRequest {
  const { docs, newEdits } = bulkDocsBody(bytes);
  const edits = docs.map((doc: unknown) => {
    const edit = parseDocEdit(doc, { newEdits, maxBytes: maxDocumentBytes });
    if (!newEdits || edit.rev !== undefined || edit.attachments !== undefined) return edit;
    return { ...edit, firstRev: newRevision(null, edit, []) };
  });
  return { newEdits, edits };
}
