/**
 * An outbound stream's settings (InfluxDB's replication object, in Doppel's own names),
 * with InfluxDB's defaults and minima.
 */
import { badRequest } from '../../errors.js';

/** InfluxDB: at least twice its 10 MiB segment size less a little (32 MiB − 2 bytes). */
export const MIN_QUEUE_SIZE_BYTES = 33_554_430;
export const DEFAULT_QUEUE_SIZE_BYTES = 67_108_860;
export const DEFAULT_MAX_AGE_SECONDS = 604_800;
export const MAX_MAX_AGE_SECONDS = 5_184_000;

/** Where a stream writes: InfluxDB 2.x (or Doppel) `/api/v2/write`, 1.x `/write`, or `_bulk_docs`. */
export const SINK_KINDS = ['auto', 'influxdb2', 'influxdb1', 'bulk_docs'] as const;
export type SinkKind = (typeof SINK_KINDS)[number];

/** What happens to a local write when a stream's queue is full. */
export const FULL_QUEUE_POLICIES = ['drop', 'reject'] as const;
export type FullQueuePolicy = (typeof FULL_QUEUE_POLICIES)[number];

export interface StreamConfig {
  /** 16 hex digits, as InfluxDB ids. */
  readonly id: string;
  readonly name: string;
  readonly description?: string;
  /** The local database or bucket. */
  readonly source: string;
  /** Its uid at creation: a recreated database of the same name is another source. */
  readonly sourceUid: number;
  readonly sourceKind: 'bucket' | 'database';
  /** The remote's registry name. */
  readonly remote: string;
  /** Bucket (or `db/rp`, or database) name at the remote; empty when only an id is known. */
  readonly remoteBucketName: string;
  readonly remoteBucketID: string | null;
  readonly maxQueueSizeBytes: number;
  readonly maxAgeSeconds: number;
  readonly dropNonRetryableData: boolean;
  readonly fullQueuePolicy: FullQueuePolicy;
  readonly sink: SinkKind;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** What callers give to create (all optional but the first four) or to update (all optional). */
export interface StreamInput {
  readonly name?: string | undefined;
  readonly description?: string | undefined;
  readonly source?: string | undefined;
  readonly remote?: string | undefined;
  readonly remoteBucketName?: string | undefined;
  readonly remoteBucketID?: string | undefined;
  readonly maxQueueSizeBytes?: number | undefined;
  readonly maxAgeSeconds?: number | undefined;
  readonly dropNonRetryableData?: boolean | undefined;
  readonly fullQueuePolicy?: FullQueuePolicy | undefined;
  readonly sink?: SinkKind | undefined;
}

export interface ConfigLimits {
  /** Lowest accepted maxAgeSeconds (InfluxDB: 60). */
  readonly minMaxAgeSeconds: number;
}

function integer(value: number | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value)) throw badRequest(`${field} must be an integer`);
  return value;
}

/** Settings after `input` is applied over `base` (create: no base), validated with InfluxDB's rules. */
export function resolveSettings(
  input: StreamInput,
  base: StreamConfig | undefined,
  limits: ConfigLimits,
): Omit<StreamConfig, 'id' | 'sourceUid' | 'sourceKind' | 'createdAt' | 'updatedAt'> {
  const name = input.name ?? base?.name;
  if (name === undefined || name.trim() === '') throw badRequest('name is required');
  const source = input.source ?? base?.source;
  if (source === undefined || source === '') throw badRequest('the local bucket (or database) is required');
  const remote = input.remote ?? base?.remote;
  if (remote === undefined || remote === '') throw badRequest('remoteID is required');
  // As InfluxDB (#23638): a name given wins over an id.
  let remoteBucketName = input.remoteBucketName ?? base?.remoteBucketName ?? '';
  let remoteBucketID = input.remoteBucketID ?? base?.remoteBucketID ?? null;
  if (input.remoteBucketName !== undefined && input.remoteBucketID === undefined) remoteBucketID = null;
  if (input.remoteBucketID !== undefined && input.remoteBucketName === undefined) remoteBucketName = '';
  if (remoteBucketName === '' && (remoteBucketID === null || remoteBucketID === ''))
    throw badRequest('remoteBucketName or remoteBucketID is required');
  const maxQueueSizeBytes =
    integer(input.maxQueueSizeBytes, 'maxQueueSizeBytes') ??
    base?.maxQueueSizeBytes ??
    DEFAULT_QUEUE_SIZE_BYTES;
  if (maxQueueSizeBytes < MIN_QUEUE_SIZE_BYTES)
    throw badRequest(`maxQueueSizeBytes must be at least ${MIN_QUEUE_SIZE_BYTES}`);
  let maxAgeSeconds = integer(input.maxAgeSeconds, 'maxAgeSeconds') ?? base?.maxAgeSeconds;
  // 0 means the default, as in InfluxDB.
  if (maxAgeSeconds === undefined || maxAgeSeconds === 0) maxAgeSeconds = DEFAULT_MAX_AGE_SECONDS;
  if (maxAgeSeconds < limits.minMaxAgeSeconds || maxAgeSeconds > MAX_MAX_AGE_SECONDS)
    throw badRequest(`maxAgeSeconds must be between ${limits.minMaxAgeSeconds} and ${MAX_MAX_AGE_SECONDS}`);
  const description = input.description ?? base?.description;
  return {
    name,
    ...(description === undefined ? {} : { description }),
    source,
    remote,
    remoteBucketName,
    remoteBucketID: remoteBucketID === '' ? null : remoteBucketID,
    maxQueueSizeBytes,
    maxAgeSeconds,
    dropNonRetryableData: input.dropNonRetryableData ?? base?.dropNonRetryableData ?? false,
    fullQueuePolicy: input.fullQueuePolicy ?? base?.fullQueuePolicy ?? 'drop',
    sink: input.sink ?? base?.sink ?? 'auto',
  };
}
