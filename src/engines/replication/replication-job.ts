/**
 * The replication algorithm (CouchDB replication protocol v3, reference
 * §1.1–§1.2, §2.2) over two `ReplicationEndpoint`s. It knows nothing of HTTP
 * or of the document service: the endpoints do.
 *
 * Pipeline: the source's changes feed is cut into batches; up to
 * `workerProcesses` batches run at once (`_revs_diff` → `_bulk_get` →
 * `_bulk_docs new_edits=false`); `through_seq` moves only past batches whose
 * predecessors are all written. Checkpoints (`_local/{baseId}` on both sides,
 * in CouchDB's format) are written every `checkpointInterval` and at the end.
 */
import { randomUUID } from 'node:crypto';
import { asDoppelError, DoppelError, ErrorKind } from '../../errors.js';
import type {
  BulkGetRequest,
  ChangeEntry,
  ChangesFilterOptions,
  EndpointInfo,
  ReplicationEndpoint,
  Seq,
} from './endpoint.js';
import {
  canonicalJson,
  replicationIds,
  type ReplicationIdFilter,
  type ReplicationIds,
} from './replication-id.js';
import { restoreCopy, type CopyOutcome } from './copy-restore.js';

export const REPLICATION_ID_VERSION = 4;
export const MAX_HISTORY = 50;

export interface ReplicationOptions {
  readonly continuous?: boolean;
  readonly createTarget?: boolean;
  readonly filter?: ChangesFilterOptions;
  readonly winningRevsOnly?: boolean;
  readonly sinceSeq?: Seq;
  /**
   * Where to start when no checkpoint applies, like `sinceSeq` but not part of
   * the replication id: a follower whose bootstrap copied the database whole.
   */
  readonly startWithoutCheckpoint?: Seq;
  /** Rows per batch (CouchDB `worker_batch_size`, default 500). */
  readonly workerBatchSize?: number;
  /** Batches in flight at once (CouchDB `worker_processes`, default 4). */
  readonly workerProcesses?: number;
  /** ms between checkpoints (default 30000). */
  readonly checkpointInterval?: number;
  readonly useCheckpoints?: boolean;
  /** Continuous feeds: heartbeat asked of the source (default 10000 ms). */
  readonly heartbeatMs?: number;
}

/** One `history` entry of a checkpoint document (reference §1.2). */
export interface HistoryEntry {
  readonly session_id: string;
  readonly start_time: string;
  readonly end_time: string;
  readonly start_last_seq: Seq;
  readonly end_last_seq: Seq;
  readonly recorded_seq: Seq;
  readonly missing_checked: number;
  readonly missing_found: number;
  readonly docs_read: number;
  readonly docs_written: number;
  readonly doc_write_failures: number;
}

export interface CheckpointDoc {
  readonly session_id: string;
  readonly source_last_seq: Seq;
  readonly replication_id_version: number;
  readonly history: readonly HistoryEntry[];
  /** Doppel's own field: a copy under way (see `#copyFirst`). */
  readonly doppel_copy?: CopyCheckpoint;
}

/** How far a database copy got: its snapshot's seq, the last document written, how many were. */
export interface CopyCheckpoint {
  readonly seq: number;
  readonly after_id: string;
  readonly copied: number;
}

/** Progress for `_active_tasks` / `_scheduler` (field names as CouchDB reports them). */
export interface ReplicationStats {
  revisions_checked: number;
  missing_revisions_found: number;
  docs_read: number;
  docs_written: number;
  doc_write_failures: number;
  /** The seq of the newest batch written (maybe with older ones still in flight). */
  source_seq: Seq | null;
  /** Every change up to here is written. */
  through_seq: Seq | null;
  checkpointed_source_seq: Seq | null;
  start_seq: Seq | null;
  changes_pending: number | null;
  /** Unix seconds. */
  started_on: number;
  updated_on: number;
}

export type ReplicationResult =
  | {
      readonly status: 'completed';
      readonly ids: ReplicationIds;
      readonly sessionId: string;
      readonly sourceLastSeq: Seq;
      readonly history: readonly HistoryEntry[];
      /** This run's counters (the history carries cumulative ones). */
      readonly stats: Readonly<ReplicationStats>;
    }
  | {
      readonly status: 'stopped';
      readonly ids: ReplicationIds | null;
      readonly stats: Readonly<ReplicationStats>;
    }
  | {
      readonly status: 'failed';
      readonly ids: ReplicationIds | null;
      /** `unavailable`/`internal` are transient (retry with backoff); other kinds are permanent. */
      readonly error: DoppelError;
      readonly transient: boolean;
      readonly stats: Readonly<ReplicationStats>;
    };

