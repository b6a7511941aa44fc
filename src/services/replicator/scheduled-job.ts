/**
 * One replication as the scheduler keeps it: its spec and ids, where it came
 * from (a `_replicator` document or `POST /_replicate`), its state, the
 * current run, its crash streak and a bounded history (newest first).
 */
import type { ReplicationIds } from '../../engines/replication/replication-id.js';
import type {
  ReplicationJob,
  ReplicationResult,
  ReplicationStats,
} from '../../engines/replication/replication-job.js';
import type { ReplicationSpec } from './replication-spec.js';

export type JobState = 'pending' | 'running' | 'crashing' | 'completed' | 'failed';

export type HistoryType = 'added' | 'started' | 'stopped' | 'crashed';

export interface JobHistoryEntry {
  /** ISO-8601 to the second, `Z` (as CouchDB prints it). */
  readonly timestamp: string;
  readonly type: HistoryType;
  readonly reason?: string;
}

/** A `_replicator` document, or null for a transient `POST /_replicate` job. */
export type JobOrigin = { readonly database: string; readonly docId: string } | null;

export type StopReason = 'rotated' | 'cancelled' | 'stalled' | 'shutdown';

export interface JobRun {
  readonly replication: ReplicationJob;
  readonly controller: AbortController;
  readonly startedAt: number;
  stopReason: StopReason | null;
  stopDetail: string | null;
}

export function isoSeconds(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

export class ScheduledJob {
  state: JobState = 'pending';
  run: JobRun | null = null;
  /** Consecutive crashes that each came soon after the previous start. */
  crashStreak = 0;
  errorCount = 0;
  lastError: string | null = null;
  /** A crashing job may not start before this (ms). */
  notBefore = 0;
  lastStartedAt = 0;
  lastUpdated = Date.now();
  /** The newest progress counters (the running job's, or its last run's). */
  stats: Readonly<ReplicationStats> | null = null;
  /** When the job last had nothing left to copy (for lag in seconds). */
  inSyncAt: number | null = null;
  pendingCheckedAt = 0;
  /** The last result of a one-shot job, for `POST /_replicate` waiters. */
  result: ReplicationResult | null = null;
  readonly addedAt = Date.now();
  readonly #history: JobHistoryEntry[] = [];
  readonly #maxHistory: number;
  readonly #waiters: ((result: ReplicationResult) => void)[] = [];

  constructor(
    readonly ids: ReplicationIds,
    readonly spec: ReplicationSpec,
    readonly origin: JobOrigin,
    maxHistory: number,
  ) {
    this.#maxHistory = Math.max(1, maxHistory);
    this.record('added');
  }

  get id(): string {
    return this.ids.jobId;
  }

  get history(): readonly JobHistoryEntry[] {
    return this.#history;
  }

  record(type: HistoryType, reason?: string): void {
    this.#history.unshift({
      timestamp: isoSeconds(Date.now()),
      type,
      ...(reason === undefined ? {} : { reason }),
    });
    if (this.#history.length > this.#maxHistory) this.#history.length = this.#maxHistory;
    this.lastUpdated = Date.now();
  }

  /** Resolves with the job's final result (one-shot completion, a permanent failure or cancellation). */
  finished(): Promise<ReplicationResult> {
    if (this.result !== null) return Promise.resolve(this.result);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  settle(result: ReplicationResult): void {
    this.result = result;
    for (const waiter of this.#waiters.splice(0)) waiter(result);
  }

  /** The live counters while running, else the last run's. */
  currentStats(): Readonly<ReplicationStats> | null {
    return this.run?.replication.stats ?? this.stats;
  }
}
