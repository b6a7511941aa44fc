/**
 * Which journal entries a stream's next batch holds (a pure function of the entries, the
 * stream's position and its limits). Batches close at 5,000 points or 2,500,000
 * uncompressed bytes, as InfluxDB's; a batch may end inside an entry, so a position is
 * an LSN and a count of points of the next entry already done. Entries older than the
 * stream's max age at the head of the queue are purged rather than sent.
 */
import type { JournalRecord } from '../../engines/journal/journal-entry.js';
import { revPos } from '../../engines/docs/rev-tree.js';

export const MAX_BATCH_POINTS = 5_000;
export const MAX_BATCH_BYTES = 2_500_000;
/** Document streams send smaller batches: each document is a JSON object. */
export const MAX_BATCH_DOCS = 500;

export interface QueuePosition {
  readonly lsn: number;
  readonly skipPoints: number;
}

export interface BatchPlan {
  /** Line protocol lines (each ending "\n"), or documents' JSON. */
  readonly chunks: string[];
  readonly points: number;
  readonly bytes: number;
  readonly purgedPoints: number;
  readonly purgedBytes: number;
  /** Where the stream stands once this batch is done. */
  readonly end: QueuePosition;
  /** Commit time of the oldest entry in the batch (ms), null when empty. */
  readonly oldestTs: number | null;
  /** The source database was deleted (at `end`). */
  readonly sourceDeleted: boolean;
}

export interface PlanOptions {
  readonly kind: 'points' | 'docs';
  readonly source: string;
  readonly sourceUid: number;
  /** Entries committed before this (ms) are purged. */
  readonly purgeBefore: number;
  readonly isSkipped: (lsn: number) => boolean;
  /** Only purge (no points are taken into the batch). */
  readonly purgeOnly?: boolean;
  readonly maxPoints?: number;
  readonly maxBytes?: number;
}

/** Index just past the `n`-th newline of `text` (0 for n = 0). */
function afterLines(text: string, n: number): number {
  let at = 0;
  for (let i = 0; i < n; i++) at = text.indexOf('\n', at) + 1;
  return at;
}

export function planBatch(
  records: Iterable<JournalRecord>,
  start: QueuePosition,
  options: PlanOptions,
): BatchPlan {
  const maxPoints = options.kind === 'docs' ? MAX_BATCH_DOCS : (options.maxPoints ?? MAX_BATCH_POINTS);
  const maxBytes = options.maxBytes ?? MAX_BATCH_BYTES;
  const chunks: string[] = [];
  let points = 0;
  let bytes = 0;
  let purgedPoints = 0;
  let purgedBytes = 0;
  let oldestTs: number | null = null;
  let end: QueuePosition = start;
  let sourceDeleted = false;
  for (const { lsn, ts, entry } of records) {
    if (entry.k === 'db.delete' && entry.db === options.source && entry.uid === options.sourceUid) {
      end = { lsn, skipPoints: 0 };
      sourceDeleted = true;
      break;
    }
    const matches =
      (options.kind === 'points' && entry.k === 'points' && entry.db === options.source) ||
      (options.kind === 'docs' && entry.k === 'doc' && entry.db === options.source);
    if (!matches || options.isSkipped(lsn)) {
      end = { lsn, skipPoints: 0 };
      continue;
    }
    let text: string;
    let count: number;
    const done = lsn === start.lsn + 1 ? start.skipPoints : 0;
    if (entry.k === 'points') {
      text = done === 0 ? entry.lines : entry.lines.slice(afterLines(entry.lines, done));
      count = entry.count - done;
    } else if (entry.k === 'doc') {
      text = documentJson(entry);
      count = 1;
    } else continue;
    if (ts < options.purgeBefore && points === 0) {
      purgedPoints += count;
      purgedBytes += Buffer.byteLength(text);
      end = { lsn, skipPoints: 0 };
      continue;
    }
    if (options.purgeOnly === true) break;
    const size = Buffer.byteLength(text);
    // A document larger than a batch goes alone: it cannot be split, and waiting never makes it fit.
    const fits = bytes + size <= maxBytes || (entry.k === 'doc' && points === 0);
    if (points + count <= maxPoints && fits) {
      chunks.push(text);
      points += count;
      bytes += size;
      oldestTs ??= ts;
      end = { lsn, skipPoints: 0 };
      continue;
    }
    if (entry.k !== 'points' || points >= maxPoints) break;
    // Part of the entry: whole lines, as many as fit (at least one in an empty batch).
    let taken = 0;
    let cut = 0;
    let takenBytes = 0;
    while (taken < count && points + taken < maxPoints) {
      const next = text.indexOf('\n', cut) + 1;
      const lineBytes = Buffer.byteLength(text.slice(cut, next));
      if (bytes + takenBytes + lineBytes > maxBytes && (points > 0 || taken > 0)) break;
      takenBytes += lineBytes;
      cut = next;
      taken++;
    }
    if (taken === 0) break;
    chunks.push(text.slice(0, cut));
    points += taken;
    bytes += takenBytes;
    oldestTs ??= ts;
    end = taken === count ? { lsn, skipPoints: 0 } : { lsn: lsn - 1, skipPoints: done + taken };
    break;
  }
  return { chunks, points, bytes, purgedPoints, purgedBytes, end, oldestTs, sourceDeleted };
}

/** A document entry as a `_bulk_docs` member with `new_edits: false` (its revision history included). */
export function documentJson(entry: Extract<JournalRecord['entry'], { k: 'doc' }>): string {
  const start = revPos(entry.path[0]);
  const ids = entry.path.map((rev) => rev.slice(rev.indexOf('-') + 1));
  let head = `{"_id":${JSON.stringify(entry.id)},"_rev":${JSON.stringify(entry.path[0])},"_revisions":${JSON.stringify({ start, ids })}`;
  if (entry.deleted) head += ',"_deleted":true';
  const body = typeof entry.body === 'string' && entry.body.startsWith('{') ? entry.body : '{}';
  return body.length <= 2 ? `${head}}` : `${head},${body.slice(1)}`;
}