/** Counters of a replication that has not done anything yet. */
export function emptyReplicationStats(): ReplicationStats {
  const now = Math.floor(Date.now() / 1000);
  return {
    revisions_checked: 0,
    missing_revisions_found: 0,
    docs_read: 0,
    docs_written: 0,
    doc_write_failures: 0,
    source_seq: null,
    through_seq: null,
    checkpointed_source_seq: null,
    start_seq: null,
    changes_pending: null,
    started_on: now,
    updated_on: now,
  };
}

/** RFC 1123 date, as CouchDB writes `start_time`/`end_time`. */
export function rfc1123(date: Date): string {
  return date.toUTCString();
}

export function isTransient(err: DoppelError): boolean {
  return err.kind === ErrorKind.Unavailable || err.kind === ErrorKind.Internal;
}

/** A `_local` checkpoint document in CouchDB's format, or null when it is not one. */
export function parseCheckpoint(doc: Record<string, unknown> | null): CheckpointDoc | null {
  if (doc === null || typeof doc['session_id'] !== 'string') return null;
  const seq = doc['source_last_seq'];
  if (typeof seq !== 'number' && typeof seq !== 'string') return null;
  const history = Array.isArray(doc['history'])
    ? (doc['history'] as unknown[]).filter(
        (h): h is HistoryEntry =>
          typeof h === 'object' &&
          h !== null &&
          typeof (h as { session_id?: unknown }).session_id === 'string',
      )
    : [];
  const copy = doc['doppel_copy'] as Partial<CopyCheckpoint> | undefined;
  return {
    session_id: doc['session_id'],
    source_last_seq: seq,
    replication_id_version:
      typeof doc['replication_id_version'] === 'number' ? doc['replication_id_version'] : 0,
    history,
    ...(typeof copy?.seq === 'number' && typeof copy.after_id === 'string'
      ? {
          doppel_copy: {
            seq: copy.seq,
            after_id: copy.after_id,
            copied: typeof copy.copied === 'number' ? copy.copied : 0,
          },
        }
      : {}),
  };
}

/**
 * Where to start (reference §1.1 step 4): the same top-level session on both
 * sides → its `source_last_seq`; else the newest session common to both
 * histories → its `recorded_seq`; else null (from the beginning).
 */
export function findStartSeq(
  source: CheckpointDoc | null,
  target: CheckpointDoc | null,
): HistoryEntry | Seq | null {
  if (source === null || target === null) return null;
  if (source.session_id === target.session_id) return source.source_last_seq;
  const s = source.history;
  const t = target.history;
  for (let i = 0; i < Math.max(s.length, t.length); i++) {
    const si = s[i];
    if (si !== undefined && t.slice(i).some((e) => e.session_id === si.session_id)) return si;
    const ti = t[i];
    if (ti !== undefined && s.slice(i).some((e) => e.session_id === ti.session_id)) return ti;
  }
  return null;
}

interface InFlight {
  readonly lastSeq: Seq;
  done: boolean;
  error: DoppelError | undefined;
  readonly promise: Promise<void>;
}

export class ReplicationJob {
  readonly #source: ReplicationEndpoint;
  readonly #target: ReplicationEndpoint;
  readonly #continuous: boolean;
  readonly #createTarget: boolean;
  readonly #filter: ChangesFilterOptions;
  readonly #winningRevsOnly: boolean;
  readonly #sinceSeq: Seq | undefined;
  readonly #startWithoutCheckpoint: Seq | undefined;
  readonly #batchSize: number;
  readonly #workers: number;
  readonly #checkpointInterval: number;
  readonly #useCheckpoints: boolean;
  readonly #heartbeatMs: number;
  readonly #stats: ReplicationStats;
  #ids: ReplicationIds | null = null;
  #sessionId = randomUUID().replace(/-/g, '');
  #startTime = new Date();
  #startSeq: Seq = 0;
  /** Cumulative counters carried over from the checkpoint we resumed from. */
  #seed = { missing_checked: 0, missing_found: 0, docs_read: 0, docs_written: 0, doc_write_failures: 0 };
  #sourceLog: { rev: string | undefined; history: readonly HistoryEntry[] } = { rev: undefined, history: [] };
  #targetLog: { rev: string | undefined } = { rev: undefined };
  /** Bumped when through_seq moves; a checkpoint is written only when it is ahead of #committedVersion. */
  #throughVersion = 0;
  #committedVersion = 0;
  /** The source answered a checkpoint write with 403: checkpoints are kept on the target only. */
  #sourceRefusesCheckpoints = false;
  #history: readonly HistoryEntry[] = [];
  #checkpointChain: Promise<void> = Promise.resolve();
  #sourceInfo: EndpointInfo | null = null;
  #targetEmpty = false;
  /** The copy the checkpoints say was interrupted: it continues after its last document. */
  #resumeCopy: CopyCheckpoint | null = null;
  /** The copy under way: its seq once known, its last written document, its progress. */
  #copy: { seq: number | null; afterId: string | undefined; total: number; done: number } | null = null;

