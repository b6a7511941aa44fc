import { mkdirSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';

export type Durability = 'fsync' | 'flush';

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
  readonly #options: StorageOptions;
  #unsyncedSince: number | null = null;
  readonly #afterCommit: (() => void)[] = [];
  readonly #beforeCommit: (() => void)[] = [];
  readonly #afterAbort: (() => void)[] = [];

  constructor(options: StorageOptions) {
    this.#options = options;
    mkdirSync(options.path, { recursive: true });
    this.root = open({
      path: options.path,
      maxDbs: 32,
      // Commits resolve once visible (they already survive a process crash); `flushed` tells us
      // when the background sync reached the disk.
      overlappingSync: true,
      separateFlushed: true,
      mapSize: 64 * 1024 * 1024 * 1024,
      // A data directory named like `tmp.x1` must not be taken for a file.
      noSubdir: false,
      noMemInit: true,
    });
  }

  /** A sub-database holding structured values (msgpack). */
  structured<V, K extends string | number | (string | number)[]>(name: string): Database<V, K> {
    return this.root.openDB<V, K>(name, {
      encoding: 'msgpack',
      sharedStructuresKey: Symbol.for('structures'),
    });
  }

  /** A sub-database holding strings (JSON text kept as written). */
  strings<K extends string | number | (string | number)[]>(name: string): Database<string, K> {
    return this.root.openDB<string, K>(name, { encoding: 'string' });
  }

  /** A sub-database holding raw bytes. */
  binary<K extends string | number | (string | number)[]>(name: string): Database<Buffer, K> {
    return this.root.openDB<Buffer, K>(name, { encoding: 'binary' });
  }

  /**
   * Runs `action` inside the next write transaction and resolves once it is
   * committed and as durable as the `durability` setting promises. `action`
   * runs synchronously with exclusive access and reads the latest state; a
   * throw discards everything it wrote (it runs in a child transaction).
   */
  async write<T>(action: () => T): Promise<T> {
    let result: T;
    let threwInside = false;
    try {
      // A child transaction per call: a throw discards exactly this call's writes, never the
      // other writers' that share the batch.
      result = await this.root.childTransaction(() => {
        try {
          const value = action();
          for (const hook of this.#beforeCommit) hook();
          return value;
        } catch (err) {
          threwInside = true;
          for (const listener of this.#afterAbort) listener();
          throw err;
        }
      });
    } catch (err) {
      // A failed commit: the whole batch wrote nothing.
      if (!threwInside) for (const listener of this.#afterAbort) listener();
      throw err;
    }
    for (const listener of this.#afterCommit) listener();
    if (this.#options.durability === 'fsync') {
      await this.root.flushed;
    } else {
      await this.#boundUnsynced();
    }
    return result;
  }

  /** Registers a hook run at the end of every `write()` action, inside its transaction. */
  beforeCommit(hook: () => void): void {
    this.#beforeCommit.push(hook);
  }

  /** Registers a listener run when a `write()` fails (its transaction wrote nothing). */
  afterAbort(listener: () => void): void {
    this.#afterAbort.push(listener);
  }

  /** Registers a listener run after every commit of `write()` (to wake readers of new data). */
  afterCommit(listener: () => void): void {
    this.#afterCommit.push(listener);
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
    await this.root.flushed;
    await this.root.close();
  }
}
