/**
 * The replica side of node replication: loads a full sync's snapshot, then
 * applies the primary's journal frames.
 *
 * Each storage write applies a run of received entries with
 * `Journal.replay`, so the replica's journal holds the primary's frames
 * under the primary's LSNs, and records the LSN reached in the node
 * identity, in the same transaction. The LSN is acknowledged once that write
 * committed: an ACK never claims what a `kill -9` here could lose.
 */
import type { Logger } from 'pino';
import type { DocumentStore } from '../../engines/docs/document-store.js';
import type { JournalEntry } from '../../engines/journal/journal-entry.js';
import {
  decodeFrame,
  frameIsDocument,
  type DecodedFrame,
  type Journal,
} from '../../engines/journal/journal.js';
import { replayKvEntry } from '../../engines/kv/entry-replay.js';
import type { Keyspace } from '../../engines/kv/keyspace.js';
import type { Storage } from '../../storage/environment.js';
import type { AuthService } from '../auth/auth-service.js';
import { APPLY_BACKLOG_BYTES, ApplyBacklog } from './apply-backlog.js';
import type { NodeIdentity } from './node-identity.js';
import { startSnapshotRestoreThread } from './snapshot-restore-thread.js';
import { SnapshotSpool } from './snapshot.js';
import type { PublishedMessage } from './contracts.js';
import { FrameKind, FrameReader, parseAttachment, parseEntry, parseMessage } from './wire.js';

export type PointsEntry = Extract<JournalEntry, { k: 'points' }>;

export interface NodeReplicaDeps {
  readonly storage: Storage;
  readonly journal: Journal;
  readonly store: DocumentStore;
  readonly keyspace: Keyspace;
  readonly auth: AuthService;
  readonly identity: NodeIdentity;
  readonly log: Logger;
  /** Applies a bucket's points entry inside a write (the point writer's engine code). */
  readonly replayPoints: (entry: PointsEntry, ts: number) => void;
  /** The security object a database gets at creation. */
  readonly newSecurity: () => unknown;
  /** Where a full sync's snapshot is spooled until it has completely arrived. */
  readonly spoolPath: string;
  /**
   * Makes the node read-only (`reason` is what refused writers are told) or
   * writable again (`undefined`): its databases refuse writes and its
   * `_replicator` jobs wait; the keyspace asks the link itself.
   */
  readonly setReadOnly: (reason: string | undefined) => void;
  /** This node's history changed (a full sync, a promotion, a renamed history): its own replicas must reconnect. */
  readonly onHistoryChanged: () => void;
  /** A message the primary published: for this node's listeners and its own replicas. */
  readonly publish: (message: PublishedMessage) => void;
}

/** Entries applied per storage write at most (a write holds the event loop while it runs). */
const MAX_ENTRIES_PER_WRITE = 2000;
/** Storage writes of received entries started before the first of them committed. */
const MAX_WRITES_IN_FLIGHT = 4;

interface PendingEntry {
  readonly lsn: number;
  readonly journalFrame: Buffer;
  /** Decoded on arrival, except documents (the bulk of their bytes is decoded when applied). */
  readonly decoded: DecodedFrame | undefined;
  readonly attachments: ReadonlyMap<string, Buffer>;
  /** Received bytes it holds (see `ApplyBacklog`). */
  readonly bytes: number;
}

export interface NodeStreamOptions {
  /** The LSN the stream starts after. */
  readonly lsn: number;
  readonly sendAck: (lsn: number) => void;
  /** A broken stream or a failed write: the link must be dropped. */
  readonly onFailure: (err: unknown) => void;
  /** After `feed` returned false: enough is applied, reading may resume. */
  readonly onCaughtUp: () => void;
}

export class NodeStream {
  readonly #deps: NodeReplicaDeps;
  readonly #options: NodeStreamOptions;
  readonly #reader: FrameReader;
  #pending: PendingEntry[] = [];
  #attachments = new Map<string, Buffer>();
  #writesInFlight = 0;
  #failed = false;
  #idleWaiters: (() => void)[] = [];
  #readLsn: number;
  #appliedLsn: number;
  /** Messages received behind entry `after`, published once it is applied. */
  #messages: { readonly after: number; readonly message: PublishedMessage }[] = [];
  /** The primary's head as its last heartbeat said (lag while idle). */
  primaryHead = 0;
  /** Commit time (primary clock) of the last applied entry. */
  lastAppliedTs = 0;
  entriesApplied = 0;

  readonly #backlog: ApplyBacklog;

  constructor(deps: NodeReplicaDeps, options: NodeStreamOptions, reader = new FrameReader()) {
    this.#deps = deps;
    this.#options = options;
    this.#backlog = new ApplyBacklog(APPLY_BACKLOG_BYTES, options.onCaughtUp);
    this.#reader = reader;
    this.#readLsn = this.#appliedLsn = options.lsn;
    this.primaryHead = options.lsn;
  }

  get readOffset(): number {
    return this.#readLsn;
  }

