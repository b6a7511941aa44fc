import type { Storage } from '../../storage/environment.js';
import { WriteAheadLog, type LoggedFrame } from '../../storage/write-ahead-log.js';
import { decodeFrame, type Journal } from '../journal/journal.js';
import { replayKvEntry } from './entry-replay.js';
import type { Keyspace } from './keyspace.js';

/** Entries replayed per storage write. */
const CHUNK = 1000;

/**
 * At start, before anything else writes: replays the write-ahead log's
 * entries that LMDB does not hold (writes acknowledged from the log before a
 * crash), from the journal's head on, each under its own LSN as a replica
 * replays its primary's; stops at the first one missing (nothing after it
 * was acknowledged). Then, once LMDB has synced them, empties the log and
 * starts logging. Resolves to how many entries it replayed.
 */
export async function recoverFromLog(
  storage: Storage,
  journal: Journal,
  keyspace: Keyspace,
): Promise<number> {
  const frames: LoggedFrame[] = [];
  for (const frame of WriteAheadLog.read(storage.logDirectory))
    if (frame.lsn > journal.head) frames.push(frame);
  frames.sort((a, b) => a.lsn - b.lsn);
  const head = journal.head;
  let next = head + 1;
  for (let i = 0; i < frames.length; i += CHUNK) {
    const chunk = frames.slice(i, i + CHUNK);
    const complete = await storage.write(() => {
      for (const { lsn, payload } of chunk) {
        if (lsn !== next) return false;
        journal.replay(lsn, payload, () => {
          const { entry } = decodeFrame(payload);
          if (entry.k !== 'kv') throw new Error(`write-ahead log entry ${lsn} is not a keyspace entry`);
          keyspace.replaying(() => replayKvEntry(keyspace, entry));
        });
        next++;
      }
      return true;
    });
    if (!complete) break;
  }
  await storage.sync();
  WriteAheadLog.clear(storage.logDirectory);
  storage.startLogging(() => journal.head);
  return next - 1 - head;
}
