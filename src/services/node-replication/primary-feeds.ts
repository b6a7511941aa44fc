/**
 * The primary side of node replication: one feed per replica connection.
 * A feed answers PSYNC with `+CONTINUE` when the replica's history and LSN
 * are still in our journal, else with `+FULLRESYNC` and a snapshot; then it
 * streams journal frames once they are durable — committed, or in the
 * write-ahead log (heartbeats while idle) — and records
 * the replica's ACKs, which `WAIT` and the lag figures read.
 */
import { setImmediate } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { DocumentStore } from '../../engines/docs/document-store.js';
import type { JournalEntry } from '../../engines/journal/journal-entry.js';
import { decodeFrame, frameHasAttachments, type Journal } from '../../engines/journal/journal.js';
import type { Storage } from '../../storage/environment.js';
import type {
  ConnectedReplica,
  FeedSink,
  NodePrimaryControl,
  PsyncRequest,
  PublishedMessage,
  ReplicaFeed,
  ReplicaLinkState,
} from './contracts.js';
import type { NodeIdentity } from './node-identity.js';
import { sendSnapshot } from './snapshot.js';
import { attachmentFrame, entryFrame, FrameKind, messageFrame, numberFrame } from './wire.js';

export interface NodePrimaryDeps {
  readonly storage: Storage;
  readonly journal: Journal;
  readonly store: DocumentStore;
  readonly identity: NodeIdentity;
  readonly log: Logger;
  /** A heartbeat frame goes to an idle replica this often (it drops a primary silent for too long). */
  readonly heartbeatMs: number;
  /**
   * A replica that reads nothing of its snapshot, or stops acknowledging once
   * online, for this long is dropped (Redis' repl-timeout): a frozen replica
   * must not hold the snapshot's read transaction, or its feed, forever.
   */
  readonly replicaTimeoutMs: number;
}

/** Journal frames read (and sent as one socket write) at a time. */
const FRAMES_PER_WRITE = 512;
/**
 * Messages waiting for a replica beyond this (it is loading a full sync, or reads
 * slowly) are dropped, oldest first: Pub/Sub promises no delivery to a listener that
 * cannot keep up, and the replica must not cost the primary unbounded memory.
 */
const MESSAGE_BACKLOG_BYTES = 32 * 1024 * 1024;

interface AckWaiter {
  readonly lsn: number;
  readonly count: number;
  readonly resolve: (acked: number) => void;
}

export class NodePrimary implements NodePrimaryControl {
  readonly #deps: NodePrimaryDeps;
  readonly #feeds = new Set<Feed>();
  readonly #waiters = new Set<AckWaiter>();
  /** Counters for INFO and /metrics. */
  readonly counters = { fullSyncs: 0, partialSyncs: 0, partialSyncsRefused: 0 };

  constructor(deps: NodePrimaryDeps) {
    this.#deps = deps;
  }

