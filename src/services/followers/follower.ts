/**
 * One follower database and its supervisor: one continuous replication run
 * (leader over HTTP → follower database) at a time, restarted with backoff
 * after a transient failure, watched by a timer that checks the leader
 * (deleted? history gone?) every poll interval. A follower's failure is its
 * own: nothing here touches another follower.
 *
 * Before every run the follower checks that the leader still holds the
 * history it continues from: the leader database exists, its seq is not
 * below what the follower already has, and the replication checkpoint the
 * follower holds is known to the leader. A leader deleted and recreated
 * fails every one of these; the follower then says so and waits for
 * `force_resume`, instead of merging an unrelated database into itself.
 */
import type { Logger } from 'pino';
import {
  findStartSeq,
  parseCheckpoint,
  ReplicationJob,
  type ReplicationStats,
} from '../../engines/replication/replication-job.js';
import { asDoppelError, DoppelError, ErrorKind } from '../../errors.js';
import { copyFrames } from '../docs/database-copy-wire.js';
import { restoreCopy } from '../../engines/replication/copy-restore.js';
import type { DocumentService } from '../docs/document-service.js';
import type { Remote } from '../remotes/remote-registry.js';
import { HttpEndpoint } from '../replicator/http-endpoint.js';
import { abortableSleep } from './abortable-sleep.js';
import { seqNumber, type BootstrapTarget, type FollowerRecord } from './follower-record.js';
import { applyOverrides, type FollowerTuning } from './follower-settings.js';
import { FollowerTarget } from './follower-target.js';
import type { LeaderClient, LeaderDbInfo } from './leader-client.js';
import { FOLLOWER_HEADER } from './leader-stats.js';

/** What a follower needs from its service. */
export interface FollowerHost {
  readonly docs: DocumentService;
  readonly nodeId: string;
  readonly log: Logger;
  tuningDefaults(): FollowerTuning;
  readonly connection: {
    readonly httpConnections: number;
    readonly connectionTimeoutMs: number;
    readonly retriesPerRequest: number;
    readonly heartbeatMs: number;
    readonly checkpointIntervalMs: number;
  };
  /** The remote and a control-plane client for it; throws not_found when the remote is gone. */
  leader(alias: string): { remote: Remote; client: LeaderClient };
  persist(record: FollowerRecord): Promise<void>;
  /** The leader database is gone: the service pauses the follower, or stops and deletes it. */
  leaderDeleted(follower: Follower): Promise<void>;
  /** Why no follower may run now (this node is a read-only replica), or null. */
  held(): string | null;
}

/** `status` values of `_status`, as OpenSearch spells them. */
export type FollowerStatusValue = 'BOOTSTRAPPING' | 'SYNCING' | 'PAUSED' | 'FAILED' | 'STOPPED';

/** One consistent reading of a follower: `_status`, the stats and the status board all render it. */
export interface FollowerSnapshot {
  readonly record: FollowerRecord;
  readonly status: FollowerStatusValue;
  readonly reason: string;
  readonly leaderCheckpoint: number;
  readonly followerCheckpoint: number;
  /** The follower database's own update seq. */
  readonly followerSeq: number;
  readonly followerDocs: number;
  readonly followerBytes: number;
  /** Set while a transient failure is being retried. */
  readonly lastError: string | null;
  readonly retrying: boolean;
  readonly operationsRead: number;
  readonly operationsWritten: number;
  readonly failedReadRequests: number;
  readonly failedWriteRequests: number;
  readonly totalWriteTimeMs: number;
  /** Epoch ms since when the follower has been behind the leader; null when in sync. */
  readonly behindSince: number | null;
  readonly updatedAt: number;
}

const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 60_000;
/** A run that lasted this long resets the backoff. */
const HEALTHY_RUN_MS = 30_000;
/** How long pause waits for the run's final checkpoint before cutting the leader connection. */
const PAUSE_GRACE_MS = 5_000;

