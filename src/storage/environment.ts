import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type Key, type RootDatabase } from 'lmdb';
import { OverlaidTable, type Pending } from './overlaid-table.js';
import { RecordedOp, visitRecorded, type RecordedWrites, type WriteRecorder } from './recorded-writes.js';
import { WriteAheadLog } from './write-ahead-log.js';

export type Durability = 'fsync' | 'flush';

/** lmdb-js' `keyEncoder`: writes a key into `target` at `position` (returns the end), reads one back. */
export interface KeyEncoder {
  writeKey(key: Key, target: Uint8Array, position: number): number;
  readKey(source: Uint8Array, start: number, end: number): Key;
}

/** The data directory cannot be opened by this version of Doppel. */
export class StorageFormatError extends Error {
  override readonly name = 'StorageFormatError';
}

/** The key, in the `storage` sub-database, of the mark of the last committed `write()`. */
const MARK_KEY = Buffer.from('commit-mark');
/** The key, in the `storage` sub-database, of the storage format the data directory holds. */
const FORMAT_KEY = Buffer.from('format');
/**
 * The storage format this code writes. 1: before compact collections (no marker was
 * written then). 2: small collections kept inside their key's record. 3: document ids
 * escaped in keys (see `engines/docs/doc-id-keys.ts`). 4: the keyspace's rows may live
 * in a second set of tables (see `engines/kv/table-sets.ts`). A binary older than a data
 * directory's format would misread it, so it refuses; an older directory is upgraded
 * at start, in the write that stamps the new format (`stampFormat`).
 */
export const STORAGE_FORMAT = 4;
/** Reused for every mark written (lmdb-js copies the value during `putSync`). */
const MARK_SCRATCH = Buffer.alloc(8);
/** For this long after a write ran, its visibility is checked on every event-loop turn, then every 1 ms. */
const EAGER_CHECK_MS = 3;
/** Queued row writes beyond which new writes are acknowledged only once committed (memory bound). */
const UNAPPLIED_LIMIT = 200_000;
/**
 * Queued writes go to LMDB at most this often (acknowledgements do not wait for it: the
 * log has them). Each commit rewrites the pages it touched and costs a sync: without a
 * pause, 20,000 SETs/s made ~250 commits/s, and the node spent 35–40 % of a core in the
 * kernel writing pages; with 10 ms, a fifth to a quarter less CPU (primary and replica),
 * and redis-benchmark SET without pipelining ran 10–30 % faster.
 */
const APPLY_INTERVAL_MS = 10;
/** How often the write-ahead log's segments that LMDB has synced are removed. */
const LOG_PRUNE_MS = 1000;
/** How long `close()` waits between the last flush and closing the environment. */
const CLOSE_GRACE_MS = 25;

/** A row write of a `writeNow` action, applied to LMDB when its turn commits. */
interface QueuedWrite {
  readonly db: Database<unknown, Key>;
  readonly key: Key;
  /** undefined: remove the row. */
  readonly value: unknown;
  readonly clear: boolean;
  /** An overlaid row's entry: skipped when a later write of the row is in the same transaction. */
  readonly row: Pending | undefined;
}

/** The writes `writeNow` ran in the current event-loop turn. */
interface QueuedTurn {
  readonly mark: number;
  readonly acks: ((failed: unknown) => void)[];
  readonly writes: QueuedWrite[];
  /** The last transaction's mark when the turn began. */
  readonly after: number;
}

interface VisibilityWaiter {
  readonly mark: number;
  /** When the write's action ran (performance.now()). */
  readonly since: number;
  readonly onVisible: () => void;
  /** Only for writes queued by `writeNow`: their commit failed. */
  readonly onFailed?: (err: unknown) => void;
}

export interface StorageOptions {
  readonly path: string;
  readonly durability: Durability;
  /** With `flush`: the longest an acknowledged write may wait for its disk sync before writers wait too. */
  readonly maxUnsyncedMs: number;
}

/**
 * The node's single LMDB environment and its named sub-databases. Every
 * mutation of the node goes through `write()`: one LMDB write transaction, so a
 * document, its sequence entry, its journal entry and any counters commit (or
 * not) together.
 */
