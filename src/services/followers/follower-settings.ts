/**
 * The replication settings a follower takes from `_start`/`_update`
 * (`settings: {...}`) and auto-follow rules, under OpenSearch's names, with
 * the node's configuration as defaults. Only settings Doppel acts on are
 * accepted; an unknown one is a 400 naming the accepted ones, so a typo never
 * passes silently.
 */
import { badRequest } from '../../errors.js';

/** How one follower replicates; every field applies live (`_update` restarts the run from its checkpoint). */
export interface FollowerTuning {
  /** Changes per batch (`ops_batch_size`). */
  readonly opsBatchSize: number;
  /** Batches in flight at once (`concurrent_writers_per_shard`). */
  readonly concurrency: number;
  /** How often the leader is checked (existence, identity, head seq), in ms (`poll_interval`). */
  readonly pollIntervalMs: number;
  /** Deleting the leader stops and deletes the follower instead of pausing it (`replicate.delete_index`). */
  readonly deleteWithLeader: boolean;
}

/** Overrides as given by the caller, kept with the follower so they survive restarts. */
export type TuningOverrides = { -readonly [K in keyof FollowerTuning]?: FollowerTuning[K] };

type Field = keyof FollowerTuning;

/** Accepted setting names (OpenSearch's full names, their index-level forms, and short forms). */
const NAMES: Readonly<Record<string, Field>> = {
  'plugins.replication.follower.index.ops_batch_size': 'opsBatchSize',
  'index.plugins.replication.follower.ops_batch_size': 'opsBatchSize',
  ops_batch_size: 'opsBatchSize',
  'plugins.replication.follower.concurrent_writers_per_shard': 'concurrency',
  'plugins.replication.follower.concurrent_readers_per_shard': 'concurrency',
  concurrency: 'concurrency',
  'plugins.replication.follower.poll_interval': 'pollIntervalMs',
  poll_interval: 'pollIntervalMs',
  'plugins.replication.replicate.delete_index': 'deleteWithLeader',
  delete_index: 'deleteWithLeader',
};

/** OpenSearch index settings that mean nothing for a Doppel database; accepted and ignored. */
const IGNORED = new Set(['index.number_of_replicas', 'index.number_of_shards']);

const UNITS_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `"50ms"`, `"2s"`, `"1m"` or a number of ms. */
export function parseDurationMs(value: unknown, what: string): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return Math.round(value);
  if (typeof value === 'string') {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
    if (m !== null) return Math.round(Number(m[1]) * (UNITS_MS[m[2] ?? 'ms'] ?? 1));
  }
  throw badRequest(`${what} must be a duration such as "500ms", "2s" or "1m"`);
}

function positiveInteger(value: unknown, what: string, min: number, max: number): number {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max)
    throw badRequest(`${what} must be an integer from ${min} to ${max}`);
  return n;
}

function bool(value: unknown, what: string): boolean {
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw badRequest(`${what} must be true or false`);
}

/** Flattens `{"index": {"plugins": {...}}}` into dotted names, as OpenSearch accepts both forms. */
function flatten(value: Record<string, unknown>, prefix = '', out: Record<string, unknown> = {}): object {
  for (const [k, v] of Object.entries(value)) {
    const name = prefix === '' ? k : `${prefix}.${k}`;
    if (typeof v === 'object' && v !== null && !Array.isArray(v))
      flatten(v as Record<string, unknown>, name, out);
    else out[name] = v;
  }
  return out;
}

/** Validates a `settings` object into overrides; `undefined`/`null` is none. */
export function parseTuningOverrides(settings: unknown): TuningOverrides {
  if (settings === undefined || settings === null) return {};
  if (typeof settings !== 'object' || Array.isArray(settings)) throw badRequest('settings must be an object');
  const out: TuningOverrides = {};
  for (const [name, value] of Object.entries(flatten(settings as Record<string, unknown>))) {
    if (IGNORED.has(name)) continue;
    const field = NAMES[name];
    switch (field) {
      case 'opsBatchSize':
        out.opsBatchSize = positiveInteger(value, name, 16, 50_000);
        break;
      case 'concurrency':
        out.concurrency = positiveInteger(value, name, 1, 64);
        break;
      case 'pollIntervalMs': {
        const ms = parseDurationMs(value, name);
        if (ms < 1 || ms > 3_600_000) throw badRequest(`${name} must be from 1ms to 1h`);
        out.pollIntervalMs = ms;
        break;
      }
      case 'deleteWithLeader':
        out.deleteWithLeader = bool(value, name);
        break;
      case undefined:
        throw badRequest(
          `unknown replication setting "${name}"; accepted: ${Object.keys(NAMES).join(', ')}`,
          'illegal_argument_exception',
        );
    }
  }
  return out;
}

export function applyOverrides(defaults: FollowerTuning, overrides: TuningOverrides): FollowerTuning {
  return { ...defaults, ...overrides };
}

/** The overrides shown back under OpenSearch's names. */
export function describeOverrides(overrides: TuningOverrides): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  if (overrides.opsBatchSize !== undefined)
    out['plugins.replication.follower.index.ops_batch_size'] = overrides.opsBatchSize;
  if (overrides.concurrency !== undefined)
    out['plugins.replication.follower.concurrent_writers_per_shard'] = overrides.concurrency;
  if (overrides.pollIntervalMs !== undefined)
    out['plugins.replication.follower.poll_interval'] = `${overrides.pollIntervalMs}ms`;
  if (overrides.deleteWithLeader !== undefined)
    out['plugins.replication.replicate.delete_index'] = overrides.deleteWithLeader;
  return out;
}
