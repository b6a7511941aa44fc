import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import pino from 'pino';
import type { Config } from '../config/config-table.js';
import { SYSTEM_DATABASES } from '../engines/docs/database-record.js';
import { upgradeDocIdTables } from '../engines/docs/doc-id-keys.js';
import { DocumentStore } from '../engines/docs/document-store.js';
import { Journal } from '../engines/journal/journal.js';
import { Keyspace } from '../engines/kv/keyspace.js';
import { recoverFromLog } from '../engines/kv/log-recovery.js';
import { buildHttpApp } from '../http/couch/app.js';
import { RespParser } from '../resp/parser.js';
import { RespServer } from '../resp/server.js';
import { AuthService } from '../services/auth/auth-service.js';
import { DocumentService } from '../services/docs/document-service.js';
import { RedisReplicaService } from '../services/redis-replica/replica-service.js';
import { FollowerService } from '../services/followers/follower-service.js';
import { LeaderStats } from '../services/followers/leader-stats.js';
import { BulkDocsParser } from '../services/docs/parse-pool.js';
import { RemoteRegistry } from '../services/remotes/remote-registry.js';
import { StatusBoard } from '../services/replications/status-board.js';
import { defaultSecurityObject } from '../services/auth/user-context.js';
import { NodeIdentity } from '../services/node-replication/node-identity.js';
import { LinkReport } from '../services/node-replication/link-report.js';
import { NodePrimary } from '../services/node-replication/primary-feeds.js';
import { NodeMetrics } from '../services/metrics/node-metrics.js';
import { BucketService } from '../services/streams/bucket-service.js';
import { PointWriter } from '../services/streams/point-writer.js';
import { StreamService } from '../services/streams/stream-service.js';
import { StreamStore } from '../services/streams/stream-store.js';
import { replicatorDocRule } from '../services/replicator/replicator-doc-rule.js';
import { ReplicatorService } from '../services/replicator/replicator-service.js';
import { Storage, STORAGE_FORMAT } from '../storage/environment.js';

export interface RunningNode {
  readonly httpUrl: string;
  stop(): Promise<void>;
}

export interface NodeHooks {
  /** A client asked the node to stop (SHUTDOWN): the process should stop it as on SIGTERM. */
  readonly onShutdownRequested?: () => void;
}

const JOURNAL_TRIM_INTERVAL_MS = 10_000;
/** An idle primary sends its replicas a heartbeat this often (they drop one silent for `repl_timeout`). */
const NODE_HEARTBEAT_MS = 1000;

