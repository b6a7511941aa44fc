/**
 * The `_replicator` databases (`_replicator` and every `{prefix}/_replicator`):
 * each document is a replication (reference §2.1, §2.5). This part follows
 * their changes, turns documents into scheduler jobs, and writes the terminal
 * states back (`_replication_state` completed/failed with
 * `_replication_state_time`, `_replication_state_reason`,
 * `_replication_stats`). Documents already completed or failed are not rerun
 * when the node restarts; an update restarts the job, a delete cancels it.
 */
import type { Logger } from 'pino';
import type { ReplicationStats } from '../../engines/replication/replication-job.js';
import { DoppelError, ErrorKind } from '../../errors.js';
import { isServerAdmin, type UserContext } from '../auth/user-context.js';
import type { DocumentService } from '../docs/document-service.js';
import type { ParseOptions, ReplicationSpec } from './replication-spec.js';
import { parseReplicationSpec, sameSpec } from './replication-spec.js';
import { isoSeconds, type ScheduledJob } from './scheduled-job.js';
import type { Scheduler, SchedulerEvent } from './scheduler.js';

export const REPLICATOR_DB = '_replicator';

export function isReplicatorDb(name: string): boolean {
  return name === REPLICATOR_DB || name.endsWith(`/${REPLICATOR_DB}`);
}

export type DocState = 'initializing' | 'error' | 'failed' | 'completed' | 'scheduled';

export interface ReplicatorDoc {
  readonly database: string;
  readonly docId: string;
  state: DocState;
  spec: ReplicationSpec | null;
  jobId: string | null;
  errorCount: number;
  reason: string | null;
  /** `_replication_stats` of a completed document. */
  stats: Record<string, unknown> | null;
  readonly startTime: number;
  lastUpdated: number;
  /** Bumped by every document change, so a slow id computation can tell it is stale. */
  generation: number;
  retry: NodeJS.Timeout | undefined;
}

const ADMIN: UserContext = { name: null, roles: ['_admin'] };
/** `error` documents are retried after 30 s doubling, at most about an hour. */
const ERROR_RETRY_MS = 30_000;
const ERROR_RETRY_MAX_MS = 3_600_000;

