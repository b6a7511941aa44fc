/**
 * Writes a database copy (`CopyFrame`s of one snapshot, in id order) into a
 * target in batches, reading the next batch while earlier ones are written.
 * Commits are reported in order and none after a failed batch (a local target
 * also refuses to commit them, `CopyGuard`), so the last document reported
 * always ends a run of complete batches: an interrupted copy continues after
 * it. Shared by follower bootstraps and replication jobs.
 */
import { DoppelError, ErrorKind } from '../../errors.js';
import type { CopiedDoc, CopyFrame, CopyGuard, CopyHeader } from '../docs/database-copy.js';

/** Documents (or bytes) per write transaction. */
const BATCH_DOCS = 1_000;
const BATCH_BYTES = 8 * 1024 * 1024;
const WRITES_IN_FLIGHT = 2;

export interface CopyBatchResult {
  readonly written: number;
  readonly failed: number;
}

export interface CopySink {
  /** The snapshot's header, before any document is written. */
  header(header: CopyHeader): Promise<void>;
  /** One batch: documents in id order and the attachment bodies they refer to. */
  write(
    docs: readonly CopiedDoc[],
    attachments: ReadonlyMap<string, Buffer>,
    guard: CopyGuard,
  ): Promise<CopyBatchResult>;
  /** A batch committed (batches commit in order); a continued copy starts after `lastId`. */
  committed(lastId: string, result: CopyBatchResult): void;
}

export interface CopyOutcome {
  readonly docs: number;
  /** Documents the source could not read back (its copy is incomplete without them). */
  readonly unreadable: number;
}

/**
 * Restores `frames` into `sink`. Throws the sink's `DoppelError`, or for
 * anything else (a stream that breaks, is cut off — no `end` frame, fewer
 * documents than it announces — or goes on after its end) an `unavailable`
 * one, transient, whose reason starts with `what`.
 */
export async function restoreCopy(
  frames: AsyncIterable<readonly CopyFrame[]>,
  sink: CopySink,
  what: string,
): Promise<CopyOutcome> {
  try {
    return await restoreInBatches(frames, sink);
  } catch (err) {
    if (err instanceof DoppelError) throw err;
    throw new DoppelError(
      ErrorKind.Unavailable,
      `${what}: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
}

async function restoreInBatches(
  frames: AsyncIterable<readonly CopyFrame[]>,
  sink: CopySink,
): Promise<CopyOutcome> {
  let batch: CopiedDoc[] = [];
  let batchBytes = 0;
  let attachments = new Map<string, Buffer>();
  const writing: Promise<void>[] = [];
  const guard: CopyGuard = { failed: false };
  // Batches report their commit in order, and none after a failed one, whatever order their
  // writes finish in (writes to a remote target are separate requests).
  let previous: Promise<void> = Promise.resolve();
  let received = 0;
  let end: CopyOutcome | null = null;
  const flush = async (): Promise<void> => {
    const docs = batch;
    const atts = attachments;
    batch = [];
    batchBytes = 0;
    attachments = new Map();
    while (writing.length >= WRITES_IN_FLIGHT) await writing.shift();
    const lastId = docs[docs.length - 1]?.id ?? '';
    const written = sink.write(docs, atts, guard);
    const next = previous.then(async () => sink.committed(lastId, await written));
    // Only `next` reports this write's failure.
    written.catch(() => undefined);
    previous = next;
    // Awaited later; meanwhile a failure must not go unhandled.
    next.catch(() => undefined);
    writing.push(next);
  };
  try {
    for await (const chunk of frames) {
      for (const f of chunk) {
        if (end !== null) throw new Error('data after the end of the copy');
        switch (f.kind) {
          case 'header':
            await sink.header(f.header);
            break;
          case 'attachment':
            attachments.set(f.digest, f.bytes);
            batchBytes += f.bytes.length;
            break;
          case 'doc':
            batch.push(f.doc);
            received++;
            for (const leaf of f.doc.leaves) batchBytes += leaf.stored.length;
            if (batch.length >= BATCH_DOCS || batchBytes >= BATCH_BYTES) await flush();
            break;
          case 'end':
            end = { docs: f.docs, unreadable: f.unreadable };
            break;
        }
      }
    }
    if (batch.length > 0) await flush();
  } catch (err) {
    await Promise.allSettled(writing);
    throw err;
  }
  for (const w of writing) await w;
  if (end === null || end.docs !== received) throw new Error('the copy was cut off');
  return end;
}
