/**
 * `RedisReplicaService`: makes this node a replica of a real Redis server
 * (REPLICAOF host port), or a primary again (REPLICAOF NO ONE). While a
 * replica, the keyspace follows the primary (a full sync replaces it
 * atomically, then the command stream keeps it current) and ordinary
 * clients may not write: front doors ask `isReplica()`.
 *
 * Only the keyspace follows: databases, documents and users stay as they
 * are. Replication ids and offsets follow Redis: a replica reports its
 * primary's replid and offset; promotion keeps the data and shifts the
 * replid into replid2.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Keyspace } from '../../engines/kv/keyspace.js';
import {
  PrimaryLink,
  type LinkCounters,
  type LinkSettings,
  type ReplicationPosition,
} from './primary-link.js';
import type {
  PrimaryCommandRunner,
  ReplicaControl,
  ReplicationStatus,
  StreamCommandParser,
} from './replica-contracts.js';

export interface RedisReplicaOptions {
  readonly keyspace: Keyspace;
  readonly log: Logger;
  /** A fresh RESP request parser (exact byte counts) for each link. */
  readonly createParser: () => StreamCommandParser;
  /** The primary's client on this node (created on first use: the front door may start later). */
  readonly createRunner: () => PrimaryCommandRunner;
  /** Our RESP port, announced with `REPLCONF listening-port`. */
  readonly listeningPort: () => number;
  /** `host port` to follow from the start (the `replicaof` setting); '' for none. */
  readonly replicaOf?: string;
  readonly masterUser?: string;
  readonly masterAuth?: string;
  readonly connectTimeoutMs?: number;
  readonly timeoutMs?: number;
  readonly ackIntervalMs?: number;
}

const ZERO_ID = '0'.repeat(40);
const newReplid = (): string => randomBytes(20).toString('hex');

/** Parses the `replicaof` setting, `host port`; throws a message naming the setting. */
export function parseReplicaOf(value: string): { host: string; port: number } | null {
  const parts = value.trim().split(/\s+/);
  if (
    value.trim() === '' ||
    (parts.length === 2 && parts.every((p) => p.toLowerCase() === 'no' || p.toLowerCase() === 'one'))
  ) {
    return null;
  }
  const port = Number(parts[1]);
  if (parts.length !== 2 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`replicaof must be "host port" (got ${JSON.stringify(value)})`);
  }
  return { host: parts[0], port };
}

export class RedisReplicaService implements ReplicaControl {
  readonly #options: RedisReplicaOptions;
  readonly #settings: LinkSettings;
  readonly #position: ReplicationPosition = {
    replid: newReplid(),
    replid2: ZERO_ID,
    secondOffset: -1,
    offset: 0,
    synced: false,
  };
  readonly counters: LinkCounters = { fullSyncs: 0, partialSyncs: 0, lastFullSync: null };
  #link: PrimaryLink | null = null;
  #runner: PrimaryCommandRunner | null = null;
  /** The last link's follow loop; a new link starts after it ended. */
  #previous: Promise<void> = Promise.resolve();

  constructor(options: RedisReplicaOptions) {
    this.#options = options;
    this.#settings = {
      keyspace: options.keyspace,
      log: options.log,
      createParser: options.createParser,
      runner: () => (this.#runner ??= options.createRunner()),
      listeningPort: options.listeningPort,
      masterUser: options.masterUser ?? '',
      masterAuth: options.masterAuth ?? '',
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      timeoutMs: options.timeoutMs ?? 60_000,
      ackIntervalMs: options.ackIntervalMs ?? 1000,
      minBackoffMs: 100,
      maxBackoffMs: 5000,
    };
  }

  /** Follows the configured primary, if any (call once the RESP port is listening). */
  start(): void {
    const target = parseReplicaOf(this.#options.replicaOf ?? '');
    if (target !== null) this.replicaOf(target.host, target.port);
  }

  isReplica(): boolean {
    return this.#link !== null;
  }

  primaryDescription(): string | null {
    const link = this.#link;
    return link === null ? null : `${link.host}:${link.port}`;
  }

  replicaOf(host: string, port: number): 'ok' | 'already' {
    const current = this.#link;
    if (current !== null && current.host.toLowerCase() === host.toLowerCase() && current.port === port) {
      return 'already';
    }
    current?.stop();
    // A replica only hides expired keys: its primary's DELs remove them.
    this.#options.keyspace.expiredKeys = 'hide';
    const link = new PrimaryLink(host, port, this.#settings, this.#position, this.counters, this.#previous);
    this.#link = link;
    this.#previous = link.done.catch(() => undefined);
    this.#options.log.info({ primary: `${host}:${port}` }, 'redis replica: following a primary');
    return 'ok';
  }

  promote(): void {
    const link = this.#link;
    if (link === null) return;
    const offset = link.appliedOffset;
    link.stop();
    this.#link = null;
    const position = this.#position;
    // Redis' shiftReplicationId: our history continues under a new id; the old one is valid up to here.
    position.offset = offset;
    position.replid2 = position.replid;
    position.secondOffset = offset + 1;
    position.replid = newReplid();
    position.synced = false;
    this.#options.keyspace.expiredKeys = 'delete';
    this.#options.log.info({ offset }, 'redis replica: promoted to primary (REPLICAOF NO ONE)');
  }

  status(): ReplicationStatus {
    const link = this.#link;
    const position = this.#position;
    return {
      primary: link?.status() ?? null,
      replid: position.replid,
      replid2: position.replid2,
      offset: link?.appliedOffset ?? position.offset,
      secondOffset: position.secondOffset,
    };
  }

  async stop(): Promise<void> {
    this.#link?.stop();
    await this.#previous;
  }
}
