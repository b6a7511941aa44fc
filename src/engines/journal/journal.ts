import { EventEmitter } from 'node:events';
import type { Database, Transaction } from 'lmdb';
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

const isWellFormed = (text: string): boolean =>
  (text as unknown as { isWellFormed(): boolean }).isWellFormed();

function frame(entry: JournalEntry, ts: number): Buffer {
  // Hand-written UTF-8 would replace a lone surrogate (only an id can have one: bodies are JSON text).
  if (entry.k === 'doc' && entry.atts === undefined && isWellFormed(entry.id)) return frameDoc(entry, ts);
  if (entry.k === 'kv' && entry.op === 'set' && hasFastKvSetFrame(entry)) return frameKvSet(entry, ts);
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  const body = packr.pack(compact(entry));
  header.writeDoubleLE(ts, 0);
  header.writeUInt32LE(HEADER_BYTES + body.length, 8);
  return Buffer.concat([header, body], HEADER_BYTES + body.length);
}

/**
 * Scratch space for the frames written by hand (documents, SETs). `append` hands the frame to a
 * synchronous put inside the write transaction, which copies it, so one buffer
 * serves every entry (grown when an entry does not fit); a queued put gets a copy.
 */
let scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * A document entry without attachments, the bulk of every journal, framed by
 * hand: the same msgpack `packr` writes for `compact(entry)` (a 7-element
 * array), written straight into the scratch buffer after the header. This
 * skips msgpackr's generic encoder and the copy into a separate header+body
 * buffer; `expand(packr.unpack(…))` reads it like any other frame.
 */
function frameDoc(entry: DocEntry, ts: number): Buffer {
  const { db, id, seq, path, deleted, body } = entry;
  // Upper bound: UTF-8 needs at most 3 bytes per UTF-16 unit; 5 header bytes per string, 9 per number.
  let bound =
    HEADER_BYTES + 1 + 1 + 9 + 5 + 1 + 5 * (3 + path.length) + 3 * (db.length + id.length + body.length);
  for (const rev of path) bound += 3 * rev.length;
  if (bound > scratch.length) scratch = Buffer.allocUnsafe(Math.max(bound, scratch.length * 2));
  const out = scratch;
  out.writeDoubleLE(ts, 0);
  let at = HEADER_BYTES;
  out[at++] = 0x97; // fixarray of 7
  out[at++] = 0x00; // positive fixint 0: the document kind
  at = writeStr(out, at, db);
  at = writeStr(out, at, id);
  at = writeUint(out, at, seq);
  const n = path.length;
  if (n < 16) out[at++] = 0x90 | n;
  else if (n < 0x10000) {
    out[at++] = 0xdc;
    out.writeUInt16BE(n, at);
    at += 2;
  } else {
    out[at++] = 0xdd;
    out.writeUInt32BE(n, at);
    at += 4;
  }
  for (const rev of path) at = writeStr(out, at, rev);
  out[at++] = deleted ? 0xc3 : 0xc2;
  at = writeStr(out, at, body);
  out.writeUInt32LE(at, 8);
  return out.subarray(0, at);
}

type KvSetEntry = Extract<JournalEntry, { k: 'kv'; op: 'set' }>;

/** Larger SETs take msgpackr's path: the scratch buffer never grows to a huge value's size. */
const KV_SET_FAST_BYTES = 64 * 1024;

function hasFastKvSetFrame({ key, value, pxat }: KvSetEntry): boolean {
  return (
    key.length + value.length <= KV_SET_FAST_BYTES &&
    (pxat === undefined || (Number.isSafeInteger(pxat) && pxat >= 0))
  );
}

/** The constant parts of a SET frame: msgpack strs of its field names and of `kv` and `set`. */
const SET_FIELDS = {
  kindToDb: Buffer.from([0xa1, 0x6b, 0xa2, 0x6b, 0x76, 0xa2, 0x64, 0x62]), // "k" "kv" "db"
  opToKey: Buffer.from([0xa2, 0x6f, 0x70, 0xa3, 0x73, 0x65, 0x74, 0xa3, 0x6b, 0x65, 0x79]), // "op" "set" "key"
  value: Buffer.from([0xa5, 0x76, 0x61, 0x6c, 0x75, 0x65]), // "value"
  pxat: Buffer.from([0xa4, 0x70, 0x78, 0x61, 0x74]), // "pxat"
  keepttlTrue: Buffer.from([0xa7, 0x6b, 0x65, 0x65, 0x70, 0x74, 0x74, 0x6c, 0xc3]), // "keepttl" true
};

