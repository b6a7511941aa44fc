/**
 * The replicator as the front doors see it: `POST /_replicate`, the
 * `_scheduler/jobs` and `_scheduler/docs` views, `_active_tasks`, and the
 * replicator's rows of `/_doppel/replications`. It owns the scheduler and the
 * `_replicator` document processor and starts/stops them together.
 */
import type { Logger } from 'pino';
import { REPLICATION_ID_VERSION } from '../../engines/replication/replication-job.js';
import { badRequest, DoppelError, ErrorKind, forbidden, notFound } from '../../errors.js';
import { isServerAdmin, type UserContext } from '../auth/user-context.js';
import type { DocumentService } from '../docs/document-service.js';
import type { ReplicationStatus, StatusBoard } from '../replications/status-board.js';
import type { RemoteRegistry } from '../remotes/remote-registry.js';
import { jobEndpoints } from './endpoint-factory.js';
import {
  parseReplicationSpec,
  redactedEndpoint,
  type JobTuning,
  type ReplicationSpec,
} from './replication-spec.js';
import { ReplicatorDocs, type ReplicatorDoc } from './replicator-docs.js';
import { isoSeconds, type ScheduledJob } from './scheduled-job.js';
import { Scheduler } from './scheduler.js';

export interface ReplicatorOptions {
  readonly maxJobs: number;
  readonly intervalMs: number;
  readonly maxChurn: number;
  readonly maxHistory: number;
  readonly healthThresholdMs: number;
  readonly crashBackoffMs: number;
  readonly stallMs: number;
  readonly tuning: JobTuning;
  readonly nodeName: string;
}

export interface Page<T> {
  readonly total_rows: number;
  readonly offset: number;
  readonly rows: T[];
}

