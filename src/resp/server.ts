/**
 * The RESP front door: a TCP server speaking the Redis protocol (RESP2 and
 * RESP3) over the keyspace. It owns the connections, the server-wide
 * context commands see, and the active expiry cycle of the keyspace.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Keyspace } from '../engines/kv/keyspace.js';
import {
  Client,
  WatchRegistry,
  type ServerContext,
  type ServerStats,
  type VerifyCredentials,
} from './client.js';
import { COMMANDS } from './command-table.js';
import type { NodePrimaryControl, PublishedMessage } from '../services/node-replication/contracts.js';
import type { PrimaryCommandRunner, ReplicaControl } from '../services/redis-replica/replica-contracts.js';
import { publishMessage } from './commands/pubsub.js';
import { createPrimaryCommandRunner } from './commands/replication.js';
import { initialConfig } from './commands/server.js';
import { Connection } from './connection.js';
import { PubSubHub } from './pubsub.js';
import { DiskSaves } from './saves.js';
import { BlockedClients } from './blocking.js';

export interface RespServerOptions {
  readonly keyspace: Keyspace;
  readonly verify: VerifyCredentials;
  /** The user a one-argument `AUTH <password>` logs in as (the server admin). */
  readonly defaultUser: string;
  readonly version: string;
  readonly nodeId: string;
  readonly dataDir: string;
  readonly log: Logger;
  /** True on a read-only replica; write commands then get -READONLY. */
  readonly isReadOnly?: () => boolean;
  /** How often the active expiry cycle runs (Redis: hz 10). */
  readonly expiryIntervalMs?: number;
  /** The Redis replica link (REPLICAOF, ROLE, INFO replication). */
  readonly replication?: ReplicaControl;
  /** Serves Doppel replicas (PSYNC, WAIT). */
  readonly nodePrimary?: NodePrimaryControl;
  /** Stops the node (SHUTDOWN); absent: SHUTDOWN fails. */
  readonly requestShutdown?: (by: string) => void;
  /** Makes every acknowledged write durable on disk (SAVE, BGSAVE). */
  readonly persist: () => Promise<void>;
}

const EXPIRY_BATCH = 200;
/** One expiry cycle stops after this long, even with keys still due. */
const EXPIRY_BUDGET_MS = 25;

export class RespServer {
  readonly #options: RespServerOptions;
  readonly #server: Server;
  readonly #connections = new Set<Connection>();
  readonly #clients = new Set<Client>();
  readonly #context: ServerContext;
  readonly #stats: ServerStats = {
    connectionsReceived: 0,
    commandsProcessed: 0,
    netInputBytes: 0,
    netOutputBytes: 0,
    rejectedConnections: 0,
  };
  #nextClientId = 1;
  #port = 0;
  #expiryTimer: NodeJS.Timeout | null = null;
  #expiring = false;
  #stopped = false;

  constructor(options: RespServerOptions) {
    this.#options = options;
    const watches = new WatchRegistry();
    const blocked = new BlockedClients();
    options.keyspace.onTouch = (db, key) => {
      watches.touched(db, key);
      blocked.touched(db, key);
    };
    options.keyspace.onFlush = (db) => watches.flushed(db);
    this.#context = {
      keyspace: options.keyspace,
      verify: options.verify,
      defaultUser: options.defaultUser,
      version: options.version,
      nodeId: options.nodeId,
      runId: randomBytes(20).toString('hex'),
      startedAt: Date.now(),
      clients: this.#clients,
      watches,
      pubsub: new PubSubHub(),
      blocked,
      stats: this.#stats,
      config: initialConfig(0, '', options.dataDir),
      tcpPort: () => this.#port,
      isReadOnly: options.isReadOnly ?? (() => false),
      commands: COMMANDS,
      dataDir: options.dataDir,
      saves: new DiskSaves(options.persist, options.log),
      ...(options.replication === undefined ? {} : { replication: options.replication }),
      ...(options.nodePrimary === undefined ? {} : { nodePrimary: options.nodePrimary }),
      ...(options.requestShutdown === undefined ? {} : { requestShutdown: options.requestShutdown }),
    };
    this.#server = createServer((socket) => this.#accept(socket));
  }

  /** Listens on `host:port` (0 picks a port); resolves to the bound port. */
  async listen(host: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host, port }, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const address = this.#server.address();
    this.#port = typeof address === 'object' && address !== null ? address.port : port;
    this.#context.config.set('port', String(this.#port));
    this.#context.config.set('bind', host);
    this.#startExpiry();
    return this.#port;
  }

  get port(): number {
    return this.#port;
  }

  /** A message a node replica's primary published: for this node's listeners and replicas. */
  publish(message: PublishedMessage): void {
    publishMessage(this.#context, message);
  }

  /** Runs the commands a primary streams to this node, as that primary's client (the replica link). */
  primaryCommandRunner(): PrimaryCommandRunner {
    return createPrimaryCommandRunner(this.#context);
  }

  #accept(socket: Socket): void {
    if (this.#stopped) {
      socket.destroy();
      return;
    }
    this.#stats.connectionsReceived++;
    const addr = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    const laddr = `${socket.localAddress ?? '?'}:${socket.localPort ?? 0}`;
    const client = new Client(this.#nextClientId++, this.#context, addr, laddr);
    this.#clients.add(client);
    const connection = new Connection(socket, client, {
      onInternalError: (err) => this.#options.log.error({ err, client: client.id }, 'resp command failed'),
      onOutputLimit: () =>
        this.#options.log.warn(
          { client: client.id, addr: client.addr },
          'resp client disconnected: its unsent Pub/Sub messages exceeded 32 MB',
        ),
      onClose: () => {
        client.disconnected();
        this.#context.watches.unwatchAll(client);
        this.#context.pubsub.drop(client);
        this.#clients.delete(client);
        this.#connections.delete(connection);
      },
    });
    this.#connections.add(connection);
  }

  /** Active expiry: every interval, delete keys whose TTL passed (in batches, within a time budget). */
  #startExpiry(): void {
    const interval = this.#options.expiryIntervalMs ?? 100;
    this.#expiryTimer = setInterval(() => {
      if (this.#expiring || this.#context.isReadOnly()) return;
      this.#expiring = true;
      this.#expireCycle(Date.now())
        .catch((err: unknown) => this.#options.log.error({ err }, 'active expiry failed'))
        .finally(() => {
          this.#expiring = false;
        });
    }, interval);
    this.#expiryTimer.unref();
  }

  async #expireCycle(started: number): Promise<void> {
    while (!this.#stopped) {
      const due = await this.#options.keyspace.expireDue(EXPIRY_BATCH);
      if (due < EXPIRY_BATCH || Date.now() - started > EXPIRY_BUDGET_MS) return;
    }
  }

  /** Stops accepting, closes every connection, and waits for the expiry cycle. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#expiryTimer !== null) clearInterval(this.#expiryTimer);
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const client of this.#connections) client.destroy();
    await closed;
    while (this.#expiring) await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