/**
 * A keyspace SET, the bulk of a Redis workload's journal, framed by hand: the
 * bytes `packr` writes for the entry object (`k`, `db`, `op`, `key`, `value`,
 * then `keepttl` or `pxat`), straight into the scratch buffer.
 */
function frameKvSet(entry: KvSetEntry, ts: number): Buffer {
  const { db, key, value, pxat, keepttl } = entry;
  const bound = HEADER_BYTES + 64 + key.length + value.length;
  if (bound > scratch.length) scratch = Buffer.allocUnsafe(Math.max(bound, scratch.length * 2));
  const out = scratch;
  out.writeDoubleLE(ts, 0);
  let at = HEADER_BYTES;
  // map16 of 6 or 5 entries: msgpackr writes every object's map header in this form.
  out[at++] = 0xde;
  out[at++] = 0;
  out[at++] = pxat !== undefined || keepttl !== undefined ? 6 : 5;
  at = put(out, at, SET_FIELDS.kindToDb);
  at = writeUint(out, at, db);
  at = put(out, at, SET_FIELDS.opToKey);
  at = writeBin(out, at, key);
  at = put(out, at, SET_FIELDS.value);
  at = writeBin(out, at, value);
  if (pxat !== undefined) {
    at = put(out, at, SET_FIELDS.pxat);
    at = writeUint(out, at, pxat);
  } else if (keepttl !== undefined) {
    at = put(out, at, SET_FIELDS.keepttlTrue);
  }
  out.writeUInt32LE(at, 8);
  return out.subarray(0, at);
}

function put(out: Buffer, at: number, bytes: Uint8Array): number {
  out.set(bytes, at);
  return at + bytes.length;
}

/** A msgpack bin (the shortest header that fits). */
function writeBin(out: Buffer, at: number, bytes: Buffer): number {
  const n = bytes.length;
  if (n < 0x100) {
    out[at++] = 0xc4;
    out[at++] = n;
  } else if (n < 0x10000) {
    out[at] = 0xc5;
    out.writeUInt16BE(n, at + 1);
    at += 3;
  } else {
    out[at] = 0xc6;
    out.writeUInt32BE(n, at + 1);
    at += 5;
  }
  return put(out, at, bytes);
}

/** A msgpack str (the shortest header that fits, as msgpackr writes it). */
function writeStr(out: Buffer, at: number, text: string): number {
  const units = text.length;
  // A string of fewer than 32 UTF-16 units may still need more than 31 bytes.
  if (units < 11) {
    const len = out.write(text, at + 1);
    if (len < 32) {
      out[at] = 0xa0 | len;
      return at + 1 + len;
    }
  }
  if (units * 3 < 0x100) {
    const len = out.write(text, at + 2);
    out[at] = 0xd9;
    out[at + 1] = len;
    return at + 2 + len;
  }
  if (units * 3 < 0x10000) {
    const len = out.write(text, at + 3);
    out[at] = 0xda;
    out.writeUInt16BE(len, at + 1);
    return at + 3 + len;
  }
  const len = out.write(text, at + 5);
  out[at] = 0xdb;
  out.writeUInt32BE(len, at + 1);
  return at + 5 + len;
}

/** A msgpack non-negative integer (a float64 beyond uint32). */
function writeUint(out: Buffer, at: number, value: number): number {
  if (value < 0x80) {
    out[at] = value;
    return at + 1;
  }
  if (value < 0x100) {
    out[at] = 0xcc;
    out[at + 1] = value;
    return at + 2;
  }
  if (value < 0x10000) {
    out[at] = 0xcd;
    out.writeUInt16BE(value, at + 1);
    return at + 3;
  }
  if (value <= 0xffffffff) {
    out[at] = 0xce;
    out.writeUInt32BE(value, at + 1);
    return at + 5;
  }
  out[at] = 0xcb;
  out.writeDoubleBE(value, at + 1);
  return at + 9;
}

const frameTime = (bytes: Buffer): number => bytes.readDoubleLE(0);

/** True for a document entry that references attachments (its bodies travel separately to replicas). */
export function frameHasAttachments(bytes: Buffer): boolean {
  // Document entries are msgpack arrays of 7 members, 8 with attachments (see `compact`).
  return bytes[HEADER_BYTES] === 0x98 && bytes[HEADER_BYTES + 1] === 0x00;
}

