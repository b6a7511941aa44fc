import { mkdirSync } from 'node:fs';
import { open, type Database, type Key, type RootDatabase } from 'lmdb';

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
/** How long `close()` waits between the last flush and closing the environment. */
const CLOSE_GRACE_MS = 25;

interface VisibilityWaiter {
  readonly mark: number;
  /** When the write's action ran (performance.now()). */
  readonly since: number;
  readonly onVisible: () => void;
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
  readonly #afterAbort: (() => void)[] = [];
  /** Commit marks: the mark of the last `write()` of each transaction (see `#watchVisibility`). */
  readonly #marks: Database<Buffer, Buffer>;
  #lastMark: number;
  /** Writes run but not yet seen committed, in mark order. */
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
    return this.root.openDB<V, K>(name, {
      encoding: 'msgpack',
      sharedStructuresKey: Symbol.for('structures'),
      ...(keys === undefined ? {} : { keyEncoder: keys }),
    });
  }

  /** A sub-database holding strings (JSON text kept as written). */
  strings<K extends string | number | (string | number)[]>(name: string): Database<string, K> {
    return this.root.openDB<string, K>(name, { encoding: 'string' });
  }

  /** A sub-database holding raw bytes; `keys` replaces lmdb-js' key encoding. */
  binary<K extends string | number | (string | number)[]>(
    name: string,
    keys?: KeyEncoder,
  ): Database<Buffer, K> {
    return this.root.openDB<Buffer, K>(name, {
      encoding: 'binary',
      ...(keys === undefined ? {} : { keyEncoder: keys }),
    });
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
    // A child transaction per call: a throw discards exactly this call's writes, never the
    // other writers' that share the batch.
    const committed = this.root.childTransaction(() => {
      try {
        result = action();
        for (const hook of this.#beforeCommit) {
          const then = hook();
          if (then !== undefined) afterCommit.push(then);
        }
        if (onVisible !== undefined) this.#watchVisibility(onVisible);
        return result;
      } catch (err) {
        threwInside = true;
        for (const listener of this.#afterAbort) listener();
        throw err;
      }
    });
    try {
      // An action that threw never registers for visibility: its rejection comes from lmdb-js.
      if (visible === undefined) await committed;
      else await Promise.race([committed, visible]);
    } catch (err) {
      if (!threwInside) {
        // A failed commit: the whole batch wrote nothing. From now on acknowledge only when
        // lmdb-js does, so that a later visible commit can never stand in for a failed one.
        this.#earlyAcks = false;
        this.#visibilityWaiters.length = 0;
        for (const listener of this.#afterAbort) listener();
      }
      throw err;
    }
    // Resolved by visibility, lmdb-js still settles the commit later; nothing waits for it then.
    committed.catch(() => undefined);
    for (const listener of afterCommit) listener();
    if (this.#options.durability === 'fsync') {
      await this.root.flushed;
    } else {
      await this.#boundUnsynced();
    }
    return result as T;
  }

  /**
   * Runs `work`, which has another thread write in steps that end early when
   * asked, and meanwhile calls `askTurn` at every write of this thread: the
   * other thread then commits its current step and lets this write in.
   */
  async whileSharingWrites<T>(askTurn: () => void, work: () => Promise<T>): Promise<T> {
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
    return await this.root.childTransaction(action);
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
    const mark = ++this.#lastMark;
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
    let done = 0;
    while (done < waiters.length && waiters[done].mark <= visibleMark) waiters[done++].onVisible();
    if (done > 0) waiters.splice(0, done);
    if (waiters.length === 0) return;
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
    const running = work();
    this.#heldBy = running;
    try {
      return await running;
    } finally {
      this.#heldBy = null;
    }
  }

  /** Registers a listener run when a `write()` fails (its transaction wrote nothing). */
  afterAbort(listener: () => void): void {
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
    this.#closed = true;
    if (this.#visibilityImmediate !== null) clearImmediate(this.#visibilityImmediate);
    if (this.#visibilityTimer !== null) clearTimeout(this.#visibilityTimer);
    await this.root.flushed;
    // lmdb-js 3.5 reports a commit before its write thread is done with the environment
    // (it still looks up commit listeners on it); closing in that window crashes the
    // process with SIGSEGV (seen 1 in ~1,500 closes under CPU contention). The thread's
    // remaining work takes microseconds; this pause outlasts a preempted one.
    await new Promise((resolve) => setTimeout(resolve, CLOSE_GRACE_MS));
    await this.root.close();
  }
}
