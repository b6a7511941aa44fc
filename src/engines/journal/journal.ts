import { EventEmitter } from 'node:events';
import type { Database } from 'lmdb';
import { Packr } from 'msgpackr';
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

/**
 * Entries are stored as a 12-byte header (commit time as a float64, size as a
 * uint32) followed by the msgpack entry, so retention reads sizes and times
 * without decoding bodies.
 */
const HEADER_BYTES = 12;
const packr = new Packr({ useRecords: false });

type DocEntry = Extract<JournalEntry, { k: 'doc' }>;

/** Document entries, by far the most frequent, are packed as arrays: no key names per entry. */
function compact(entry: JournalEntry): unknown {
  if (entry.k !== 'doc') return entry;
  const { db, id, seq, path, deleted, body, atts } = entry;
  return atts === undefined
    ? [0, db, id, seq, path, deleted, body]
    : [0, db, id, seq, path, deleted, body, atts];
}

function expand(value: unknown): JournalEntry {
  if (!Array.isArray(value)) return value as JournalEntry;
  const [, db, id, seq, path, deleted, body, atts] = value as [
    0,
    string,
    string,
    number,
    string[],
    boolean,
    string,
    DocEntry['atts'],
  ];
  return atts === undefined
    ? { k: 'doc', db, id, seq, path, deleted, body }
    : { k: 'doc', db, id, seq, path, deleted, body, atts };
}

function frame(entry: JournalEntry, ts: number): Buffer {
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  const body = packr.pack(compact(entry));
  header.writeDoubleLE(ts, 0);
  header.writeUInt32LE(HEADER_BYTES + body.length, 8);
  return Buffer.concat([header, body], HEADER_BYTES + body.length);
}

const frameTime = (bytes: Buffer): number => bytes.readDoubleLE(0);
const frameSize = (bytes: Buffer): number => bytes.readUInt32LE(8);

export interface JournalStatus {
  readonly head_lsn: number;
  readonly low_lsn: number;
  readonly entries: number;
  readonly bytes: number;
  readonly oldest_ts: number | null;
  readonly cursors: Record<string, number>;
  readonly limits: RetentionLimits;
}

/**
 * The node-wide ordered log of committed mutations. `append` is called only
 * inside a storage write (same transaction as the mutation). Consumers read
 * by LSN, wait for new entries, and keep durable cursors; retention trims
 * below the lowest cursor within byte and age bounds.
 */
export class Journal {
  readonly #entries: Database<Buffer, number>;
  readonly #meta: Database<JournalState, string>;
  readonly #cursors: Database<number, string>;
  readonly #storage: Storage;
  readonly #limits: RetentionLimits;
  readonly #events = new EventEmitter();
  #state: JournalState;
  #dirty = false;
  /** State as of the last commit, which readers may see. */
  #committedHead: number;

  constructor(storage: Storage, limits: RetentionLimits) {
    this.#storage = storage;
    this.#limits = limits;
    this.#entries = storage.binary<number>('journal');
    this.#meta = storage.structured<JournalState, string>('journal-meta');
    this.#cursors = storage.structured<number, string>('journal-cursors');
    this.#state = this.#meta.get('state') ?? { head: 0, low: 1, bytes: 0 };
    this.#committedHead = this.#state.head;
    this.#events.setMaxListeners(0);
    storage.beforeCommit(() => this.#persistState());
    storage.afterCommit(() => this.#published());
    storage.afterAbort(() => this.#reload());
  }

  /** Must run inside `Storage.write`. Returns the entry's LSN. */
  append(entry: JournalEntry, ts: number): number {
    const lsn = this.#state.head + 1;
    const framed = frame(entry, ts);
    this.#entries.putSync(lsn, framed);
    this.#state = { head: lsn, low: this.#state.low, bytes: this.#state.bytes + framed.length };
    this.#dirty = true;
    return lsn;
  }

  /** Persists the head once per transaction rather than once per entry. */
  #persistState(): void {
    if (!this.#dirty) return;
    this.#meta.putSync('state', this.#state);
    this.#dirty = false;
  }

  /** A failed transaction wrote nothing: forget what it appended. */
  #reload(): void {
    this.#state = this.#meta.get('state') ?? { head: 0, low: 1, bytes: 0 };
    this.#dirty = false;
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
      out.push({
        lsn: key,
        ts: frameTime(value),
        entry: expand(packr.unpack(value.subarray(HEADER_BYTES))),
      });
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
      oldest_ts: first === undefined ? null : frameTime(first.value),
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
    return this.#storage.write(() => {
      const head = this.#state.head;
      const lowestCursor = cursorValues.length === 0 ? head : Math.min(...cursorValues);
      let { low, bytes } = this.#state;
      // Bytes held by entries every consumer has passed (they only serve as backlog).
      let passedBytes = 0;
      if (lowestCursor >= head) passedBytes = bytes;
      else if (bytes > this.#limits.backlogBytes) {
        for (const { value } of this.#entries.getRange({ start: low, end: lowestCursor + 1 }))
          passedBytes += frameSize(value);
      }
      let removed = 0;
      for (const { key, value } of this.#entries.getRange({ start: low })) {
        if (removed >= maxPerPass) break;
        const size = frameSize(value);
        const tooOld = now - frameTime(value) > this.#limits.maxAgeMs;
        const tooBig = bytes > this.#limits.maxBytes;
        const passedAndOverBacklog = key <= lowestCursor && passedBytes > this.#limits.backlogBytes;
        if (!tooOld && !tooBig && !passedAndOverBacklog) break;
        this.#entries.removeSync(key);
        bytes -= size;
        if (key <= lowestCursor) passedBytes -= size;
        low = key + 1;
        removed++;
      }
      if (removed > 0) {
        this.#state = { head: this.#state.head, low, bytes };
        this.#dirty = true;
      }
      return removed;
    });
  }
}
