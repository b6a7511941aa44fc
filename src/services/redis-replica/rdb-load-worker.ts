/**
 * The worker thread of `rdb-load-thread.ts`: opens the node's LMDB
 * environment again and writes the spooled RDB into the keyspace tables that
 * are not live (see `engines/kv/table-sets.ts`), in short writes, so that the
 * node's other writers take turns with it. Its own worker decodes the file
 * (`rdb-decode-worker.ts`) and records the rows; this one replays them — the
 * two halves cost about the same, so a load takes a core each. The main
 * thread makes the tables live.
 */
import { Journal } from '../../engines/journal/journal.js';
import { rowDb, rowUserKey } from '../../engines/kv/codec.js';
import { Keyspace } from '../../engines/kv/keyspace.js';
import { RdbError } from '../../engines/kv/rdb/rdb-error.js';
import { repeatedKey } from '../../engines/kv/rdb/rdb-loader.js';
import { liveSet, otherSet, rowTableName } from '../../engines/kv/table-sets.js';
import { Storage } from '../../storage/environment.js';
import { workerData } from 'node:worker_threads';
import { RecordedBatches, type DecoderLink } from '../recorded-batches.js';
import { serveOneWrite } from '../write-thread.js';
import type {
  RdbDecodeRequest,
  RdbDecodeResult,
  RdbLoadEvent,
  RdbLoadRequest,
  RdbLoadResult,
} from './rdb-load-thread.js';

/**
 * How long one write of the load runs before it commits and lets the node's other
 * writers in. Each commit rewrites the pages the step touched (LMDB copies on write):
 * 250 ms steps made a 200k-key load ~17 % slower than one write, 1 s steps ~4 %; the
 * larger the keyspace, the more pages a step touches (2M keys of 200 bytes: 17.8 s
 * with 1 s steps, 13.4 s with 5 s; 1M mixed keys: 5.0 s and 4.4 s). So a step is long
 * unless a writer of the main thread is waiting: then it ends once it ran
 * `MIN_STEP_MS`, and the load pays for shorter steps only while others write (1.5M
 * keys with a document written every 0.2 s: 9.3 s instead of 6.8 s; each of those
 * writes waited 14–230 ms instead of ~850 ms; with 100 ms, 11.8 s and 14–107 ms).
 */
const STEP_MS = 5000;
const MIN_STEP_MS = 250;
/** The longest wait for the decoder at once: cancellation and turns are checked in between. */
const WAIT_SLICE_MS = 20;
/**
 * A step whose decoder gave nothing for this long ends (its input is still arriving:
 * Redis may take seconds to save a large dataset before it sends any of it), and the
 * next starts once there is something to write.
 */
const IDLE_STEP_END_MS = 100;

await serveOneWrite<RdbLoadRequest, RdbLoadEvent, RdbLoadResult>(async (request, context) => {
  const { emit, whileWriting, turnWanted } = context;
  // `fsync`: this instance acknowledges through lmdb-js alone, so it never writes commit
  // marks, which are the main thread's (see `Storage.write`).
  const storage = new Storage({ path: request.storagePath, durability: 'fsync', maxUnsyncedMs: 0 });
  const tables = otherSet(liveSet(storage));
  // The decoder was started beside this thread (`startRdbLoadThread`).
  const decoder = new RecordedBatches<RdbDecodeRequest, RdbLoadEvent, RdbDecodeResult>(
    workerData as DecoderLink,
    { ...request, tables },
  );
  try {
    // Staged writes are not journaled: the journal is only opened. The keyspace opens
    // the tables the decoder's rows are replayed into.
    const journal = new Journal(storage, { maxBytes: 0, maxAgeMs: 0, backlogBytes: 0 });
    const keyspace = new Keyspace(storage, journal, { deleteExpired: false, tables });
    const keysTable = rowTableName('kv', tables);
    let bytesRead = 0;
    let result: RdbDecodeResult | null = null;
    const progress = (): RdbLoadEvent => ({ kind: 'progress', bytesRead });
    const step = (): boolean => {
      const started = performance.now();
      let lastMessage = started;
      for (;;) {
        const now = performance.now();
        const ran = now - started;
        if (ran >= STEP_MS || (ran >= MIN_STEP_MS && turnWanted())) return false;
        if (now - lastMessage >= IDLE_STEP_END_MS) return false;
        const message = decoder.next(Math.min(WAIT_SLICE_MS, STEP_MS - ran));
        whileWriting(progress);
        if (message === undefined) continue;
        lastMessage = performance.now();
        switch (message.kind) {
          case 'writes': {
            for (const note of message.notes) {
              if (note.kind === 'progress') bytesRead = note.bytesRead;
              else emit(note);
            }
            const existing = storage.replay(message.writes);
            if (existing === null) continue;
            if (existing.table !== keysTable)
              throw new Error(`a row of ${existing.table} was inserted twice`);
            const row = existing.key as Buffer;
            throw repeatedKey(rowDb(row), rowUserKey(row));
          }
          case 'done':
            result = message.result;
            return true;
          case 'failed':
            throw message.name === 'RdbError' ? new RdbError(message.message) : new Error(message.message);
        }
      }
    };
    do await decoder.waiting(() => whileWriting(progress));
    while (!(await keyspace.stage(step)));
    return { ...result!, tables };
  } finally {
    decoder.close();
    await storage.close();
  }
});
