/**
 * The replication scheduler (reference §2.3–§2.5): runs at most `maxJobs`
 * jobs, starts pending ones, rotates continuous jobs when others wait
 * (`maxChurn` per interval; one-shot jobs are never rotated out), and keeps
 * crashed jobs `crashing` for a penalty of `crashBackoffMs × 2^(streak−1)`
 * (capped at 2^10) before they run again. A crash long after the run started
 * (`healthThresholdMs`) starts a new streak.
 *
 * It never lets a job stop silently: a running job that shows no progress for
 * `stallMs` while its source still has changes is restarted, and its history
 * says why.
 */
import type { Logger } from 'pino';
import type { ReplicationIds } from '../../engines/replication/replication-id.js';
import {
  emptyReplicationStats,
  ReplicationJob,
  type ReplicationResult,
} from '../../engines/replication/replication-job.js';
import { DoppelError, ErrorKind } from '../../errors.js';
import type { JobEndpoints } from './endpoint-factory.js';
import type { ReplicationSpec } from './replication-spec.js';
import { ScheduledJob, type JobOrigin, type JobRun, type StopReason } from './scheduled-job.js';

export interface SchedulerOptions {
  readonly maxJobs: number;
  readonly intervalMs: number;
  readonly maxChurn: number;
  readonly maxHistory: number;
  readonly healthThresholdMs: number;
  readonly crashBackoffMs: number;
  /** No progress for this long while changes are pending restarts a job. */
  readonly stallMs: number;
  readonly createEndpoints: (spec: ReplicationSpec, signal: AbortSignal) => JobEndpoints;
  readonly log: Logger;
}

export type SchedulerEvent = 'started' | 'completed' | 'crashed' | 'failed' | 'removed';

/** The longest crash penalty is crashBackoffMs × 2^10 (about 8.5 h with CouchDB's 30 s). */
const MAX_PENALTY_DOUBLINGS = 10;

export class Scheduler {
  readonly #options: SchedulerOptions;
  readonly #jobs = new Map<string, ScheduledJob>();
  readonly #listeners: ((job: ScheduledJob, event: SchedulerEvent) => void)[] = [];
  #interval: NodeJS.Timeout | undefined;
  #stopping = false;
  #rescheduleQueued = false;
  /** Why jobs from `_replicator` documents may not run here now (this node is a read-only replica), or null. */
  #docJobsPaused: string | null = null;

  constructor(options: SchedulerOptions) {
    this.#options = options;
  }