/** changes_pending is refreshed at most this often per job when someone looks. */
const PENDING_MAX_AGE_MS = 1000;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class ReplicatorService {
  readonly scheduler: Scheduler;
  readonly #docs: ReplicatorDocs;
  readonly #remotes: RemoteRegistry;
  readonly #options: ReplicatorOptions;

  constructor(
    docs: DocumentService,
    remotes: RemoteRegistry,
    board: StatusBoard,
    options: ReplicatorOptions,
    log: Logger,
  ) {
    this.#remotes = remotes;
    this.#options = options;
    this.scheduler = new Scheduler({
      ...options,
      createEndpoints: (spec, signal) => jobEndpoints(docs, spec, signal),
      log,
    });
    this.#docs = new ReplicatorDocs(docs, this.scheduler, { remotes, defaults: options.tuning }, log);
    board.register(() => this.statuses());
  }

  async start(): Promise<void> {
    this.scheduler.start();
    await this.#docs.start();
  }

  async stop(): Promise<void> {
    this.#docs.stop();
    await this.scheduler.stop();
  }

  /** See `Scheduler.pauseDocJobs`. */
  pauseDocJobs(reason: string | null): void {
    this.scheduler.pauseDocJobs(reason);
  }

  // ---- POST /_replicate ------------------------------------------------------

  /** Runs (or cancels) a transient replication; `status` is the HTTP status to answer with. */
  async replicate(
    ctx: UserContext,
    body: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    if (!isRecord(body)) throw badRequest('the replication must be a JSON object');
    const admin = isServerAdmin(ctx);
    if (body['cancel'] === true && typeof body['id'] === 'string' && body['source'] === undefined) {
      const job = this.#findJob(body['id']);
      if (job === undefined) throw notFound(`replication ${body['id']} is not running`);
      return this.#cancel(ctx, job);
    }
    const spec = this.#authorize(
      ctx,
      parseReplicationSpec(body, {
        remotes: this.#remotes,
        defaults: this.#options.tuning,
        defaultUser: ctx,
      }),
      body['user_ctx'] !== undefined,
      admin,
    );
    const ids = await this.scheduler.ids(spec);
    if (body['cancel'] === true) {
      const job = this.scheduler.get(ids.jobId);
      if (job === undefined) throw notFound(`replication ${ids.jobId} is not running`);
      return this.#cancel(ctx, job);
    }
    const job = this.scheduler.add(ids, spec, null);
    if (spec.continuous) return { status: 202, body: { ok: true, _local_id: ids.jobId } };
    const result = await job.finished();
    switch (result.status) {
      case 'completed': {
        const reply: Record<string, unknown> = {
          ok: true,
          session_id: result.sessionId,
          source_last_seq: result.sourceLastSeq,
          replication_id_version: REPLICATION_ID_VERSION,
          history: result.history,
        };
        if (result.stats.revisions_checked === 0 && result.history.length === 0) reply['no_changes'] = true;
        return { status: 200, body: reply };
      }
      case 'failed':
        throw result.error;
      case 'stopped':
        throw new DoppelError(ErrorKind.Unavailable, 'the replication was cancelled', {
          errorName: 'cancelled',
        });
    }
  }

  /** Non-admins run as themselves, on endpoints they name (registered remotes are for admins). */
  #authorize(ctx: UserContext, spec: ReplicationSpec, gaveUserCtx: boolean, admin: boolean): ReplicationSpec {
    if (admin) return spec;
    if (spec.source.kind === 'http' && spec.source.remote !== undefined)
      throw forbidden('only admins may use registered remotes');
    if (spec.target.kind === 'http' && spec.target.remote !== undefined)
      throw forbidden('only admins may use registered remotes');
    if (
      gaveUserCtx &&
      (spec.userCtx.name !== ctx.name || !spec.userCtx.roles.every((r) => ctx.roles.includes(r)))
    )
      throw forbidden('non-admins may only run replications as themselves');
    return { ...spec, userCtx: ctx };
  }

  #findJob(id: string): ScheduledJob | undefined {
    return this.scheduler.get(id) ?? this.scheduler.list().find((j) => j.ids.baseId === id);
  }

  #cancel(ctx: UserContext, job: ScheduledJob): { status: number; body: Record<string, unknown> } {
    if (!isServerAdmin(ctx) && job.spec.userCtx.name !== ctx.name)
      throw forbidden('only admins and the replication owner may cancel it');
    if (job.origin !== null)
      throw forbidden(
        `replication ${job.id} belongs to ${job.origin.database}/${job.origin.docId}: delete that document instead`,
      );
    this.scheduler.remove(job.id);
    return { status: 200, body: { ok: true, _local_id: job.id } };
  }

  // ---- views -----------------------------------------------------------------

  /** Refreshes `changes_pending` of running jobs whose value is older than a second. */
  async #refreshPending(jobs: readonly ScheduledJob[]): Promise<void> {
    const now = Date.now();
    await Promise.all(
      jobs.map(async (job) => {
        const run = job.run;
        if (run === null || now - job.pendingCheckedAt < PENDING_MAX_AGE_MS) return;
        job.pendingCheckedAt = now;
        const pending = await Promise.race([
          run.replication.refreshPending(),
          new Promise<null>((r) => setTimeout(() => r(null), 2000).unref()),
        ]);
        if (pending === 0) job.inSyncAt = Date.now();
      }),
    );
  }

  #info(job: ScheduledJob): Record<string, unknown> | null {
    const s = job.currentStats();
    if (s === null) return null;
    return {
      revisions_checked: s.revisions_checked,
      missing_revisions_found: s.missing_revisions_found,
      docs_read: s.docs_read,
      docs_written: s.docs_written,
      changes_pending: s.changes_pending,
      doc_write_failures: s.doc_write_failures,
      bulk_get_docs: s.docs_read,
      bulk_get_attempts: s.missing_revisions_found,
      checkpointed_source_seq: s.checkpointed_source_seq,
      source_seq: s.source_seq,
      through_seq: s.through_seq,
    };
  }

  #pid(job: ScheduledJob): string | null {
    return job.run === null ? null : `<doppel.${job.run.startedAt}>`;
  }

  #jobRow(job: ScheduledJob): Record<string, unknown> {
    return {
      database: job.origin?.database ?? null,
      doc_id: job.origin?.docId ?? null,
      history: job.history,
      id: job.id,
      info: this.#info(job),
      node: this.#options.nodeName,
      pid: this.#pid(job),
      source: redactedEndpoint(job.spec.source),
      start_time: isoSeconds(job.addedAt),
      target: redactedEndpoint(job.spec.target),
      user: job.spec.userCtx.name,
    };
  }

  async schedulerJobs(
    skip: number,
    limit: number,
  ): Promise<{ total_rows: number; offset: number; jobs: unknown[] }> {
    const all = this.scheduler.list();
    const page = all.slice(skip, skip + limit);
    await this.#refreshPending(page);
    return { total_rows: all.length, offset: skip, jobs: page.map((j) => this.#jobRow(j)) };
  }

  async schedulerJob(id: string): Promise<Record<string, unknown>> {
    const job = this.scheduler.get(id);
    if (job === undefined) throw notFound('unknown replication job');
    await this.#refreshPending([job]);
    return this.#jobRow(job);
  }

  #docState(rec: ReplicatorDoc): { state: string; job: ScheduledJob | undefined } {
    if (rec.state !== 'scheduled' || rec.jobId === null) return { state: rec.state, job: undefined };
    const job = this.scheduler.get(rec.jobId);
    return { state: job?.state ?? 'pending', job };
  }

  #docRow(rec: ReplicatorDoc): Record<string, unknown> {
    const { state, job } = this.#docState(rec);
    let info: Record<string, unknown> | null = null;
    if (state === 'crashing') info = { error: job?.lastError ?? rec.reason };
    else if (state === 'error' || state === 'failed') info = { error: rec.reason };
    else if (state === 'completed') info = rec.stats;
    else if (state === 'pending' && this.scheduler.docJobsPausedBecause !== null)
      info = { error: this.scheduler.docJobsPausedBecause };
    else if (job !== undefined) info = this.#info(job);
    const spec = rec.spec;
    return {
      database: rec.database,
      doc_id: rec.docId,
      id: state === 'completed' || state === 'failed' ? null : (rec.jobId ?? null),
      node: this.#options.nodeName,
      source: spec === null ? null : redactedEndpoint(spec.source),
      target: spec === null ? null : redactedEndpoint(spec.target),
      state,
      info,
      error_count: job?.errorCount ?? rec.errorCount,
      last_updated: isoSeconds(Math.max(rec.lastUpdated, job?.lastUpdated ?? 0)),
      start_time: isoSeconds(rec.startTime),
      ...(spec?.sourceProxy === undefined ? {} : { source_proxy: redactProxy(spec.sourceProxy) }),
      ...(spec?.targetProxy === undefined ? {} : { target_proxy: redactProxy(spec.targetProxy) }),
    };
  }

  async schedulerDocs(
    database: string | null,
    states: readonly string[],
    skip: number,
    limit: number,
  ): Promise<{ total_rows: number; offset: number; docs: unknown[] }> {
    const all = this.#docs
      .list()
      .filter((r) => database === null || r.database === database)
      .filter((r) => states.length === 0 || states.includes(this.#docState(r).state));
    const page = all.slice(skip, skip + limit);
    await this.#refreshPending(page.map((r) => this.#docState(r).job).filter((j) => j !== undefined));
    return { total_rows: all.length, offset: skip, docs: page.map((r) => this.#docRow(r)) };
  }

  async schedulerDoc(database: string, docId: string): Promise<Record<string, unknown>> {
    const rec = this.#docs.get(database, docId);
    if (rec === undefined) throw notFound('unknown replication document');
    const job = this.#docState(rec).job;
    if (job !== undefined) await this.#refreshPending([job]);
    return this.#docRow(rec);
  }

  async activeTasks(): Promise<Record<string, unknown>[]> {
    const running = this.scheduler.list().filter((j) => j.run !== null);
    await this.#refreshPending(running);
    return running.map((job) => {
      const s = job.currentStats();
      return {
        node: this.#options.nodeName,
        pid: this.#pid(job),
        process_status: 'waiting',
        type: 'replication',
        user: job.spec.userCtx.name,
        replication_id: job.id,
        database: job.origin?.database ?? null,
        doc_id: job.origin?.docId ?? null,
        source: redactedEndpoint(job.spec.source),
        target: redactedEndpoint(job.spec.target),
        continuous: job.spec.continuous,
        checkpoint_interval: job.spec.tuning.checkpointInterval,
        ...this.#info(job),
        started_on: s?.started_on ?? Math.floor(job.lastStartedAt / 1000),
        updated_on: s?.updated_on ?? Math.floor(job.lastUpdated / 1000),
      };
    });
  }

  /** The replicator's rows of `/_doppel/replications`: every job, and documents without one. */
  async statuses(): Promise<ReplicationStatus[]> {
    const jobs = this.scheduler.list();
    await this.#refreshPending(jobs);
    const now = Date.now();
    const out: ReplicationStatus[] = jobs.map((job) => {
      const s = job.currentStats();
      const pending = s?.changes_pending ?? null;
      return {
        kind: 'replicator',
        id: job.id,
        state: job.state,
        source: redactedEndpoint(job.spec.source),
        target: redactedEndpoint(job.spec.target),
        last_error: job.lastError,
        counters: {
          revisions_checked: s?.revisions_checked ?? 0,
          docs_read: s?.docs_read ?? 0,
          docs_written: s?.docs_written ?? 0,
          doc_write_failures: s?.doc_write_failures ?? 0,
          error_count: job.errorCount,
        },
        lag: {
          records: pending,
          seconds: pending === 0 ? 0 : job.inSyncAt === null ? null : Math.round((now - job.inSyncAt) / 1000),
        },
        updated_at: new Date(Math.max(job.lastUpdated, (s?.updated_on ?? 0) * 1000)).toISOString(),
        details: {
          continuous: job.spec.continuous,
          database: job.origin?.database ?? null,
          doc_id: job.origin?.docId ?? null,
          user: job.spec.userCtx.name,
          history: job.history.slice(0, 5),
        },
      };
    });
    for (const rec of this.#docs.list()) {
      if (rec.state === 'scheduled') continue;
      out.push({
        kind: 'replicator',
        id: `${rec.database}/${rec.docId}`,
        state: rec.state,
        source: rec.spec === null ? '' : redactedEndpoint(rec.spec.source),
        target: rec.spec === null ? '' : redactedEndpoint(rec.spec.target),
        last_error: rec.state === 'completed' ? null : rec.reason,
        counters: { error_count: rec.errorCount },
        lag: { records: rec.state === 'completed' ? 0 : null, seconds: rec.state === 'completed' ? 0 : null },
        updated_at: new Date(rec.lastUpdated).toISOString(),
        details: { database: rec.database, doc_id: rec.docId },
      });
    }
    return out;
  }
}

function redactProxy(proxy: string): string {
  const url = new URL(proxy);
  if (url.password !== '') url.password = '*****';
  return url.toString();
}
