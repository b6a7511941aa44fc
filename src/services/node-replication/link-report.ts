/**
 * Node replication as the control plane reports it: a row for each replica
 * connected to this node, and one for this node's own link to its primary
 * (a Doppel node or a real Redis). `GET /_doppel/replications` lists the
 * rows; `/metrics` reads the same figures.
 */
import type { Journal } from '../../engines/journal/journal.js';
import type { PrimaryLinkStatus } from '../redis-replica/replica-contracts.js';
import { unreadKeys } from '../redis-replica/primary-link.js';
import type { RedisReplicaService } from '../redis-replica/replica-service.js';
import type { ReplicationState, ReplicationStatus } from '../replications/status-board.js';
import type { NodePrimary } from './primary-feeds.js';

export interface LinkReportDeps {
  readonly primary: NodePrimary;
  readonly replica: RedisReplicaService;
  readonly journal: Journal;
  /** This node's RESP address, `host:port`. */
  readonly self: () => string;
}

export interface ConnectedReplicaFigures {
  readonly replica: string;
  readonly online: boolean;
  /** Journal entries the replica has not acknowledged yet; null before its first ACK. */
  readonly lagRecords: number | null;
  readonly lagSeconds: number | null;
  readonly lastAckSeconds: number;
}

export interface PrimaryLinkFigures {
  readonly primary: string;
  readonly up: boolean;
  readonly lagRecords: number | null;
  readonly lagSeconds: number | null;
  readonly fullSyncs: number;
  readonly partialSyncs: number;
  /** Keys the last full sync from a Redis primary announced but did not load (null before one). */
  readonly unreadKeys: number | null;
  /** Commands of a Redis primary's stream that failed here since the node started. */
  readonly commandErrors: number;
}

export class LinkReport {
  readonly #deps: LinkReportDeps;

  constructor(deps: LinkReportDeps) {
    this.#deps = deps;
  }

  replicas(): ConnectedReplicaFigures[] {
    const { primary, journal } = this.#deps;
    // Every acknowledged write, committed or still being applied.
    const head = journal.lastAppended;
    const now = Date.now();
    return primary.replicas().map((r) => {
      const lagRecords = r.ackedLsn < 0 ? null : Math.max(0, head - r.ackedLsn);
      let lagSeconds: number | null = lagRecords === 0 ? 0 : null;
      if (lagRecords !== null && lagRecords > 0) {
        // The oldest entry the replica lacks: how long it has been waiting.
        const [oldest] = journal.read(r.ackedLsn, 1);
        if (oldest !== undefined) lagSeconds = Math.max(0, now - oldest.ts) / 1000;
      }
      return {
        replica: `${r.address}:${r.port}`,
        online: r.state === 'online',
        lagRecords,
        lagSeconds,
        lastAckSeconds: r.lastAckMs / 1000,
      };
    });
  }

  link(): PrimaryLinkFigures | null {
    const status = this.#deps.replica.status().primary;
    return status === null ? null : this.#linkFigures(status);
  }

  #linkFigures(link: PrimaryLinkStatus): PrimaryLinkFigures {
    const { replica } = this.#deps;
    const lag = replica.nodeLag();
    const { lastFullSync } = replica.counters;
    return {
      primary: `${link.host}:${link.port}`,
      up: link.state === 'connected',
      lagRecords: lag.records,
      lagSeconds: lag.seconds,
      fullSyncs: replica.counters.fullSyncs,
      partialSyncs: replica.counters.partialSyncs,
      unreadKeys: lastFullSync === null ? null : unreadKeys(lastFullSync),
      commandErrors: replica.counters.commandErrors,
    };
  }

  /** The rows of `GET /_doppel/replications`. */
  statuses(): ReplicationStatus[] {
    const updated = new Date().toISOString();
    const self = this.#deps.self();
    const rows: ReplicationStatus[] = this.replicas().map((r) => ({
      kind: 'node_link',
      id: `replica:${r.replica}`,
      state: r.online ? 'running' : 'initializing',
      source: self,
      target: r.replica,
      last_error: null,
      counters: {},
      lag: { records: r.lagRecords, seconds: r.lagSeconds },
      updated_at: updated,
      details: { role: 'primary', last_ack_seconds: r.lastAckSeconds },
    }));
    const status = this.#deps.replica.status().primary;
    if (status !== null) {
      const link = this.#linkFigures(status);
      const state: ReplicationState =
        status.state === 'connected'
          ? 'running'
          : status.state === 'sync'
            ? 'initializing'
            : status.lastError !== null
              ? 'error'
              : 'pending';
      rows.push({
        kind: 'node_link',
        id: `primary:${link.primary}`,
        state,
        source: link.primary,
        target: self,
        last_error: status.lastError,
        counters: {
          full_syncs: link.fullSyncs,
          partial_syncs: link.partialSyncs,
          command_errors: link.commandErrors,
          read_offset: status.readOffset,
          applied_offset: status.appliedOffset,
        },
        lag: { records: link.lagRecords, seconds: link.lagSeconds },
        updated_at: updated,
        details: {
          role: 'replica',
          link_state: status.state,
          last_io_seconds: status.lastIoMs === null ? null : status.lastIoMs / 1000,
          down_for_seconds: status.downForMs === null ? null : status.downForMs / 1000,
          transfer: status.transfer,
          last_full_sync: lastRdbSync(this.#deps.replica),
        },
      });
    }
    return rows;
  }
}

/** The last full sync from a Redis primary as `details.last_full_sync` shows it (null before one). */
function lastRdbSync(replica: RedisReplicaService): Record<string, number | null> | null {
  const figures = replica.counters.lastFullSync;
  if (figures === null) return null;
  return {
    keys: figures.keys,
    skipped_keys: figures.skippedKeys,
    announced_keys: figures.announcedKeys,
    rdb_bytes: figures.bytes,
    transfer_ms: figures.transferMs,
    load_ms: figures.loadMs,
  };
}
