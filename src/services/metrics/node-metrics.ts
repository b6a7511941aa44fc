/**
 * The node's Prometheus metrics (`GET /metrics`): InfluxDB's `replications_queue_*`
 * family under its own names and labels (`replicationID`, and `code` on write errors),
 * so dashboards built for InfluxDB work unchanged, plus Doppel's own `doppel_*`
 * counters and the process metrics. One registry per node (never the global one), so
 * nodes in one process do not mix.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { ConnectedReplicaFigures, PrimaryLinkFigures } from '../node-replication/link-report.js';

type Labels = 'replicationID';

/** Node replication figures, read at scrape time. */
export interface NodeLinkProvider {
  replicas(): readonly ConnectedReplicaFigures[];
  link(): PrimaryLinkFigures | null;
}

/** Rows a gauge reads at scrape time. */
export type QueueSizeProvider = () => readonly { readonly id: string; readonly bytes: number }[];

export class NodeMetrics {
  readonly registry = new Registry();
  #queueSizes: QueueSizeProvider = () => [];
  #nodeLinks: NodeLinkProvider = { replicas: () => [], link: () => null };

  readonly totalPointsQueued: Counter<Labels>;
  readonly totalBytesQueued: Counter<Labels>;
  readonly currentBytesQueued: Gauge<Labels>;
  readonly remoteWriteErrors: Counter<Labels | 'code'>;
  readonly remoteWriteBytesSent: Counter<Labels>;
  readonly remoteWriteBytesDropped: Counter<Labels>;
  readonly pointsFailedToQueue: Counter<Labels>;
  readonly bytesFailedToQueue: Counter<Labels>;

  readonly pointsWritten: Counter<'bucket'>;
  readonly lineErrors: Counter<'bucket'>;
  readonly streamPointsSent: Counter<Labels>;
  readonly streamBatchesSent: Counter<Labels>;
  readonly streamPointsPurged: Counter<Labels>;
  readonly streamBytesPurged: Counter<Labels>;
  readonly streamPointsDropped: Counter<Labels>;
  readonly streamWritesRefused: Counter<Labels>;

  constructor() {
    const registers = [this.registry];
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> =>
      new Counter<L>({ name, help, labelNames, registers });
    const id = ['replicationID'] as const;
    this.totalPointsQueued = counter(
      'replications_queue_total_points_queued',
      'Points queued for replication',
      id,
    );
    this.totalBytesQueued = counter(
      'replications_queue_total_bytes_queued',
      'Bytes queued for replication',
      id,
    );
    const sizes = (): QueueSizeProvider => this.#queueSizes;
    this.currentBytesQueued = new Gauge<Labels>({
      name: 'replications_queue_current_bytes_queued',
      help: 'Bytes currently waiting in the replication queue',
      labelNames: id,
      registers,
      collect() {
        this.reset();
        for (const row of sizes()()) this.set({ replicationID: row.id }, row.bytes);
      },
    });
    this.remoteWriteErrors = counter(
      'replications_queue_remote_write_errors',
      'Errors writing to the remote',
      ['replicationID', 'code'] as const,
    );
    this.remoteWriteBytesSent = counter(
      'replications_queue_remote_write_bytes_sent',
      'Bytes sent to the remote (uncompressed)',
      id,
    );
    this.remoteWriteBytesDropped = counter(
      'replications_queue_remote_write_bytes_dropped',
      'Bytes dropped as non-retryable (HTTP 400 with dropNonRetryableData)',
      id,
    );
    this.pointsFailedToQueue = counter(
      'replications_queue_points_failed_to_queue',
      'Points not queued (full queue)',
      id,
    );
    this.bytesFailedToQueue = counter(
      'replications_queue_bytes_failed_to_queue',
      'Bytes not queued (full queue)',
      id,
    );
    this.pointsWritten = counter('doppel_points_written_total', 'Points written to buckets', [
      'bucket',
    ] as const);
    this.lineErrors = counter('doppel_line_protocol_errors_total', 'Rejected line protocol lines', [
      'bucket',
    ] as const);
    this.streamPointsSent = counter('doppel_stream_points_sent_total', 'Points a stream delivered', id);
    this.streamBatchesSent = counter('doppel_stream_batches_sent_total', 'Batches a stream delivered', id);
    this.streamPointsPurged = counter(
      'doppel_stream_points_purged_total',
      'Points purged by maxAgeSeconds (or journal retention)',
      id,
    );
    this.streamBytesPurged = counter('doppel_stream_bytes_purged_total', 'Bytes purged by maxAgeSeconds', id);
    this.streamPointsDropped = counter(
      'doppel_stream_points_dropped_total',
      'Points dropped as non-retryable',
      id,
    );
    this.streamWritesRefused = counter(
      'doppel_stream_writes_refused_total',
      'Local writes refused with 503 because a stream queue was full',
      id,
    );
    this.#registerNodeLinkGauges();
    collectDefaultMetrics({ register: this.registry, prefix: 'doppel_' });
  }

