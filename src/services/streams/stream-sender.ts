/**
 * One stream's sender: reads its queue (the journal after its position), sends batches
 * in order, and moves its position only after the remote accepted a batch (or it was
 * dropped or purged), in one storage write with the queue accounting. Until then the
 * same batch is retried, so a crash can only resend, never lose (a point rewritten is
 * idempotent at InfluxDB and at Doppel).
 *
 * Retries, as InfluxDB's `remotewrite` (but see `onQueueFull`): success resets the
 * backoff; 429 waits `Retry-After` seconds; 400 drops the batch when
 * `dropNonRetryableData` is set (counted); every other failure — 401, 403, 404, 413, 5xx,
 * timeouts, connection errors — waits 0.5 s·2^(n−1), capped (15 min by default). The
 * settings and the remote are read again before every attempt.
 */
import { setImmediate } from 'node:timers/promises';
import { promisify } from 'node:util';
import { gzip as gzipCallback, constants as zlib } from 'node:zlib';
import type { Logger } from 'pino';
import type { JournalRecord } from '../../engines/journal/journal-entry.js';
import type { Journal } from '../../engines/journal/journal.js';
import type { NodeMetrics } from '../metrics/node-metrics.js';
import type { RemoteRegistry } from '../remotes/remote-registry.js';
import type { ReplicationState } from '../replications/status-board.js';
import { planBatch, type BatchPlan, type QueuePosition } from './batch-plan.js';
import type { StreamConfig } from './stream-config.js';
import { StreamSink, type SendResult } from './stream-sink.js';
import type { QueueState, StreamStore } from './stream-store.js';

const gzip = promisify(gzipCallback);
const BASE_BACKOFF_MS = 500;
/** Journal entries read per look at the queue, at most. */
const MAX_SCANNED_ENTRIES = 10_000;
/** Journal entries read per page when recounting a queue. */
const READ_ENTRIES = 256;
/** How often the journal's retention cursor follows the stream's position. */
const JOURNAL_CURSOR_EVERY_MS = 1_000;

export interface SenderOptions {
  readonly maxBackoffMs: number;
  readonly purgeIntervalMs: number;
  readonly requestTimeoutMs: number;
}

export interface SenderStatus {
  readonly state: ReplicationState;
  readonly latestResponseCode: number | null;
  readonly latestErrorMessage: string | null;
  readonly credentialRejected: boolean;
  readonly attempts: number;
  readonly nextAttemptAt: number | null;
  readonly oldestQueuedTs: number | null;
  readonly updatedAt: number;
}

type WakeReason = 'timer' | 'wake' | 'purge' | 'data';

