/**
 * The worker thread of `snapshot-restore-thread.ts`: opens the node's LMDB
 * environment again and, in one storage write of this thread, replaces the
 * replicated tables with the spooled snapshot, empties the journal up to the
 * snapshot's LSN and records the primary's history.
 */
import { Journal } from '../../engines/journal/journal.js';
import { Keyspace } from '../../engines/kv/keyspace.js';
import { Storage } from '../../storage/environment.js';
import { serveOneWrite } from '../write-thread.js';
import { NodeIdentity, ZERO_REPLID } from './node-identity.js';
import { restoreSnapshot } from './snapshot.js';
import type {
  SnapshotRestoreProgress,
  SnapshotRestoreRequest,
  SnapshotRestoreResult,
} from './snapshot-restore-thread.js';

await serveOneWrite<SnapshotRestoreRequest, SnapshotRestoreProgress, SnapshotRestoreResult>(
  async ({ storagePath, spoolPath, replid, lsn }, { whileWriting }) => {
    // `fsync`: this instance acknowledges through lmdb-js alone, so it never writes commit
    // marks, which are the main thread's (see `Storage.write`).
    const storage = new Storage({ path: storagePath, durability: 'fsync', maxUnsyncedMs: 0 });
    try {
      const journal = new Journal(storage, { maxBytes: 0, maxAgeMs: 0, backlogBytes: 0 });
      const keyspace = new Keyspace(storage, journal, { deleteExpired: false });
      const identity = new NodeIdentity(storage);
      const rows = await storage.write(() => {
        const restored = restoreSnapshot({ storage, keyspace }, spoolPath, (bytesRead) =>
          whileWriting(() => ({ bytesRead })),
        );
        journal.resetTo(lsn);
        // Read inside the write: the main thread may have changed the record since this one opened.
        identity.reload();
        identity.putInWrite({ replid, replid2: ZERO_REPLID, secondOffset: -1, replicaLsn: lsn });
        return restored;
      });
      return { rows, counters: keyspace.cachedCounters() };
    } finally {
      await storage.close();
    }
  },
);