  /**
   * Gauges read from node replication at scrape time: this node's replicas
   * (as a primary) and its own link (as a replica). The link's sync counts
   * are gauges: they restart at 0 with the process.
   */
  #registerNodeLinkGauges(): void {
    const registers = [this.registry];
    const links = (): NodeLinkProvider => this.#nodeLinks;
    const replicaGauge = (
      name: string,
      help: string,
      value: (r: ConnectedReplicaFigures) => number | null,
    ): Gauge<'replica'> =>
      new Gauge<'replica'>({
        name,
        help,
        labelNames: ['replica'] as const,
        registers,
        collect() {
          this.reset();
          for (const r of links().replicas()) {
            const v = value(r);
            if (v !== null) this.set({ replica: r.replica }, v);
          }
        },
      });
    new Gauge({
      name: 'doppel_connected_replicas',
      help: 'Replicas connected to this node',
      registers,
      collect() {
        this.set(links().replicas().length);
      },
    });
    replicaGauge(
      'doppel_connected_replica_lag_records',
      'Journal entries a connected replica has not acknowledged (head LSN - acked LSN)',
      (r) => r.lagRecords,
    );
    replicaGauge(
      'doppel_connected_replica_lag_seconds',
      'Age of the oldest journal entry a connected replica has not acknowledged',
      (r) => r.lagSeconds,
    );
    replicaGauge(
      'doppel_connected_replica_last_ack_seconds',
      'Seconds since a connected replica last acknowledged',
      (r) => r.lastAckSeconds,
    );
    const linkGauge = (
      name: string,
      help: string,
      value: (l: PrimaryLinkFigures) => number | null,
    ): Gauge<'primary'> =>
      new Gauge<'primary'>({
        name,
        help,
        labelNames: ['primary'] as const,
        registers,
        collect() {
          this.reset();
          const link = links().link();
          const v = link === null ? null : value(link);
          if (link !== null && v !== null) this.set({ primary: link.primary }, v);
        },
      });
    linkGauge('doppel_replica_link_up', 'This replica is linked to its primary (1) or not (0)', (l) =>
      l.up ? 1 : 0,
    );
    linkGauge(
      'doppel_replica_lag_records',
      'Entries of a Doppel primary this replica has not applied yet',
      (l) => l.lagRecords,
    );
    linkGauge(
      'doppel_replica_lag_seconds',
      'Age of the oldest entry this replica has not applied yet',
      (l) => l.lagSeconds,
    );
    linkGauge(
      'doppel_replica_full_syncs',
      'Full syncs this replica loaded since it started',
      (l) => l.fullSyncs,
    );
    linkGauge(
      'doppel_replica_partial_syncs',
      'Partial resyncs of this replica since it started',
      (l) => l.partialSyncs,
    );
    linkGauge(
      'doppel_replica_command_errors',
      "Commands of a Redis primary's stream that failed on this replica since it started (its copy differs)",
      (l) => l.commandErrors,
    );
    linkGauge(
      'doppel_replica_full_sync_unread_keys',
      'Keys the last full sync from a Redis primary announced but did not load (0 for an exact copy)',
      (l) => l.unreadKeys,
    );
  }

  /** Where node replication figures come from (the composition root). */
  setNodeLinkProvider(provider: NodeLinkProvider): void {
    this.#nodeLinks = provider;
  }

  /** Where the current queue sizes come from (the stream service, once it runs). */
  setQueueSizeProvider(provider: QueueSizeProvider): void {
    this.#queueSizes = provider;
  }

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
