/**
 * Outbound write streams (DESIGN.md "durable outbound write streams"; InfluxDB's
 * replications): their settings, their queues' accounting inside local writes, one
 * sender each, and their rows of `/_doppel/replications`. Front doors (the InfluxDB
 * `/api/v2/replications` API and `/_doppel/streams`) call this service.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { DocumentStore } from '../../engines/docs/document-store.js';
import type { Journal } from '../../engines/journal/journal.js';
import { badRequest, DoppelError, ErrorKind, notFound } from '../../errors.js';
import type { NodeMetrics } from '../metrics/node-metrics.js';
import type { RemoteRegistry } from '../remotes/remote-registry.js';
import type { ReplicationStatus, StatusBoard } from '../replications/status-board.js';
import { resolveSettings, type ConfigLimits, type StreamConfig, type StreamInput } from './stream-config.js';
import { StreamSender, streamCursorName, type SenderOptions, type SenderStatus } from './stream-sender.js';
import type { SendResult } from './stream-sink.js';
import { freshState, type QueueState, type StreamStore } from './stream-store.js';

export interface StreamView {
  readonly config: StreamConfig;
  readonly queue: QueueState;
  readonly status: SenderStatus;
}

/** Counted after the write that queued (or refused) them commits. */
export interface QueueEvent {
  readonly id: string;
  readonly queued: boolean;
  readonly bytes: number;
  readonly points: number;
}

export class StreamService {
  readonly #store: StreamStore;
  readonly #journal: Journal;
  readonly #docs: DocumentStore;
  readonly #remotes: RemoteRegistry;
  readonly #metrics: NodeMetrics;
  readonly #log: Logger;
  readonly #senderDeps: ConstructorParameters<typeof StreamSender>[1];
  readonly #limits: ConfigLimits;
  readonly #senders = new Map<string, StreamSender>();
  /** Point streams by source bucket, read inside local writes (kept in step inside the writes that change it). */
  readonly #bySource = new Map<string, StreamConfig[]>();
  #started = false;
  /** Why senders are held (this node is a read-only replica: its primary sends), or null. */
  #held: string | null = null;

  constructor(deps: {
    store: StreamStore;
    journal: Journal;
    docs: DocumentStore;
    remotes: RemoteRegistry;
    board: StatusBoard;
    metrics: NodeMetrics;
    log: Logger;
    senderOptions: SenderOptions;
    limits: ConfigLimits;
  }) {
    this.#store = deps.store;
    this.#journal = deps.journal;
    this.#docs = deps.docs;
    this.#remotes = deps.remotes;
    this.#metrics = deps.metrics;
    this.#log = deps.log;
    this.#senderDeps = {
      store: deps.store,
      journal: deps.journal,
      remotes: deps.remotes,
      metrics: deps.metrics,
      log: deps.log,
      options: deps.senderOptions,
      sourceExists: (config) => this.#sourceExists(config),
    };
    this.#limits = deps.limits;
    for (const config of this.#store.configs()) this.#index(config);
    deps.board.register(async () => this.#statusRows());
    deps.metrics.setQueueSizeProvider(() =>
      this.#store.configs().map((c) => ({ id: c.id, bytes: this.#store.state(c.id)?.queuedBytes ?? 0 })),
    );
  }

  start(): void {
    this.#started = true;
    if (this.#held === null) this.#startSenders();
  }

  #startSenders(): void {
    for (const config of this.#store.configs()) this.#senderOf(config.id).start();
  }

  /** Whether a stream's local source is still the database it was created on (same uid). */
  #sourceExists(config: StreamConfig): boolean {
    return this.#docs.exists(config.source) && this.#docs.record(config.source).uid === config.sourceUid;
  }

  async stop(): Promise<void> {
    this.#started = false;
    await this.#stopSenders();
  }

  async #stopSenders(): Promise<void> {
    const senders = [...this.#senders.values()];
    this.#senders.clear();
    await Promise.all(senders.map((s) => s.stop()));
  }

  /**
   * While this node is a read-only replica (`reason`), its streams send nothing: what
   * reaches its buckets is its primary's, and the primary's streams send it. `null` (a
   * promotion) starts them again.
   */
  hold(reason: string | null): void {
    const wasHeld = this.#held !== null;
    this.#held = reason;
    // Called on every link to a primary (a Redis one releases): only a change acts.
    if (wasHeld === (reason !== null)) return;
    if (reason !== null) {
      this.#stopSenders().catch((err: unknown) => this.#log.error({ err }, 'stopping stream senders failed'));
    } else if (this.#started) {
      this.#startSenders();
    }
  }

  #senderOf(id: string): StreamSender {
    let sender = this.#senders.get(id);
    if (sender === undefined) {
      sender = new StreamSender(id, this.#senderDeps);
      this.#senders.set(id, sender);
    }
    return sender;
  }

  #index(config: StreamConfig): void {
    this.#unindex(config.id);
    if (config.sourceKind !== 'bucket') return;
    const list = this.#bySource.get(config.source) ?? [];
    list.push(config);
    this.#bySource.set(config.source, list);
  }