  attach(request: PsyncRequest, sink: FeedSink): ReplicaFeed {
    const feed = new Feed(this.#deps, request, sink, this);
    this.#feeds.add(feed);
    void feed.run().finally(() => {
      this.#feeds.delete(feed);
      sink.close();
    });
    return feed;
  }

  replicas(): ConnectedReplica[] {
    return [...this.#feeds].map((f) => f.describe());
  }

  get hasReplicas(): boolean {
    return this.#feeds.size > 0;
  }

  publish(message: PublishedMessage): void {
    if (this.#feeds.size === 0) return;
    const after = this.#deps.journal.lastAppended;
    const frame = messageFrame(message);
    for (const feed of this.#feeds) feed.message(after, frame);
  }

  replicasCaughtUp(): number {
    return this.#ackedAtLeast(this.#deps.journal.lastAppended);
  }

  waitForReplicas(count: number, timeoutMs: number, gone?: AbortSignal): Promise<number> {
    // Not `head`: a write acknowledged from the write-ahead log may not be committed yet.
    const lsn = this.#deps.journal.lastAppended;
    const acked = this.#ackedAtLeast(lsn);
    if (acked >= count || count <= 0 || gone?.aborted === true) return Promise.resolve(acked);
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const giveUp = (): void => waiter.resolve(this.#ackedAtLeast(lsn));
      const waiter: AckWaiter = {
        lsn,
        count,
        resolve: (n) => {
          if (timer !== undefined) clearTimeout(timer);
          gone?.removeEventListener('abort', giveUp);
          this.#waiters.delete(waiter);
          resolve(n);
        },
      };
      this.#waiters.add(waiter);
      gone?.addEventListener('abort', giveUp, { once: true });
      if (timeoutMs > 0) timer = setTimeout(giveUp, timeoutMs);
    });
  }

  #ackedAtLeast(lsn: number): number {
    let n = 0;
    for (const feed of this.#feeds) if (feed.ackedLsn >= lsn) n++;
    return n;
  }

  /** A replica acknowledged: wake the WAITs it satisfies. */
  acked(): void {
    for (const waiter of this.#waiters) {
      const n = this.#ackedAtLeast(waiter.lsn);
      if (n >= waiter.count) waiter.resolve(n);
    }
  }

  /**
   * Closes every replica connection: at shutdown, and whenever this node's
   * history changes (a promotion, a full sync from a new primary), so that
   * replicas reconnect and learn the new id, or sync in full.
   */
  closeAll(): void {
    for (const feed of this.#feeds) feed.closed();
    for (const waiter of this.#waiters) waiter.resolve(this.#ackedAtLeast(waiter.lsn));
  }
}

class Feed implements ReplicaFeed {
  readonly #deps: NodePrimaryDeps;
  readonly #request: PsyncRequest;
  readonly #sink: FeedSink;
  readonly #primary: NodePrimary;
  readonly #abort = new AbortController();
  #state: ReplicaLinkState = 'wait_bgsave';
  ackedLsn = -1;
  #lastAck = Date.now();
  /** Messages not sent yet, each behind the journal entry `after`. */
  #messages: { readonly after: number; readonly frame: Buffer }[] = [];
  #messageBytes = 0;
  #messagesDropped = 0;
  /** Ends the stream's idle wait: with true when a message may be sendable, false when the feed closed. */
  #wake: ((message: boolean) => void) | null = null;

  constructor(deps: NodePrimaryDeps, request: PsyncRequest, sink: FeedSink, primary: NodePrimary) {
    this.#deps = deps;
    this.#request = request;
    this.#sink = sink;
    this.#primary = primary;
  }

  describe(): ConnectedReplica {
    return {
      address: this.#request.address,
      port: this.#request.listeningPort,
      state: this.#state,
      ackedLsn: this.ackedLsn,
      lastAckMs: Date.now() - this.#lastAck,
    };
  }

  command(argv: Buffer[]): void {
    if (argv.length === 3 && argv[0].toString('latin1').toLowerCase() === 'replconf') {
      if (argv[1].toString('latin1').toLowerCase() !== 'ack') return;
      const lsn = Number(argv[2].toString('latin1'));
      if (!Number.isSafeInteger(lsn)) return;
      this.#lastAck = Date.now();
      if (lsn > this.ackedLsn) {
        this.ackedLsn = lsn;
        this.#primary.acked();
      }
    }
  }

  closed(): void {
    this.#abort.abort();
    this.#wake?.(false);
  }

  /** A message published after journal entry `after` (dropped for a replica that cannot read it). */
  message(after: number, frame: Buffer): void {
    if (!this.#request.messages) return;
    this.#messages.push({ after, frame });
    this.#messageBytes += frame.length;
    while (this.#messageBytes > MESSAGE_BACKLOG_BYTES) {
      this.#messageBytes -= this.#messages.shift()!.frame.length;
      this.#messagesDropped++;
    }
    this.#wake?.(true);
  }

  /** Whether a message waits that may follow entry `lsn`. */
  #messageDue(lsn: number): boolean {
    return this.#messages.length > 0 && this.#messages[0].after <= lsn;
  }

  /** Moves the messages published up to entry `sent` into `out`. */
  #takeMessages(sent: number, out: Buffer[]): void {
    const messages = this.#messages;
    let n = 0;
    while (n < messages.length && messages[n].after <= sent) {
      out.push(messages[n].frame);
      this.#messageBytes -= messages[n].frame.length;
      n++;
    }
    if (n > 0) messages.splice(0, n);
    if (this.#messagesDropped > 0) {
      this.#deps.log.warn(
        { replica: this.#who(), dropped: this.#messagesDropped },
        'node replication: Pub/Sub messages dropped while the replica was behind',
      );
      this.#messagesDropped = 0;
    }
  }

  async run(): Promise<void> {
    const { journal, identity, log } = this.#deps;
    const signal = this.#abort.signal;
    const who = this.#who();
    try {
      let from: number;
      const { replid, nextLsn } = this.#request;
      if (identity.canContinue(replid, nextLsn, journal.durableHead, journal.low)) {
        this.#sink.write(`+CONTINUE ${identity.current.replid}\r\n`);
        from = nextLsn - 1;
        this.#primary.counters.partialSyncs++;
        log.info({ replica: who, from }, 'node replication: partial resync');
      } else {
        if (replid !== '?') {
          this.#primary.counters.partialSyncsRefused++;
          log.info(
            { replica: who, replid, next: nextLsn, head: journal.durableHead, low: journal.low },
            'node replication: partial resync not possible; full sync',
          );
        }
        this.#state = 'send_bulk';
        const started = performance.now();
        const summary = await sendSnapshot(this.#deps, this.#timedSink(), signal, (lsn) => {
          this.#sink.write(`+FULLRESYNC ${identity.current.replid} ${lsn}\r\n`);
        });
        from = summary.lsn;
        this.#primary.counters.fullSyncs++;
        log.info(
          {
            replica: who,
            lsn: summary.lsn,
            rows: summary.rows,
            bytes: summary.bytes,
            ms: Math.round(performance.now() - started),
          },
          'node replication: full sync sent',
        );
      }
      this.#state = 'online';
      await this.#stream(from, signal);
    } catch (err) {
      if (!signal.aborted) log.warn({ replica: who, err }, 'node replication: replica feed failed');
    }
  }

  /** The sink, dropping the replica when a full socket buffer does not drain in time. */
  #timedSink(): FeedSink {
    const sink = this.#sink;
    const { replicaTimeoutMs, log } = this.#deps;
    const drop = (): void => {
      log.warn(
        { replica: this.#who(), ms: replicaTimeoutMs },
        'node replication: the replica read nothing for repl_timeout; dropped',
      );
      sink.close();
    };
    return {
      write: (chunk) => sink.write(chunk),
      close: () => sink.close(),
      drained: async () => {
        const timer = setTimeout(drop, replicaTimeoutMs);
        try {
          await sink.drained();
        } finally {
          clearTimeout(timer);
        }
      },
    };
  }

  #who(): string {
    return `${this.#request.address}:${this.#request.listeningPort}`;
  }

  async #stream(from: number, signal: AbortSignal): Promise<void> {
    const { journal, replicaTimeoutMs } = this.#deps;
    let sent = from;
    // Silence only counts once the replica acknowledged the start: loading a large
    // snapshot keeps it from acknowledging for as long as the load takes.
    const started = from;
    const timed = this.#timedSink();
    const drained = (): Promise<void> => (this.ackedLsn >= started ? timed.drained() : this.#sink.drained());
    while (!signal.aborted) {
      if (this.ackedLsn >= started && Date.now() - this.#lastAck > replicaTimeoutMs) {
        throw new Error(`no acknowledgement for ${replicaTimeoutMs} ms`);
      }
      if (journal.fellBehind(sent)) {
        throw new Error(`the journal no longer holds entry ${sent + 1}; the replica must sync in full`);
      }
      const frames = journal.readFrames(sent, FRAMES_PER_WRITE);
      const out: Buffer[] = [];
      if (frames.length === 0) {
        this.#takeMessages(sent, out);
        if (out.length > 0) {
          if (!this.#sink.write(Buffer.concat(out))) await drained();
          continue;
        }
        // Yield to I/O whatever happens: this loop must never spin on microtasks.
        await setImmediate();
        if (await this.#idle(sent)) continue;
        if (journal.durableHead <= sent && !signal.aborted) {
          if (!this.#sink.write(numberFrame(FrameKind.Heartbeat, journal.durableHead))) await drained();
        }
        continue;
      }
      for (const { lsn, frame } of frames) {
        if (frameHasAttachments(frame)) this.#attachments(decodeFrame(frame).entry, out);
        out.push(entryFrame(lsn, frame));
        sent = lsn;
        if (this.#messageDue(lsn)) this.#takeMessages(lsn, out);
      }
      if (!this.#sink.write(Buffer.concat(out))) await drained();
    }
  }

  /**
   * Waits for an entry after `sent` to be durable, for a heartbeat's interval, for a message
   * to send, or for the feed to close; true when a message cut it short.
   */
  #idle(sent: number): Promise<boolean> {
    const { journal, heartbeatMs } = this.#deps;
    if (this.#messageDue(sent)) return Promise.resolve(true);
    if (journal.durableHead > sent || this.#abort.signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const finish = (message: boolean): void => {
        this.#wake = null;
        clearTimeout(timer);
        stopWaiting();
        resolve(message);
      };
      const timer = setTimeout(finish, heartbeatMs, false);
      const stopWaiting = journal.whenDurable(sent, () => finish(false));
      this.#wake = finish;
    });
  }

  /** The bodies a document entry references travel before it (the replica has no other way to get them). */
  #attachments(entry: JournalEntry, out: Buffer[]): void {
    if (entry.k !== 'doc' || entry.atts === undefined) return;
    for (const meta of Object.values(entry.atts)) {
      let bytes: Buffer | undefined;
      try {
        bytes = this.#deps.store.readAttachmentBytes(entry.db, meta.digest);
      } catch {
        bytes = undefined; // the database is gone since: a later entry deletes it on the replica too
      }
      if (bytes !== undefined) out.push(attachmentFrame(meta.digest, bytes));
    }
  }
}
