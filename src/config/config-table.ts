/**
 * Every setting of a node, declared once. Flags (`--http-port`), environment
 * variables (`DOPPEL_HTTP_PORT`), the config file (`{"http_port": 5984}`) and
 * `--help` are all derived from this table by `load-config.ts`.
 */
export type SettingType = 'string' | 'integer' | 'boolean' | 'enum';

export interface Setting {
  readonly type: SettingType;
  readonly default: string | number | boolean;
  readonly description: string;
  readonly values?: readonly string[];
  /** Smallest accepted value for integers. */
  readonly min?: number;
}

export const configTable = {
  data_dir: { type: 'string', default: './data', description: 'Directory of the LMDB environment.' },
  host: {
    type: 'string',
    default: '127.0.0.1',
    description: 'Address every port binds to. Loopback unless you mean to expose the node.',
  },
  http_port: {
    type: 'integer',
    default: 5984,
    min: 0,
    description: 'HTTP (CouchDB-compatible) port; 0 picks one.',
  },
  resp_port: {
    type: 'integer',
    default: 6379,
    min: 0,
    description: 'Redis protocol (RESP2/RESP3) port; 0 picks one.',
  },
  cluster_port: {
    type: 'integer',
    default: 8201,
    min: 0,
    description: 'Cluster port, mutual TLS (reserved).',
  },
  log_level: {
    type: 'enum',
    default: 'info',
    values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    description: 'Log level.',
  },
  max_body_bytes: {
    type: 'integer',
    default: 64 * 1024 * 1024,
    min: 1024,
    description: 'Largest accepted request body, in bytes (larger ones get 413).',
  },
  max_document_bytes: {
    type: 'integer',
    default: 8 * 1024 * 1024,
    min: 1024,
    description: 'Largest accepted single document JSON, in bytes.',
  },
  revs_limit: {
    type: 'integer',
    default: 1000,
    min: 1,
    description: 'Default _revs_limit of new databases (revisions kept per branch).',
  },
  durability: {
    type: 'enum',
    default: 'flush',
    values: ['fsync', 'flush'],
    description:
      'fsync: acknowledge a write only once it is synced to disk. flush: acknowledge once committed ' +
      '(safe against a process crash); the disk sync of each commit runs in the background right after it.',
  },
  max_unsynced_ms: {
    type: 'integer',
    default: 1000,
    min: 1,
    description:
      'With durability=flush: once acknowledged writes have waited this long for their disk sync, ' +
      'new writes wait for it too, so a power loss can cost at most this much.',
  },
  journal_max_bytes: {
    type: 'integer',
    default: 1024 * 1024 * 1024,
    min: 1024 * 1024,
    description: 'Journal retention: most bytes kept, even if a consumer cursor still needs older entries.',
  },
  journal_max_age_s: {
    type: 'integer',
    default: 7 * 24 * 3600,
    min: 1,
    description: 'Journal retention: oldest entry kept, in seconds.',
  },
  journal_backlog_bytes: {
    type: 'integer',
    default: 64 * 1024 * 1024,
    min: 0,
    description:
      'Journal entries already read by every consumer are still kept up to this size (for resyncs).',
  },
  function_timeout_ms: {
    type: 'integer',
    default: 5000,
    min: 1,
    description: 'Time limit of one call into design-document JavaScript (filters).',
  },
  session_timeout_s: {
    type: 'integer',
    default: 600,
    min: 1,
    description: 'Lifetime of an AuthSession cookie, renewed while in use.',
  },
  cors_origins: {
    type: 'string',
    default: '',
    description: 'Comma-separated origins allowed by CORS ("*" for any); empty disables CORS.',
  },
  cors_credentials: {
    type: 'boolean',
    default: false,
    description: 'Whether CORS responses allow credentials.',
  },
  replicator_max_jobs: {
    type: 'integer',
    default: 500,
    min: 1,
    description: 'Replications running at once; the others wait, continuous ones take turns.',
  },
  replicator_interval_ms: {
    type: 'integer',
    default: 60_000,
    min: 100,
    description: 'How often the replication scheduler rotates jobs and checks for stalled ones.',
  },
  replicator_max_churn: {
    type: 'integer',
    default: 20,
    min: 1,
    description: 'Most continuous replications stopped per interval to let waiting ones run.',
  },
  replicator_max_history: {
    type: 'integer',
    default: 20,
    min: 1,
    description: 'Events kept in each replication job history.',
  },
  replicator_health_threshold_s: {
    type: 'integer',
    default: 120,
    min: 1,
    description: 'A replication crashing later than this after its start begins a new backoff streak.',
  },
  replicator_crash_backoff_ms: {
    type: 'integer',
    default: 30_000,
    min: 1,
    description: 'Wait after a replication crash, doubled per crash in a streak (up to 2^10 times).',
  },
  replicator_stall_s: {
    type: 'integer',
    default: 300,
    min: 1,
    description: 'A running replication with changes pending but no progress for this long is restarted.',
  },
  replicator_worker_processes: {
    type: 'integer',
    default: 4,
    min: 1,
    description: 'Default worker_processes of a replication (batches in flight).',
  },
  replicator_worker_batch_size: {
    type: 'integer',
    default: 500,
    min: 1,
    description: 'Default worker_batch_size of a replication (changes per batch).',
  },
  replicator_http_connections: {
    type: 'integer',
    default: 20,
    min: 1,
    description: 'Default http_connections of a replication (per remote endpoint).',
  },
  replicator_connection_timeout_ms: {
    type: 'integer',
    default: 30_000,
    min: 1,
    description: 'Default connection_timeout of a replication.',
  },
  replicator_retries_per_request: {
    type: 'integer',
    default: 5,
    min: 0,
    description: 'Default retries_per_request of a replication (250 ms doubling, at most 5 min).',
  },
  replicator_checkpoint_interval_ms: {
    type: 'integer',
    default: 30_000,
    min: 100,
    description: 'Default checkpoint_interval of a replication.',
  },
  follower_roles: {
    type: 'string',
    default: '',
    description:
      'Comma-separated roles whose holders may run follower replication by naming the role as follower_cluster_role in use_roles; empty: server admins only.',
  },
  follower_ops_batch_size: {
    type: 'integer',
    default: 1000,
    min: 16,
    description:
      'Follower databases: changes per batch (OpenSearch ops_batch_size); per follower in settings.',
  },
  follower_concurrency: {
    type: 'integer',
    default: 4,
    min: 1,
    description: 'Follower databases: batches in flight at once (concurrent_writers_per_shard).',
  },
  follower_poll_interval_ms: {
    type: 'integer',
    default: 1000,
    min: 1,
    description:
      'Follower databases: how often each follower checks its leader (deleted, recreated, head seq).',
  },
  follower_checkpoint_interval_ms: {
    type: 'integer',
    default: 2000,
    min: 100,
    description: 'Follower databases: ms between replication checkpoints (where a restart resumes from).',
  },
  follower_http_connections: {
    type: 'integer',
    default: 4,
    min: 1,
    description: 'Follower databases: connections to the leader per follower.',
  },
  follower_connection_timeout_ms: {
    type: 'integer',
    default: 30_000,
    min: 100,
    description: 'Follower databases: timeout for connecting to the leader and for each silence of a reply.',
  },
  follower_heartbeat_ms: {
    type: 'integer',
    default: 10_000,
    min: 100,
    description: "Follower databases: heartbeat asked of the leader's feed; three missed ones reopen it.",
  },
  follower_replicate_delete_index: {
    type: 'boolean',
    default: false,
    description:
      'Follower databases: deleting a leader stops and deletes its followers (default: pauses them).',
  },
  autofollow_poll_interval_ms: {
    type: 'integer',
    default: 30_000,
    min: 100,
    description:
      "Auto-follow rules: how often the leader's databases are listed again (failed ones retried).",
  },
  influx_org: {
    type: 'string',
    default: 'doppel',
    description: 'InfluxDB API: the name of the one organization (its id derives from the node id).',
  },
  stream_min_max_age_s: {
    type: 'integer',
    default: 60,
    min: 1,
    description: "Outbound streams: lowest accepted maxAgeSeconds (InfluxDB's is 60).",
  },
  stream_purge_interval_ms: {
    type: 'integer',
    default: 60_000,
    min: 100,
    description: 'Outbound streams: how often queued data older than maxAgeSeconds is purged.',
  },
  stream_request_timeout_ms: {
    type: 'integer',
    default: 120_000,
    min: 100,
    description: 'Outbound streams: time limit of one write to the remote.',
  },
  stream_max_backoff_ms: {
    type: 'integer',
    default: 15 * 60 * 1000,
    min: 100,
    description:
      "Outbound streams: longest wait between retries (0.5 s doubling up to this, and a remote's Retry-After).",
  },
  replicaof: {
    type: 'string',
    default: '',
    description:
      'Start as a replica of this server, "host port" (as REPLICAOF): of a Doppel node, everything ' +
      'follows it; of a Redis server, its keyspace replaces ours. Empty: a primary.',
  },
  masteruser: {
    type: 'string',
    default: '',
    description:
      'User name for AUTH with the Redis primary of `replicaof` (empty: AUTH with the password only).',
  },
  masterauth: {
    type: 'string',
    default: '',
    description:
      'Password for AUTH with the Redis primary of `replicaof` (never logged; CONFIG SET masterauth ' +
      'changes it until a restart).',
  },
  repl_timeout: {
    type: 'integer',
    default: 60,
    min: 1,
    description:
      "Seconds (Redis' repl-timeout): a replica drops a primary it heard nothing from for this long; " +
      'a primary drops a replica that reads none of its snapshot, or stops acknowledging, for this long.',
  },
  config: {
    type: 'string',
    default: '',
    description: 'Path of a JSON config file whose keys are these settings.',
  },
} as const satisfies Record<string, Setting>;

export type SettingName = keyof typeof configTable;

type ValueOf<S extends Setting> = S['type'] extends 'integer'
  ? number
  : S['type'] extends 'boolean'
    ? boolean
    : S extends { values: readonly (infer V)[] }
      ? V
      : string;

export type Config = { readonly [K in SettingName]: ValueOf<(typeof configTable)[K]> };