function packageVersion(): string {
  const path = new URL('../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
}

/**
 * The composition root: opens storage, builds engines and services in
 * order, and opens the front doors. Nothing else wires parts together.
 */
export async function startNode(config: Config, hooks: NodeHooks = {}): Promise<RunningNode> {
  // Users' patterns ($regex, filters) run in this process: one that backtracks without end
  // would hold the event loop, so V8 switches such a match to its linear-time engine.
  setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
  const log = pino({ level: config.log_level, base: { node: undefined } });
  const storage = new Storage({
    path: config.data_dir,
    durability: config.durability,
    maxUnsyncedMs: config.max_unsynced_ms,
  });
  if (storage.foundFormat < STORAGE_FORMAT) {
    const moved = await storage.write(() => {
      // Format 4 only added tables: nothing to rewrite from 3.
      const rows = storage.foundFormat < 3 ? upgradeDocIdTables(storage) : 0;
      storage.stampFormat();
      return rows;
    });
    if (storage.foundFormat > 1 || moved > 0) {
      log.info(
        { from: storage.foundFormat, to: STORAGE_FORMAT, rekeyed_rows: moved },
        'storage format upgraded',
      );
    }
  }
  const journal = new Journal(storage, {
    maxBytes: config.journal_max_bytes,
    maxAgeMs: config.journal_max_age_s * 1000,
    backlogBytes: config.journal_backlog_bytes,
  });
  const store = new DocumentStore(storage, journal, { defaultRevsLimit: config.revs_limit });
  const parser = new BulkDocsParser({ maxDocumentBytes: config.max_document_bytes, useWorker: true });
  const docs = new DocumentService(store, parser, {
    functionTimeoutMs: config.function_timeout_ms,
    maxDocumentBytes: config.max_document_bytes,
    rules: [replicatorDocRule],
  });
  const auth = new AuthService(storage, journal, store, { sessionTimeoutS: config.session_timeout_s });
  const keyspace = new Keyspace(storage, journal, { deleteExpired: true });
  if (await keyspace.clearUnfinishedLoad()) log.info('keyspace: cleared the rows of a load cut short');
  const identity = new NodeIdentity(storage);
  await identity.persistNew();
  const headBeforeRecovery = journal.head;
  const recovered = await recoverFromLog(storage, journal, keyspace);
  if (recovered > 0) {
    log.info({ entries: recovered }, 'keyspace: replayed writes from the write-ahead log');
    // A node replica logs its primary's keyspace entries too: its copy of the journal now reaches further.
    if (identity.current.replicaLsn === headBeforeRecovery)
      await identity.update({ replicaLsn: journal.head });
  }
  storage.onFatal((err) => {
    // Acknowledged writes live only in the write-ahead log now; a restart replays them.
    log.fatal({ err }, 'storage: a commit failed after its writes were acknowledged; stopping');
    process.exit(1);
  });

  const meta = storage.structured<string, string>('node');
  let nodeId = meta.get('id');
  if (nodeId === undefined) {
    const id = randomUUID().replaceAll('-', '');
    await storage.write(() => meta.putSync('id', id));
    nodeId = id;
  }

  // A node replica's admin is its primary's (a local change would fork its journal from the primary's).
  const followsNode = identity.current.replicaLsn !== null;
  if (followsNode && process.env['DOPPEL_ADMIN_PASSWORD'] !== undefined) {
    log.info(
      "this node is a replica: the server admin is the primary's; DOPPEL_ADMIN_PASSWORD is not applied",
    );
  }
  const admin = await auth.bootstrap(
    followsNode ? undefined : process.env['DOPPEL_ADMIN_USER'],
    followsNode ? undefined : process.env['DOPPEL_ADMIN_PASSWORD'],
    log,
  );
  if (admin.generatedPassword !== undefined) {
    // Shown once, on the terminal only (never in the structured log); only its hash is stored.
    process.stderr.write(
      `\n  Doppel created the server admin "${admin.name}" with the password:\n\n    ${admin.generatedPassword}\n\n` +
        `  It is shown only this once. Set DOPPEL_ADMIN_USER / DOPPEL_ADMIN_PASSWORD to choose your own.\n\n`,
    );
  }
  await docs.ensureSystemDatabases(SYSTEM_DATABASES);
  await store.sweepDeleted();

  const remotes = new RemoteRegistry(storage);
  const board = new StatusBoard();
  const replicator = new ReplicatorService(
    docs,
    remotes,
    board,
    {
      maxJobs: config.replicator_max_jobs,
      intervalMs: config.replicator_interval_ms,
      maxChurn: config.replicator_max_churn,
      maxHistory: config.replicator_max_history,
      healthThresholdMs: config.replicator_health_threshold_s * 1000,
      crashBackoffMs: config.replicator_crash_backoff_ms,
      stallMs: config.replicator_stall_s * 1000,
      tuning: {
        workerProcesses: config.replicator_worker_processes,
        workerBatchSize: config.replicator_worker_batch_size,
        httpConnections: config.replicator_http_connections,
        connectionTimeout: config.replicator_connection_timeout_ms,
        retriesPerRequest: config.replicator_retries_per_request,
        checkpointInterval: config.replicator_checkpoint_interval_ms,
        useCheckpoints: true,
      },
      nodeName: `doppel@${nodeId}`,
    },
    log.child({ service: 'replicator' }),
  );

  const followers = new FollowerService(
    storage,
    docs,
    remotes,
    board,
    {
      nodeId,
      defaults: {
        opsBatchSize: config.follower_ops_batch_size,
        concurrency: config.follower_concurrency,
        pollIntervalMs: config.follower_poll_interval_ms,
        deleteWithLeader: config.follower_replicate_delete_index,
      },
      connection: {
        httpConnections: config.follower_http_connections,
        connectionTimeoutMs: config.follower_connection_timeout_ms,
        retriesPerRequest: config.replicator_retries_per_request,
        heartbeatMs: config.follower_heartbeat_ms,
        checkpointIntervalMs: config.follower_checkpoint_interval_ms,
      },
      autofollowPollMs: config.autofollow_poll_interval_ms,
      followerRoles: commaList(config.follower_roles),
    },
    log.child({ service: 'followers' }),
  );
  const leaderStats = new LeaderStats();

  const metrics = new NodeMetrics();
  const streams = new StreamService({
    store: new StreamStore(storage),
    journal,
    docs: store,
    remotes,
    board,
    metrics,
    log: log.child({ service: 'streams' }),
    senderOptions: {
      maxBackoffMs: config.stream_max_backoff_ms,
      purgeIntervalMs: config.stream_purge_interval_ms,
      requestTimeoutMs: config.stream_request_timeout_ms,
    },
    limits: { minMaxAgeSeconds: config.stream_min_max_age_s },
  });
  const buckets = new BucketService(store, streams, { id: nodeId.slice(0, 16), name: config.influx_org });
  const points = new PointWriter(store, streams, metrics, config.max_body_bytes);

  // Node replication: this node serves Doppel replicas from its journal, and follows a
  // primary (a Doppel node, or a real Redis whose commands run through the RESP command table).
  const nodePrimary = new NodePrimary({
    storage,
    journal,
    store,
    identity,
    log: log.child({ service: 'node-replication' }),
    heartbeatMs: NODE_HEARTBEAT_MS,
    replicaTimeoutMs: config.repl_timeout * 1000,
  });
  const redisReplica: RedisReplicaService = new RedisReplicaService({
    node: {
      storage,
      journal,
      store,
      keyspace,
      auth,
      identity,
      log: log.child({ service: 'node-replication' }),
      replayPoints: (entry, ts) => points.replay(entry, ts),
      newSecurity: defaultSecurityObject,
      spoolPath: join(config.data_dir, 'replica-sync.spool'),
      setReadOnly: (reason) => {
        store.setNodeReadOnly(reason);
        replicator.pauseDocJobs(reason ?? null);
        followers.hold(reason ?? null);
        streams.hold(reason ?? null);
      },
      onHistoryChanged: () => nodePrimary.closeAll(),
      publish: (message) => resp.publish(message),
    },
    keyspace,
    log,
    createParser: () => new RespParser(),
    createRunner: () => resp.primaryCommandRunner(),
    listeningPort: () => resp.port,
    rdbSpoolPath: join(config.data_dir, 'replica-sync.rdb'),
    replicaOf: config.replicaof,
    masterUser: config.masteruser,
    masterAuth: config.masterauth,
    timeoutMs: config.repl_timeout * 1000,
  });
  // Before any door opens: a replica refuses writes and keeps expired keys from its first request on.
  redisReplica.prepare();

  let ready = false;
  let shutdownWanted = false;
  const app = buildHttpApp({
    docs,
    auth,
    journal,
    replicator,
    followers,
    leaderStats,
    remotes,
    board,
    streams,
    buckets,
    points,
    metrics,
    log,
    nodeId,
    version: packageVersion(),
    maxBodyBytes: config.max_body_bytes,
    corsOrigins: commaList(config.cors_origins),
    corsCredentials: config.cors_credentials,
    isReady: () => ready,
  });
  await app.listen({ host: config.host, port: config.http_port });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.http_port;
  const httpUrl = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;

  const resp: RespServer = new RespServer({
    keyspace,
    verify: (name, password) => auth.verify(name, password),
    defaultUser: admin.name,
    version: packageVersion(),
    nodeId,
    dataDir: config.data_dir,
    log,
    isReadOnly: () => redisReplica.isReplica(),
    replication: redisReplica,
    nodePrimary,
    // A transaction queued behind the writes acknowledged from the log commits them all; then the sync.
    persist: async () => {
      await storage.write(() => undefined);
      await storage.sync();
    },
    requestShutdown: (by) => {
      log.info({ by }, 'shutdown requested');
      // Asked while still starting: it stops as soon as it has started.
      if (ready) shutDown();
      else shutdownWanted = true;
    },
  });
  const respPort = await resp.listen(config.host, config.resp_port);
  await redisReplica.start();
  const respAddress = `${config.host.includes(':') ? `[${config.host}]` : config.host}:${respPort}`;
  const linkReport = new LinkReport({
    primary: nodePrimary,
    replica: redisReplica,
    journal,
    self: () => respAddress,
  });
  board.register(() => Promise.resolve(linkReport.statuses()));
  metrics.setNodeLinkProvider(linkReport);
  log.info({ resp: respAddress }, 'resp listening');

  const trimTimer = setInterval(() => {
    journal.trim().catch((err: unknown) => log.error({ err }, 'journal trim failed'));
  }, JOURNAL_TRIM_INTERVAL_MS);
  trimTimer.unref();

  // After the front doors: jobs may replicate from this node's own HTTP port.
  await replicator.start();
  followers.start();
  streams.start();
  let stopping: Promise<void> | null = null;
  const running: RunningNode = {
    httpUrl,
    // Once: SHUTDOWN and a signal may both ask.
    stop: () => (stopping ??= stop()),
  };
  ready = true;
  log.info({ http: httpUrl, data_dir: join(config.data_dir), node_id: nodeId }, 'listening');
  if (shutdownWanted) setImmediate(shutDown);
  return running;

  /** SHUTDOWN: the process stops the node as on SIGTERM (without a process hook, the node stops). */
  function shutDown(): void {
    if (hooks.onShutdownRequested !== undefined) hooks.onShutdownRequested();
    else running.stop().catch((err: unknown) => log.error({ err }, 'stopping the node failed'));
  }

  async function stop(): Promise<void> {
    clearInterval(trimTimer);
    await streams.stop();
    await followers.stop();
    await replicator.stop();
    await redisReplica.stop();
    nodePrimary.closeAll();
    await resp.stop();
    await app.close();
    await parser.close();
    await storage.close();
  }
}

/** A comma-separated setting's items, trimmed, empty ones dropped. */
function commaList(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}
