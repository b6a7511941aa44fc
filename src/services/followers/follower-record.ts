/**
 * What the follower service stores (LMDB sub-databases `followers` and
 * `autofollow-rules`), so followers and rules survive restarts and crashes.
 * A follower's position is not here: it is the replication checkpoint in
 * `_local` documents on both sides, as for every replication.
 */
import type { TuningOverrides } from './follower-settings.js';

export interface UseRoles {
  readonly leader_cluster_role: string;
  readonly follower_cluster_role: string;
}

/** `running` covers bootstrapping and syncing; `stopped` is kept so `_stop` stays idempotent. */
export type FollowerState = 'running' | 'paused' | 'failed' | 'stopped';

export interface BootstrapTarget {
  /** Epoch ms. */
  readonly startTime: number;
  /** The leader's seq when the bootstrap began: reaching it ends the bootstrap. */
  readonly targetSeq: number;
  readonly docsTotal: number;
  readonly bytesTotal: number;
  /**
   * Set when the bootstrap copies the leader database (`_doppel_copy`) rather
   * than replicating it: the leader's seq at the first copy (an interrupted
   * copy continues after the follower's last document; replication then
   * starts from this seq), and whether the copy has completely arrived.
   */
  readonly copy?: { readonly seq: number; readonly done: boolean };
}

export interface FollowerRecord {
  /** The follower database (OpenSearch's follower index). */
  readonly follower: string;
  readonly leaderAlias: string;
  readonly leaderIndex: string;
  readonly useRoles?: UseRoles;
  readonly overrides: TuningOverrides;
  /** The auto-follow rule that started it, if any (informational: deleting the rule keeps it). */
  readonly rule?: string;
  readonly state: FollowerState;
  /** Why it is paused, failed or stopped; null while running as asked. */
  readonly reason: string | null;
  /** The leader can no longer serve the history this follower continues from: only force_resume helps. */
  readonly historyLost: boolean;
  readonly bootstrapped: boolean;
  readonly bootstrap: BootstrapTarget | null;
  /** Every leader change up to this seq is on the follower (a leader below it has lost history). */
  readonly followerCheckpoint: number;
  /** ISO-8601. */
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface AutoFollowRuleRecord {
  readonly leaderAlias: string;
  readonly name: string;
  readonly pattern: string;
  /** Contains `{{leader_index}}`. */
  readonly followerIndexPattern: string;
  readonly useRoles?: UseRoles;
  readonly overrides: TuningOverrides;
  /** How often the leader's databases are listed again (failed ones retried), in ms. */
  readonly pollIntervalMs: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** Doppel sequences are integers; CouchDB's are `N-opaque`. The number is what is compared. */
export function seqNumber(seq: number | string | null | undefined): number {
  if (typeof seq === 'number') return seq;
  if (typeof seq === 'string') {
    const n = Number.parseInt(seq, 10);
    return Number.isFinite(n) ? n : 0;
  }
  return 0;
}
