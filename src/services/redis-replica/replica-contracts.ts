/**
 * What the Redis replica link needs from the front door, and what it reports
 * to it. The link lives in the services layer and may not import `resp/`;
 * the composition root hands it the RESP parser and a command runner that
 * satisfy these interfaces.
 */

/** An incremental RESP request parser reporting the exact bytes of each command (`resp/parser.ts`). */
export interface StreamCommandParser {
  feed(chunk: Buffer): void;
  /** The next complete command, or undefined until more input arrives; throws on a malformed frame. */
  next(): { readonly argv: Buffer[]; readonly bytes: number } | undefined;
}

/**
 * Runs the write commands a primary streams, with the existing command
 * implementations, as the primary's own client: no authentication, no
 * READONLY refusal, replies discarded. Called inside a keyspace write.
 */
export interface PrimaryCommandRunner {
  /** Runs one command; returns the error it replied, if any. */
  run(argv: Buffer[]): string | undefined;
  /** The database the primary's stream has selected (its last SELECT). */
  readonly db: number;
  /** Back to a fresh client with `db` selected (0, as after a full resync). */
  reset(db?: number): void;
}

/** The link states ROLE shows on a replica. */
export type LinkState = 'connect' | 'connecting' | 'handshake' | 'sync' | 'connected';

export interface PrimaryLinkStatus {
  readonly host: string;
  readonly port: number;
  readonly state: LinkState;
  /** ms since the last byte from the primary; null without a link. */
  readonly lastIoMs: number | null;
  /** ms since the link went down; null while up or when it never was. */
  readonly downForMs: number | null;
  /** Bytes received of the command stream (slave_read_repl_offset). */
  readonly readOffset: number;
  /** Bytes applied (slave_repl_offset); the offset acknowledged to the primary. */
  readonly appliedOffset: number;
  /** True once a sync completed (an offset exists even with the link down). */
  readonly synced: boolean;
  /** Why the last connection failed; null once the stream runs. */
  readonly lastError: string | null;
  /** While the snapshot arrives: its size (-1 before known, 0 for diskless), bytes read, ms since the last. */
  readonly transfer: { readonly size: number; readonly read: number; readonly lastIoMs: number } | null;
  /** While a received snapshot loads (a Redis RDB or a Doppel node's snapshot). */
  readonly load: SnapshotLoadProgress | null;
}

export interface SnapshotLoadProgress {
  /** ms since the epoch. */
  readonly startedAt: number;
  totalBytes: number;
  loadedBytes: number;
}

export interface ReplicationStatus {
  /** Set while this node is a replica. */
  readonly primary: PrimaryLinkStatus | null;
  readonly replid: string;
  readonly replid2: string;
  readonly offset: number;
  readonly secondOffset: number;
}

/** The replica link as the front doors see it (REPLICAOF, ROLE, INFO, READONLY). */
export interface ReplicaControl {
  isReplica(): boolean;
  /** `host:port` of the primary, or null when this node is not a replica. */
  primaryDescription(): string | null;
  /** Starts following `host:port`; 'already' when that is the current primary. */
  replicaOf(host: string, port: number): Promise<'ok' | 'already'>;
  /** REPLICAOF NO ONE: stops following and keeps the data, writable again. */
  promote(): Promise<void>;
  status(): ReplicationStatus;
  /** CONFIG SET masteruser / masterauth: used from the next connection to the primary on. */
  setPrimaryCredentials(change: { readonly user?: string; readonly password?: string }): void;
  /** What CONFIG GET may show: the user name, and whether a password is set (never the password). */
  primaryCredentials(): { readonly user: string; readonly passwordSet: boolean };
}