  start(): void {
    this.#interval = setInterval(() => {
      this.#reschedule(true);
      void this.#checkStalls();
    }, this.#options.intervalMs);
    this.#interval.unref();
  }

  /** Stops every running job (each writes a last checkpoint) and waits for them. */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#interval !== undefined) clearInterval(this.#interval);
    const runs: Promise<unknown>[] = [];
    for (const job of this.#jobs.values()) {
      if (job.run !== null) {
        runs.push(job.finished().catch(() => undefined));
        this.#stopRun(job.run, 'shutdown', 'node stopping');
      }
    }
    await Promise.race([Promise.all(runs), new Promise((r) => setTimeout(r, 10_000).unref())]);
  }

  /**
   * On a read-only replica the `_replicator` documents are the primary's,
   * whose own scheduler runs them: here they wait (transient jobs still run).
   * `null` lets them run again (a promotion).
   */
  pauseDocJobs(reason: string | null): void {
    this.#docJobsPaused = reason;
    if (reason !== null) {
      for (const job of this.#jobs.values()) {
        if (job.origin !== null && job.run !== null) this.#stopRun(job.run, 'rotated', reason);
      }
    }
    this.#queueReschedule();
  }

  get docJobsPausedBecause(): string | null {
    return this.#docJobsPaused;
  }

  onEvent(listener: (job: ScheduledJob, event: SchedulerEvent) => void): void {
    this.#listeners.push(listener);
  }

  get(id: string): ScheduledJob | undefined {
    return this.#jobs.get(id);
  }

  /** Jobs sorted by id, as `_scheduler/jobs` lists them. */
  list(): ScheduledJob[] {
    return [...this.#jobs.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  get size(): number {
    return this.#jobs.size;
  }

  /** The replication ids of a spec (a design-document filter's code is read from the source). */
  async ids(spec: ReplicationSpec): Promise<ReplicationIds> {
    const controller = new AbortController();
    const { source, target } = this.#options.createEndpoints(spec, controller.signal);
    try {
      return await this.#replication(spec, { source, target }).computeIds();
    } finally {
      controller.abort();
      await Promise.all([source.close(), target.close()]);
    }
  }

  /** Adds a job; an existing job with the same id is returned instead (callers check its origin). */
  add(ids: ReplicationIds, spec: ReplicationSpec, origin: JobOrigin): ScheduledJob {
    const existing = this.#jobs.get(ids.jobId);
    if (existing !== undefined) return existing;
    const job = new ScheduledJob(ids, spec, origin, this.#options.maxHistory);
    this.#jobs.set(job.id, job);
    this.#queueReschedule();
    return job;
  }

  /** Cancels a job: stops its run (with a last checkpoint) and forgets it. */
  remove(id: string, reason = 'cancelled'): boolean {
    const job = this.#jobs.get(id);
    if (job === undefined) return false;
    this.#jobs.delete(id);
    if (job.run !== null) this.#stopRun(job.run, 'cancelled', reason);
    else
      job.settle({ status: 'stopped', ids: job.ids, stats: job.currentStats() ?? emptyReplicationStats() });
    this.#emit(job, 'removed');
    this.#queueReschedule();
    return true;
  }

  #emit(job: ScheduledJob, event: SchedulerEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(job, event);
      } catch (err) {
        this.#options.log.error({ err, job: job.id }, 'replication event listener failed');
      }
    }
  }

  #replication(spec: ReplicationSpec, endpoints: JobEndpoints): ReplicationJob {
    const t = spec.tuning;
    return new ReplicationJob(endpoints.source, endpoints.target, {
      continuous: spec.continuous,
      createTarget: spec.createTarget,
      filter: spec.filter,
      winningRevsOnly: spec.winningRevsOnly,
      ...(spec.sinceSeq === undefined ? {} : { sinceSeq: spec.sinceSeq }),
      workerBatchSize: t.workerBatchSize,
      workerProcesses: t.workerProcesses,
      checkpointInterval: t.checkpointInterval,
      useCheckpoints: t.useCheckpoints,
    });
  }

  #queueReschedule(): void {
    if (this.#rescheduleQueued || this.#stopping) return;
    this.#rescheduleQueued = true;
    setImmediate(() => {
      this.#rescheduleQueued = false;
      this.#reschedule(false);
    });
  }

  /**
   * One scheduling pass: enforce `maxJobs`, rotate continuous jobs when
   * `rotate` and others are waiting, then fill free slots with pending jobs
   * that are out of their crash penalty, least recently started first.
   */
  #reschedule(rotate: boolean): void {
    if (this.#stopping) return;
    const now = Date.now();
    const { maxJobs, maxChurn } = this.#options;
    const running = [...this.#jobs.values()].filter((j) => j.run !== null && j.run.stopReason === null);
    if (running.length > maxJobs) {
      // Continuous jobs go first, newest runs first; one-shot jobs only if still over.
      const victims = running
        .sort(
          (a, b) =>
            Number(b.spec.continuous) - Number(a.spec.continuous) || b.lastStartedAt - a.lastStartedAt,
        )
        .slice(0, running.length - maxJobs);
      for (const job of victims) if (job.run !== null) this.#stopRun(job.run, 'rotated', 'over max_jobs');
      return;
    }
    for (const job of this.#jobs.values())
      if (job.state === 'crashing' && job.run === null && job.notBefore <= now) job.state = 'pending';
    const paused = this.#docJobsPaused !== null;
    const waiting = [...this.#jobs.values()]
      .filter((j) => j.state === 'pending' && j.run === null && !(paused && j.origin !== null))
      .sort((a, b) => a.lastStartedAt - b.lastStartedAt || a.addedAt - b.addedAt);
    let free = maxJobs - running.length;
    if (rotate && waiting.length > 0 && free <= 0) {
      const longest = running
        .filter((j) => j.spec.continuous)
        .sort((a, b) => a.lastStartedAt - b.lastStartedAt)
        .slice(0, Math.min(maxChurn, waiting.length));
      for (const job of longest) if (job.run !== null) this.#stopRun(job.run, 'rotated', 'rotated out');
      return;
    }
    for (const job of waiting) {
      if (free <= 0) break;
      this.#startRun(job);
      free--;
    }
  }

  #startRun(job: ScheduledJob): void {
    const controller = new AbortController();
    let endpoints: JobEndpoints;
    try {
      endpoints = this.#options.createEndpoints(job.spec, controller.signal);
    } catch (err) {
      this.#crashed(job, err instanceof DoppelError ? err.reason : String(err), Date.now());
      return;
    }
    const replication = this.#replication(job.spec, endpoints);
    const run: JobRun = {
      replication,
      controller,
      startedAt: Date.now(),
      stopReason: null,
      stopDetail: null,
    };
    job.run = run;
    job.state = 'running';
    job.lastStartedAt = run.startedAt;
    job.record('started');
    this.#emit(job, 'started');
    void replication
      .run(controller.signal)
      .then(async (result) => {
        await Promise.all([endpoints.source.close(), endpoints.target.close()]).catch(() => undefined);
        this.#finished(job, run, result);
      })
      .catch((err: unknown) => {
        this.#options.log.error({ err, job: job.id }, 'replication run failed unexpectedly');
      });
  }

  #stopRun(run: JobRun, reason: StopReason, detail: string): void {
    if (run.stopReason !== null) return;
    run.stopReason = reason;
    run.stopDetail = detail;
    run.controller.abort();
  }

  #finished(job: ScheduledJob, run: JobRun, result: ReplicationResult): void {
    job.run = null;
    job.stats = result.stats;
    job.lastUpdated = Date.now();
    const removed = this.#jobs.get(job.id) !== job;
    if (run.stopReason === 'shutdown' || removed) {
      job.settle(result);
      return;
    }
    if (run.stopReason === 'rotated') {
      job.state = 'pending';
      job.record('stopped', run.stopDetail ?? undefined);
      this.#queueReschedule();
      return;
    }
    if (run.stopReason === 'stalled') {
      job.state = 'pending';
      job.record('crashed', run.stopDetail ?? 'stalled');
      job.lastError = run.stopDetail;
      this.#queueReschedule();
      return;
    }
    switch (result.status) {
      case 'completed':
        job.state = 'completed';
        job.errorCount = 0;
        job.lastError = null;
        job.inSyncAt = Date.now();
        this.#jobs.delete(job.id);
        job.settle(result);
        this.#emit(job, 'completed');
        break;
      case 'stopped':
        // A continuous feed ended without being asked to: run it again.
        job.state = 'pending';
        job.record('stopped', 'the changes feed ended');
        break;
      case 'failed':
        if (job.origin === null && !job.spec.continuous) {
          // A blocking `POST /_replicate` reports its error to the caller instead of retrying.
          job.state = 'failed';
          job.lastError = describeError(result.error);
          job.record('crashed', job.lastError);
          this.#jobs.delete(job.id);
          job.settle(result);
          this.#emit(job, 'failed');
        } else {
          this.#crashed(job, describeError(result.error), run.startedAt);
        }
        break;
    }
    this.#queueReschedule();
  }

  #crashed(job: ScheduledJob, reason: string, startedAt: number): void {
    const now = Date.now();
    job.crashStreak = now - startedAt < this.#options.healthThresholdMs ? job.crashStreak + 1 : 1;
    job.errorCount++;
    job.lastError = reason;
    job.state = 'crashing';
    const penalty = this.#options.crashBackoffMs * 2 ** Math.min(job.crashStreak - 1, MAX_PENALTY_DOUBLINGS);
    job.notBefore = now + penalty;
    job.record('crashed', reason);
    this.#options.log.warn({ job: job.id, reason, retryInMs: penalty }, 'replication crashed');
    this.#emit(job, 'crashed');
    setTimeout(() => this.#queueReschedule(), penalty + 5).unref();
  }

  /** Restarts running jobs that made no progress for `stallMs` while their source has changes. */
  async #checkStalls(): Promise<void> {
    const now = Date.now();
    const checks: Promise<void>[] = [];
    for (const job of this.#jobs.values()) {
      const run = job.run;
      if (run === null || run.stopReason !== null) continue;
      const stats = run.replication.stats;
      const idleMs = now - Math.max(stats.updated_on * 1000, run.startedAt);
      if (idleMs < this.#options.stallMs) continue;
      checks.push(
        run.replication.refreshPending().then((pending) => {
          if (pending !== null && pending > 0 && job.run === run) {
            const detail = `stalled: no progress for ${Math.round(idleMs / 1000)} s with ${pending} changes pending`;
            this.#options.log.warn({ job: job.id }, detail);
            this.#stopRun(run, 'stalled', detail);
          }
        }),
      );
    }
    await Promise.all(checks);
  }
}

/** `db_not_found: could not open …` — CouchDB's `error: reason` form for `info.error`. */
export function describeError(err: DoppelError): string {
  const name = err.errorName ?? (err.kind === ErrorKind.Unavailable ? 'unavailable' : err.kind);
  return `${name}: ${err.reason}`;
}
