/**
 * The one status model every kind of replication reports through (DESIGN.md
 * "Replication"): replicator jobs, followers, streams, node links. Each
 * service registers a provider; `GET /_doppel/replications` lists them all.
 */
export type ReplicationKind = 'replicator' | 'follower' | 'autofollow' | 'stream' | 'node_link' | 'cluster';

export type ReplicationState =
  | 'initializing'
  | 'pending'
  | 'running'
  | 'paused'
  | 'crashing'
  | 'error'
  | 'completed'
  | 'failed'
  | 'stopped';

export interface ReplicationStatus {
  readonly kind: ReplicationKind;
  readonly id: string;
  readonly state: ReplicationState;
  readonly source: string;
  readonly target: string;
  readonly last_error: string | null;
  readonly counters: Readonly<Record<string, number>>;
  /** Records not yet copied, and for how long the copy has been behind (0 when in sync). */
  readonly lag: { readonly records: number | null; readonly seconds: number | null };
  /** ISO-8601. */
  readonly updated_at: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

export type StatusProvider = () => Promise<readonly ReplicationStatus[]>;

export class StatusBoard {
  readonly #providers: StatusProvider[] = [];

  register(provider: StatusProvider): void {
    this.#providers.push(provider);
  }

  async list(): Promise<ReplicationStatus[]> {
    const all = await Promise.all(this.#providers.map((p) => p()));
    return all.flat();
  }
}