  constructor(source: ReplicationEndpoint, target: ReplicationEndpoint, options: ReplicationOptions = {}) {
    this.#source = source;
    this.#target = target;
    this.#continuous = options.continuous ?? false;
    this.#createTarget = options.createTarget ?? false;
    this.#filter = options.filter ?? { kind: 'none' };
    this.#winningRevsOnly = options.winningRevsOnly ?? false;
    this.#sinceSeq = options.sinceSeq;
    this.#startWithoutCheckpoint = options.startWithoutCheckpoint;
    this.#batchSize = Math.max(1, options.workerBatchSize ?? 500);
    this.#workers = Math.max(1, options.workerProcesses ?? 4);
    this.#checkpointInterval = Math.max(100, options.checkpointInterval ?? 30_000);
    this.#useCheckpoints = options.useCheckpoints ?? true;
    this.#heartbeatMs = options.heartbeatMs ?? 10_000;
    this.#stats = emptyReplicationStats();
  }

  /** A snapshot of the progress counters. */
  get stats(): Readonly<ReplicationStats> {
    return { ...this.#stats };
  }

  get ids(): ReplicationIds | null {
    return this.#ids;
  }

  /** The replication ids; fetches a design-document filter's source from the source. */
  async computeIds(): Promise<ReplicationIds> {
    let filter: ReplicationIdFilter;
    const f = this.#filter;
    switch (f.kind) {
      case 'none':
        filter = { kind: 'none' };
        break;
      case 'doc_ids':
        filter = { kind: 'doc_ids', docIds: f.docIds };
        break;
      case 'selector':
        filter = { kind: 'selector', selector: f.selector };
        break;
      case 'js':
        filter = f.name.startsWith('_')
          ? { kind: 'builtin', name: f.name, queryParams: f.queryParams }
          : {
              kind: 'js',
              name: f.name,
              code: await this.#source.filterSource(f.name),
              queryParams: f.queryParams,
            };
        break;
    }
    return replicationIds(
      {
        sourceIdentity: this.#source.identity,
        targetIdentity: this.#target.identity,
        filter,
        winningRevsOnly: this.#winningRevsOnly,
        ...(this.#sinceSeq === undefined ? {} : { sinceSeq: this.#sinceSeq }),
      },
      { continuous: this.#continuous, createTarget: this.#createTarget },
    );
  }

  /**
   * Runs the replication: a one-shot job until the end of the feed, a
   * continuous one until `signal` aborts. Never throws: failures come back as
   * `{status: 'failed'}`.
   */
  async run(signal: AbortSignal): Promise<ReplicationResult> {
    const inner = new AbortController();
    const onAbort = (): void => inner.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    try {
      await this.#verifyPeers();
      this.#ids = await this.computeIds();
      await this.#readCheckpoints(this.#ids.baseId);
      if (signal.aborted) return { status: 'stopped', ids: this.#ids, stats: this.stats };
      if (this.#useCheckpoints) {
        timer = setInterval(() => {
          void this.#checkpoint().catch(() => {
            // a failed timed checkpoint is retried at the next tick or at the end
          });
        }, this.#checkpointInterval);
        timer.unref();
      }
      const since = await this.#copyFirst(inner.signal);
      if (!inner.signal.aborted) await this.#replicate(inner.signal, since);
      if (timer !== undefined) clearInterval(timer);
      if (this.#useCheckpoints) await this.#checkpoint();
      if (signal.aborted && this.#continuous) return { status: 'stopped', ids: this.#ids, stats: this.stats };
      if (signal.aborted) return { status: 'stopped', ids: this.#ids, stats: this.stats };
      return {
        status: 'completed',
        ids: this.#ids,
        sessionId: this.#sessionId,
        sourceLastSeq: this.#stats.through_seq ?? this.#startSeq,
        history: this.#history,
        stats: this.stats,
      };
    } catch (err) {
      const error = asDoppelError(err);
      return { status: 'failed', ids: this.#ids, error, transient: isTransient(error), stats: this.stats };
    } finally {
      if (timer !== undefined) clearInterval(timer);
      signal.removeEventListener('abort', onAbort);
      inner.abort();
    }
  }

  async #verifyPeers(): Promise<void> {
    if (!(await this.#source.exists()))
      throw new DoppelError(ErrorKind.NotFound, `could not open ${this.#source.displayName}`, {
        errorName: 'db_not_found',
      });
    if (!(await this.#target.exists())) {
      if (!this.#createTarget)
        throw new DoppelError(ErrorKind.NotFound, `could not open ${this.#target.displayName}`, {
          errorName: 'db_not_found',
        });
      await this.#target.create();
    }
    this.#sourceInfo = await this.#source.info();
    this.#targetEmpty = (await this.#target.info()).update_seq === 0;
  }

  async #readCheckpoints(baseId: string): Promise<void> {
    if (!this.#useCheckpoints) {
      this.#startSeq = this.#sinceSeq ?? this.#startWithoutCheckpoint ?? 0;
      this.#stats.start_seq = this.#startSeq;
      return;
    }
    const [sourceDoc, targetDoc] = await Promise.all([
      this.#source.getLocal(baseId),
      this.#target.getLocal(baseId),
    ]);
    const src = parseCheckpoint(sourceDoc);
    const tgt = parseCheckpoint(targetDoc);
    this.#sourceLog = {
      rev: typeof sourceDoc?.['_rev'] === 'string' ? sourceDoc['_rev'] : undefined,
      history: src?.history ?? [],
    };
    this.#targetLog = { rev: typeof targetDoc?.['_rev'] === 'string' ? targetDoc['_rev'] : undefined };
    this.#history = src?.history ?? [];
    const found = findStartSeq(src, tgt);
    let start: Seq | null = null;
    if (found !== null && typeof found === 'object') start = found.recorded_seq;
    else if (found !== null) start = found;
    if (src !== null && tgt?.session_id === src.session_id) this.#resumeCopy = tgt.doppel_copy ?? null;
    if ((start === null || start === 0) && this.#resumeCopy === null)
      start = this.#sinceSeq ?? this.#startWithoutCheckpoint ?? 0;
    else {
      const last = src?.history[0];
      if (last !== undefined)
        this.#seed = {
          missing_checked: last.missing_checked,
          missing_found: last.missing_found,
          docs_read: last.docs_read,
          docs_written: last.docs_written,
          doc_write_failures: last.doc_write_failures,
        };
    }
    this.#startSeq = start ?? 0;
    this.#stats.start_seq = this.#startSeq;
    this.#stats.through_seq = this.#startSeq;
    this.#stats.checkpointed_source_seq = this.#startSeq;
    this.#stats.source_seq = this.#startSeq;
  }

  /**
   * A first replication into an empty database, from a Doppel source without
   * a filter, copies the source whole (`ReplicationEndpoint.copy`: one
   * snapshot, in id order) instead of reading its changes one by one; so does
   * a run continuing such a copy. Checkpoints record the copy's seq and last
   * written document (`doppel_copy`): an interrupted copy continues after it.
   * Returns where the changes feed starts: the first copy's seq, so every
   * change made since arrives (again, harmlessly, for documents a later copy
   * already had); the start seq when nothing was copied.
   */
  async #copyFirst(signal: AbortSignal): Promise<Seq> {
    const resume = this.#resumeCopy;
    const fresh =
      this.#filter.kind === 'none' &&
      !this.#winningRevsOnly &&
      this.#sinceSeq === undefined &&
      this.#startWithoutCheckpoint === undefined &&
      this.#startSeq === 0 &&
      this.#targetEmpty;
    if ((resume === null && !fresh) || this.#source.copy === undefined) return this.#startSeq;
    const write = await this.#target.copyWriter?.();
    if (write === undefined || write === null) return this.#startSeq;
    const frames = await this.#source.copy(resume?.after_id, signal);
    if (frames === null) return this.#startSeq;
    const copy = (this.#copy = {
      seq: resume?.seq ?? null,
      afterId: resume?.after_id,
      total: 0,
      done: resume?.copied ?? 0,
    });
    const s = this.#stats;
    let outcome: CopyOutcome;
    try {
      outcome = await restoreCopy(
        frames,
        {
          header: async (h) => {
            copy.seq ??= h.seq;
            copy.total = h.doc_count + h.doc_del_count;
          },
          write: async (docs, attachments, guard) => {
            let leaves = 0;
            for (const doc of docs) leaves += doc.leaves.length;
            s.revisions_checked += leaves;
            s.missing_revisions_found += leaves;
            s.docs_read += leaves;
            const failures = await write(docs, attachments, guard);
            return { written: leaves - failures.length, failed: failures.length };
          },
          committed: (lastId, result) => {
            s.docs_written += result.written;
            s.doc_write_failures += result.failed;
            copy.afterId = lastId;
            copy.done += result.written + result.failed;
            this.#throughVersion++;
            this.#touch();
          },
        },
        `copying ${this.#source.displayName}`,
      );
    } catch (err) {
      if (signal.aborted) return this.#startSeq;
      throw err;
    }
    // Documents the source could not read back by key come by the changes feed from the start.
    const since = outcome.unreadable > 0 || copy.seq === null ? 0 : copy.seq;
    this.#copy = null;
    s.through_seq = since;
    s.source_seq = since;
    this.#throughVersion++;
    return since;
  }

  async #replicate(signal: AbortSignal, since: Seq): Promise<void> {
    const inFlight: InFlight[] = [];
    const advance = (): void => {
      while (inFlight.length > 0 && inFlight[0]?.done === true && inFlight[0].error === undefined) {
        const head = inFlight.shift();
        if (head === undefined) break;
        this.#stats.through_seq = head.lastSeq;
        this.#throughVersion++;
      }
    };
    const firstError = (): DoppelError | undefined => inFlight.find((b) => b.error !== undefined)?.error;
    const onBatch = async (rows: readonly ChangeEntry[], lastSeq: Seq): Promise<void> => {
      const failed = firstError();
      if (failed !== undefined) throw failed;
      const entry: InFlight = {
        lastSeq,
        done: false,
        error: undefined,
        promise: this.#processBatch(rows).then(
          () => {
            entry.done = true;
            this.#stats.source_seq = lastSeq;
            advance();
          },
          (err: unknown) => {
            entry.done = true;
            entry.error = asDoppelError(err);
          },
        ),
      };
      inFlight.push(entry);
      while (inFlight.length >= this.#workers) {
        const head = inFlight[0];
        if (head === undefined) break;
        await head.promise;
        if (head.error !== undefined) throw head.error;
        advance();
      }
    };
    try {
      await this.#source.changes(
        {
          since,
          filter: this.#filter,
          winningRevsOnly: this.#winningRevsOnly,
          batchSize: this.#batchSize,
          continuous: this.#continuous,
          heartbeatMs: this.#heartbeatMs,
          signal,
        },
        onBatch,
      );
    } finally {
      await Promise.all(inFlight.map((b) => b.promise));
    }
    const failed = firstError();
    if (failed !== undefined) throw failed;
    advance();
  }

  async #processBatch(rows: readonly ChangeEntry[]): Promise<void> {
    if (rows.length === 0) return;
    const revs: Record<string, string[]> = {};
    let checked = 0;
    for (const row of rows) {
      const list = (revs[row.id] ??= []);
      for (const { rev } of row.changes) {
        if (!list.includes(rev)) {
          list.push(rev);
          checked++;
        }
      }
    }
    this.#stats.revisions_checked += checked;
    const diff = await this.#target.revsDiff(revs);
    const requests: BulkGetRequest[] = [];
    for (const [id, entry] of Object.entries(diff)) {
      for (const rev of entry.missing) {
        const ancestors = entry.possible_ancestors;
        requests.push(
          ancestors !== undefined && ancestors.length > 0 ? { id, rev, attsSince: ancestors } : { id, rev },
        );
      }
    }
    this.#stats.missing_revisions_found += requests.length;
    this.#touch();
    if (requests.length === 0) return;
    const fetched = await this.#source.bulkGet(requests);
    this.#stats.docs_read += fetched.docs.length;
    if (fetched.docs.length === 0) return;
    const failures = await this.#target.bulkDocs(fetched.docs);
    this.#stats.doc_write_failures += failures.length;
    this.#stats.docs_written += fetched.docs.length - failures.length;
    this.#touch();
  }

  #touch(): void {
    this.#stats.updated_on = Math.floor(Date.now() / 1000);
  }

  /** Serialized: a timed checkpoint and the final one never interleave. */
  #checkpoint(): Promise<void> {
    const next = this.#checkpointChain.then(() => this.#writeCheckpoint());
    this.#checkpointChain = next.catch(() => undefined);
    return next;
  }

  async #writeCheckpoint(): Promise<void> {
    const ids = this.#ids;
    const through = this.#stats.through_seq;
    const version = this.#throughVersion;
    const copy = this.#copy;
    const copying =
      copy !== null && copy.seq !== null && copy.afterId !== undefined
        ? { seq: copy.seq, after_id: copy.afterId, copied: copy.done }
        : null;
    if (ids === null || through === null || version === this.#committedVersion) return;
    await Promise.all([this.#source.ensureFullCommit(), this.#target.ensureFullCommit()]);
    const s = this.#stats;
    const entry: HistoryEntry = {
      session_id: this.#sessionId,
      start_time: rfc1123(this.#startTime),
      end_time: rfc1123(new Date()),
      start_last_seq: this.#startSeq,
      end_last_seq: through,
      recorded_seq: through,
      missing_checked: this.#seed.missing_checked + s.revisions_checked,
      missing_found: this.#seed.missing_found + s.missing_revisions_found,
      docs_read: this.#seed.docs_read + s.docs_read,
      docs_written: this.#seed.docs_written + s.docs_written,
      doc_write_failures: this.#seed.doc_write_failures + s.doc_write_failures,
    };
    const history = [entry, ...this.#sourceLog.history.filter((h) => h.session_id !== this.#sessionId)].slice(
      0,
      MAX_HISTORY,
    );
    const body: CheckpointDoc = {
      session_id: this.#sessionId,
      source_last_seq: through,
      replication_id_version: REPLICATION_ID_VERSION,
      history,
      ...(copying === null ? {} : { doppel_copy: copying }),
    };
    if (!this.#sourceRefusesCheckpoints) {
      try {
        this.#sourceLog.rev = await this.#putLog(this.#source, ids.baseId, body, this.#sourceLog.rev);
      } catch (err) {
        // A read-only source (a node replica, a reader's account): the target keeps the
        // checkpoint; a restart then rechecks from the start with revs_diff.
        if (!(err instanceof DoppelError) || err.kind !== ErrorKind.Forbidden) throw err;
        this.#sourceRefusesCheckpoints = true;
      }
    }
    this.#targetLog.rev = await this.#putLog(this.#target, ids.baseId, body, this.#targetLog.rev);
    this.#history = history;
    this.#committedVersion = version;
    s.checkpointed_source_seq = through;
    this.#touch();
  }

  /** PUTs a checkpoint; on a conflict, succeeds only if the stored body already equals ours. */
  async #putLog(
    endpoint: ReplicationEndpoint,
    id: string,
    body: CheckpointDoc,
    rev: string | undefined,
  ): Promise<string> {
    const doc: Record<string, unknown> = { ...body, ...(rev === undefined ? {} : { _rev: rev }) };
    try {
      return await endpoint.putLocal(id, doc);
    } catch (err) {
      if (!(err instanceof DoppelError) || err.kind !== ErrorKind.Conflict) throw err;
      const current = await endpoint.getLocal(id);
      if (current !== null) {
        const currentRev = current['_rev'];
        const rest = Object.fromEntries(Object.entries(current).filter(([k]) => k !== '_id' && k !== '_rev'));
        if (canonicalJson(rest) === canonicalJson(body) && typeof currentRev === 'string') return currentRev;
      }
      throw new DoppelError(
        ErrorKind.Conflict,
        `checkpoint on ${endpoint.displayName} was changed by someone else`,
      );
    }
  }

  /** Rows still to read on the source (for `changes_pending`); null when unknown. */
  async refreshPending(): Promise<number | null> {
    const copy = this.#copy;
    if (copy !== null) return (this.#stats.changes_pending = Math.max(0, copy.total - copy.done));
    const since = this.#stats.through_seq ?? this.#startSeq;
    try {
      this.#stats.changes_pending = await this.#source.pending(since);
    } catch {
      this.#stats.changes_pending = null;
    }
    return this.#stats.changes_pending;
  }

  /** The source's info as read when the job started. */
  get sourceInfo(): EndpointInfo | null {
    return this.#sourceInfo;
  }
}