  #unindex(id: string): void {
    for (const [source, list] of this.#bySource) {
      const rest = list.filter((c) => c.id !== id);
      if (rest.length === 0) this.#bySource.delete(source);
      else this.#bySource.set(source, rest);
    }
  }

  // ---- the write path -------------------------------------------------------

  /**
   * Runs inside a local write's transaction, right after its journal entry: queues the
   * entry for every stream of `bucket`. A full queue drops the entry for that stream
   * (counted), or — with `fullQueuePolicy: reject` — throws 503, refusing the write.
   */
  queueEntry(
    bucket: string,
    uid: number,
    lsn: number,
    bytes: number,
    points: number,
    events: QueueEvent[],
  ): void {
    const streams = this.#bySource.get(bucket);
    if (streams === undefined) return;
    for (const config of streams) {
      // A stream of a deleted bucket does not take the writes of a new bucket of that name.
      if (config.sourceUid !== uid) continue;
      const state = this.#store.state(config.id);
      if (state === undefined) continue;
      if (state.queuedBytes + bytes > config.maxQueueSizeBytes) {
        if (config.fullQueuePolicy === 'reject') {
          this.#metrics.streamWritesRefused.inc({ replicationID: config.id });
          throw new DoppelError(
            ErrorKind.Unavailable,
            `the queue of replication ${config.id} ("${config.name}") is full ` +
              `(${state.queuedBytes} of ${config.maxQueueSizeBytes} bytes); retry later`,
          );
        }
        this.#store.markDropped(config.id, lsn);
        this.#store.putState(config.id, {
          ...state,
          droppedFullBytes: state.droppedFullBytes + bytes,
          droppedFullPoints: state.droppedFullPoints + points,
        });
        events.push({ id: config.id, queued: false, bytes, points });
        continue;
      }
      this.#store.putState(config.id, {
        ...state,
        queuedBytes: state.queuedBytes + bytes,
        queuedPoints: state.queuedPoints + points,
        totalQueuedBytes: state.totalQueuedBytes + bytes,
        totalQueuedPoints: state.totalQueuedPoints + points,
      });
      events.push({ id: config.id, queued: true, bytes, points });
    }
  }

  /** After the write committed: the metrics of what `queueEntry` did. */
  countQueued(events: readonly QueueEvent[]): void {
    for (const event of events) {
      const labels = { replicationID: event.id };
      if (event.queued) {
        this.#metrics.totalBytesQueued.inc(labels, event.bytes);
        this.#metrics.totalPointsQueued.inc(labels, event.points);
      } else {
        this.#metrics.bytesFailedToQueue.inc(labels, event.bytes);
        this.#metrics.pointsFailedToQueue.inc(labels, event.points);
      }
    }
  }

  // ---- settings ---------------------------------------------------------------

  list(): StreamView[] {
    return this.#store.configs().map((c) => this.#view(c));
  }

  get(id: string): StreamView {
    const config = this.#store.config(id);
    if (config === undefined) throw notFound(`replication "${id}" not found`);
    return this.#view(config);
  }

  #view(config: StreamConfig): StreamView {
    return {
      config,
      queue: this.#store.state(config.id) ?? freshState(0),
      status: this.#senders.get(config.id)?.status ?? {
        state: this.#held === null ? 'stopped' : 'paused',
        latestResponseCode: null,
        latestErrorMessage: this.#held,
        credentialRejected: false,
        attempts: 0,
        nextAttemptAt: null,
        oldestQueuedTs: null,
        updatedAt: Date.now(),
      },
    };
  }

  #resolve(input: StreamInput, base: StreamConfig | undefined): StreamConfig {
    const settings = resolveSettings(input, base, this.#limits);
    const remote = this.#remotes.get(settings.remote);
    if (remote === undefined) throw notFound(`remote "${settings.remote}" not found`);
    if (remote.kind === 'redis') throw badRequest('a stream cannot write to a redis remote');
    if (!this.#docs.exists(settings.source)) throw notFound(`local bucket "${settings.source}" not found`);
    if (base !== undefined && base.source === settings.source && !this.#sourceExists(base))
      throw notFound(`local bucket "${settings.source}" not found`);
    const record = this.#docs.record(settings.source);
    const sourceKind = record.kind === 'bucket' ? 'bucket' : 'database';
    if (sourceKind === 'bucket' && settings.sink === 'bulk_docs')
      throw badRequest('a bucket streams line protocol: its sink is influxdb2, influxdb1 or auto');
    if (sourceKind === 'database' && (settings.sink === 'influxdb1' || settings.sink === 'influxdb2'))
      throw badRequest('a document database streams documents: its sink is bulk_docs or auto');
    if (sourceKind === 'database' && remote.kind === 'influxdb')
      throw badRequest('a document database streams to a doppel or couchdb remote');
    const now = new Date().toISOString();
    return {
      ...settings,
      id: base?.id ?? randomBytes(8).toString('hex'),
      sourceUid: record.uid,
      sourceKind,
      createdAt: base?.createdAt ?? now,
      updatedAt: now,
    };
  }

  /** Creates a stream (from the next local write on, as InfluxDB); `validateOnly` writes nothing. */
  async create(input: StreamInput, validateOnly: boolean): Promise<StreamView | null> {
    const config = this.#resolve(input, undefined);
    if (validateOnly) {
      await this.#requireValid(config);
      return null;
    }
    await this.#store.storage.write(() => {
      this.#store.putConfig(config);
      // The journal's committed head: every later write is queued by `queueEntry`.
      this.#store.putState(config.id, freshState(this.#journal.head));
      this.#index(config);
    });
    await this.#journal.setCursor(streamCursorName(config.id), this.#journal.head);
    if (this.#started && this.#held === null) this.#senderOf(config.id).start();
    return this.#view(config);
  }

  async update(id: string, input: StreamInput, validateOnly: boolean): Promise<StreamView | null> {
    const base = this.#store.config(id);
    if (base === undefined) throw notFound(`replication "${id}" not found`);
    if (input.source !== undefined && input.source !== base.source)
      throw badRequest('the local bucket of a replication cannot change');
    const config = this.#resolve(input, base);
    if (validateOnly) {
      await this.#requireValid(config);
      return null;
    }
    await this.#store.storage.write(() => {
      this.#store.putConfig(config);
      this.#index(config);
    });
    this.#senders.get(id)?.poke();
    return this.#view(config);
  }

  async delete(id: string): Promise<void> {
    if (this.#store.config(id) === undefined) throw notFound(`replication "${id}" not found`);
    const sender = this.#senders.get(id);
    this.#senders.delete(id);
    await sender?.stop();
    await this.#store.storage.write(() => {
      this.#store.remove(id);
      this.#unindex(id);
    });
    await this.#journal.dropCursor(streamCursorName(id));
  }

  /** Deleting a bucket deletes its replications (as InfluxDB). */
  async deleteForSource(source: string): Promise<void> {
    for (const config of this.#store.configs()) if (config.source === source) await this.delete(config.id);
  }

  /** `POST …/validate`: an empty write to the remote; only its success code passes. */
  async validate(id: string): Promise<void> {
    const config = this.#store.config(id);
    if (config === undefined) throw notFound(`replication "${id}" not found`);
    await this.#requireValid(config);
  }

  async #requireValid(config: StreamConfig): Promise<void> {
    const sender = this.#senders.get(config.id) ?? this.#probe();
    let result: SendResult;
    try {
      result = await sender.validate(config);
    } finally {
      if (!this.#senders.has(config.id)) await sender.stop();
    }
    if (!result.ok)
      throw badRequest(
        `remote validation failed: ${result.message ?? `HTTP ${result.code}`}${result.code === 0 ? '' : ` (status ${result.code})`}`,
      );
  }

  #probe(): StreamSender {
    return new StreamSender('validation', this.#senderDeps);
  }

  // ---- status --------------------------------------------------------------------

  async #statusRows(): Promise<ReplicationStatus[]> {
    return this.list().map(({ config, queue, status }) => {
      const remote = this.#remotes.get(config.remote);
      const target = `${remote?.url ?? `remote:${config.remote}`}/${config.remoteBucketName || config.remoteBucketID || ''}`;
      const lagRecords =
        config.sourceKind === 'bucket' ? queue.queuedPoints : Math.max(0, this.#journal.head - queue.lsn);
      return {
        kind: 'stream',
        id: config.id,
        state: status.state,
        source: config.source,
        target,
        last_error: status.latestErrorMessage,
        counters: {
          points_queued: queue.totalQueuedPoints,
          bytes_queued: queue.totalQueuedBytes,
          points_sent: queue.sentPoints,
          bytes_sent: queue.sentBytes,
          points_failed_to_queue: queue.droppedFullPoints,
          bytes_failed_to_queue: queue.droppedFullBytes,
          points_dropped: queue.droppedBadPoints,
          bytes_dropped: queue.droppedBadBytes,
          points_purged: queue.purgedPoints,
          bytes_purged: queue.purgedBytes,
          attempts: status.attempts,
        },
        lag: {
          records: lagRecords,
          seconds:
            status.oldestQueuedTs === null || lagRecords === 0
              ? 0
              : Math.max(0, (Date.now() - status.oldestQueuedTs) / 1000),
        },
        updated_at: new Date(status.updatedAt).toISOString(),
        details: {
          name: config.name,
          remote: config.remote,
          source_kind: config.sourceKind,
          sink: config.sink,
          current_queue_size_bytes: queue.queuedBytes,
          max_queue_size_bytes: config.maxQueueSizeBytes,
          max_age_seconds: config.maxAgeSeconds,
          full_queue_policy: config.fullQueuePolicy,
          drop_non_retryable_data: config.dropNonRetryableData,
          latest_response_code: status.latestResponseCode,
          credential_rejected: status.credentialRejected,
          next_attempt_at:
            status.nextAttemptAt === null ? null : new Date(status.nextAttemptAt).toISOString(),
        },
      };
    });
  }
}