export class StreamSender {
  readonly #id: string;
  readonly #store: StreamStore;
  readonly #journal: Journal;
  readonly #remotes: RemoteRegistry;
  readonly #metrics: NodeMetrics;
  readonly #log: Logger;
  readonly #options: SenderOptions;
  readonly #sourceExists: (config: StreamConfig) => boolean;
  #sink: StreamSink | undefined;
  #sinkInsecure = false;
  #running = false;
  #loop: Promise<void> | undefined;
  #interrupt: ((reason: WakeReason) => void) | undefined;
  #pendingWake: WakeReason | undefined;
  #purgeTimer: NodeJS.Timeout | undefined;
  #journalCursorAt = 0;
  #status: SenderStatus = {
    state: 'initializing',
    latestResponseCode: null,
    latestErrorMessage: null,
    credentialRejected: false,
    attempts: 0,
    nextAttemptAt: null,
    oldestQueuedTs: null,
    updatedAt: Date.now(),
  };

  constructor(
    id: string,
    deps: {
      store: StreamStore;
      journal: Journal;
      remotes: RemoteRegistry;
      metrics: NodeMetrics;
      log: Logger;
      options: SenderOptions;
      /** Whether the stream's local source still exists (the same database, by uid). */
      sourceExists: (config: StreamConfig) => boolean;
    },
  ) {
    this.#id = id;
    this.#sourceExists = deps.sourceExists;
    this.#store = deps.store;
    this.#journal = deps.journal;
    this.#remotes = deps.remotes;
    this.#metrics = deps.metrics;
    this.#log = deps.log;
    this.#options = deps.options;
  }

  get status(): SenderStatus {
    return this.#status;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#purgeTimer = setInterval(() => this.#wake('purge'), this.#options.purgeIntervalMs);
    this.#purgeTimer.unref();
    this.#loop = this.#run().catch((err: unknown) => {
      this.#log.error({ err, stream: this.#id }, 'stream sender failed');
      this.#setStatus({ state: 'failed', latestErrorMessage: String(err) });
    });
  }

  async stop(): Promise<void> {
    this.#running = false;
    clearInterval(this.#purgeTimer);
    this.#wake('wake');
    // A request in flight is abandoned: its batch is sent again after a restart.
    await this.#sink?.close();
    await this.#loop;
    this.#sink = undefined;
  }

  /** Settings changed: retry at once with them. */
  poke(): void {
    this.#wake('wake');
  }

  /** Validates the stream against its remote with an empty write (only 204 passes). */
  async validate(config: StreamConfig): Promise<SendResult> {
    const remote = this.#remotes.get(config.remote);
    if (remote === undefined) return { code: 0, ok: false, message: `no remote "${config.remote}"` };
    return this.#sinkFor(remote.allow_insecure_tls === true).validate(config, remote);
  }

  #wake(reason: WakeReason): void {
    const interrupt = this.#interrupt;
    if (interrupt !== undefined) {
      this.#interrupt = undefined;
      interrupt(reason);
    } else if (reason !== 'purge' || this.#pendingWake === undefined) {
      this.#pendingWake = reason;
    }
  }

  /** Sleeps `ms` (forever when null), or until woken; new journal data wakes when `after` is given. */
  async #sleep(ms: number | null, after?: number): Promise<WakeReason> {
    // Yield to I/O whatever happens: a wake may come before the reads can see its data,
    // and this loop must never spin on microtasks (it would starve the commit it waits for).
    await setImmediate();
    if (this.#pendingWake !== undefined) {
      const reason = this.#pendingWake;
      this.#pendingWake = undefined;
      return reason;
    }
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const woken = new Promise<WakeReason>((resolve) => {
      this.#interrupt = resolve;
      if (ms !== null) timer = setTimeout(() => resolve('timer'), ms);
    });
    const racers: Promise<WakeReason>[] = [woken];
    if (after !== undefined)
      racers.push(this.#journal.waitFor(after, abort.signal).then((): WakeReason => 'data'));
    const reason = await Promise.race(racers);
    clearTimeout(timer);
    abort.abort();
    this.#interrupt = undefined;
    return reason;
  }

  #sinkFor(insecure: boolean): StreamSink {
    if (this.#sink === undefined || this.#sinkInsecure !== insecure) {
      void this.#sink?.close();
      this.#sink = new StreamSink(insecure, this.#options.requestTimeoutMs);
      this.#sinkInsecure = insecure;
    }
    return this.#sink;
  }

  #setStatus(change: Partial<SenderStatus>): void {
    this.#status = { ...this.#status, ...change, updatedAt: Date.now() };
  }

  #position(): QueuePosition | undefined {
    const state = this.#store.state(this.#id);
    return state === undefined ? undefined : { lsn: state.lsn, skipPoints: state.skipPoints };
  }

  #plan(
    config: StreamConfig,
    position: QueuePosition,
    purgeOnly: boolean,
  ): { plan: BatchPlan; scanned: number } {
    let scanned = position.lsn;
    const journal = this.#journal;
    // Entries are read lazily, in growing pages: a batch usually needs few (one request can
    // be megabytes), and a purge pass stops at the first entry young enough to keep.
    function* records(): Generator<JournalRecord> {
      let after = position.lsn;
      let page = 2;
      let seen = 0;
      while (seen < MAX_SCANNED_ENTRIES) {
        const read = journal.read(after, page);
        if (read.length === 0) return;
        for (const record of read) {
          scanned = record.lsn;
          seen++;
          yield record;
        }
        after = read[read.length - 1].lsn;
        page = Math.min(page * 2, 64);
      }
    }
    const plan = planBatch(records(), position, {
      kind: config.sourceKind === 'bucket' ? 'points' : 'docs',
      source: config.source,
      sourceUid: config.sourceUid,
      purgeBefore: Date.now() - config.maxAgeSeconds * 1000,
      isSkipped: (lsn) => this.#store.isSkipped(this.#id, lsn),
      purgeOnly,
    });
    return { plan, scanned };
  }

  async #run(): Promise<void> {
    const initial = this.#store.config(this.#id);
    if (initial !== undefined && !this.#sourceExists(initial)) {
      // Gone without a journaled delete: a full sync from a primary node replaced the databases.
      this.#setStatus({ state: 'failed', latestErrorMessage: sourceDeleted(initial) });
      return;
    }
    this.#setStatus({ state: 'running' });
    let attempts = 0;
    let backoffUntil = 0;
    while (this.#running) {
      const config = this.#store.config(this.#id);
      const position = this.#position();
      if (config === undefined || position === undefined) return;
      if (this.#journal.fellBehind(position.lsn)) {
        await this.#recoverFromRetention(config);
        continue;
      }
      // While backing off, only purge what grew too old; otherwise build the next batch.
      const waiting = Date.now() < backoffUntil;
      const headTs = this.#status.oldestQueuedTs;
      if (waiting && headTs !== null && headTs >= Date.now() - config.maxAgeSeconds * 1000) {
        // Backing off and nothing old enough to purge: no need to read the queue.
        if ((await this.#sleep(backoffUntil - Date.now())) === 'wake') backoffUntil = 0;
        continue;
      }
      const { plan, scanned } = this.#plan(config, position, waiting);
      const moved = plan.end.lsn !== position.lsn || plan.end.skipPoints !== position.skipPoints;
      if (plan.points === 0 && moved) {
        // Only purged or other databases' entries: move past them now.
        await this.#commit(config, plan, 'purged');
        if (!plan.sourceDeleted) continue;
      }
      if (plan.sourceDeleted && plan.points === 0) {
        this.#setStatus({ state: 'failed', latestErrorMessage: sourceDeleted(config) });
        return;
      }
      if (waiting) {
        const reason = await this.#sleep(backoffUntil - Date.now());
        if (reason === 'wake') backoffUntil = 0;
        continue;
      }
      if (plan.points === 0) {
        this.#setStatus({
          state:
            this.#status.state === 'error' || this.#status.state === 'crashing'
              ? this.#status.state
              : 'running',
          oldestQueuedTs: null,
          nextAttemptAt: null,
        });
        await this.#sleep(null, scanned);
        continue;
      }
      this.#setStatus({ oldestQueuedTs: plan.oldestTs });
      const remote = this.#remotes.get(config.remote);
      let result: SendResult;
      if (remote === undefined)
        result = { code: 0, ok: false, message: `no remote named "${config.remote}"` };
      else {
        const isDocs = config.sourceKind !== 'bucket';
        const payload = isDocs
          ? Buffer.from(`{"new_edits":false,"docs":[${plan.chunks.join(',')}]}`)
          : await gzip(plan.chunks.join(''), { level: zlib.Z_BEST_SPEED });
        result = await this.#sinkFor(remote.allow_insecure_tls === true).send(
          config,
          remote,
          payload,
          !isDocs,
        );
      }
      if (!this.#running && !result.ok) return;
      // The settings may have changed (or the stream gone) while the request was out.
      const current = this.#store.config(this.#id);
      if (current === undefined) return;
      if (result.ok) {
        await this.#commit(current, plan, 'sent');
        attempts = 0;
        backoffUntil = 0;
        this.#setStatus({
          state: 'running',
          latestResponseCode: result.code,
          latestErrorMessage: null,
          credentialRejected: false,
          attempts: 0,
          nextAttemptAt: null,
        });
        continue;
      }
      this.#metrics.remoteWriteErrors.inc({ replicationID: this.#id, code: String(result.code) });
      const rejected = result.code === 401 || result.code === 403;
      if (result.code === 400 && current.dropNonRetryableData) {
        await this.#commit(current, plan, 'dropped');
        this.#setStatus({
          latestResponseCode: 400,
          latestErrorMessage: result.message,
          credentialRejected: false,
        });
        continue;
      }
      attempts++;
      // A remote's Retry-After is honoured up to the longest backoff (a huge one would overflow the timer).
      const wait = Math.min(
        result.code === 429
          ? Math.max((result.retryAfterS ?? 0) * 1000, BASE_BACKOFF_MS)
          : BASE_BACKOFF_MS * 2 ** Math.min(attempts - 1, 30),
        this.#options.maxBackoffMs,
      );
      backoffUntil = Date.now() + wait;
      this.#setStatus({
        state: rejected ? 'error' : 'crashing',
        latestResponseCode: result.code,
        latestErrorMessage: result.message,
        credentialRejected: rejected,
        attempts,
        nextAttemptAt: backoffUntil,
      });
      if (attempts === 1 || rejected)
        this.#log.warn(
          { stream: this.#id, code: result.code, error: result.message, retry_in_ms: wait },
          'stream write failed',
        );
    }
  }

  /** Moves the position past `plan` and settles the accounting, in one storage write. */
  async #commit(
    config: StreamConfig,
    plan: BatchPlan,
    outcome: 'sent' | 'dropped' | 'purged',
  ): Promise<void> {
    const accounted = config.sourceKind === 'bucket';
    const done = await this.#store.storage.write(() => {
      const state = this.#store.state(this.#id);
      if (state === undefined) return false;
      const next: QueueState = { ...state, lsn: plan.end.lsn, skipPoints: plan.end.skipPoints };
      const points = outcome === 'purged' ? 0 : plan.points;
      const bytes = outcome === 'purged' ? 0 : plan.bytes;
      if (accounted) {
        next.queuedBytes = Math.max(0, next.queuedBytes - bytes - plan.purgedBytes);
        next.queuedPoints = Math.max(0, next.queuedPoints - points - plan.purgedPoints);
      }
      if (outcome === 'sent') {
        next.sentBytes += bytes;
        next.sentPoints += points;
      } else if (outcome === 'dropped') {
        next.droppedBadBytes += bytes;
        next.droppedBadPoints += points;
      }
      next.purgedBytes += plan.purgedBytes;
      next.purgedPoints += plan.purgedPoints;
      this.#store.clearSkipsThrough(this.#id, plan.end.lsn);
      this.#store.putState(this.#id, next);
      return true;
    });
    if (!done) return;
    const labels = { replicationID: this.#id };
    if (outcome === 'sent') {
      this.#metrics.remoteWriteBytesSent.inc(labels, plan.bytes);
      this.#metrics.streamPointsSent.inc(labels, plan.points);
      this.#metrics.streamBatchesSent.inc(labels);
    } else if (outcome === 'dropped') {
      this.#metrics.remoteWriteBytesDropped.inc(labels, plan.bytes);
      this.#metrics.streamPointsDropped.inc(labels, plan.points);
    }
    if (plan.purgedPoints > 0) {
      this.#metrics.streamPointsPurged.inc(labels, plan.purgedPoints);
      this.#metrics.streamBytesPurged.inc(labels, plan.purgedBytes);
    }
    await this.#followWithJournalCursor(plan.end.lsn);
  }

  /** Keeps the journal from trimming what the stream still needs (lagging a little is harmless). */
  async #followWithJournalCursor(lsn: number): Promise<void> {
    const now = Date.now();
    if (now - this.#journalCursorAt < JOURNAL_CURSOR_EVERY_MS) return;
    this.#journalCursorAt = now;
    await this.#journal.setCursor(streamCursorName(this.#id), lsn);
  }

  /**
   * Journal retention dropped entries the stream had not sent (its size or age limit
   * passed): those are lost, counted as purged, and the queue size is recounted from
   * what is still retained.
   */
  async #recoverFromRetention(config: StreamConfig): Promise<void> {
    const low = this.#journal.low;
    let bytes = 0;
    let points = 0;
    let after = low - 1;
    for (;;) {
      const records = this.#journal.read(after, READ_ENTRIES);
      if (records.length === 0) break;
      for (const { lsn, entry } of records) {
        if (entry.k === 'points' && entry.db === config.source && !this.#store.isSkipped(this.#id, lsn)) {
          bytes += Buffer.byteLength(entry.lines);
          points += entry.count;
        }
      }
      after = records[records.length - 1].lsn;
    }
    let lostPoints = 0;
    await this.#store.storage.write(() => {
      const state = this.#store.state(this.#id);
      if (state === undefined) return;
      const lostBytes = Math.max(0, state.queuedBytes - bytes);
      lostPoints = Math.max(0, state.queuedPoints - points);
      this.#store.putState(this.#id, {
        ...state,
        lsn: low - 1,
        skipPoints: 0,
        queuedBytes: config.sourceKind === 'bucket' ? bytes : 0,
        queuedPoints: config.sourceKind === 'bucket' ? points : 0,
        purgedBytes: state.purgedBytes + lostBytes,
        purgedPoints: state.purgedPoints + lostPoints,
      });
    });
    this.#log.warn({ stream: this.#id, lost_points: lostPoints }, 'journal retention passed the stream');
  }
}

export const streamCursorName = (id: string): string => `stream:${id}`;

function sourceDeleted(config: StreamConfig): string {
  return `the local source "${config.source}" was deleted`;
}
