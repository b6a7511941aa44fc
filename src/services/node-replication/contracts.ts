/**
 * What node replication needs from the RESP front door on a primary, and
 * what the front door sees of it. The front door parses `REPLCONF` /
 * `PSYNC` / `WAIT` and hands a replica's socket over after `PSYNC`; it holds
 * no replication logic.
 */

/** A replica's connection after PSYNC: the primary writes the stream to it. */
export interface FeedSink {
  /** Writes bytes; false when the socket's buffer is full (then await `drained`). */
  write(chunk: Buffer | string): boolean;
  drained(): Promise<void>;
  close(): void;
}

/** A Pub/Sub message, carried to replicas in stream order (Redis propagates PUBLISH too). */
export interface PublishedMessage {
  readonly channel: Buffer;
  readonly message: Buffer;
  /** A shard channel's (SPUBLISH). */
  readonly shard: boolean;
}

/** The primary's side of one replica connection. */
export interface ReplicaFeed {
  /** A command the replica sent on the connection (`REPLCONF ACK <lsn>`). */
  command(argv: Buffer[]): void;
  /** The connection closed. */
  closed(): void;
}

export interface PsyncRequest {
  /** The history the replica holds (`?` for none). */
  readonly replid: string;
  /** The first LSN it needs (its LSN + 1; -1 for none). */
  readonly nextLsn: number;
  readonly address: string;
  /** From `REPLCONF listening-port`. */
  readonly listeningPort: number;
  /** The replica announced `REPLCONF capa doppel-messages`: it reads message frames. */
  readonly messages: boolean;
}

export type ReplicaLinkState = 'wait_bgsave' | 'send_bulk' | 'online';

export interface ConnectedReplica {
  readonly address: string;
  readonly port: number;
  readonly state: ReplicaLinkState;
  /** The last LSN the replica acknowledged as durable there (-1 before its first ACK). */
  readonly ackedLsn: number;
  /** ms since its last ACK. */
  readonly lastAckMs: number;
}

/** A primary's replicas as the RESP front door sees them. */
export interface NodePrimaryControl {
  attach(request: PsyncRequest, sink: FeedSink): ReplicaFeed;
  replicas(): ConnectedReplica[];
  /** Full syncs served, partial resyncs accepted and refused (INFO stats' sync_*). */
  readonly counters: {
    readonly fullSyncs: number;
    readonly partialSyncs: number;
    readonly partialSyncsRefused: number;
  };
  /**
   * Sends a message published here to every replica, behind the journal
   * entries appended before it: a replica's listeners hear it once the
   * writes before it are readable there.
   */
  publish(message: PublishedMessage): void;
  /** Whether any replica is connected (a message for none needs no copy). */
  readonly hasReplicas: boolean;
  /** How many replicas acknowledged everything written so far (WAIT inside MULTI, which never blocks). */
  replicasCaughtUp(): number;
  /**
   * WAIT: resolves with how many replicas acknowledged everything written
   * so far, once `count` did or after `timeoutMs` (0: no limit); early, with
   * the count so far, when `gone` aborts (the client left).
   */
  waitForReplicas(count: number, timeoutMs: number, gone?: AbortSignal): Promise<number>;
}
