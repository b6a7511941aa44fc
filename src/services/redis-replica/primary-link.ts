/**
 * One REPLICAOF target followed until told to stop: connect, handshake,
 * PSYNC, full or partial resync, then the command stream; on any failure,
 * reconnect with backoff (100 ms doubling to 5 s) and try a partial resync
 * from the offset applied so far.
 *
 * Handshake (Redis' syncWithMaster): PING, then pipelined [AUTH],
 * `REPLCONF listening-port`, `REPLCONF capa eof capa psync2`; then
 * `PSYNC <replid> <offset+1>` (or `? -1` without a position). The link
 * sends `REPLCONF ACK <offset>` every second and right after a full sync,
 * and drops a primary silent for longer than the replication timeout.
 */
import { rmSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Keyspace } from '../../engines/kv/keyspace.js';
import { replaceKeyspaceWithRdb, type RdbLoadSummary } from '../../engines/kv/rdb/rdb-loader.js';
import { fileChunks, GrowingFile } from '../../storage/file-chunks.js';
import { newReplid, ZERO_REPLID } from '../node-replication/node-identity.js';
import { NodeStream, receiveFullSync, type NodeReplicaDeps } from '../node-replication/replica-stream.js';
import { WriteCancelled } from '../write-thread.js';
import { CommandStream } from './command-stream.js';
import { LinkClosed, PrimaryConnection } from './primary-connection.js';
import { startRdbLoadThread, type RdbLoadResult } from './rdb-load-thread.js';
import type {
  LinkState,
  SnapshotLoadProgress,
  PrimaryCommandRunner,
  PrimaryLinkStatus,
  StreamCommandParser,
} from './replica-contracts.js';
import type { RedisPositionStore } from './redis-position-store.js';
import { receiveSnapshot, type TransferProgress } from './snapshot-transfer.js';

/** Where this node stands in its primary's replication history (kept across links). */
export interface ReplicationPosition {
  replid: string;
  replid2: string;
  secondOffset: number;
  /** Bytes of the primary's stream applied here. */
  offset: number;
  /** False until a full sync completed: PSYNC then asks for one (`? -1`). */
  synced: boolean;
}

/** The credentials a replica AUTHs with (Redis' masteruser / masterauth); empty password: no AUTH. */
export interface PrimaryAuth {
  user: string;
  password: string;
}

export interface LinkSettings {
  readonly keyspace: Keyspace;
  readonly log: Logger;
  readonly createParser: () => StreamCommandParser;
  readonly runner: () => PrimaryCommandRunner;
  readonly listeningPort: () => number;
  /** Read at each connection, so that CONFIG SET applies to the next one. */
  readonly primaryAuth: PrimaryAuth;
  readonly connectTimeoutMs: number;
  /** Redis' repl-timeout: a primary silent this long is dropped. */
  readonly timeoutMs: number;
  readonly ackIntervalMs: number;
  readonly minBackoffMs: number;
  readonly maxBackoffMs: number;
  /** Where a Redis primary's RDB is spooled until it has completely arrived. */
  readonly rdbSpoolPath: string;
  /** Present: a Doppel primary is followed as a whole node (see `services/node-replication`). */
  readonly node?: NodeReplicaDeps;
  /** Present: where a Redis primary's history stands here is saved with the data (restarts continue). */
  readonly positions?: RedisPositionStore;
  /** Called once the handshake tells what the primary is. */
  readonly onPrimaryKind?: (kind: PrimaryKind, primary: string) => void;
}

/** A real Redis (only the keyspace follows) or a Doppel node (everything follows). */
export type PrimaryKind = 'redis' | 'node';

/**
 * Announced in `REPLCONF capa`; a Doppel primary answers `+OK doppel-node-3`,
 * Redis (or a Doppel node of another storage format, whose snapshot rows this
 * node could not read) a plain `+OK`. The number changes with the format of
 * the replicated tables (2: compact collections; 3: document ids escaped in keys).
 */
export const NODE_CAPA = 'doppel-node-3';
/** Announced too: this replica reads Pub/Sub message frames in the stream (a primary sends them only then). */
export const NODE_MESSAGES_CAPA = 'doppel-messages';
const READ_SIZE = 1024 * 1024;