  get appliedOffset(): number {
    return this.#appliedLsn;
  }

  settled(): Promise<void> {
    if (this.#writesInFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Applies what `chunk` completes; false: read no more until `onCaughtUp`. */
  feed(chunk: Buffer): boolean {
    if (this.#failed) return true;
    this.#reader.feed(chunk);
    return this.drain();
  }

  /** Takes the complete frames buffered so far (also those that came with the snapshot's end). */
  drain(): boolean {
    let reading = true;
    try {
      for (let f = this.#reader.next(); f !== undefined; f = this.#reader.next()) {
        if (f.kind === FrameKind.Entry) {
          const { lsn, journalFrame } = parseEntry(f.payload);
          let bytes = journalFrame.length;
          for (const attachment of this.#attachments.values()) bytes += attachment.length;
          const decoded = frameIsDocument(journalFrame) ? undefined : decodeFrame(journalFrame);
          this.#pending.push({ lsn, journalFrame, decoded, attachments: this.#attachments, bytes });
          reading = this.#backlog.add(bytes);
          if (this.#attachments.size > 0) this.#attachments = new Map();
          this.#readLsn = lsn;
          if (lsn > this.primaryHead) this.primaryHead = lsn;
        } else if (f.kind === FrameKind.Attachment) {
          const { digest, bytes } = parseAttachment(f.payload);
          this.#attachments.set(digest, bytes);
        } else if (f.kind === FrameKind.Heartbeat) {
          this.primaryHead = Math.max(this.primaryHead, f.payload.readDoubleBE(0));
        } else if (f.kind === FrameKind.Message) {
          this.#messages.push({ after: this.#readLsn, message: parseMessage(f.payload) });
        } else {
          throw new Error(`unexpected frame ${f.kind} in the journal stream`);
        }
      }
    } catch (err) {
      this.#fail(err);
      return true;
    }
    this.#pump();
    this.#publishApplied();
    return reading;
  }

  /** Publishes, in order, the messages whose preceding entries are applied (readable here). */
  #publishApplied(): void {
    const messages = this.#messages;
    let n = 0;
    while (n < messages.length && messages[n].after <= this.#appliedLsn) {
      this.#deps.publish(messages[n].message);
      n++;
    }
    if (n > 0) messages.splice(0, n);
  }

  /**
   * Starts storage writes for the pending entries, up to
   * `MAX_WRITES_IN_FLIGHT` at once: lmdb-js commits them in order, often
   * together, so an entry arriving while a write commits does not wait for it.
   */
  #pump(): void {
    while (this.#writesInFlight < MAX_WRITES_IN_FLIGHT && !this.#failed && this.#pending.length > 0) {
      const keyspaceRun = this.#deps.storage.canWriteNow ? this.#keyspaceRun() : 0;
      if (keyspaceRun > 0) this.#writeNow(this.#pending.splice(0, keyspaceRun));
      else this.#write(this.#pending.splice(0, MAX_ENTRIES_PER_WRITE));
    }
  }

  /** How many of the pending entries, from the first, are keyspace entries (at most one write's worth). */
  #keyspaceRun(): number {
    const pending = this.#pending;
    const limit = Math.min(pending.length, MAX_ENTRIES_PER_WRITE);
    let n = 0;
    while (n < limit && pending[n].decoded?.entry.k === 'kv') n++;
    return n;
  }

  /**
   * Applies keyspace entries at once, their writes queued and their journal
   * entries logged ahead (`Storage.writeNow`), as the primary wrote them:
   * readers here see them at once, and they are acknowledged once logged (a
   * restart replays the log, see `engines/kv/log-recovery.ts`). An entry
   * that fails to apply leaves the ones before it applied (nothing queued
   * can be taken back): the link fails and the next sync is a full one.
   */
  #writeNow(batch: PendingEntry[]): void {
    this.#writesInFlight++;
    let threw: unknown;
    this.#deps.storage.writeNow(
      () => {
        try {
          this.#replayRun(batch, NOTHING_CHANGED, NOTHING_DROPPED);
        } catch (err) {
          threw = err ?? new Error('replaying a keyspace entry failed');
        }
      },
      (failed) => {
        const err = failed ?? threw;
        if (err === undefined) this.#applied(batch);
        else this.#notApplied(batch, err);
      },
    );
  }

  /** Applies entries of any kind in one storage write, acknowledged once it committed. */
  #write(batch: PendingEntry[]): void {
    this.#writesInFlight++;
    const changed = new Set<string>();
    const dropped: number[] = [];
    const { storage, identity, store } = this.#deps;
    storage
      .write(() => this.#replayRun(batch, changed, dropped))
      .then(
        () => {
          this.#applied(batch);
          void store.afterReplay(changed, dropped).catch((err: unknown) => {
            this.#deps.log.warn({ err }, 'node replica: dropping a deleted database failed');
          });
        },
        (err: unknown) => {
          identity.reload();
          this.#deps.keyspace.reloadCounters();
          this.#notApplied(batch, err);
        },
      );
  }

