/**
 * `leader_stats` of this node as a leader: what followers (on any node) read
 * from its databases since it started. Followers identify themselves with the
 * `x-doppel-follower` header; the HTTP door reports each such read here.
 * Doppel reads every operation from its store (no translog), so the
 * `*_translog` figures stay 0 and the `*_lucene` ones carry the reads.
 */
/** The header a Doppel follower sends with every read of its leader. */
export const FOLLOWER_HEADER = 'x-doppel-follower';

interface DbReadCounters {
  operations_read: number;
  bytes_read: number;
  total_read_time_millis: number;
  readonly followers: Set<string>;
}

export interface LeaderIndexStats {
  readonly operations_read: number;
  readonly translog_size_bytes: number;
  readonly operations_read_lucene: number;
  readonly operations_read_translog: number;
  readonly total_read_time_lucene_millis: number;
  readonly total_read_time_translog_millis: number;
  readonly bytes_read: number;
}

export interface LeaderStatsView extends LeaderIndexStats {
  readonly num_replicated_indices: number;
  readonly index_stats: Readonly<Record<string, LeaderIndexStats>>;
}

function indexStats(c: {
  operations_read: number;
  bytes_read: number;
  total_read_time_millis: number;
}): LeaderIndexStats {
  return {
    operations_read: c.operations_read,
    translog_size_bytes: 0,
    operations_read_lucene: c.operations_read,
    operations_read_translog: 0,
    total_read_time_lucene_millis: Math.round(c.total_read_time_millis),
    total_read_time_translog_millis: 0,
    bytes_read: c.bytes_read,
  };
}

export class LeaderStats {
  readonly #byDb = new Map<string, DbReadCounters>();

  /** One request of a follower against leader database `db`. */
  record(db: string, follower: string, operations: number, bytes: number, ms: number): void {
    let c = this.#byDb.get(db);
    if (c === undefined)
      this.#byDb.set(
        db,
        (c = { operations_read: 0, bytes_read: 0, total_read_time_millis: 0, followers: new Set() }),
      );
    c.operations_read += operations;
    c.bytes_read += bytes;
    c.total_read_time_millis += ms;
    c.followers.add(follower);
  }

  view(): LeaderStatsView {
    const total = { operations_read: 0, bytes_read: 0, total_read_time_millis: 0 };
    const index_stats: Record<string, LeaderIndexStats> = {};
    for (const [db, c] of [...this.#byDb].sort(([a], [b]) => a.localeCompare(b))) {
      total.operations_read += c.operations_read;
      total.bytes_read += c.bytes_read;
      total.total_read_time_millis += c.total_read_time_millis;
      index_stats[db] = indexStats(c);
    }
    return { num_replicated_indices: this.#byDb.size, ...indexStats(total), index_stats };
  }
}