/** The applied stream as the link sees it, either kind. */
interface AppliedStream {
  readonly readOffset: number;
  readonly appliedOffset: number;
  /** False: read no more until the stream's `onCaughtUp`. */
  feed(chunk: Buffer): boolean;
  settled(): Promise<void>;
}

export interface FullSyncFigures {
  readonly bytes: number;
  readonly keys: number;
  /** Keys read but not loaded (types Doppel lacks, empty, too long). */
  readonly skippedKeys: number;
  /** The key count the RDB announced (null when it announced none). */
  readonly announcedKeys: number | null;
  readonly transferMs: number;
  readonly loadMs: number;
}

export interface LinkCounters {
  fullSyncs: number;
  partialSyncs: number;
  /** Commands of a Redis primary's stream that failed here (the copy differs from then on). */
  commandErrors: number;
  /** Node links: the last full sync's rows, bytes and time. */
  lastNodeSync?: { rows: number; bytes: number; ms: number };
  /** The last full sync: RDB bytes, keys loaded and not, what the file announced, transfer and load times. */
  lastFullSync: FullSyncFigures | null;
}

/** Command errors logged in full before only every 1000th is. */
const LOGGED_COMMAND_ERRORS = 20;
/** While a full sync loads: how often the primary gets an empty line (Redis' replicas send one a second). */
const KEEPALIVE_MS = 1000;

export class PrimaryLink {
  readonly host: string;
  readonly port: number;
  readonly #settings: LinkSettings;
  readonly #position: ReplicationPosition;
  readonly #counters: LinkCounters;
  readonly #abort = new AbortController();
  /** Aborted at shutdown: a full sync's load (a worker's write) is abandoned rather than awaited. */
  readonly #cancelLoad = new AbortController();
  #state: LinkState = 'connect';
  #conn: PrimaryConnection | null = null;
  #stream: AppliedStream | null = null;
  #kind: PrimaryKind | null = null;
  /** After a node stream failed to apply: the next sync is a full one. */
  #forceFullSync = false;
  #transfer: TransferProgress | null = null;
  /** While a full sync's snapshot loads (RDB or node snapshot). */
  #load: SnapshotLoadProgress | null = null;
  /** Warnings of the current full sync's load (only the first few are logged). */
  #loadWarnings = 0;
  #downSince: number | null = null;
  /** Why the last connection failed or ended; cleared once a stream runs. */
  #lastError: string | null = null;
  /** Resolves when the follow loop has ended (after `stop()`). */
  readonly done: Promise<void>;

