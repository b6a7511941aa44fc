/**
 * The state of one RESP connection (selected db, protocol version, user,
 * MULTI queue, watched keys) and the server-wide context commands see.
 */
import type { Keyspace } from '../engines/kv/keyspace.js';
import type { UserContext } from '../services/auth/user-context.js';
import type { FeedSink, NodePrimaryControl, ReplicaFeed } from '../services/node-replication/contracts.js';
import type { ReplicaControl } from '../services/redis-replica/replica-contracts.js';
import type { BlockedClients } from './blocking.js';
import type { CommandSpec } from './command-spec.js';
import { Subscriptions, type PubSubHub } from './pubsub.js';
import { ReplyWriter } from './reply.js';
import type { DiskSaves } from './saves.js';

/** Checks a name and password (AuthService.verify). */
export type VerifyCredentials = (name: string, password: string) => Promise<UserContext | null>;

export interface ServerStats {
  connectionsReceived: number;
  commandsProcessed: number;
  netInputBytes: number;
  netOutputBytes: number;
  rejectedConnections: number;
}

export interface ServerContext {
  readonly keyspace: Keyspace;
  readonly verify: VerifyCredentials;
  /** The user `AUTH <password>` (one argument) logs in as: the server admin. */
  readonly defaultUser: string;
  readonly version: string;
  readonly nodeId: string;
  /** 40 hex characters, new at every start (INFO `run_id`). */
  readonly runId: string;
  readonly startedAt: number;
  readonly clients: ReadonlySet<Client>;
  readonly watches: WatchRegistry;
  readonly pubsub: PubSubHub;
  readonly blocked: BlockedClients;
  readonly stats: ServerStats;
  /** CONFIG GET/SET values (a subset of Redis' parameters). */
  readonly config: Map<string, string>;
  readonly tcpPort: () => number;
  /** True on a read-only replica: write commands get `-READONLY`. */
  readonly isReadOnly: () => boolean;
  /** The command table, by lower-case name (COMMAND). */
  readonly commands: ReadonlyMap<string, CommandSpec>;
  /** Where the node keeps its data (INFO). */
  readonly dataDir: string;
  /** The Redis replica link (REPLICAOF, ROLE, INFO replication); absent: a plain primary. */
  readonly replication?: ReplicaControl;
  /** This node's Doppel replicas (PSYNC, WAIT, INFO, ROLE); absent: none are served. */
  readonly nodePrimary?: NodePrimaryControl;
  /** SAVE, BGSAVE, LASTSAVE. */
  readonly saves: DiskSaves;
  /** Stops the node as SIGTERM does (SHUTDOWN); `by` says who asked, for the log. Absent: SHUTDOWN fails. */
  readonly requestShutdown?: (by: string) => void;
}

export interface QueuedCommand {
  readonly spec: CommandSpec;
  readonly argv: Buffer[];
}

export class Client {
  readonly id: number;
  readonly server: ServerContext;
  readonly reply = new ReplyWriter();
  readonly addr: string;
  readonly laddr: string;
  readonly createdAt = Date.now();
  lastInteraction = Date.now();
  lastCommand = 'NULL';
  db = 0;
  name = '';
  libName = '';
  libVersion = '';
  user: UserContext | null = null;
  multi: { queue: QueuedCommand[]; dirty: boolean } | null = null;
  /** Watch ids (`db:key`) this client watches. */
  watched: string[] = [];
  /** Set when a watched key changed: EXEC then aborts. */
  watchDirty = false;
  /** QUIT (or a protocol error): close once the replies so far are sent. */
  closeRequested = false;
  /** `REPLCONF listening-port` of a replica connection. */
  replicaPort = 0;
  /** The connection announced `REPLCONF capa doppel-node-3`. */
  nodeReplica = false;
  /** It announced `REPLCONF capa doppel-messages` too: its feed carries Pub/Sub messages. */
  messageReplica = false;
  /** Set by PSYNC: the connection hands its socket over to a replica feed once its replies are sent. */
  replicaFeed: ((sink: FeedSink) => ReplicaFeed) | null = null;
  /** Called when the client authenticates or RESET logs it out (the parser's limits for strangers). */
  onAuthChanged: (authenticated: boolean) => void = () => undefined;
  /** The channels, patterns and shard channels this client listens on. */
  readonly subscriptions = new Subscriptions();
  /** Called after output written outside a command (a Pub/Sub message): the connection sends it. */
  onOutput: () => void = () => undefined;
  /**
   * Set while a reply written by another client's write (a served BLPOP …)
   * waits for that write's commit: messages written meanwhile wait behind it.
   */
  outputHeld = false;
  /** Ends the connection at once: output already written cannot be honoured (its write failed). */
  onFatal: () => void = () => undefined;
  readonly #gone = new AbortController();

  constructor(id: number, server: ServerContext, addr: string, laddr: string) {
    this.id = id;
    this.server = server;
    this.addr = addr;
    this.laddr = laddr;
  }
  /** Aborted when the connection closes: what a command waits for is then given up. */
  get gone(): AbortSignal {
    return this.#gone.signal;
  }

  disconnected(): void {
    this.#gone.abort();
  }

  get protocol(): 2 | 3 {
    return this.reply.resp3 ? 3 : 2;
  }

  authenticate(user: UserContext): void {
    this.user = user;
    this.onAuthChanged(true);
  }

  /**
   * RESET: back to a fresh connection's state — no transaction, watch or
   * subscription, database 0, RESP2, no name, and logged out (every Doppel
   * user has a password, as a Redis default user under `requirepass`).
   */
  reset(): void {
    this.multi = null;
    this.server.watches.unwatchAll(this);
    this.server.pubsub.drop(this);
    this.db = 0;
    this.reply.resp3 = false;
    this.name = '';
    this.user = null;
    this.onAuthChanged(false);
  }
}

/**
 * WATCH bookkeeping: which clients watch which keys. The keyspace reports
 * every touched key (inside the write that touches it); watchers of it are
 * marked dirty so their EXEC fails.
 */
export class WatchRegistry {
  readonly #byKey = new Map<string, Set<Client>>();

  static id(db: number, key: Buffer): string {
    return `${db}:${key.toString('latin1')}`;
  }

  get size(): number {
    return this.#byKey.size;
  }

  watch(client: Client, db: number, key: Buffer): void {
    const id = WatchRegistry.id(db, key);
    let clients = this.#byKey.get(id);
    if (clients === undefined) this.#byKey.set(id, (clients = new Set()));
    if (!clients.has(client)) {
      clients.add(client);
      client.watched.push(id);
    }
  }

  unwatchAll(client: Client): void {
    for (const id of client.watched) {
      const clients = this.#byKey.get(id);
      clients?.delete(client);
      if (clients?.size === 0) this.#byKey.delete(id);
    }
    client.watched = [];
    client.watchDirty = false;
  }

  touched(db: number, key: Buffer): void {
    if (this.#byKey.size === 0) return;
    const clients = this.#byKey.get(WatchRegistry.id(db, key));
    if (clients !== undefined) for (const client of clients) client.watchDirty = true;
  }

  /** A flush of `db` (null: all) dirties every watcher of a key there. */
  flushed(db: number | null): void {
    const prefix = db === null ? '' : `${db}:`;
    for (const [id, clients] of this.#byKey) {
      if (id.startsWith(prefix)) for (const client of clients) client.watchDirty = true;
    }
  }
}
