/**
 * The worker thread of `rdb-load-thread.ts`: opens the node's LMDB
 * environment again and loads the spooled RDB into the keyspace tables that
 * are not live (see `engines/kv/table-sets.ts`), in short writes, so that the
 * node's other writers take turns with it. The main thread makes them live.
 */
import { Journal } from '../../engines/journal/journal.js';
import { Keyspace } from '../../engines/kv/keyspace.js';
import { RdbLoad } from '../../engines/kv/rdb/rdb-loader.js';
import { liveSet, otherSet } from '../../engines/kv/table-sets.js';
import { fileChunks } from '../../storage/file-chunks.js';
import { Storage } from '../../storage/environment.js';
import { serveOneWrite } from '../write-thread.js';
import type { RdbLoadEvent, RdbLoadRequest, RdbLoadResult } from './rdb-load-thread.js';

/** Warnings passed on (the link logs only the first few; an RDB may skip millions of keys). */
const MAX_WARNINGS = 100;
/**
 * How long one write of the load runs before it commits and lets the node's other
 * writers in. Each commit rewrites the pages the step touched (LMDB copies on write):
 * 250 ms steps made a 200k-key load ~17 % slower than one write, 1 s steps ~4 %. So a
 * step is long unless a writer of the main thread is waiting: then it ends once it
 * ran `MIN_STEP_MS`, and the load pays for shorter steps only while others write
 * (1.5M keys with a document written every 0.2 s: 9.3 s instead of 6.8 s; each of those
 * writes waited 14–230 ms instead of ~850 ms; with 100 ms, 11.8 s and 14–107 ms).
 */
const STEP_MS = 1000;
const MIN_STEP_MS = 250;

await serveOneWrite<RdbLoadRequest, RdbLoadEvent, RdbLoadResult>(async (request, context) => {
  const { emit, whileWriting, turnWanted } = context;
  // `fsync`: this instance acknowledges through lmdb-js alone, so it never writes commit
  // marks, which are the main thread's (see `Storage.write`).
  const storage = new Storage({ path: request.storagePath, durability: 'fsync', maxUnsyncedMs: 0 });
  try {
    // Staged writes are not journaled: the journal is only opened.
    const journal = new Journal(storage, { maxBytes: 0, maxAgeMs: 0, backlogBytes: 0 });
    const tables = otherSet(liveSet(storage));
    const keyspace = new Keyspace(storage, journal, { deleteExpired: false, tables });
    let warnings = 0;
    const load = new RdbLoad(keyspace, fileChunks(request.spoolPath), {
      warn: (message, detail) => {
        if (++warnings <= MAX_WARNINGS) emit({ kind: 'warning', message, detail });
      },
      whileLoading: (bytesRead) => whileWriting(() => ({ kind: 'progress', bytesRead })),
    });
    const step = (): boolean => {
      const started = performance.now();
      return load.step(() => {
        const ran = performance.now() - started;
        return ran >= STEP_MS || (ran >= MIN_STEP_MS && turnWanted());
      });
    };
    // What an earlier load left (one that failed, or was stopped) goes first.
    let done = await keyspace.stage(() => {
      keyspace.clearTables();
      return step();
    });
    while (!done) done = await keyspace.stage(step);
    return { summary: load.summary(), counters: keyspace.cachedCounters(), tables };
  } finally {
    await storage.close();
  }
});