export class Storage {
  readonly root: RootDatabase;
  /** The storage format the data directory held when opened (1: unmarked, or new). */
  readonly foundFormat: number;
  readonly #options: StorageOptions;
  #unsyncedSince: number | null = null;
  readonly #beforeCommit: (() => (() => void) | undefined)[] = [];
  readonly #afterAbort: ((undone: number | null) => void)[] = [];
  /** Commit marks: the mark of the last `write()` of each transaction (see `#watchVisibility`). */
  readonly #marks: Database<Buffer, Buffer>;
  #lastMark: number;
  /** Writes run but not yet seen committed; each is called once a commit shows its mark. */
  readonly #visibilityWaiters: VisibilityWaiter[] = [];
  #visibilityImmediate: NodeJS.Immediate | null = null;
  #visibilityTimer: NodeJS.Timeout | null = null;
  /** Off after a failed commit: then only lmdb-js' own resolution acknowledges. */
  #earlyAcks = true;
  #closed = false;
  /** Set while another thread runs a long write (see `whileWritingElsewhere`). */
  #heldBy: Promise<unknown> | null = null;
  /** Set while another thread writes in steps (see `whileSharingWrites`). */
  #askTurn: (() => void) | null = null;
  /** Write actions handed to lmdb-js that have not run yet. */
  #actionsWaiting = 0;
  /**
   * Where the action running now is: inside an LMDB transaction, queuing instructions
   * (`writeNow`), recording them for another thread (`record`), or none.
   */
  #running: 'transaction' | 'queue' | 'record' | null = null;
  #recorder: WriteRecorder | null = null;
  /** The sub-databases opened through this instance, by name (for `record` and `replay`). */
  readonly #tables = new Map<string, Database<unknown, Key>>();
  readonly #tableNames = new Map<object, string>();
  /** The mark of the write whose action runs now (see `currentMark`). */
  #currentMark = 0;
  /** The highest mark seen committed. */
  #visibleMark = 0;
  readonly #onVisible: ((mark: number) => void)[] = [];
  readonly #onLogged: ((lsn: number) => void)[] = [];
  readonly #overlaid = new Map<string, OverlaidTable>();
  #turn: QueuedTurn | null = null;
  /** Writes of closed turns not yet handed to lmdb-js (see `#applyQueued`), up to this mark. */
  #unapplied: QueuedWrite[] = [];
  #unappliedMark = 0;
  /** An apply transaction is in flight; the last one's mark. */
  #applying = false;
  #lastApplyMark = 0;
  /** Set by `startLogging`. */
  #log: WriteAheadLog | null = null;
  #logPruner: NodeJS.Timeout | null = null;
  /** The mark of the last write that ran in a transaction (see `writeNow`). */
  #lastTransactionMark = 0;
  readonly #onFatal: ((err: unknown) => void)[] = [];

  constructor(options: StorageOptions) {
    this.#options = options;
    mkdirSync(options.path, { recursive: true });
    this.root = open({
      path: options.path,
      maxDbs: 32,
      // A commit is written and visible first, then synced while the next transaction runs
      // (the sync of the next waits for it); `flushed` tells us when the disk has it.
      overlappingSync: true,
      separateFlushed: true,
      mapSize: 64 * 1024 * 1024 * 1024,
      // A data directory named like `tmp.x1` must not be taken for a file.
      noSubdir: false,
      noMemInit: true,
    });
    this.#marks = this.root.openDB<Buffer, Buffer>('storage', { encoding: 'binary', keyEncoding: 'binary' });
    this.foundFormat = this.#claimFormat();
    // Marks only grow, also across restarts: an old mark must never pass for a new commit.
    this.#lastMark = this.#readMark();
  }

  /** The data directory. */
  get path(): string {
    return this.#options.path;
  }

