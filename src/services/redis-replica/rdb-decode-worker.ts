/**
 * The decoding half of an RDB load (see `rdb-load-worker.ts`): reads the
 * spooled RDB and runs the keyspace's inserts with their rows recorded, not
 * written (`Keyspace.stageRecorded`); the load worker writes them. Decoding
 * and LMDB's puts then take a core each.
 */
import { Journal } from '../../engines/journal/journal.js';
import { Keyspace } from '../../engines/kv/keyspace.js';
import { RdbLoad } from '../../engines/kv/rdb/rdb-loader.js';
import { growingFileChunks } from '../../storage/file-chunks.js';
import { Storage } from '../../storage/environment.js';
import { WriteRecorder } from '../../storage/recorded-writes.js';
import { sendRecordedBatches } from '../recorded-batches.js';
import type { RdbLoadEvent, RdbDecodeRequest, RdbDecodeResult } from './rdb-load-thread.js';

/** Recorded bytes per batch: small enough that the writer starts early, large enough to post rarely. */
const BATCH_BYTES = 256 * 1024;
/** Warnings passed on (the link logs only the first few; an RDB may skip millions of keys). */
const MAX_WARNINGS = 100;

await sendRecordedBatches<RdbDecodeRequest, RdbLoadEvent, RdbDecodeResult>((request, sender) => {
  // Only read here: its instance never writes (`fsync`: no commit marks either).
  const storage = new Storage({ path: request.storagePath, durability: 'fsync', maxUnsyncedMs: 0 });
  try {
    const journal = new Journal(storage, { maxBytes: 0, maxAgeMs: 0, backlogBytes: 0 });
    const keyspace = new Keyspace(storage, journal, { deleteExpired: false, tables: request.tables });
    const recorder = new WriteRecorder();
    let notes: RdbLoadEvent[] = [];
    let warnings = 0;
    let bytesRead = 0;
    const load = new RdbLoad(keyspace, growingFileChunks(request.spoolPath, request.spool), {
      warn: (message, detail) => {
        if (++warnings <= MAX_WARNINGS) notes.push({ kind: 'warning', message, detail });
      },
      whileLoading: (offset) => (bytesRead = offset),
    });
    const send = (): void => {
      notes.push({ kind: 'progress', bytesRead });
      sender.send(recorder.take(), notes);
      notes = [];
    };
    // What an earlier load left (one that failed, or was stopped) goes first.
    keyspace.stageRecorded(recorder, () => keyspace.clearTables());
    send();
    while (!keyspace.stageRecorded(recorder, () => load.step(() => recorder.size >= BATCH_BYTES))) send();
    send();
    return { summary: load.summary(), counters: keyspace.cachedCounters() };
  } finally {
    void storage.close();
  }
});
