import { parentPort } from 'node:worker_threads';
import { parseBulkDocsRequest } from '../../engines/docs/bulk-docs-request.js';
import { asDoppelError } from '../../errors.js';
import type { ParseReply, ParseRequest } from './parse-pool.js';

/** Parses `_bulk_docs` bodies off the main thread (see parse-pool.ts). */
const port = parentPort;
if (port === null) throw new Error('parse-worker must run in a worker thread');
port.on('message', (request: ParseRequest) => {
  let reply: ParseReply;
  try {
    const { newEdits, edits } = parseBulkDocsRequest(request.bytes, request.maxDocumentBytes);
    reply = { id: request.id, ok: true, newEdits, edits };
  } catch (err) {
    const error = asDoppelError(err);
    reply = { id: request.id, ok: false, kind: error.kind, reason: error.reason, errorName: error.errorName };
  }
  port.postMessage(reply);
});
