import { EventEmitter } from 'node:events';
import type { Database } from 'lmdb';
import type { Storage } from '../../storage/environment.js';
import type { JournalEntry, JournalRecord } from './journal-entry.js';

export interface RetentionLimits {
  /** Most bytes retained, whatever the cursors. */
  readonly maxBytes: number;
  /** Oldest entry retained, in ms, whatever the cursors. */
  readonly maxAgeMs: number;
  /** Entries every cursor has passed are still kept up to this many bytes (for resyncs). */
  readonly backlogBytes: number;
}

interface JournalState {
  head: number;
  /** Lowest LSN still stored (head + 1 when empty). */
  low: number;
  bytes: number;
}

interface StoredRecord {
  readonly ts: number;
  readonly bytes: number;
  readonly entry: JournalEntry;
}

export interface JournalStatus {
  readonly head_lsn: number;
  readonly low_lsn: number;
  readonly entries: number;
  readonly bytes: number;
  readonly oldest_ts: number | null;
  readonly cursors: Record<string, number>;
  readonly limits: RetentionLimits;
}

/** Approximate stored size: the payload strings dominate; the rest is a small constant. */
function entrySize(entry: JournalEntry): number {
  switch (entry.k) {
    case 'doc':
      return 64 + entry.id.length + entry.body.length + entry.path.length * 36;
    case 'local':
      return 48 + entry.id.length + (entry.body?.length ?? 0);
    default:
      return 128;
  }
}

/**
 * The node-wide ordered log of committed mutations. `append` is called only
 * inside a storage write (same transaction as the mutation). Consumers read
 * by LSN, wait for new entries, and keep durable cursors; retention trims
 * below the lowest cursor within byte and age bounds.
 */
export class Journal {
  readonly #entries: Database<StoredRecord, number>;
  readonly #meta: Database<JournalState, string>;
  readonly #cursors: Database<number, string>;
  readonly #storage: Storage;
  readonly #limits: RetentionLimits;
  readonly #events = new EventEmitter();
  #state: JournalState;
  /** State as of the last commit, which readers may see. */
  #committedHead: number;

  constructor(storage: Storage, limits: RetentionLimits) {
    this.#storage = storage;
    this.#limits = limits;
    this.#entries = storage.structured<StoredRecord, number>('journal');
    this.#meta = storage.structured<JournalState, string>('journal-meta');
    this.#cursors = storage.structured<number, string>('journal-cursors');
    this.#state = this.#meta.get('state') ?? { head: 0, low: 1, bytes: 0 };
    this.#committedHead = this.#state.head;
    this.#events.setMaxListeners(0);
    storage.afterCommit(() => this.#published());
  }

  /** Must run inside `Storage.write`. Returns the entry's LSN. */
  append(entry: JournalEntry, ts: number): number {
    const state = this.#meta.get('state') ?? { head: 0, low: 1, bytes: 0 };
    const lsn = state.head + 1;
    const bytes = entrySize(entry);
    this.#entries.putSync(lsn, { ts, bytes, entry });
    const next = { head: lsn, low: state.low, bytes: state.bytes + bytes };
    this.#meta.putSync('state', next);
    this.#state = next;
    return lsn;
  }

  #published(): void {
    if (this.#state.head === this.#committedHead) return;
    this.#committedHead = this.#state.head;
    this.#events.emit('head', this.#committedHead);
  }

  get head(): number {
    return this.#committedHead;
  }

  get low(): number {
    return this.#state.low;
  }

  /** Entries with LSN > `after`, at most `limit`. Throws nothing; a gap below `low` is the caller's to detect. */
  read(after: number, limit: number): JournalRecord[] {
    const out: JournalRecord[] = [];
    const end = this.#committedHead + 1;
    for (const { key, value } of this.#entries.getRange({ start: after + 1, end, limit })) {
      out.push({ lsn: key, ts: value.ts, entry: value.entry });
    }
    return out;
  }

  /** True when entries after `after` are no longer all retained. */
  fellBehind(after: number): boolean {
    return after + 1 < this.#state.low;
  }

  /** Resolves once the head passes `after` (at once if it already has), or when `signal` aborts. */
  waitFor(after: number, signal?: AbortSignal): Promise<void> {
    if (this.#committedHead > after || signal?.aborted === true) return Promise.resolve();
    return new Promise((resolve) => {
      const onHead = (head: number): void => {
        if (head > after) done();
      };
      const done = (): void => {
        this.#events.off('head', onHead);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.#events.on('head', onHead);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  cursor(name: string): number | undefined {
    return this.#cursors.get(name);
  }

  async setCursor(name: string, lsn: number): Promise<void> {
    await this.#storage.write(() => this.#cursors.putSync(name, lsn));
  }

  async dropCursor(name: string): Promise<void> {
    await this.#storage.write(() => this.#cursors.removeSync(name));
  }

  status(): JournalStatus {
    const cursors: Record<string, number> = {};
    for (const { key, value } of this.#cursors.getRange()) cursors[key] = value;
    const [first] = [...this.#entries.getRange({ start: this.#state.low, limit: 1 })];
    return {
      head_lsn: this.#committedHead,
      low_lsn: this.#state.low,
      entries: this.#committedHead - this.#state.low + 1,
      bytes: this.#state.bytes,
      oldest_ts: first?.value.ts ?? null,
      cursors,
      limits: this.#limits,
    };
  }

  /**
   * Drops entries that retention no longer requires: everything past the age
   * or byte bound, and entries below every cursor beyond the backlog allowance.
   * Returns how many entries were removed.
   */
  async trim(now = Date.now(), maxPerPass = 10_000): Promise<number> {
    const cursorValues = [...this.#cursors.getRange()].map((c) => c.value);
    const lowestCursor = cursorValues.length === 0 ? this.#committedHead : Math.min(...cursorValues);
    return this.#storage.write(() => {
      const state = this.#meta.get('state') ?? { head: 0, low: 1, bytes: 0 };
      let { low, bytes } = state;
      // Bytes held by entries every consumer has passed (they only serve as backlog).
      let passedBytes = 0;
      for (const { key, value } of this.#entries.getRange({ start: low, end: lowestCursor + 1 })) {
        if (key > lowestCursor) break;
        passedBytes += value.bytes;
      }
      let removed = 0;
      for (const { key, value } of this.#entries.getRange({ start: low })) {
        if (removed >= maxPerPass) break;
        const tooOld = now - value.ts > this.#limits.maxAgeMs;
        const tooBig = bytes > this.#limits.maxBytes;
        const passedAndOverBacklog = key <= lowestCursor && passedBytes > this.#limits.backlogBytes;
        if (!tooOld && !tooBig && !passedAndOverBacklog) break;
        this.#entries.removeSync(key);
        bytes -= value.bytes;
        if (key <= lowestCursor) passedBytes -= value.bytes;
        low = key + 1;
        removed++;
      }
      if (removed > 0) {
        const next = { head: state.head, low, bytes };
        this.#meta.putSync('state', next);
        this.#state = next;
      }
      return removed;
    });
  }
}