  constructor(
    host: string,
    port: number,
    settings: LinkSettings,
    position: ReplicationPosition,
    counters: LinkCounters,
    after: Promise<void>,
  ) {
    this.host = host;
    this.port = port;
    this.#settings = settings;
    this.#position = position;
    this.#counters = counters;
    this.done = after.then(() => this.#follow());
  }

  /**
   * Ends the link. A full sync being loaded completes first (REPLICAOF elsewhere or NO ONE
   * keep what it brings), unless `cancelLoad` (shutdown): then it is abandoned, the data
   * stays as it was, and the next start syncs again.
   */
  stop(options: { cancelLoad?: boolean } = {}): void {
    if (options.cancelLoad === true) this.#cancelLoad.abort();
    this.#abort.abort();
    this.#conn?.close('replication stopped');
  }

  get appliedOffset(): number {
    return this.#stream?.appliedOffset ?? this.#position.offset;
  }

  /** What the primary turned out to be (null before the first handshake). */
  get kind(): PrimaryKind | null {
    return this.#kind;
  }

  /** The node stream while following a Doppel primary (lag figures). */
  get nodeStream(): NodeStream | null {
    return this.#stream instanceof NodeStream ? this.#stream : null;
  }

  status(): PrimaryLinkStatus {
    const now = Date.now();
    const conn = this.#conn;
    const transfer = this.#transfer;
    return {
      host: this.host,
      port: this.port,
      state: this.#state,
      lastIoMs: conn === null ? null : now - conn.lastIo,
      downForMs: this.#downSince === null ? null : now - this.#downSince,
      readOffset: this.#stream?.readOffset ?? this.#position.offset,
      appliedOffset: this.appliedOffset,
      synced: this.#position.synced,
      lastError: this.#lastError,
      transfer:
        transfer === null
          ? null
          : { size: transfer.size, read: transfer.read, lastIoMs: now - transfer.lastIo },
      load: this.#load === null ? null : { ...this.#load },
    };
  }

  async #follow(): Promise<void> {
    const { log, minBackoffMs, maxBackoffMs } = this.#settings;
    const signal = this.#abort.signal;
    let backoff = minBackoffMs;
    while (!signal.aborted) {
      let linked = false;
      try {
        linked = await this.#session(signal);
      } catch (err) {
        if (err instanceof WriteCancelled) {
          log.info(
            { primary: `${this.host}:${this.port}` },
            'full sync abandoned at shutdown: the data is as it was',
          );
        } else if (!signal.aborted) {
          this.#lastError = err instanceof Error ? err.message : String(err);
          log.warn(
            { err: err instanceof LinkClosed ? err.message : err, primary: `${this.host}:${this.port}` },
            'redis replica link failed',
          );
        }
      }
      this.#conn = null;
      this.#transfer = null;
      if (this.#state === 'connected' || linked) this.#downSince = Date.now();
      this.#state = 'connect';
      if (this.#stream !== null) {
        await this.#stream.settled();
        if (this.#kind === 'redis') this.#position.offset = this.#stream.appliedOffset;
      }
      if (signal.aborted) return;
      if (linked) backoff = minBackoffMs;
      try {
        await sleep(backoff, undefined, { signal });
      } catch {
        return;
      }
      backoff = Math.min(backoff * 2, maxBackoffMs);
    }
  }

  /** One connection: resolves true when it reached the stream before it ended. */
  async #session(signal: AbortSignal): Promise<boolean> {
    const s = this.#settings;
    this.#state = 'connecting';
    const conn = await PrimaryConnection.open(this.host, this.port, s.connectTimeoutMs);
    if (signal.aborted) {
      conn.close();
      return false;
    }
    this.#conn = conn;
    const watchdog = setInterval(() => this.#tick(conn), s.ackIntervalMs);
    try {
      this.#state = 'handshake';
      conn.command('PING');
      const pong = await conn.reply();
      if (!/^(\+|-NOAUTH|-NOPERM|-ERR operation not permitted)/.test(pong)) {
        throw new LinkClosed(`the primary answered PING with ${pong}`);
      }
      const { user, password } = s.primaryAuth;
      const auth = password !== '';
      if (auth) {
        if (user !== '') conn.command('AUTH', user, password);
        else conn.command('AUTH', password);
      }
      conn.command('REPLCONF', 'listening-port', s.listeningPort());
      const nodeCapas = s.node === undefined ? [] : ['capa', NODE_CAPA, 'capa', NODE_MESSAGES_CAPA];
      conn.command('REPLCONF', 'capa', 'eof', 'capa', 'psync2', ...nodeCapas);
      if (auth) {
        const reply = await conn.reply();
        if (reply.startsWith('-')) throw new LinkClosed(`AUTH with the primary failed: ${reply.slice(1)}`);
      }
      await conn.reply();
      const capa = await conn.reply();
      const kind: PrimaryKind = s.node !== undefined && capa === `+OK ${NODE_CAPA}` ? 'node' : 'redis';
      // The previous link's writes must be in before we name the offset to continue from.
      if (this.#stream !== null) {
        await this.#stream.settled();
        if (this.#kind === 'redis') this.#position.offset = this.#stream.appliedOffset;
        this.#stream = null;
      }
      this.#kind = kind;
      s.onPrimaryKind?.(kind, `${this.host}:${this.port}`);
      if (kind === 'node') return await this.#nodeSession(conn, s.node!, signal);
      const position = this.#position;
      if (position.synced) conn.command('PSYNC', position.replid, position.offset + 1);
      else conn.command('PSYNC', '?', -1);
      const answer = await conn.reply();
      if (answer.startsWith('+FULLRESYNC')) {
        await this.#fullSync(conn, answer, signal);
        if (signal.aborted) return false;
      } else if (answer.startsWith('+CONTINUE')) {
        this.#continue(answer);
      } else {
        throw new LinkClosed(`the primary refused PSYNC: ${answer}`);
      }
      this.#state = 'connected';
      this.#lastError = null;
      this.#downSince = null;
      const stream = this.#stream!;
      conn.stream((chunk) => stream.feed(chunk));
      await conn.closed;
      return true;
    } finally {
      clearInterval(watchdog);
      conn.close();
    }
  }

  /** Following a Doppel primary: PSYNC by LSN, a snapshot or the journal from our LSN, then the journal. */
  async #nodeSession(conn: PrimaryConnection, node: NodeReplicaDeps, signal: AbortSignal): Promise<boolean> {
    const identity = node.identity.current;
    const continuable =
      !this.#forceFullSync &&
      identity.replicaLsn !== null &&
      identity.replicaLsn === node.journal.lastAppended;
    if (continuable) conn.command('PSYNC', identity.replid, identity.replicaLsn + 1);
    else conn.command('PSYNC', '?', -1);
    const answer = await conn.reply();
    let stream: NodeStream;
    const streamOptions = (lsn: number): ConstructorParameters<typeof NodeStream>[1] => ({
      lsn,
      sendAck: (at) => conn.command('REPLCONF', 'ACK', at),
      onFailure: (err) => {
        node.log.error({ err }, "node replica: applying the primary's journal failed; syncing again in full");
        this.#forceFullSync = true;
        conn.close('node stream failed');
      },
      onCaughtUp: () => conn.resume(),
    });
    if (answer.startsWith('+FULLRESYNC')) {
      const [, replid, lsnText] = answer.split(' ');
      const lsn = Number(lsnText);
      if (replid === undefined || replid.length !== 40 || !Number.isSafeInteger(lsn)) {
        throw new LinkClosed(`bad FULLRESYNC reply: ${answer}`);
      }
      this.#state = 'sync';
      const transfer: TransferProgress = { size: 0, read: 0, lastIo: Date.now() };
      this.#transfer = transfer;
      const started = performance.now();
      let loaded: Awaited<ReturnType<typeof receiveFullSync>>;
      try {
        loaded = await receiveFullSync(node, replid, () => conn.chunk(READ_SIZE), transfer, {
          started: (totalBytes) => {
            this.#load = { startedAt: Date.now(), totalBytes, loadedBytes: 0 };
            // The journal stream sent meanwhile waits in the socket, not in our memory.
            conn.pause();
          },
          progress: (bytesRead) => {
            if (this.#load !== null) this.#load.loadedBytes = bytesRead;
          },
          cancel: this.#cancelLoad.signal,
        });
      } finally {
        this.#load = null;
        conn.resume();
      }
      conn.lastIo = Date.now();
      this.#transfer = null;
      if (signal.aborted) return false;
      this.#forceFullSync = false;
      this.#counters.fullSyncs++;
      const ms = Math.round(performance.now() - started);
      this.#counters.lastNodeSync = { rows: loaded.rows, bytes: loaded.bytes, ms };
      node.log.info(
        { primary: `${this.host}:${this.port}`, lsn: loaded.lsn, rows: loaded.rows, bytes: loaded.bytes, ms },
        'node replica: full sync loaded',
      );
      stream = new NodeStream(node, streamOptions(loaded.lsn), loaded.reader);
      conn.command('REPLCONF', 'ACK', loaded.lsn);
    } else if (answer.startsWith('+CONTINUE')) {
      const replid = answer.slice('+CONTINUE'.length).trim();
      const head = node.journal.lastAppended;
      if (replid.length === 40 && replid !== identity.replid) {
        // The primary's history changed name (a promotion upstream): ours is valid up to here.
        await node.identity.update({ replid, replid2: identity.replid, secondOffset: head + 1 });
        node.onHistoryChanged();
      }
      this.#counters.partialSyncs++;
      node.log.info({ primary: `${this.host}:${this.port}`, lsn: head }, 'node replica: partial resync');
      stream = new NodeStream(node, streamOptions(head));
    } else {
      throw new LinkClosed(`the primary refused PSYNC: ${answer}`);
    }
    this.#stream = stream;
    this.#state = 'connected';
    this.#lastError = null;
    this.#downSince = null;
    stream.drain();
    conn.stream((chunk) => stream.feed(chunk));
    await conn.closed;
    return true;
  }

  async #fullSync(conn: PrimaryConnection, answer: string, signal: AbortSignal): Promise<void> {
    const [, replid, offsetText] = answer.split(' ');
    const offset = Number(offsetText);
    if (replid === undefined || replid.length !== 40 || !Number.isSafeInteger(offset)) {
      throw new LinkClosed(`bad FULLRESYNC reply: ${answer}`);
    }
    this.#state = 'sync';
    const transfer: TransferProgress = { size: -1, read: 0, lastIo: Date.now() };
    this.#transfer = transfer;
    const started = performance.now();
    const spoolPath = this.#settings.rdbSpoolPath;
    const file = new GrowingFile();
    const progress: SnapshotLoadProgress = { startedAt: Date.now(), totalBytes: 0, loadedBytes: 0 };
    const stopStaging = new AbortController();
    this.#loadWarnings = 0;
    // On a node, the load starts with the transfer: its worker reads the spool as it arrives.
    const staging = this.#stageRdb(spoolPath, file, progress, stopStaging.signal);
    // Its failure is read after the transfer; until then it must not count as unhandled.
    void staging?.catch(() => undefined);
    try {
      await receiveSnapshot(conn, transfer, spoolPath, file);
      if (signal.aborted) return;
      await this.#loadSnapshot(conn, replid, offset, spoolPath, started, progress, staging);
    } finally {
      // A load still reading a spool that will not be completed fails at its end.
      file.abandon();
      stopStaging.abort();
      await staging?.catch(() => undefined);
      rmSync(spoolPath, { force: true });
    }
  }

  /**
   * Starts loading the RDB spooled at `spoolPath` into the keyspace's staged tables, on
   * a worker thread that reads it as it arrives (null when this link has no node: tests
   * load in one write instead). The node's own writes (documents, users …) ask the
   * worker to end its step early.
   */
  #stageRdb(
    spoolPath: string,
    file: GrowingFile,
    progress: SnapshotLoadProgress,
    stop: AbortSignal,
  ): Promise<RdbLoadResult> | null {
    const { node } = this.#settings;
    if (node === undefined) return null;
    const thread = startRdbLoadThread();
    const request = { storagePath: node.storage.path, spoolPath, spool: file.shared };
    return node.storage.whileSharingWrites(
      () => thread.wantTurn(),
      () =>
        thread.run(
          request,
          (event) => {
            if (event.kind === 'progress') progress.loadedBytes = event.bytesRead;
            else this.#warnLoading(event.message, event.detail);
          },
          // Once per full sync: what `any` keeps referenced from the link's signal stays small.
          // eslint-disable-next-line no-restricted-properties
          AbortSignal.any([this.#cancelLoad.signal, stop]),
        ),
    );
  }

  #warnLoading(message: string, detail: { db: number; key: string }): void {
    if (++this.#loadWarnings <= LOGGED_COMMAND_ERRORS)
      this.#settings.log.warn(detail, `redis full sync: ${message}`);
  }

  async #loadSnapshot(
    conn: PrimaryConnection,
    replid: string,
    offset: number,
    spoolPath: string,
    started: number,
    load: SnapshotLoadProgress,
    staging: Promise<RdbLoadResult> | null,
  ): Promise<void> {
    const received = performance.now();
    const { log, keyspace, node } = this.#settings;
    let summary: RdbLoadSummary;
    load.totalBytes = statSync(spoolPath).size;
    this.#load = load;
    // Redis drops a replica silent for its repl-timeout (and one whose load outlasted the
    // backlog would sync in full again, in a loop): an empty line is a sign of life.
    const keepalive = setInterval(() => conn.send('\n'), KEEPALIVE_MS);
    // What the primary sends meanwhile waits in the socket (and then in the primary's
    // buffers, within its limits) rather than in our memory.
    conn.pause();
    try {
      if (node === undefined || staging === null) {
        summary = await replaceKeyspaceWithRdb(keyspace, fileChunks(spoolPath), {
          warn: (message, detail) => this.#warnLoading(message, detail),
        });
      } else {
        const loaded = await staging;
        // The load was not journaled key by key: this node's own replicas sync in full instead
        // (as a Redis replica's replicas do after its full sync).
        const newHistory = { replid: newReplid(), replid2: ZERO_REPLID, secondOffset: -1 };
        try {
          await keyspace.adoptStaged(loaded.tables, loaded.counters, () => {
            node.identity.putInWrite(newHistory);
            // Redis starts a new replica's stream with a SELECT.
            this.#settings.positions?.putInWrite({ replid, offset, db: 0 });
          });
        } catch (err) {
          node.identity.reload();
          throw err;
        }
        summary = loaded.summary;
      }
    } finally {
      clearInterval(keepalive);
      this.#load = null;
      conn.resume();
    }
    node?.onHistoryChanged();
    const loaded = performance.now();
    // The primary is not silent during a load; we did not read.
    conn.lastIo = Date.now();
    this.#transfer = null;
    Object.assign(this.#position, { replid, offset, synced: true });
    this.#settings.runner().reset();
    this.#stream = this.#newStream(conn, offset);
    this.#counters.fullSyncs++;
    const { stream, module, empty, tooLong } = summary.skipped;
    const figures: FullSyncFigures = {
      bytes: summary.bytes,
      keys: summary.keys,
      skippedKeys: stream + module + empty + tooLong,
      announcedKeys: summary.announcedKeys,
      transferMs: Math.round(received - started),
      loadMs: Math.round(loaded - received),
    };
    this.#counters.lastFullSync = figures;
    const loadedLog = {
      primary: `${this.host}:${this.port}`,
      rdb_bytes: summary.bytes,
      rdb_version: summary.version,
      keys: summary.keys,
      announced_keys: summary.announcedKeys,
      skipped: summary.skipped,
      checksum: summary.checksum,
      transfer_ms: figures.transferMs,
      load_ms: figures.loadMs,
    };
    log.info(loadedLog, 'redis full sync loaded');
    const unread = unreadKeys(figures);
    if (unread !== 0) {
      // The checksum proved the bytes; a count that differs means keys were lost in reading
      // them. Another full sync would read them the same way, so the copy stays, flagged.
      log.error(
        loadedLog,
        `redis full sync: the primary's snapshot announced ${figures.announcedKeys} keys, ` +
          `${figures.keys + figures.skippedKeys} were read; this copy is not exact`,
      );
    }
    // A diskless primary holds the stream until this first ACK.
    conn.command('REPLCONF', 'ACK', offset);
  }

  #continue(answer: string): void {
    const position = this.#position;
    const replid = answer.slice('+CONTINUE'.length).trim();
    if (replid.length === 40 && replid !== position.replid) {
      // The primary's history changed name (a failover): the old id stays valid up to here.
      position.replid2 = position.replid;
      position.secondOffset = position.offset + 1;
      position.replid = replid;
    }
    this.#stream = this.#newStream(this.#conn!, position.offset);
    this.#counters.partialSyncs++;
    this.#settings.log.info(
      { primary: `${this.host}:${this.port}`, offset: position.offset },
      'redis partial resync: continuing the stream',
    );
  }

  #newStream(conn: PrimaryConnection, offset: number): CommandStream {
    const { keyspace, log, positions } = this.#settings;
    const runner = this.#settings.runner();
    return new CommandStream({
      keyspace,
      parser: this.#settings.createParser(),
      runner,
      offset,
      sendAck: (at) => conn.command('REPLCONF', 'ACK', at),
      onFailure: (err) => {
        log.error({ err }, 'redis replica: the command stream failed; reconnecting');
        if (!(err instanceof Error && err.name === 'ProtocolError')) this.#position.synced = false;
        conn.close('command stream failed');
      },
      onCommandError: (command, error) => {
        const n = ++this.#counters.commandErrors;
        if (n <= LOGGED_COMMAND_ERRORS || n % 1000 === 0) {
          log.warn({ command, error, errors: n }, 'redis replica: a command from the primary failed here');
        }
      },
      onCaughtUp: () => conn.resume(),
      ...(positions === undefined
        ? {}
        : {
            inWrite: (at: number) =>
              positions.putInWrite({ replid: this.#position.replid, offset: at, db: runner.db }),
          }),
    });
  }

  /** Every second: ACK the applied offset; drop a primary silent for too long. */
  #tick(conn: PrimaryConnection): void {
    // While a full sync loads, the socket is not read: silence is ours, not the primary's.
    if (this.#load === null && Date.now() - conn.lastIo > this.#settings.timeoutMs) {
      conn.close('timeout: no data from the primary');
      return;
    }
    if (this.#state === 'connected' && this.#stream !== null) {
      conn.command('REPLCONF', 'ACK', this.#stream.appliedOffset);
    }
  }
}

/** Keys the last full sync's RDB announced but did not hold (0 when it announced none). */
export function unreadKeys(figures: FullSyncFigures): number {
  if (figures.announcedKeys === null) return 0;
  return figures.announcedKeys - figures.keys - figures.skippedKeys;
}
