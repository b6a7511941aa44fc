/**
 * The worker thread of `rdb-load-thread.ts`: opens the node's LMDB
 * environment again and replaces the keyspace with the spooled RDB exactly
 * as the main thread would, in one storage write of this thread.
 */
import { Journal } from '../../engines/journal/journal.js';
import { Keyspace } from '../../engines/kv/keyspace.js';
import { replaceKeyspaceWithRdb } from '../../engines/kv/rdb/rdb-loader.js';
import { fileChunks } from '../../storage/file-chunks.js';
import { Storage } from '../../storage/environment.js';
import { NodeIdentity } from '../node-replication/node-identity.js';
import { serveOneWrite } from '../write-thread.js';
import type { RdbLoadEvent, RdbLoadRequest, RdbLoadResult } from './rdb-load-thread.js';

/** Warnings passed on (the link logs only the first few; an RDB may skip millions of keys). */
const MAX_WARNINGS = 100;

await serveOneWrite<RdbLoadRequest, RdbLoadEvent, RdbLoadResult>(async (request, { emit, whileWriting }) => {
  // `fsync`: this instance acknowledges through lmdb-js alone, so it never writes commit
  // marks, which are the main thread's (see `Storage.write`).
  const storage = new Storage({ path: request.storagePath, durability: 'fsync', maxUnsyncedMs: 0 });
  try {
    // The load is not journaled (`newHistory` is always given): the journal is only opened.
    const journal = new Journal(storage, { maxBytes: 0, maxAgeMs: 0, backlogBytes: 0 });
    const keyspace = new Keyspace(storage, journal, { deleteExpired: false });
    const identity = new NodeIdentity(storage);
    let warnings = 0;
    const summary = await replaceKeyspaceWithRdb(keyspace, fileChunks(request.spoolPath), {
      warn: (message, detail) => {
        if (++warnings <= MAX_WARNINGS) emit({ kind: 'warning', message, detail });
      },
      newHistory: () => {
        // Read inside the write: the main thread may have changed the record since this one opened.
        identity.reload();
        identity.putInWrite(request.newHistory);
      },
      whileLoading: (bytesRead) => whileWriting(() => ({ kind: 'progress', bytesRead })),
    });
    return { summary, counters: keyspace.cachedCounters() };
  } finally {
    await storage.close();
  }
});
