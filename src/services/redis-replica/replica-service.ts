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
import { rmSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Keyspace } from '../../engines/kv/keyspace.js';
import { newReplid, ZERO_REPLID } from '../node-replication/node-identity.js';
import { RedisPositionStore } from './redis-position-store.js';
import type { NodeReplicaDeps } from '../node-replication/replica-stream.js';
import {
  PrimaryLink,
  type PrimaryKind,
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
  /** Where a Redis primary's RDB is spooled during a full sync (removed once loaded). */
  readonly rdbSpoolPath: string;
  /** `host port` to follow from the start (the `replicaof` setting); '' for none. */
  readonly replicaOf?: string;
  readonly masterUser?: string;
  readonly masterAuth?: string;
  readonly connectTimeoutMs?: number;
  readonly timeoutMs?: number;
  readonly ackIntervalMs?: number;
  /** Present: a Doppel primary is followed as a whole node, and the node identity names our history. */
  readonly node?: NodeReplicaDeps;
}

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

const readOnlyReason = (primary: string): string =>
  `This node is a read-only replica of ${primary}; write to the primary.`;

export class RedisReplicaService implements ReplicaControl {
  readonly #options: RedisReplicaOptions;
  readonly #settings: LinkSettings;
  readonly #position: ReplicationPosition = {
    replid: newReplid(),
    replid2: ZERO_REPLID,
    secondOffset: -1,
    offset: 0,
    synced: false,
  };
  readonly counters: LinkCounters = { fullSyncs: 0, partialSyncs: 0, commandErrors: 0, lastFullSync: null };
  #link: PrimaryLink | null = null;
  /** The primary to follow once `start` runs (set by `prepare`). */
  #starting: { readonly host: string; readonly port: number } | null = null;
  /** The last primary was a real Redis: ids and offsets are Redis' (also after a promotion). */
  #followsRedis = false;
  #runner: PrimaryCommandRunner | null = null;
  /**
   * The database the saved position's stream had selected: a restarted replica's stream
   * continues in it (a link dropped within this process keeps its runner, and with it
   * that database).
   */
  #savedDb = 0;
  /** The last link's follow loop; a new link starts after it ended. */
  #previous: Promise<void> = Promise.resolve();

  constructor(options: RedisReplicaOptions) {
    this.#options = options;
    this.#settings = {
      keyspace: options.keyspace,
      log: options.log,
      createParser: options.createParser,
      runner: () => (this.#runner ??= this.#newRunner()),
      listeningPort: options.listeningPort,
      rdbSpoolPath: options.rdbSpoolPath,
      primaryAuth: { user: options.masterUser ?? '', password: options.masterAuth ?? '' },
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      timeoutMs: options.timeoutMs ?? 60_000,
      ackIntervalMs: options.ackIntervalMs ?? 1000,
      minBackoffMs: 100,
      maxBackoffMs: 5000,
      ...(options.node === undefined
        ? {}
        : {
            node: options.node,
            positions: new RedisPositionStore(options.node.storage),
            onPrimaryKind: (kind: PrimaryKind, primary: string) => this.#onPrimaryKind(kind, primary),
          }),
    };
  }

  /**
   * Call before the front doors open. When this node is to follow a primary
   * (the `replicaof` setting, or else the primary it followed when it
   * stopped: a restarted replica stays a replica), it is a replica from now
   * on: writes are refused and expired keys wait for the primary's DEL, so
   * nothing written here can fork it from its primary before the link is up.
   */
  prepare(): void {
    // A sync cut short by a crash may have left a spool behind; the next sync starts afresh.
    rmSync(this.#options.rdbSpoolPath, { force: true });
    if (this.#options.node !== undefined) rmSync(this.#options.node.spoolPath, { force: true });
    const configured = this.#options.replicaOf ?? '';
    const node = this.#options.node;
    const target = parseReplicaOf(configured === '' ? (node?.identity.current.primary ?? '') : configured);
    if (target === null) return;
    this.#starting = target;
    const saved = this.#settings.positions?.read();
    if (saved !== undefined) {
      const { db, ...at } = saved;
      Object.assign(this.#position, { ...at, synced: true });
      this.#savedDb = db ?? 0;
    }
    this.#options.keyspace.expiredKeys = 'hide';
    if (node !== undefined && node.identity.current.replicaLsn !== null) {
      node.setReadOnly(readOnlyReason(`${target.host}:${target.port}`));
    }
  }

  /** Connects to the primary `prepare` found; call once the RESP port is listening. */
  async start(): Promise<void> {
    const target = this.#starting;
    if (target === null) return;
    const linked = this.replicaOf(target.host, target.port);
    this.#starting = null; // replicaOf has set the link by now
    await linked;
  }

  /** The primary's client, in the database the saved position's stream had selected. */
  #newRunner(): PrimaryCommandRunner {
    const runner = this.#options.createRunner();
    runner.reset(this.#savedDb);
    return runner;
  }

  /** A Doppel primary: every database becomes read-only here (replays still apply); a Redis one: writable. */
  #onPrimaryKind(kind: PrimaryKind, primary: string): void {
    this.#followsRedis = kind === 'redis';
    this.#options.node?.setReadOnly(kind === 'node' ? readOnlyReason(primary) : undefined);
  }

  isReplica(): boolean {
    return this.#link !== null || this.#starting !== null;
  }

  setPrimaryCredentials(change: { readonly user?: string; readonly password?: string }): void {
    const auth = this.#settings.primaryAuth;
    if (change.user !== undefined) auth.user = change.user;
    if (change.password !== undefined) auth.password = change.password;
  }

  primaryCredentials(): { readonly user: string; readonly passwordSet: boolean } {
    const { user, password } = this.#settings.primaryAuth;
    return { user, passwordSet: password !== '' };
  }

  primaryDescription(): string | null {
    const primary = this.#link ?? this.#starting;
    return primary === null ? null : `${primary.host}:${primary.port}`;
  }

  async replicaOf(host: string, port: number): Promise<'ok' | 'already'> {
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
    await this.#options.node?.identity.update({ primary: `${host} ${port}` });
    this.#options.log.info({ primary: `${host}:${port}` }, 'redis replica: following a primary');
    return 'ok';
  }

  async promote(): Promise<void> {
    const link = this.#link;
    if (link === null && this.#starting === null) return;
    link?.stop();
    this.#link = null;
    this.#starting = null;
    const node = this.#options.node;
    if (node !== undefined) {
      await this.#previous;
      // A copy of a Doppel primary's journal, also when the link never came up since a
      // restart (the primary is gone: the very case a promotion is for).
      if (node.identity.current.replicaLsn !== null) {
        // Our history continues under a new id; replicas of the old primary may continue from us.
        await node.identity.promote(node.journal.lastAppended);
        node.setReadOnly(undefined);
        node.onHistoryChanged();
        this.#options.keyspace.expiredKeys = 'delete';
        this.#options.log.info(
          { lsn: node.journal.lastAppended },
          'node replica: promoted to primary (REPLICAOF NO ONE)',
        );
        return;
      }
      await node.identity.update({ primary: null });
      await this.#settings.positions?.clear();
    }
    // Read once the link's loop ended: an RDB loading meanwhile (on its thread) still lands.
    const offset = link?.appliedOffset ?? this.#position.offset;
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
    const node = this.#options.node;
    if (node !== undefined && !this.#followsRedis) {
      const identity = node.identity.current;
      return {
        primary: link?.status() ?? null,
        replid: identity.replid,
        replid2: identity.replid2,
        offset: link?.kind === 'node' ? link.appliedOffset : node.journal.lastAppended,
        secondOffset: identity.secondOffset,
      };
    }
    const position = this.#position;
    return {
      primary: link?.status() ?? null,
      replid: position.replid,
      replid2: position.replid2,
      offset: link?.appliedOffset ?? position.offset,
      secondOffset: position.secondOffset,
    };
  }

  /**
   * How far this node is behind a Doppel primary: entries received or
   * announced but not applied, and the age of the oldest such entry
   * (primary clock). Null figures while not following a Doppel primary.
   */
  nodeLag(): { readonly records: number | null; readonly seconds: number | null } {
    const stream = this.#link?.nodeStream ?? null;
    if (stream === null) return { records: null, seconds: null };
    const records = Math.max(0, stream.primaryHead - stream.appliedOffset);
    if (records === 0) return { records, seconds: 0 };
    const since = stream.lastAppliedTs;
    return { records, seconds: since === 0 ? null : Math.max(0, Date.now() - since) / 1000 };
  }

  /** At shutdown: a full sync being loaded is abandoned (the next start syncs again). */
  async stop(): Promise<void> {
    this.#link?.stop({ cancelLoad: true });
    await this.#previous;
  }
}