/** True for a document entry (the only kind packed as an array: see `compact`). */
export function frameIsDocument(bytes: Buffer): boolean {
  return (bytes[HEADER_BYTES] & 0xf0) === 0x90;
}

/** Decodes a stored frame (`Journal.readFrames`): its commit time and entry. */
export interface DecodedFrame {
  readonly ts: number;
  readonly entry: JournalEntry;
}

export function decodeFrame(bytes: Buffer): DecodedFrame {
  return { ts: frameTime(bytes), entry: expand(packr.unpack(bytes.subarray(HEADER_BYTES))) };
}
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

/** The index of the first of `entries` (in LSN order) with an LSN above `lsn`. */
function indexAbove(entries: readonly { readonly lsn: number }[], lsn: number): number {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (entries[mid].lsn <= lsn) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** Entries a trim removes per storage write (a few ms of work). */
const TRIM_CHUNK = 500;

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
  /** The write in progress emptied the journal (see `resetTo`): its head may be lower. */
  #wasReset = false;
  #trimming = false;
  /** State as of the last commit, which readers may see. */
  #committedHead: number;
  /** Set while a replica replays its primary's entry (see `replay`). */
  #replaying: { readonly lsn: number; appended: number } | null = null;
  /**
   * Entries appended by queued writes (`Storage.writeNow`) and not yet seen
   * committed, in LSN order: they are in the write-ahead log up to
   * `#loggedThrough`, and replicas may be sent them from there (see `durableHead`).
   */
  #logged: { readonly lsn: number; readonly frame: Buffer }[] = [];
  #loggedThrough = 0;
  #durableHead: number;

  constructor(storage: Storage, limits: RetentionLimits) {
    this.#storage = storage;
    this.#limits = limits;
    this.#entries = storage.binary<number>('journal');
    this.#meta = storage.structured<JournalState, string>('journal-meta');
    this.#cursors = storage.structured<number, string>('journal-cursors');
    this.#state = this.#meta.get('state') ?? { head: 0, low: 1, bytes: 0 };
    this.#committedHead = this.#durableHead = this.#state.head;
    this.#events.setMaxListeners(0);
    storage.beforeCommit(() => this.#persistState());
    storage.afterAbort(() => this.#reload());
    storage.onLogged((lsn) => {
      this.#loggedThrough = lsn;
      this.#advanceDurable();
    });
  }

  /** Must run inside `Storage.write`. Returns the entry's LSN. */
  append(entry: JournalEntry, ts: number): number {
    const replaying = this.#replaying;
    if (replaying !== null) {
      // The primary's own frame is stored instead (see `replay`).
      replaying.appended++;
      return replaying.lsn;
    }
    const lsn = this.#state.head + 1;
    this.#store(lsn, frame(entry, ts));
    return lsn;
  }

  /** Stores the frame of entry `lsn`: at once in a transaction; logged ahead and queued in `writeNow`. */
  #store(lsn: number, framed: Buffer): void {
    if (this.#storage.running === 'queue') {
      // The log's copy: `append`'s scratch frame will have changed by the time the turn commits.
      const logged = this.#storage.logAhead(lsn, framed);
      this.#storage.put(this.#entries, lsn, logged);
      this.#logged.push({ lsn, frame: logged });
    } else this.#entries.putSync(lsn, framed, { append: true });
    this.#state = { head: lsn, low: this.#state.low, bytes: this.#state.bytes + framed.length };
    this.#dirty = true;
  }

  /**
   * Must run inside `Storage.write`. A replica applies its primary's entry
   * `lsn` with `apply` (the same engine code that journals it on the primary)
   * and stores the primary's frame, byte for byte, under the same LSN: the
   * replica's journal is a copy of the primary's, so its own replicas can
   * continue from any LSN. The entries `apply` appends are dropped; it must
   * append exactly one, or the replica no longer matches its primary.
   */
  replay<T>(lsn: number, framed: Buffer, apply: () => T): T {
    if (lsn !== this.#state.head + 1) {
      throw new Error(`journal replay out of order: entry ${lsn} after head ${this.#state.head}`);
    }
    const replaying = { lsn, appended: 0 };
    this.#replaying = replaying;
    let result: T;
    try {
      result = apply();
    } finally {
      this.#replaying = null;
    }
    if (replaying.appended !== 1) {
      throw new Error(`journal replay of entry ${lsn} journaled ${replaying.appended} entries, not one`);
    }
    this.#store(lsn, framed);
    return result;
  }

  /**
   * Must run inside `Storage.write`: empties the journal and continues it
   * after `lsn` (a replica's full sync: its data is now the primary's as of
   * `lsn`). Cursors stay as they are.
   */
  resetTo(lsn: number): void {
    this.#entries.clearSync();
    this.#state = { head: lsn, low: lsn + 1, bytes: 0 };
    this.#dirty = true;
    this.#wasReset = true;
  }

  /**
   * Persists the head once per write rather than once per entry, and publishes that
   * head once the write commits (never `#state.head` then: a later write may have
   * appended since, uncommitted, and a reader woken for it would find nothing).
   */
  #persistState(): (() => void) | undefined {
    if (!this.#dirty) return undefined;
    this.#storage.put(this.#meta, 'state', this.#state);
    this.#dirty = false;
    const head = this.#state.head;
    const reset = this.#wasReset;
    this.#wasReset = false;
    return () => this.#published(head, reset);
  }

  /** After another thread's write reset the journal (a node replica's full sync): takes the state it committed. */
  reloadAfterReset(): void {
    this.#storage.root.resetReadTxn();
    this.#reload();
    this.#published(this.#state.head, true);
  }

  /** A failed transaction wrote nothing: forget what it appended. */
  #reload(): void {
    this.#state = this.#meta.get('state') ?? { head: 0, low: 1, bytes: 0 };
    this.#dirty = false;
    this.#wasReset = false;
  }

  #published(head: number, reset: boolean): void {
    if (reset ? head === this.#committedHead : head <= this.#committedHead) return;
    this.#committedHead = head;
    const logged = this.#logged;
    if (reset) {
      logged.length = 0;
      this.#durableHead = head;
    } else if (logged.length > 0) logged.splice(0, indexAbove(logged, head));
    this.#events.emit('head', head);
    this.#advanceDurable();
  }

  /**
   * Moves `durableHead` over the logged entries that continue it: an entry
   * committed in a transaction is only covered once that commit is seen.
   */
  #advanceDurable(): void {
    let durable = Math.max(this.#durableHead, this.#committedHead);
    const logged = this.#logged;
    for (let i = indexAbove(logged, durable); i < logged.length; i++) {
      const { lsn } = logged[i];
      if (lsn !== durable + 1 || lsn > this.#loggedThrough) break;
      durable = lsn;
    }
    if (durable <= this.#durableHead) return;
    this.#durableHead = durable;
    this.#events.emit('durable', durable);
  }

  get head(): number {
    return this.#committedHead;
  }

  /**
   * Every entry up to here survives a crash of the process: committed, or
   * in the write-ahead log (a restart replays it under the same LSN). What
   * replicas may be sent (`readFrames`); at or above `head`.
   */
  get durableHead(): number {
    return this.#durableHead;
  }

  /** The LSN of the last entry appended, committed or not (every acknowledged write is at or below it). */
  get lastAppended(): number {
    return this.#state.head;
  }

  /** The head as of a read transaction (a snapshot's LSN: everything up to it is in the snapshot). */
  headIn(transaction: Transaction): number {
    return this.#meta.get('state', { transaction })?.head ?? 0;
  }

  get low(): number {
    return this.#state.low;
  }

  /** Entries with LSN > `after`, at most `limit`. Throws nothing; a gap below `low` is the caller's to detect. */
  read(after: number, limit: number): JournalRecord[] {
    return this.#range(after, limit).map(({ key, value }) => ({ lsn: key, ...decodeFrame(value) }));
  }

  /**
   * Raw frames with LSN > `after`, at most `limit`, up to `durableHead` (what
   * a primary sends its replicas): committed ones from LMDB, then logged ones.
   */
  readFrames(after: number, limit: number): { readonly lsn: number; readonly frame: Buffer }[] {
    const frames: { lsn: number; frame: Buffer }[] = [];
    let last = after;
    if (after < this.#committedHead) {
      for (const { key, value } of this.#range(after, limit))
        frames.push({ lsn: (last = key), frame: value });
      // LMDB's read snapshot may not show every committed entry yet: nothing logged may follow a gap.
      if (last < this.#committedHead) return frames;
    }
    const logged = this.#logged;
    for (let i = indexAbove(logged, last); i < logged.length && frames.length < limit; i++) {
      const { lsn, frame } = logged[i];
      if (lsn !== last + 1 || lsn > this.#durableHead) break;
      frames.push({ lsn, frame });
      last = lsn;
    }
    return frames;
  }

  #range(after: number, limit: number): { key: number; value: Buffer }[] {
    // Reads LMDB's shared read snapshot, which lives until the next macrotask: a reader
    // woken by a commit in the same task may see nothing new yet, and must yield to the
    // event loop before it reads again (never loop on microtasks).
    return [...this.#entries.getRange({ start: after + 1, end: this.#committedHead + 1, limit })];
  }

  /** True when entries after `after` are no longer all retained. */
  fellBehind(after: number): boolean {
    return after + 1 < this.#state.low;
  }

  /** Resolves once the head passes `after` (at once if it already has), or when `signal` aborts. */
  waitFor(after: number, signal?: AbortSignal): Promise<void> {
    if (this.#committedHead > after || signal?.aborted === true) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        stop();
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const stop = this.#when('head', after, done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /**
   * Calls `then` once `durableHead` passes `after` (not at once: the caller checks first);
   * returns what cancels the wait. No signals: a node primary's feed waits here each time it
   * catches up, about a thousand times a second under load.
   */
  whenDurable(after: number, then: () => void): () => void {
    return this.#when('durable', after, then);
  }

  #when(event: 'head' | 'durable', after: number, then: () => void): () => void {
    const onHead = (head: number): void => {
      if (head <= after) return;
      stop();
      then();
    };
    const stop = (): void => {
      this.#events.off(event, onHead);
    };
    this.#events.on(event, onHead);
    return stop;
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
   * Removes everything due (or at most `maxPerPass`), `TRIM_CHUNK` per storage
   * write, so that other writers never wait long behind a trim: a pass keeps up
   * with any write rate, and after a bulk load removes many thousands of entries.
   * A pass still running is not joined by a second one.
   * Returns how many entries were removed.
   */
  async trim(now = Date.now(), maxPerPass = Number.POSITIVE_INFINITY): Promise<number> {
    if (this.#trimming) return 0;
    this.#trimming = true;
    try {
      return await this.#trimPass(now, maxPerPass);
    } finally {
      this.#trimming = false;
    }
  }

  async #trimPass(now: number, maxPerPass: number): Promise<number> {
    const cursorValues = [...this.#cursors.getRange()].map((c) => c.value);
    // Bytes held by entries below every cursor: summed once per pass, then kept up to date.
    let passedBelowCursors: number | null = null;
    let removed = 0;
    for (;;) {
      const chunk = Math.min(TRIM_CHUNK, maxPerPass - removed);
      const removedNow = await this.#storage.write(() => {
        const head = this.#state.head;
        const lowestCursor = cursorValues.length === 0 ? head : Math.min(...cursorValues);
        let { low, bytes } = this.#state;
        // Bytes held by entries every consumer has passed (they only serve as backlog).
        let passedBytes = 0;
        if (lowestCursor >= head) passedBytes = bytes;
        else if (passedBelowCursors !== null) passedBytes = passedBelowCursors;
        else if (bytes > this.#limits.backlogBytes) {
          for (const { value } of this.#entries.getRange({ start: low, end: lowestCursor + 1 }))
            passedBytes += frameSize(value);
          passedBelowCursors = passedBytes;
        }
        let count = 0;
        for (const { key, value } of this.#entries.getRange({ start: low })) {
          if (count >= chunk) break;
          const size = frameSize(value);
          const tooOld = now - frameTime(value) > this.#limits.maxAgeMs;
          const tooBig = bytes > this.#limits.maxBytes;
          const passedAndOverBacklog = key <= lowestCursor && passedBytes > this.#limits.backlogBytes;
          if (!tooOld && !tooBig && !passedAndOverBacklog) break;
          this.#entries.removeSync(key);
          bytes -= size;
          if (key <= lowestCursor) passedBytes -= size;
          low = key + 1;
          count++;
        }
        if (count > 0) {
          this.#state = { head: this.#state.head, low, bytes };
          this.#dirty = true;
          if (passedBelowCursors !== null) passedBelowCursors = passedBytes;
        }
        return count;
      });
      removed += removedNow;
      if (removedNow < chunk || removed >= maxPerPass) return removed;
    }
  }
}