  /** Refuses a data directory written in a newer format; returns the one it holds (1 when unmarked). */
  #claimFormat(): number {
    const raw = this.#marks.getBinaryFast(FORMAT_KEY);
    const found = raw === undefined ? 1 : raw.readUInt32BE(0);
    if (found > STORAGE_FORMAT) {
      void this.root.close();
      throw new StorageFormatError(
        `the data directory ${this.#options.path} holds storage format ${found}, written by a newer ` +
          `Doppel; this one reads formats up to ${STORAGE_FORMAT}. Run the newer version, or ` +
          `start this one with another --data-dir.`,
      );
    }
    return found;
  }

  /** Inside the write that upgraded the data directory (or found it new): marks it as holding `STORAGE_FORMAT`. */
  stampFormat(): void {
    const stamp = Buffer.alloc(4);
    stamp.writeUInt32BE(STORAGE_FORMAT, 0);
    this.#marks.putSync(FORMAT_KEY, stamp);
  }

  /** A sub-database holding structured values (msgpack); `keys` replaces lmdb-js' key encoding. */
  structured<V, K extends string | number | (string | number)[]>(
    name: string,
    keys?: KeyEncoder,
  ): Database<V, K> {
    return this.#named(
      name,
      this.root.openDB<V, K>(name, {
        encoding: 'msgpack',
        sharedStructuresKey: Symbol.for('structures'),
        ...(keys === undefined ? {} : { keyEncoder: keys }),
      }),
    );
  }

  #named<V, K extends Key>(name: string, db: Database<V, K>): Database<V, K> {
    this.#tables.set(name, db);
    this.#tableNames.set(db, name);
    return db;
  }

  /** A sub-database of binary rows readable before they commit (one instance per name). */
  overlaid(name: string): OverlaidTable {
    let table = this.#overlaid.get(name);
    if (table === undefined) {
      table = new OverlaidTable(
        this,
        this.#named(
          name,
          this.root.openDB<Buffer, Buffer>(name, { encoding: 'binary', keyEncoding: 'binary' }),
        ),
      );
      this.#overlaid.set(name, table);
    }
    return table;
  }

  /** A sub-database holding strings (JSON text kept as written). */
  strings<K extends string | number | (string | number)[]>(name: string): Database<string, K> {
    return this.#named(name, this.root.openDB<string, K>(name, { encoding: 'string' }));
  }

  /** A sub-database holding raw bytes; `keys` replaces lmdb-js' key encoding. */
  binary<K extends string | number | (string | number)[]>(
    name: string,
    keys?: KeyEncoder,
  ): Database<Buffer, K> {
    return this.#named(
      name,
      this.root.openDB<Buffer, K>(name, {
        encoding: 'binary',
        ...(keys === undefined ? {} : { keyEncoder: keys }),
      }),
    );
  }

  /**
   * Runs `action` inside the next write transaction and resolves once it is
   * committed and as durable as the `durability` setting promises. `action`
   * runs synchronously with exclusive access and reads the latest state; a
   * throw discards everything it wrote (it runs in a child transaction).
   *
   * With `flush`, "committed" means visible in the data file (it survives a
   * crash of the process). lmdb-js itself resolves a commit only after that
   * commit's own disk sync, so `write()` watches for visibility (see
   * `#watchVisibility`) and resolves at whichever comes first.
   */
  async write<T>(action: () => T): Promise<T> {
    while (this.#heldBy !== null) await this.#heldBy.catch(() => undefined);
    this.#askTurn?.();
    let threwInside = false;
    let result: T | undefined;
    let visible: Promise<void> | undefined;
    let onVisible: (() => void) | undefined;
    const afterCommit: (() => void)[] = [];
    if (this.#options.durability === 'flush' && this.#earlyAcks) {
      visible = new Promise<void>((resolve) => {
        onVisible = resolve;
      });
    }
    const committed = this.#transaction(() => {
      try {
        result = action();
        this.#runBeforeCommit(afterCommit);
        if (onVisible !== undefined) this.#watchVisibility(onVisible);
        return result;
      } catch (err) {
        threwInside = true;
        throw err;
      }
    });
    try {
      // An action that threw never registers for visibility: its rejection comes from lmdb-js.
      if (visible === undefined) await committed;
      else await Promise.race([committed, visible]);
    } catch (err) {
      // A failed commit: the whole batch wrote nothing. From now on acknowledge only when
      // lmdb-js does, so that a later visible commit can never stand in for a failed one.
      if (!threwInside) this.#commitFailed(err);
      throw err;
    }
    for (const listener of afterCommit) listener();
    await this.#durable();
    return result as T;
  }

  #runBeforeCommit(afterCommit: (() => void)[]): void {
    for (const hook of this.#beforeCommit) {
      const then = hook();
      if (then !== undefined) afterCommit.push(then);
    }
  }

  /** After a commit: as durable as the setting promises. */
  async #durable(): Promise<void> {
    if (this.#options.durability === 'fsync') await this.root.flushed;
    else await this.#boundUnsynced();
  }

  /**
   * Whether `writeNow` may run an action at once: nothing else is queued to
   * run inside a transaction first (its journal entries must keep their
   * place), no other thread holds the writes, and acknowledging by
   * visibility is still trusted.
   */
  get canWriteNow(): boolean {
    return (
      this.#actionsWaiting === 0 &&
      this.#running === null &&
      this.#heldBy === null &&
      this.#askTurn === null &&
      this.#earlyAcks &&
      this.#log !== null &&
      !this.#closed
    );
  }

  /**
   * Runs `action` at once, outside any transaction: its writes (`put`,
   * `remove`, `clear` of this class or of an `OverlaidTable`, never lmdb-js'
   * `…Sync` forms) are queued and applied to LMDB later (`#applyQueued`),
   * its journal entries logged ahead (`logAhead`). Then calls `done` once
   * they are logged and every transaction that ran before is visible
   * (`failed` undefined), or with the error. Only when `canWriteNow`. Rows
   * read back before the commit come from the tables' overlays; the action
   * must validate before it writes, since nothing it queued can be taken
   * back, and should not throw.
   */
  writeNow(action: () => void, done: (failed: unknown) => void): void {
    if (!this.canWriteNow) throw new Error('writeNow while writes cannot be queued');
    const turn = this.#turn ?? this.#openTurn();
    this.#currentMark = turn.mark;
    this.#running = 'queue';
    try {
      action();
    } finally {
      this.#running = null;
    }
    turn.acks.push(done);
  }

  /**
   * The writes `writeNow` runs in one event-loop turn share a mark, their
   * journal state, one visibility waiter and one log write; the turn ends at
   * the end of the event-loop turn (`#closeTurn`).
   */
  #openTurn(): QueuedTurn {
    const turn: QueuedTurn = {
      mark: ++this.#lastMark,
      acks: [],
      writes: [],
      // Writes that ran in a transaction before are not in the log, and recovery stops at the
      // first entry it lacks: acknowledged only once those are visible.
      after: this.#lastTransactionMark,
    };
    this.#turn = turn;
    setImmediate(() => this.#closeTurn());
    return turn;
  }

  #acknowledge(turn: QueuedTurn, err: unknown): void {
    for (const done of turn.acks) done(err);
  }

  /**
   * Ends the open turn (at the end of its event-loop turn, or before a
   * transaction is queued after it): its writes go to lmdb-js as one
   * transaction, which ends with the turn's mark; acknowledged once logged.
   */
  #closeTurn(): void {
    const turn = this.#turn;
    if (turn === null) return;
    const afterCommit: (() => void)[] = [];
    this.#currentMark = turn.mark;
    this.#running = 'queue';
    try {
      this.#runBeforeCommit(afterCommit);
    } finally {
      this.#running = null;
      this.#turn = null;
    }
    for (const write of turn.writes) this.#unapplied.push(write);
    this.#unappliedMark = turn.mark;
    this.#applyQueued(false);
    // Committed: journal readers may see the entries (and overlays let go of the rows). A turn
    // that wrote nothing has no mark in LMDB to wait for (a failed SET NX, a DEL of no key).
    if (afterCommit.length > 0) {
      this.#visibilityWaiters.push({
        mark: turn.mark,
        since: performance.now(),
        onVisible: () => {
          for (const listener of afterCommit) listener();
        },
      });
    }
    // No visibility check from here: the apply that hands the turn to LMDB starts one.
    // While LMDB lags far behind, writers wait for it: the queued rows are held in memory.
    const after = this.#unapplied.length > UNAPPLIED_LIMIT ? turn.mark : turn.after;
    this.#log!.afterWrite((err) => {
      if (err !== undefined || this.#visibleMark >= after) this.#acknowledge(turn, err);
      else {
        this.#visibilityWaiters.push({
          mark: after,
          since: performance.now(),
          onVisible: () => this.#acknowledge(turn, undefined),
          onFailed: (failed) => this.#acknowledge(turn, failed),
        });
        this.#scheduleVisibilityCheck(true);
      }
    });
  }

  /**
   * Hands the writes of closed turns to lmdb-js as one transaction that ends
   * with their last mark. One at a time, and at most every
   * `APPLY_INTERVAL_MS` (`force`: at once, also while one is in flight,
   * before another transaction is queued behind them): writes that arrive
   * meanwhile wait and then go together, so a busy node commits (and syncs)
   * far fewer, larger transactions. They are acknowledged from the log, not
   * by these commits.
   */
  #applyQueued(force: boolean): void {
    if (this.#unapplied.length === 0 || (this.#applying && !force)) return;
    const writes = this.#unapplied;
    const mark = this.#unappliedMark;
    const started = performance.now();
    this.#unapplied = [];
    this.#applying = true;
    const committed = this.root.childTransaction(() => {
      for (const write of writes) {
        const later = write.row?.next;
        if (later !== undefined && later.mark <= mark) continue;
        if (write.clear) write.db.clearSync();
        else if (write.value === undefined) write.db.removeSync(write.key);
        else write.db.putSync(write.key, write.value);
      }
      MARK_SCRATCH.writeDoubleBE(mark, 0);
      this.#marks.putSync(MARK_KEY, MARK_SCRATCH);
    });
    committed.then(undefined, (err: unknown) => this.#commitFailed(err));
    this.#visibilityWaiters.push({
      mark,
      since: performance.now(),
      onVisible: () => {
        const next = (): void => {
          // A forced apply since then releases the next one itself.
          if (this.#lastApplyMark !== mark || this.#closed) return;
          this.#applying = false;
          this.#applyQueued(false);
        };
        const wait = APPLY_INTERVAL_MS - (performance.now() - started);
        if (wait > 0) setTimeout(next, wait).unref();
        else next();
      },
    });
    this.#lastApplyMark = mark;
    this.#scheduleVisibilityCheck(true);
  }

  /** Inside a write action: puts a row, at once in a transaction, with the turn's writes in `writeNow`. */
  put<K extends Key, V>(db: Database<V, K>, key: K, value: V, row?: Pending): void {
    if (this.#running === 'queue') this.#queue(db, key, value, row);
    else if (this.#running === 'record') this.#record(db, key, value, RecordedOp.Put);
    else db.putSync(key, value);
  }

  /**
   * Inside a transaction: puts a row unless it exists (one lookup, not two); whether it did.
   * While recording: true (the thread that replays it finds out, see `replay`).
   */
  putIfAbsent<K extends Key, V>(db: Database<V, K>, key: K, value: V): boolean {
    if (this.#running === 'record') {
      this.#record(db, key, value, RecordedOp.Insert);
      return true;
    }
    if (this.#running !== 'transaction') throw new Error('putIfAbsent outside a transaction');
    // lmdb-js types this as void; it returns whether the row was written.
    const written: unknown = db.putSync(key, value, { noOverwrite: true });
    return written === true;
  }

  /** Inside a write action: removes a row (see `put`). */
  remove<K extends Key, V>(db: Database<V, K>, key: K, row?: Pending): void {
    if (this.#running === 'queue') this.#queue(db, key, undefined, row);
    else if (this.#running === 'record') this.#record(db, key, undefined, RecordedOp.Remove);
    else db.removeSync(key);
  }

  /** Inside a write action: removes every row of `db` (see `put`). */
  clear<K extends Key, V>(db: Database<V, K>): void {
    if (this.#running === 'queue') {
      this.#turn!.writes.push({ db: db, key: '', value: undefined, clear: true, row: undefined });
    } else if (this.#running === 'record') this.#recordClear(db);
    else db.clearSync();
  }

  /**
   * Runs a write action whose row writes are recorded in `recorder` instead of
   * written, for another thread to write (`replay`): a long load decodes on
   * one thread while another writes. Reads see none of the recorded rows.
   */
  record<T>(recorder: WriteRecorder, action: () => T): T {
    if (this.#running !== null) throw new Error('record inside another write');
    this.#running = 'record';
    this.#recorder = recorder;
    try {
      return action();
    } finally {
      this.#running = null;
      this.#recorder = null;
    }
  }

  #record(db: object, key: Key, value: unknown, op: RecordedOp): void {
    const table = this.#recordedName(db);
    const recorder = this.#recorder!;
    if (op === RecordedOp.Remove) {
      if (!(key instanceof Uint8Array)) throw new Error('recording a remove of a key that is not binary');
      recorder.remove(table, key);
    } else if (key instanceof Uint8Array && value instanceof Uint8Array) recorder.put(table, key, value, op);
    else recorder.putStructured(table, key, value);
  }

  #recordClear(db: object): void {
    this.#recorder!.clear(this.#recordedName(db));
  }

  #recordedName(db: object): string {
    const table = this.#tableNames.get(db);
    if (table === undefined) throw new Error('recording a write to a table not opened through Storage');
    return table;
  }

  /**
   * Inside a transaction: writes what another thread recorded (`record`), in
   * order, into the tables of the same names opened here. Stops at the first
   * insert whose row exists and returns that row's table and key (the caller
   * decides what that means); otherwise null.
   */
  replay(writes: RecordedWrites): { table: string; key: Key } | null {
    if (this.#running !== 'transaction') throw new Error('replay outside a transaction');
    let existing: { table: string; key: Key } | null = null;
    visitRecorded(writes, (op, table, key, value) => {
      const db = this.#tables.get(table);
      if (db === undefined) throw new Error(`replaying writes to ${table}, which is not open here`);
      switch (op) {
        case RecordedOp.Put:
        case RecordedOp.PutStructured:
          db.putSync(key, value);
          return true;
        case RecordedOp.Insert:
          if ((db.putSync(key, value, { noOverwrite: true }) as unknown) === true) return true;
          existing = { table, key };
          return false;
        case RecordedOp.Remove:
          db.removeSync(key);
          return true;
        case RecordedOp.Clear:
          db.clearSync();
          return true;
      }
    });
    return existing;
  }

  #queue<K extends Key, V>(db: Database<V, K>, key: K, value: V | undefined, row: Pending | undefined): void {
    this.#turn!.writes.push({ db: db, key, value, clear: false, row });
  }

  /**
   * Inside a `writeNow` action: logs the journal entry `lsn` ahead of its
   * commit; returns a copy of `frame` that stays as it is (to be stored).
   */
  logAhead(lsn: number, frame: Buffer): Buffer {
    return this.#log!.append(lsn, frame);
  }

  /** The directory of the write-ahead log (see `startLogging`). */
  get logDirectory(): string {
    return join(this.#options.path, 'wal');
  }

  /**
   * Lets `writeNow` run (with durability=flush): writes are then logged ahead
   * and acknowledged once logged. Call once the log's entries are all in
   * LMDB and synced (after a recovery). `head` tells the journal's committed
   * LSN, to remove the log's segments LMDB holds.
   */
  startLogging(head: () => number): void {
    if (this.#options.durability !== 'flush') return;
    this.#log = new WriteAheadLog(this.logDirectory, {
      maxUnsyncedMs: this.#options.maxUnsyncedMs,
      onWritten: (lsn) => {
        for (const listener of this.#onLogged) listener(lsn);
      },
    });
    this.#logPruner = setInterval(() => {
      const lsn = head();
      this.root.flushed.then(
        () => this.#log?.dropThrough(lsn),
        () => undefined,
      );
    }, LOG_PRUNE_MS).unref();
  }

  /**
   * A batch failed to commit: no write still waiting for visibility is
   * acknowledged by it (queued ones fail; others wait for lmdb-js' own
   * answer), overlays forget their rows, and from now on every write runs in
   * a transaction, acknowledged only when lmdb-js resolves it.
   */
  #commitFailed(err: unknown): void {
    // Writes acknowledged from the log are not in LMDB: only a restart's recovery brings them back.
    if (this.#log !== null) for (const listener of this.#onFatal) listener(err);
    this.#earlyAcks = false;
    const waiters = this.#visibilityWaiters.splice(0);
    for (const listener of this.#afterAbort) listener(null);
    for (const waiter of waiters) waiter.onFailed?.(err);
  }

  /**
   * Whether writes are logged ahead (`startLogging`), so that `writeNow` may
   * run: a transaction's rows must then be readable before they commit too.
   */
  get logging(): boolean {
    return this.#log !== null;
  }

  /** Inside a write action: `transaction` (puts apply now), `queue` (see `writeNow`), or null outside one. */
  get running(): 'transaction' | 'queue' | 'record' | null {
    return this.#running;
  }

  /** The mark of the running write action: once `visibleMark` reaches it, its rows are committed. */
  get currentMark(): number {
    return this.#currentMark;
  }

  /** Calls `listener` when the node must stop: a commit failed after its writes were acknowledged from the log. */
  onFatal(listener: (err: unknown) => void): void {
    this.#onFatal.push(listener);
  }

  /** Calls `listener` with the last LSN written to the write-ahead log after each write to it. */
  onLogged(listener: (lsn: number) => void): void {
    this.#onLogged.push(listener);
  }

  /** Calls `listener` with the highest committed mark whenever it grows. */
  onVisible(listener: (mark: number) => void): void {
    this.#onVisible.push(listener);
  }

  /** Resolves once no write waits for its visibility any more (each is visible or failed). */
  async #settled(): Promise<void> {
    this.#closeTurn();
    this.#applyQueued(true);
    const waiters = this.#visibilityWaiters;
    while (waiters.length > 0) {
      const { mark } = waiters[waiters.length - 1];
      await new Promise<void>((resolve) => {
        waiters.push({ mark, since: performance.now(), onVisible: resolve, onFailed: () => resolve() });
        this.#scheduleVisibilityCheck(true);
      });
    }
  }

  /**
   * Runs `work`, which has another thread write in steps that end early when
   * asked, and meanwhile calls `askTurn` at every write of this thread: the
   * other thread then commits its current step and lets this write in.
   */
  async whileSharingWrites<T>(askTurn: () => void, work: () => Promise<T>): Promise<T> {
    await this.#settled();
    this.#askTurn = askTurn;
    try {
      return await work();
    } finally {
      this.#askTurn = null;
    }
  }

  /**
   * `write` for rows nobody has been promised yet (a load staged in tables
   * that a later write makes live): resolves once committed, without waiting
   * for the disk. The later write brings them to disk too, as commits reach
   * it in order.
   */
  async writeStaged<T>(action: () => T): Promise<T> {
    while (this.#heldBy !== null) await this.#heldBy.catch(() => undefined);
    return await this.#transaction(action);
  }

  /**
   * Runs `action` in a child transaction of the next batch, after the queued
   * writes (this turn's too, with their journal state): a throw discards
   * exactly its writes — undone in the overlays — never the other writers'
   * that share the batch.
   */
  #transaction<T>(action: () => T): Promise<T> {
    let ran = false;
    this.#closeTurn();
    this.#applyQueued(true);
    this.#actionsWaiting++;
    const committed = this.root.childTransaction(() => {
      ran = true;
      this.#actionsWaiting--;
      this.#running = 'transaction';
      this.#currentMark = ++this.#lastMark;
      try {
        return action();
      } catch (err) {
        for (const listener of this.#afterAbort) listener(this.#currentMark);
        throw err;
      } finally {
        this.#running = null;
      }
    });
    // A batch that failed before reaching this action never runs it.
    committed.catch(() => {
      if (!ran) this.#actionsWaiting--;
    });
    return committed;
  }

  /**
   * Called inside a write action: stamps the transaction with the next commit
   * mark and calls `onVisible` once a fresh read snapshot shows that mark (the
   * commit is then in the data file). Checks run on every event-loop turn for
   * the first few milliseconds (a commit normally becomes visible within a
   * fraction of one), then every millisecond.
   *
   * Marks grow with every write, so a visible mark proves every earlier write
   * of the batch committed too. The one gap: lmdb-js commits this child
   * transaction after the action returns; should that child commit fail (it
   * only fails for LMDB errors such as a full map) while a later write's
   * commit succeeds, that later mark would cover this write. A failed commit
   * turns early acknowledgement off for good.
   */
  #watchVisibility(onVisible: () => void): void {
    const mark = (this.#lastTransactionMark = this.#currentMark);
    MARK_SCRATCH.writeDoubleBE(mark, 0);
    this.#marks.putSync(MARK_KEY, MARK_SCRATCH);
    this.#visibilityWaiters.push({ mark, since: performance.now(), onVisible });
    this.#scheduleVisibilityCheck(true);
  }

  #scheduleVisibilityCheck(eager: boolean): void {
    if (this.#visibilityImmediate !== null || this.#visibilityTimer !== null || this.#closed) return;
    if (eager) this.#visibilityImmediate = setImmediate(this.#checkVisibility).unref();
    else this.#visibilityTimer = setTimeout(this.#checkVisibility, 1).unref();
  }

  readonly #checkVisibility = (): void => {
    this.#visibilityImmediate = null;
    this.#visibilityTimer = null;
    const waiters = this.#visibilityWaiters;
    if (waiters.length === 0 || this.#closed) return;
    // A fresh snapshot: the shared read transaction may predate the commit.
    this.root.resetReadTxn();
    const visibleMark = this.#readMark();
    if (visibleMark > this.#visibleMark) {
      this.#visibleMark = visibleMark;
      for (const listener of this.#onVisible) listener(visibleMark);
    }
    // Not only from the front: a turn waiting for its apply (`APPLY_INTERVAL_MS`) must not
    // hold back a write acknowledged once an earlier transaction is visible.
    let kept = 0;
    let lowest = Infinity;
    for (let i = 0; i < waiters.length; i++) {
      const waiter = waiters[i];
      if (waiter.mark <= visibleMark) waiter.onVisible();
      else {
        waiters[kept++] = waiter;
        lowest = Math.min(lowest, waiter.mark);
      }
    }
    waiters.length = kept;
    // Until LMDB was handed the lowest one, nothing can show it: the apply that does checks again.
    if (kept === 0 || lowest > Math.max(this.#lastApplyMark, this.#lastTransactionMark)) return;
    this.#scheduleVisibilityCheck(performance.now() - waiters[0].since < EAGER_CHECK_MS);
  };

  #readMark(): number {
    const raw = this.#marks.getBinaryFast(MARK_KEY);
    return raw === undefined ? 0 : raw.readDoubleBE(0);
  }

  /**
   * Registers a hook run at the end of every `write()` action, inside its transaction.
   * What it returns runs once that write has committed: a later write's action may run
   * before an earlier one's commit resolves, so state captured here is what is committed.
   */
  beforeCommit(hook: () => (() => void) | undefined): void {
    this.#beforeCommit.push(hook);
  }

  /**
   * Runs `work`, in which another thread writes to this environment and this
   * thread then re-reads what it caches (counters, journal state), holding
   * every `write()` of this thread until it is done: such a write would
   * otherwise wait for LMDB's write lock and then run on stale caches.
   */
  async whileWritingElsewhere<T>(work: () => Promise<T>): Promise<T> {
    while (this.#heldBy !== null) await this.#heldBy.catch(() => undefined);
    // Held from now on; the work starts once the writes queued before are committed.
    const running = this.#settled().then(work);
    this.#heldBy = running;
    try {
      return await running;
    } finally {
      this.#heldBy = null;
    }
  }

  /**
   * Registers a listener run when writes are undone: an action that threw
   * inside its transaction (`undone` is its mark: only its own writes are
   * gone), or a failed commit (`null`: whatever was not visible yet may be).
   */
  afterAbort(listener: (undone: number | null) => void): void {
    this.#afterAbort.push(listener);
  }

  async #boundUnsynced(): Promise<void> {
    const now = Date.now();
    if (this.#unsyncedSince === null) {
      this.#unsyncedSince = now;
      void this.root.flushed.then(() => {
        this.#unsyncedSince = null;
      });
      return;
    }
    if (now - this.#unsyncedSince > this.#options.maxUnsyncedMs) await this.root.flushed;
  }

  /** Waits for every committed write to reach the disk. */
  async sync(): Promise<void> {
    await this.root.flushed;
  }

  async close(): Promise<void> {
    // The queued writes go to LMDB first: the log is removed below.
    await this.#settled();
    this.#closed = true;
    if (this.#visibilityImmediate !== null) clearImmediate(this.#visibilityImmediate);
    if (this.#visibilityTimer !== null) clearTimeout(this.#visibilityTimer);
    if (this.#logPruner !== null) clearInterval(this.#logPruner);
    await this.root.flushed;
    // Everything logged is in LMDB and synced now.
    this.#log?.close();
    if (this.#log !== null) WriteAheadLog.clear(this.logDirectory);
    // lmdb-js 3.5 reports a commit before its write thread is done with the environment
    // (it still looks up commit listeners on it); closing in that window crashes the
    // process with SIGSEGV (seen 1 in ~1,500 closes under CPU contention). The thread's
    // remaining work takes microseconds; this pause outlasts a preempted one.
    await new Promise((resolve) => setTimeout(resolve, CLOSE_GRACE_MS));
    await this.root.close();
  }
}