type Interrupt =
  | { readonly kind: 'halt' }
  | { readonly kind: 'restart' }
  | { readonly kind: 'leader_deleted' }
  | { readonly kind: 'history_lost'; readonly reason: string };

/** A bootstrap starting now, ending once the follower has the leader's `seq`. */
function bootstrapTarget(seq: number, docsTotal: number, bytesTotal: number): BootstrapTarget {
  return { startTime: Date.now(), targetSeq: seq, docsTotal, bytesTotal };
}

export function readOnlyReason(
  record: Pick<FollowerRecord, 'follower' | 'leaderAlias' | 'leaderIndex'>,
): string {
  return (
    `${followerMark(record.follower)}"${record.leaderIndex}" on remote ` +
    `"${record.leaderAlias}" (cross-cluster replication). Stop the replication first: ` +
    `POST /_plugins/_replication/${record.follower}/_stop`
  );
}

function followerMark(db: string): string {
  return `Database "${db}" is a read-only follower of `;
}

/** Whether a database's read-only reason is the one `readOnlyReason` gives a follower. */
export function isFollowerReadOnly(db: string, reason: string | undefined): boolean {
  return reason?.startsWith(followerMark(db)) === true;
}

export class Follower {
  readonly #host: FollowerHost;
  #record: FollowerRecord;
  /** The loop of runs; undefined when not running. */
  #loop: Promise<void> | undefined;
  /** Ends the loop (and with `#hard`, every open leader request). */
  #loopAbort: AbortController | undefined;
  #hard: AbortController | undefined;
  #runAbort: AbortController | undefined;
  #interrupt: Interrupt | undefined;
  #job: ReplicationJob | null = null;
  #target: FollowerTarget | null = null;
  #leaderSeq = 0;
  #lastError: string | null = null;
  #retrying = false;
  #behindSince: number | null = null;
  #updatedAt = Date.now();
  /** Counters of finished runs (the current run's are added on top). */
  #done = { read: 0, written: 0, failedReads: 0, failedWrites: 0, writeMs: 0 };
  #lastPersistedCheckpoint: number;
  #watching = false;

  constructor(host: FollowerHost, record: FollowerRecord) {
    this.#host = host;
    this.#record = record;
    this.#lastPersistedCheckpoint = record.followerCheckpoint;
    this.#leaderSeq = record.followerCheckpoint;
  }

  get name(): string {
    return this.#record.follower;
  }

  get record(): FollowerRecord {
    return this.#record;
  }