function key(db: string, docId: string): string {
  return `${db}\u0000${docId}`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function replicationStatsFields(
  stats: Readonly<ReplicationStats>,
  startTime: number,
): Record<string, unknown> {
  return {
    revisions_checked: stats.revisions_checked,
    missing_revisions_found: stats.missing_revisions_found,
    docs_read: stats.docs_read,
    docs_written: stats.docs_written,
    doc_write_failures: stats.doc_write_failures,
    checkpointed_source_seq: stats.checkpointed_source_seq,
    start_time: isoSeconds(startTime),
    through_seq: stats.through_seq,
  };
}

export class ReplicatorDocs {
  readonly #docs: DocumentService;
  readonly #scheduler: Scheduler;
  readonly #parse: Omit<ParseOptions, 'defaultUser'>;
  readonly #log: Logger;
  readonly #records = new Map<string, ReplicatorDoc>();
  /** Per watched database: the last seq read and its change subscription. */
  readonly #watched = new Map<string, { seq: number; off: () => void; pumping: boolean; again: boolean }>();
  #dbUpdatesSeq = 0;
  #offDbUpdates: (() => void) | undefined;
  #stopped = false;

  constructor(
    docs: DocumentService,
    scheduler: Scheduler,
    parse: Omit<ParseOptions, 'defaultUser'>,
    log: Logger,
  ) {
    this.#docs = docs;
    this.#scheduler = scheduler;
    this.#parse = parse;
    this.#log = log;
    scheduler.onEvent((job, event) => this.#onJobEvent(job, event));
  }

  async start(): Promise<void> {
    this.#dbUpdatesSeq = this.#docs.store.dbUpdatesSeq();
    this.#offDbUpdates = this.#docs.store.onDbUpdate(() => this.#onDbUpdates());
    for (const db of this.#docs.listDatabases(ADMIN)) if (isReplicatorDb(db)) this.#watch(db);
    await Promise.all([...this.#watched.keys()].map((db) => this.#pump(db)));
  }

  stop(): void {
    this.#stopped = true;
    this.#offDbUpdates?.();
    for (const w of this.#watched.values()) w.off();
    this.#watched.clear();
    for (const rec of this.#records.values()) if (rec.retry !== undefined) clearTimeout(rec.retry);
  }

  list(): ReplicatorDoc[] {
    return [...this.#records.values()].sort(
      (a, b) =>
        (a.database < b.database ? -1 : a.database > b.database ? 1 : 0) ||
        (a.docId < b.docId ? -1 : a.docId > b.docId ? 1 : 0),
    );
  }

  get(db: string, docId: string): ReplicatorDoc | undefined {
    return this.#records.get(key(db, docId));
  }

  #watch(db: string): void {
    if (this.#watched.has(db)) return;
    const entry = {
      seq: 0,
      off: this.#docs.store.onChange(db, () => void this.#pump(db)),
      pumping: false,
      again: false,
    };
    this.#watched.set(db, entry);
  }

  #unwatch(db: string): void {
    const w = this.#watched.get(db);
    if (w === undefined) return;
    w.off();
    this.#watched.delete(db);
    for (const rec of [...this.#records.values()]) if (rec.database === db) this.#forget(rec);
  }

  #onDbUpdates(): void {
    if (this.#stopped) return;
    const { rows, last } = this.#docs.dbUpdates(ADMIN, this.#dbUpdatesSeq, 1000);
    this.#dbUpdatesSeq = last;
    for (const row of rows) {
      if (!isReplicatorDb(row.db_name)) continue;
      if (row.type === 'deleted') this.#unwatch(row.db_name);
      else if (row.type === 'created') {
        this.#unwatch(row.db_name);
        this.#watch(row.db_name);
        void this.#pump(row.db_name);
      }
    }
  }

  /** Reads a watched database's changes since the last pump; one pump at a time per database. */
  async #pump(db: string): Promise<void> {
    const w = this.#watched.get(db);
    if (w === undefined || this.#stopped) return;
    if (w.pumping) {
      w.again = true;
      return;
    }
    w.pumping = true;
    try {
      do {
        w.again = false;
        for (;;) {
          const page = await this.#docs.changes(ADMIN, db, {
            since: w.seq,
            limit: 500,
            descending: false,
            style: 'main_only',
            includeDocs: false,
            render: {},
            skipPending: true,
          });
          for (const row of page.rows) this.#process(db, row.id);
          w.seq = page.lastSeq;
          if (page.rows.length < 500) break;
        }
      } while (w.again && !this.#stopped);
    } catch (err) {
      if (!(err instanceof DoppelError && err.kind === ErrorKind.NotFound))
        this.#log.error({ err, db }, 'reading a _replicator database failed');
    } finally {
      w.pumping = false;
    }
  }

  #readDoc(db: string, docId: string): Record<string, unknown> | null {
    try {
      const parsed = JSON.parse(this.#docs.get(ADMIN, db, docId, undefined, {})) as unknown;
      return isRecord(parsed) ? parsed : null;
    } catch (err) {
      if (err instanceof DoppelError && err.kind === ErrorKind.NotFound) return null;
      throw err;
    }
  }

  /** A document changed: cancel, ignore, or (re)start its job. */
  #process(db: string, docId: string): void {
    if (docId.startsWith('_design/')) return;
    const doc = this.#readDoc(db, docId);
    let rec = this.#records.get(key(db, docId));
    if (doc === null) {
      if (rec !== undefined) this.#forget(rec);
      return;
    }
    const written = doc['_replication_state'];
    if (written === 'completed' || written === 'failed') {
      // Terminal documents are never rerun; keep what they say for `_scheduler/docs`.
      if (rec?.jobId !== null && rec?.jobId !== undefined && rec.state === 'scheduled') return;
      if (rec === undefined) rec = this.#newRecord(db, docId);
      if (rec.spec === null) rec.spec = this.#specForDisplay(doc);
      rec.state = written;
      rec.reason =
        typeof doc['_replication_state_reason'] === 'string' ? doc['_replication_state_reason'] : null;
      rec.stats = isRecord(doc['_replication_stats']) ? doc['_replication_stats'] : null;
      rec.lastUpdated = Date.now();
      return;
    }
    let spec: ReplicationSpec;
    try {
      spec = parseReplicationSpec(doc, { ...this.#parse, defaultUser: ADMIN });
      if (spec.source.kind === 'http' && spec.source.remote !== undefined && !isServerAdmin(spec.userCtx))
        throw new DoppelError(ErrorKind.Forbidden, 'only admins may use registered remotes');
      if (spec.target.kind === 'http' && spec.target.remote !== undefined && !isServerAdmin(spec.userCtx))
        throw new DoppelError(ErrorKind.Forbidden, 'only admins may use registered remotes');
    } catch (err) {
      if (rec !== undefined) this.#cancelJob(rec);
      rec ??= this.#newRecord(db, docId);
      rec.spec = null;
      this.#fail(rec, err instanceof DoppelError ? err.reason : String(err));
      return;
    }
    // The same replication, still active: an unrelated edit of the document changes nothing.
    const active = rec?.state === 'initializing' || rec?.state === 'error' || rec?.state === 'scheduled';
    if (active && rec?.spec != null && sameSpec(rec.spec, spec)) return;
    if (rec !== undefined) this.#cancelJob(rec);
    rec ??= this.#newRecord(db, docId);
    rec.spec = spec;
    rec.generation++;
    rec.state = 'initializing';
    rec.reason = null;
    rec.lastUpdated = Date.now();
    void this.#schedule(rec, rec.generation);
  }

  /** A terminal document's spec, only to show its endpoints; null when it does not parse. */
  #specForDisplay(doc: Record<string, unknown>): ReplicationSpec | null {
    try {
      return parseReplicationSpec(doc, { ...this.#parse, defaultUser: ADMIN });
    } catch {
      return null;
    }
  }

  #newRecord(db: string, docId: string): ReplicatorDoc {
    const rec: ReplicatorDoc = {
      database: db,
      docId,
      state: 'initializing',
      spec: null,
      jobId: null,
      errorCount: 0,
      reason: null,
      stats: null,
      startTime: Date.now(),
      lastUpdated: Date.now(),
      generation: 0,
      retry: undefined,
    };
    this.#records.set(key(db, docId), rec);
    return rec;
  }

  /** Computes the ids (may read the source) and hands the job to the scheduler. */
  async #schedule(rec: ReplicatorDoc, generation: number): Promise<void> {
    const spec = rec.spec;
    if (spec === null) return;
    let ids;
    try {
      ids = await this.#scheduler.ids(spec);
    } catch (err) {
      if (rec.generation !== generation || this.#stopped) return;
      const reason = err instanceof DoppelError ? err.reason : String(err);
      rec.state = 'error';
      rec.errorCount++;
      rec.reason = reason;
      rec.lastUpdated = Date.now();
      const delay = Math.min(ERROR_RETRY_MS * 2 ** (rec.errorCount - 1), ERROR_RETRY_MAX_MS);
      rec.retry = setTimeout(() => {
        rec.retry = undefined;
        if (rec.generation === generation) void this.#schedule(rec, generation);
      }, delay);
      rec.retry.unref();
      return;
    }
    if (rec.generation !== generation || this.#stopped) return;
    const job = this.#scheduler.add(ids, spec, { database: rec.database, docId: rec.docId });
    const owner = job.origin;
    if (owner === null || owner.database !== rec.database || owner.docId !== rec.docId) {
      const by =
        owner === null
          ? 'a POST /_replicate request'
          : `document \`${owner.docId}\` from db \`${owner.database}\``;
      this.#fail(
        rec,
        `Replication \`${ids.jobId}\` specified by document \`${rec.docId}\` already started, triggered by ${by}`,
      );
      return;
    }
    rec.jobId = job.id;
    rec.state = 'scheduled';
    rec.errorCount = 0;
    rec.lastUpdated = Date.now();
  }

  #cancelJob(rec: ReplicatorDoc): void {
    rec.generation++;
    if (rec.retry !== undefined) clearTimeout(rec.retry);
    rec.retry = undefined;
    if (rec.jobId !== null) {
      const job = this.#scheduler.get(rec.jobId);
      if (job?.origin?.database === rec.database && job.origin.docId === rec.docId)
        this.#scheduler.remove(rec.jobId, 'document updated or deleted');
    }
    rec.jobId = null;
  }

  #forget(rec: ReplicatorDoc): void {
    this.#cancelJob(rec);
    this.#records.delete(key(rec.database, rec.docId));
  }

  #fail(rec: ReplicatorDoc, reason: string): void {
    rec.state = 'failed';
    rec.reason = reason;
    rec.lastUpdated = Date.now();
    void this.#writeBack(rec, { _replication_state: 'failed', _replication_state_reason: reason });
  }

  #onJobEvent(job: ScheduledJob, event: SchedulerEvent): void {
    const origin = job.origin;
    if (origin === null) return;
    const rec = this.#records.get(key(origin.database, origin.docId));
    if (rec === undefined || rec.jobId !== job.id) return;
    rec.lastUpdated = Date.now();
    if (event === 'completed') {
      const stats = job.stats === null ? {} : replicationStatsFields(job.stats, job.addedAt);
      rec.state = 'completed';
      rec.jobId = null;
      rec.stats = stats;
      void this.#writeBack(rec, { _replication_state: 'completed', _replication_stats: stats });
    }
  }

  /** Adds the state fields to the document, unless the user changed what it replicates meanwhile. */
  async #writeBack(rec: ReplicatorDoc, fields: Record<string, unknown>): Promise<void> {
    for (let attempt = 0; attempt < 5 && !this.#stopped; attempt++) {
      const doc = this.#readDoc(rec.database, rec.docId);
      if (doc === null) return;
      const body: Record<string, unknown> = { ...doc };
      delete body['_replication_state_reason'];
      delete body['_replication_stats'];
      Object.assign(body, fields, {
        _replication_state_time: new Date().toISOString().replace(/\.\d{3}Z$/, '+00:00'),
      });
      try {
        await this.#docs.putDoc(ADMIN, rec.database, body, true, rec.docId);
        return;
      } catch (err) {
        if (!(err instanceof DoppelError && err.kind === ErrorKind.Conflict)) {
          this.#log.warn(
            { err, db: rec.database, doc: rec.docId },
            'could not write the replication state back',
          );
          return;
        }
      }
    }
  }
}