  #applied(batch: PendingEntry[]): void {
    this.#writesInFlight--;
    this.#backlog.done(bytesOf(batch));
    const last = batch[batch.length - 1];
    // Acknowledgements may come out of order (a queued write and a transaction): each covers
    // everything before it, since LMDB commits the queued writes before any later transaction.
    if (last.lsn > this.#appliedLsn) {
      this.#appliedLsn = last.lsn;
      this.lastAppliedTs = decodeFrameTime(last.journalFrame);
      if (!this.#failed) this.#options.sendAck(last.lsn);
    }
    this.entriesApplied += batch.length;
    this.#publishApplied();
    this.#pump();
    if (this.#writesInFlight === 0) this.#settle();
  }

  #notApplied(batch: PendingEntry[], err: unknown): void {
    this.#writesInFlight--;
    this.#backlog.done(bytesOf(batch));
    this.#fail(err);
    if (this.#writesInFlight === 0) this.#settle();
  }

  /** Inside a write: replays `batch` and records the LSN it reaches. */
  #replayRun(batch: PendingEntry[], changed: Set<string>, dropped: number[]): void {
    for (const item of batch) this.#replay(item, changed, dropped);
    this.#deps.identity.putInWrite({ replicaLsn: batch[batch.length - 1].lsn });
  }

  #replay(item: PendingEntry, changed: Set<string>, dropped: number[]): void {
    const { journal, keyspace, auth, store } = this.#deps;
    journal.replay(item.lsn, item.journalFrame, () => {
      const { ts, entry } = item.decoded ?? decodeFrame(item.journalFrame);
      switch (entry.k) {
        case 'kv':
          keyspace.replaying(() => replayKvEntry(keyspace, entry));
          return;
        case 'admin':
          auth.replayAdmin(entry.name, entry.hash, ts);
          return;
        case 'points':
          this.#deps.replayPoints(entry, ts);
          changed.add(entry.db);
          return;
        default: {
          const result = store.replay(entry, item.attachments, this.#deps.newSecurity, ts);
          changed.add(result.db);
          if (result.droppedUid !== undefined) dropped.push(result.droppedUid);
        }
      }
    });
  }

  #fail(err: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#pending = [];
    this.#messages = [];
    this.#options.onFailure(err);
  }

  #settle(): void {
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }
}

const decodeFrameTime = (journalFrame: Buffer): number => journalFrame.readDoubleLE(0);
const bytesOf = (batch: readonly PendingEntry[]): number => batch.reduce((sum, item) => sum + item.bytes, 0);
/** Keyspace entries change no database. */
const NOTHING_CHANGED = new Set<string>();
const NOTHING_DROPPED: number[] = [];

/** What a full sync reports while its snapshot is restored (INFO's `loading` fields), and its cancellation. */
export interface RestoreEvents {
  readonly started: (totalBytes: number) => void;
  readonly progress: (bytesRead: number) => void;
  /** Aborted: the restore is abandoned (shutdown); nothing changes. */
  readonly cancel: AbortSignal;
}

/**
 * Receives a full sync's snapshot (the frames after `+FULLRESYNC`), then
 * replaces this node's replicated tables with it in one storage write, on a
 * worker thread: meanwhile this thread answers every reader from the old
 * data, and its own writes wait. A broken transfer changes nothing. Returns
 * the frame reader, which may already hold the start of the journal stream.
 */
export async function receiveFullSync(
  deps: NodeReplicaDeps,
  replid: string,
  nextChunk: () => Promise<Buffer>,
  progress: { read: number; lastIo: number },
  restoring: RestoreEvents,
): Promise<{ reader: FrameReader; lsn: number; rows: number; bytes: number }> {
  const reader = new FrameReader();
  const spool = new SnapshotSpool(deps.spoolPath);
  const thread = startSnapshotRestoreThread();
  try {
    let ended = false;
    while (!ended) {
      const chunk = await nextChunk();
      progress.read += chunk.length;
      progress.lastIo = Date.now();
      reader.feed(chunk);
      for (let f = reader.next(); f !== undefined && !ended; f = ended ? undefined : reader.next()) {
        ended = spool.add(f);
      }
    }
    const lsn = spool.lsn!;
    const { storage, journal, identity, keyspace, store } = deps;
    restoring.started(spool.bytes);
    const { rows } = await storage.whileWritingElsewhere(async () => {
      const restored = await thread.run(
        { storagePath: storage.path, spoolPath: spool.path, replid, lsn },
        ({ bytesRead }) => restoring.progress(bytesRead),
        restoring.cancel,
      );
      keyspace.replacedElsewhere(restored.counters);
      journal.reloadAfterReset();
      identity.reload();
      return restored;
    });
    store.notifyAll();
    deps.onHistoryChanged();
    return { reader, lsn, rows, bytes: spool.bytes };
  } finally {
    thread.discard();
    spool.discard();
  }
}