  get tuning(): FollowerTuning {
    return applyOverrides(this.#host.tuningDefaults(), this.#record.overrides);
  }

  async update(change: Partial<Omit<FollowerRecord, 'follower' | 'createdAt'>>): Promise<void> {
    this.#record = { ...this.#record, ...change, updatedAt: new Date().toISOString() };
    this.#updatedAt = Date.now();
    await this.#host.persist(this.#record);
  }

  /** Starts the loop of runs if the follower is meant to run and is not running yet. */
  start(): void {
    if (this.#record.state !== 'running' || this.#loop !== undefined || this.#host.held() !== null) return;
    const loopAbort = new AbortController();
    const hard = new AbortController();
    this.#loopAbort = loopAbort;
    this.#hard = hard;
    this.#interrupt = undefined;
    this.#loop = this.#runLoop(loopAbort.signal, hard.signal)
      .catch((err: unknown) => {
        this.#host.log.error({ err, follower: this.name }, 'follower loop failed');
      })
      .finally(() => {
        this.#loop = undefined;
        this.#job = null;
      });
  }

  /**
   * Ends the current run. The run's final checkpoint gets `graceMs`; after
   * that the leader connection is cut (its last position is the previous
   * checkpoint, which replays a few changes idempotently).
   */
  async halt(graceMs = PAUSE_GRACE_MS): Promise<void> {
    const loop = this.#loop;
    if (loop === undefined) return;
    this.#interrupt = { kind: 'halt' };
    this.#loopAbort?.abort();
    this.#runAbort?.abort();
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), graceMs);
    });
    const outcome = await Promise.race([loop.then(() => 'done' as const), graceOver]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      this.#hard?.abort();
      await loop;
    }
  }

  /** Ends the run at once, without waiting for it (stop must not depend on the leader). */
  abandon(): void {
    this.#interrupt = { kind: 'halt' };
    this.#loopAbort?.abort();
    this.#runAbort?.abort();
    this.#hard?.abort();
  }

  /** Restarts the current run so new settings apply; the position is kept by the checkpoint. */
  restart(): void {
    if (this.#loop === undefined) return;
    this.#interrupt = { kind: 'restart' };
    this.#runAbort?.abort();
  }

  async #runLoop(loopSignal: AbortSignal, hardSignal: AbortSignal): Promise<void> {
    let delay = FIRST_RETRY_MS;
    while (!loopSignal.aborted && this.#record.state === 'running') {
      const runAbort = new AbortController();
      this.#runAbort = runAbort;
      this.#interrupt = undefined;
      const began = Date.now();
      let failure: DoppelError | undefined;
      try {
        failure = await this.#runOnce(runAbort.signal, hardSignal);
      } catch (err) {
        failure = asDoppelError(err);
      }
      this.#collect();
      const interrupt = this.#interrupt as Interrupt | undefined;
      if (loopSignal.aborted || interrupt?.kind === 'halt') return;
      if (interrupt?.kind === 'leader_deleted') {
        await this.#host.leaderDeleted(this);
        return;
      }
      if (interrupt?.kind === 'history_lost') {
        await this.#historyLost(interrupt.reason);
        return;
      }
      if (interrupt?.kind === 'restart') {
        delay = FIRST_RETRY_MS;
        continue;
      }
      if (failure === undefined) continue;
      if (failure.kind === ErrorKind.NotFound) {
        // Most often the leader database went away under the feed.
        try {
          const { client } = this.#host.leader(this.#record.leaderAlias);
          if ((await client.dbInfo(this.#record.leaderIndex)) === null) {
            await this.#host.leaderDeleted(this);
            return;
          }
        } catch {
          // unknown: treat as transient below
        }
      }
      const transient =
        failure.kind === ErrorKind.Unavailable ||
        failure.kind === ErrorKind.Internal ||
        failure.kind === ErrorKind.Conflict ||
        failure.kind === ErrorKind.NotFound;
      if (!transient) {
        // As OpenSearch: a leader refusing us (401/403/400) pauses this follower, and only it.
        await this.update({ state: 'paused', reason: `AutoPaused: ${failure.reason}` });
        this.#lastError = failure.reason;
        return;
      }
      if (Date.now() - began > HEALTHY_RUN_MS) delay = FIRST_RETRY_MS;
      this.#lastError = failure.reason;
      this.#retrying = true;
      this.#done.failedReads++;
      this.#host.log.warn(
        { follower: this.name, err: failure.reason, retry_ms: delay },
        'follower run failed; retrying',
      );
      await abortableSleep(delay, loopSignal);
      delay = Math.min(delay * 2, MAX_RETRY_MS);
    }
  }

  /** One run: checks, then the continuous replication until it ends; returns its failure, if any. */
  async #runOnce(signal: AbortSignal, hardSignal: AbortSignal): Promise<DoppelError | undefined> {
    const record = this.#record;
    if (!this.#host.docs.store.exists(record.follower)) {
      // Only a full sync from a primary node removes it (a follower refuses its own deletion).
      this.#interrupt = {
        kind: 'history_lost',
        reason:
          `The follower database "${record.follower}" no longer exists on this node. ` +
          'Use force_resume=true to bootstrap it again.',
      };
      return undefined;
    }
    const { remote, client } = this.#host.leader(record.leaderAlias);
    const info = await client.dbInfo(record.leaderIndex, hardSignal);
    if (info === null) {
      this.#interrupt = { kind: 'leader_deleted' };
      return undefined;
    }
    const gone = this.#historyGoneBelow(info);
    if (gone !== null) {
      this.#interrupt = { kind: 'history_lost', reason: gone };
      return undefined;
    }
    if (record.useRoles !== undefined)
      await checkLeaderRole(client, record.leaderIndex, record.useRoles.leader_cluster_role);
    const tuning = this.tuning;
    const c = this.#host.connection;
    // Lets the leader count what its followers read (leader_stats).
    const followerHeader = { [FOLLOWER_HEADER]: `${this.#host.nodeId}/${record.follower}` };
    const source = new HttpEndpoint(
      {
        url: `${remote.url}/${encodeURIComponent(record.leaderIndex)}`,
        headers: followerHeader,
        ...(remote.username !== undefined
          ? { auth: { basic: { username: remote.username, password: remote.password ?? '' } } }
          : remote.token !== undefined
            ? { auth: { bearer: remote.token } }
            : {}),
      },
      {
        httpConnections: c.httpConnections,
        connectionTimeout: c.connectionTimeoutMs,
        retriesPerRequest: c.retriesPerRequest,
        signal: hardSignal,
      },
    );
    const target = new FollowerTarget(this.#host.docs, record.follower);
    try {
      if (this.#copyPending()) await this.#bootstrapByCopy(client, info, followerHeader, hardSignal, signal);
      const copy = this.#record.bootstrap?.copy;
      const job = new ReplicationJob(source, target, {
        ...(copy?.done === true ? { startWithoutCheckpoint: copy.seq } : {}),
        continuous: true,
        workerBatchSize: tuning.opsBatchSize,
        workerProcesses: tuning.concurrency,
        checkpointInterval: c.checkpointIntervalMs,
        heartbeatMs: c.heartbeatMs,
      });
      const lost = await this.#checkpointsDisagree(job, source, target);
      if (lost !== null) {
        this.#interrupt = { kind: 'history_lost', reason: lost };
        return undefined;
      }
      if (!this.#record.bootstrapped && this.#record.bootstrap === null) {
        await this.update({
          bootstrap: bootstrapTarget(info.update_seq, info.doc_count + info.doc_del_count, info.active_bytes),
        });
      }
      this.#leaderSeq = Math.max(this.#leaderSeq, info.update_seq);
      this.#job = job;
      this.#target = target;
      const monitor = setInterval(() => {
        void this.#watchLeader(client, hardSignal);
      }, tuning.pollIntervalMs);
      monitor.unref();
      try {
        const result = await job.run(signal);
        if (result.status === 'failed') return result.error;
        if (result.status === 'completed')
          return new DoppelError(ErrorKind.Unavailable, 'the continuous feed ended');
        this.#retrying = false;
        return undefined;
      } finally {
        clearInterval(monitor);
        await this.#bookkeeping();
      }
    } finally {
      await source.close();
    }
  }

  /** A bootstrap not begun yet, or an interrupted copy: copy the leader database (when it can). */
  #copyPending(): boolean {
    const r = this.#record;
    return !r.bootstrapped && (r.bootstrap === null || r.bootstrap.copy?.done === false);
  }

  /**
   * Bootstraps by copying the leader database whole (`_doppel_copy`, one
   * snapshot in id order), the way OpenSearch restores a leader's segments,
   * rather than replicating it change by change. The copy's seq is persisted
   * before any document is written; an interrupted copy continues after the
   * follower's last document (its batches commit in id order), and the
   * replication then starts from the first copy's seq, so every change after it
   * arrives (again, harmlessly, for documents a later copy already had).
   * Leaves the record as it was when the leader cannot copy.
   */
  async #bootstrapByCopy(
    client: LeaderClient,
    info: LeaderDbInfo,
    header: Readonly<Record<string, string>>,
    hardSignal: AbortSignal,
    signal: AbortSignal,
  ): Promise<void> {
    const name = this.#record.follower;
    const docs = this.#host.docs;
    const resuming = this.#record.bootstrap?.copy !== undefined;
    const body = await client.copy(
      this.#record.leaderIndex,
      resuming ? docs.store.lastDocId(name) : undefined,
      header,
      // Once per bootstrap: what `any` keeps referenced from the follower's signal stays small.
      // eslint-disable-next-line no-restricted-properties
      AbortSignal.any([hardSignal, signal]),
    );
    if (body === null) {
      this.#host.log.info(
        { follower: name },
        'the leader cannot copy its database; bootstrapping by replication',
      );
      return;
    }
    const outcome = await restoreCopy(
      copyFrames(body),
      {
        header: async (h) => {
          if (resuming) return;
          await this.update({
            bootstrap: {
              ...bootstrapTarget(h.seq, h.doc_count + h.doc_del_count, info.active_bytes),
              copy: { seq: h.seq, done: false },
            },
          });
        },
        write: async (batch, attachments, guard) => {
          this.#done.read += batch.length;
          const began = performance.now();
          const results = await docs.restoreAsFollowerReplication(name, batch, attachments, guard);
          this.#done.writeMs += Math.round(performance.now() - began);
          let failed = 0;
          for (const r of results) if (!r.ok) failed++;
          if (failed > 0) this.#host.log.warn({ follower: name, failed }, 'copied revisions refused');
          return { written: results.length - failed, failed };
        },
        committed: (_lastId, result) => {
          this.#done.written += result.written;
          this.#done.failedWrites += result.failed;
        },
      },
      `copying ${this.#record.leaderIndex} from the leader`,
    );
    const bootstrap = this.#record.bootstrap;
    if (bootstrap?.copy === undefined) throw new Error('a copy without its header');
    const seq = bootstrap.copy.seq;
    if (outcome.unreadable > 0) {
      // Documents the leader could not read back by key: replication from the start brings
      // them (by the ids in its changes feed); the rest it finds already here.
      await this.update({ bootstrap: { ...bootstrap, copy: { seq: 0, done: true } } });
      this.#host.log.warn(
        { follower: name, unreadable: outcome.unreadable },
        'the leader left documents out of its copy; replicating from the start to fetch them',
      );
      return;
    }
    await this.update({
      bootstrap: { ...bootstrap, copy: { seq, done: true } },
      bootstrapped: true,
      followerCheckpoint: Math.max(this.#record.followerCheckpoint, seq),
    });
    this.#lastPersistedCheckpoint = Math.max(this.#lastPersistedCheckpoint, seq);
    this.#leaderSeq = Math.max(this.#leaderSeq, seq);
    this.#host.log.info({ follower: name, docs: outcome.docs, seq }, 'follower bootstrapped by copy');
  }

  /** The leader's seq below what the follower already has: its history is gone. */
  #historyGoneBelow(info: LeaderDbInfo): string | null {
    const have = Math.max(this.#record.followerCheckpoint, seqNumber(this.#job?.stats.through_seq));
    if (info.update_seq >= have) return null;
    return (
      `The leader database "${this.#record.leaderIndex}" on remote "${this.#record.leaderAlias}" went back ` +
      `from seq ${have} to ${info.update_seq}: it was deleted and recreated, so it no longer has the ` +
      `history this follower continues from. Resume with {"force_resume": true} to bootstrap again.`
    );
  }

  async #checkpointsDisagree(
    job: ReplicationJob,
    source: HttpEndpoint,
    target: FollowerTarget,
  ): Promise<string | null> {
    const ids = await job.computeIds();
    const mine = parseCheckpoint(await target.getLocal(ids.baseId));
    if (mine === null) return null;
    const theirs = parseCheckpoint(await source.getLocal(ids.baseId));
    if (findStartSeq(theirs, mine) !== null) return null;
    return (
      `The leader database "${this.#record.leaderIndex}" on remote "${this.#record.leaderAlias}" no longer ` +
      `has the history this follower continues from (no common replication checkpoint: the leader was ` +
      `deleted and recreated, or its checkpoints were removed). Resume with {"force_resume": true} to ` +
      `bootstrap again.`
    );
  }

  /** Also the pre-flight of a plain `_resume`: null when the leader can continue this follower. */
  async verifyLeaderHistory(): Promise<string | null> {
    const { client } = this.#host.leader(this.#record.leaderAlias);
    const info = await client.dbInfo(this.#record.leaderIndex);
    if (info === null)
      return `The leader database "${this.#record.leaderIndex}" does not exist on remote "${this.#record.leaderAlias}".`;
    return this.#historyGoneBelow(info);
  }

  async #watchLeader(client: LeaderClient, hardSignal: AbortSignal): Promise<void> {
    // A slow leader must not pile checks up: one at a time.
    if (this.#watching) return;
    this.#watching = true;
    try {
      const info = await client.dbInfo(this.#record.leaderIndex, hardSignal);
      if (info === null) {
        this.#interrupt = { kind: 'leader_deleted' };
        this.#runAbort?.abort();
        return;
      }
      const gone = this.#historyGoneBelow(info);
      if (gone !== null) {
        this.#interrupt = { kind: 'history_lost', reason: gone };
        this.#runAbort?.abort();
        return;
      }
      this.#leaderSeq = Math.max(this.#leaderSeq, info.update_seq);
      await this.#bookkeeping();
    } catch {
      // The leader is unreachable: the run itself retries and reports it.
    } finally {
      this.#watching = false;
    }
  }

  /** Ends the bootstrap when the follower has reached its target, and persists the checkpoint now and then. */
  async #bookkeeping(): Promise<void> {
    const through = this.#followerCheckpoint();
    const r = this.#record;
    const change: { bootstrapped?: boolean; followerCheckpoint?: number } = {};
    if (!r.bootstrapped && r.bootstrap !== null && through >= r.bootstrap.targetSeq)
      change.bootstrapped = true;
    if (through > this.#lastPersistedCheckpoint) change.followerCheckpoint = through;
    if (change.bootstrapped === undefined && change.followerCheckpoint === undefined) return;
    this.#lastPersistedCheckpoint = Math.max(this.#lastPersistedCheckpoint, through);
    if (this.#record.state !== 'running') return;
    try {
      await this.update(change);
    } catch (err) {
      this.#host.log.warn({ err, follower: this.name }, 'could not persist follower progress');
    }
  }

  async #historyLost(reason: string): Promise<void> {
    this.#lastError = reason;
    await this.update({ state: 'failed', reason, historyLost: true });
    this.#host.log.warn({ follower: this.name, reason }, 'follower failed');
  }

  /** Adds a finished run's counters to the totals. */
  #collect(): void {
    const job = this.#job;
    if (job !== null) {
      const s = job.stats;
      this.#done.read += s.docs_read;
      this.#done.written += s.docs_written;
      this.#done.failedWrites += s.doc_write_failures;
      this.#leaderSeq = Math.max(this.#leaderSeq, seqNumber(s.source_seq));
      this.#record = {
        ...this.#record,
        followerCheckpoint: Math.max(this.#record.followerCheckpoint, seqNumber(s.through_seq)),
      };
    }
    if (this.#target !== null) this.#done.writeMs += this.#target.writeTimeMs;
    this.#job = null;
    this.#target = null;
  }

  #followerCheckpoint(): number {
    const live = this.#job?.stats;
    return Math.max(this.#record.followerCheckpoint, seqNumber(live?.through_seq));
  }

  /** Resets what a fresh bootstrap starts from (counters stay: they are this process's totals). */
  resetForBootstrap(): void {
    this.#leaderSeq = 0;
    this.#lastPersistedCheckpoint = 0;
    this.#behindSince = null;
    this.#lastError = null;
    this.#retrying = false;
  }

  clearError(): void {
    this.#lastError = null;
    this.#retrying = false;
  }

  snapshot(): FollowerSnapshot {
    const r = this.#record;
    const live: Readonly<ReplicationStats> | undefined = this.#job?.stats;
    const followerCheckpoint = this.#followerCheckpoint();
    const leaderCheckpoint = Math.max(this.#leaderSeq, seqNumber(live?.source_seq), followerCheckpoint);
    let followerSeq = 0;
    let followerDocs = 0;
    let followerBytes = 0;
    try {
      const info = this.#host.docs.store.info(r.follower);
      followerSeq = info.update_seq;
      followerDocs = info.doc_count + info.doc_del_count;
      followerBytes = info.sizes.active;
    } catch {
      // deleted meanwhile
    }
    const held = r.state === 'running' ? this.#host.held() : null;
    let status: FollowerStatusValue;
    switch (held !== null ? 'paused' : r.state) {
      case 'running':
        status =
          !r.bootstrapped && (r.bootstrap === null || followerCheckpoint < r.bootstrap.targetSeq)
            ? 'BOOTSTRAPPING'
            : 'SYNCING';
        break;
      case 'paused':
        status = 'PAUSED';
        break;
      case 'failed':
        status = 'FAILED';
        break;
      case 'stopped':
        status = 'STOPPED';
        break;
    }
    const now = Date.now();
    if (leaderCheckpoint > followerCheckpoint) this.#behindSince ??= now;
    else this.#behindSince = null;
    const reason =
      held ??
      (r.state === 'running' && this.#retrying && this.#lastError !== null
        ? `Retrying after: ${this.#lastError}`
        : (r.reason ?? 'User initiated'));
    return {
      record: r,
      status,
      reason,
      leaderCheckpoint,
      followerCheckpoint,
      followerSeq,
      followerDocs,
      followerBytes,
      lastError: this.#lastError,
      retrying: r.state === 'running' && this.#retrying,
      operationsRead: this.#done.read + (live?.docs_read ?? 0),
      operationsWritten: this.#done.written + (live?.docs_written ?? 0),
      failedReadRequests: this.#done.failedReads,
      failedWriteRequests: this.#done.failedWrites + (live?.doc_write_failures ?? 0),
      totalWriteTimeMs: this.#done.writeMs + (this.#target?.writeTimeMs ?? 0),
      behindSince: this.#behindSince,
      updatedAt: Math.max(this.#updatedAt, (live?.updated_on ?? 0) * 1000),
    };
  }
}

/** `use_roles`: the leader database must admit the leader role (as member or admin, or be public). */
export async function checkLeaderRole(client: LeaderClient, db: string, role: string): Promise<void> {
  const sec = await client.security(db);
  const rolesOf = (section: unknown): string[] => {
    if (typeof section !== 'object' || section === null) return [];
    const roles = (section as { roles?: unknown }).roles;
    return Array.isArray(roles) ? roles.filter((x): x is string => typeof x === 'string') : [];
  };
  const namesOf = (section: unknown): unknown[] => {
    if (typeof section !== 'object' || section === null) return [];
    const names = (section as { names?: unknown }).names;
    return Array.isArray(names) ? names : [];
  };
  const members = sec['members'];
  const isPublic = rolesOf(members).length === 0 && namesOf(members).length === 0;
  if (isPublic || rolesOf(members).includes(role) || rolesOf(sec['admins']).includes(role)) return;
  throw new DoppelError(
    ErrorKind.Forbidden,
    `the leader role "${role}" has no read access to "${db}" on the leader (not in its _security members or admins)`,
  );
}
