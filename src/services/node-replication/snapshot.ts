/**
 * Full sync: the primary sends every replicated table from one LMDB read
 * transaction (a consistent snapshot, while writes go on) with the journal
 * LSN it holds; the replica spools the frames to a file and, once the end
 * frame arrived, replaces its tables with them in one storage write.
 */
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import type { Database, Key, Transaction } from 'lmdb';
import type { Journal } from '../../engines/journal/journal.js';
import { DOC_ID_TABLES, docIdKeyEncoder } from '../../engines/docs/doc-id-keys.js';
import type { Keyspace } from '../../engines/kv/keyspace.js';
import { isRowTable, liveSet, openRowTable, type TableSet } from '../../engines/kv/table-sets.js';
import type { Storage } from '../../storage/environment.js';
import { fileChunks } from '../../storage/file-chunks.js';
import { REPLICATED_TABLES, type ReplicatedTable } from './replicated-tables.js';
import type { FeedSink } from './contracts.js';
import {
  frame,
  FrameKind,
  FrameReader,
  numberFrame,
  readRows,
  RowsWriter,
  wirePackr,
  type Frame,
} from './wire.js';

/** A rows frame is sent once it holds this many bytes. */
const ROWS_FRAME_BYTES = 256 * 1024;

type AnyTable = Database<unknown, Key>;

/** The `auth` table is node-local but for one row, the server admin, which travels apart. */
const adminRow = { key: 'admin', table: (storage: Storage) => storage.structured<unknown, string>('auth') };

const APPEND = { append: true } as const;

/** lmdb-js returns false when MDB_APPEND refuses a key (its typings say void). */
function appended(table: AnyTable, key: Key, value: unknown): boolean {
  return (table.putSync(key, value, APPEND) as unknown) === true;
}

/** `rows`: which keyspace tables stand for `kv`, `kv-items`, `kv-expires` (see `table-sets.ts`). */
function openTable(storage: Storage, table: ReplicatedTable, rows: TableSet): AnyTable {
  if (isRowTable(table.name)) return openRowTable(storage, table.name, rows);
  // Binary tables travel byte for byte (keys included); the others decoded, with the
  // keys their engine uses (a document table's keys hold document ids).
  if (table.encoding === 'binary') {
    return storage.root.openDB<Buffer, Buffer>(table.name, { encoding: 'binary', keyEncoding: 'binary' });
  }
  return storage.structured<unknown, string>(
    table.name,
    Object.hasOwn(DOC_ID_TABLES, table.name) ? docIdKeyEncoder : undefined,
  );
}

export interface SnapshotSource {
  readonly storage: Storage;
  readonly journal: Journal;
}

export interface SnapshotSummary {
  readonly lsn: number;
  readonly rows: number;
  readonly bytes: number;
}

/** Sends a snapshot; resolves with its LSN once the end frame is written. */
export async function sendSnapshot(
  source: SnapshotSource,
  sink: FeedSink,
  signal: AbortSignal,
  onStart: (lsn: number) => void,
): Promise<SnapshotSummary> {
  const { storage, journal } = source;
  const transaction: Transaction = storage.root.useReadTransaction();
  let rows = 0;
  let bytes = 0;
  const send = async (chunk: Buffer): Promise<void> => {
    bytes += chunk.length;
    if (!sink.write(chunk)) await sink.drained();
    if (signal.aborted) throw new Error('replica gone');
  };
  try {
    const lsn = journal.headIn(transaction);
    const rowTables = liveSet(storage, transaction);
    onStart(lsn);
    const writer = new RowsWriter();
    for (const table of REPLICATED_TABLES) {
      await send(frame(FrameKind.Table, Buffer.from(table.name, 'utf8')));
      const handle = openTable(storage, table, rowTables);
      const binary = table.encoding === 'binary';
      for (const { key, value } of handle.getRange({ transaction })) {
        if (binary) writer.add(key as Buffer, value as Buffer);
        else writer.add(wirePackr.pack(key), wirePackr.pack(value));
        rows++;
        if (writer.bytes >= ROWS_FRAME_BYTES) await send(writer.take());
      }
      if (writer.count > 0) await send(writer.take());
    }
    const admin = adminRow.table(storage).get(adminRow.key, { transaction });
    if (admin !== undefined) await send(frame(FrameKind.Admin, wirePackr.pack(admin)));
    await send(numberFrame(FrameKind.End, lsn));
    return { lsn, rows, bytes };
  } finally {
    transaction.done();
  }
}

/**
 * The replica side of a transfer: frames are appended to a spool file until
 * the end frame; `restore` then applies the file. Whatever arrives after the
 * end frame (the journal stream) is handed back by `take`.
 */
export class SnapshotSpool {
  readonly path: string;
  readonly #fd: number;
  #lsn: number | null = null;
  bytes = 0;

  constructor(path: string) {
    this.path = path;
    this.#fd = openSync(path, 'w');
  }

  /** Spools one frame; returns true once the end frame arrived. */
  add(f: Frame): boolean {
    if (f.kind === FrameKind.End) {
      this.#lsn = f.payload.readDoubleBE(0);
      closeSync(this.#fd);
      return true;
    }
    if (f.kind !== FrameKind.Table && f.kind !== FrameKind.Rows && f.kind !== FrameKind.Admin) {
      throw new Error(`unexpected frame ${f.kind} inside a snapshot`);
    }
    const header = Buffer.allocUnsafe(5);
    header[0] = f.kind;
    header.writeUInt32BE(f.payload.length, 1);
    writeSync(this.#fd, header);
    writeSync(this.#fd, f.payload);
    this.bytes += 5 + f.payload.length;
    return false;
  }

  get lsn(): number | null {
    return this.#lsn;
  }

  discard(): void {
    if (this.#lsn === null) closeSync(this.#fd);
    rmSync(this.path, { force: true });
  }
}

export interface RestoreTarget {
  readonly storage: Storage;
  readonly keyspace: Keyspace;
}

/**
 * Must run inside `Storage.write`: empties every replicated table and fills
 * it from the spooled snapshot. Returns how many rows were written.
 */
export function restoreSnapshot(
  target: RestoreTarget,
  spoolPath: string,
  whileRestoring: (bytesRead: number) => void,
): number {
  const { storage, keyspace } = target;
  const handles = new Map<string, { handle: AnyTable; binary: boolean }>();
  // The keyspace clears its own tables (and marks WATCHed keys dirty).
  keyspace.flushAll();
  for (const table of REPLICATED_TABLES) {
    const handle = openTable(storage, table, keyspace.tables);
    const binary = table.encoding === 'binary';
    handles.set(table.name, { handle, binary });
    if (binary) handle.clearSync();
    else {
      // Not clearSync: that would also drop the table's msgpack structures, which this
      // node's open handles keep using.
      const keys = [...handle.getKeys()];
      for (const key of keys) handle.removeSync(key);
    }
  }
  let current: { handle: AnyTable; binary: boolean } | undefined;
  let rows = 0;
  const reader = new FrameReader();
  let bytesRead = 0;
  for (const chunk of fileChunks(spoolPath)) {
    whileRestoring((bytesRead += chunk.length));
    reader.feed(chunk);
    for (let f = reader.next(); f !== undefined; f = reader.next()) {
      if (f.kind === FrameKind.Table) {
        const name = f.payload.toString('utf8');
        current = handles.get(name);
        if (current === undefined)
          throw new Error(`the primary sent table ${name}, which replicas do not copy`);
      } else if (f.kind === FrameKind.Rows) {
        if (current === undefined) throw new Error('rows before any table in the snapshot');
        const { handle, binary } = current;
        for (const [key, value] of readRows(f.payload)) {
          const k = binary ? key : (wirePackr.unpack(key) as Key);
          const v: unknown = binary ? value : wirePackr.unpack(value);
          // Rows arrive in key order into an emptied table: appending skips the B-tree
          // search. A key out of order makes the append fail; then it is an ordinary put.
          if (!appended(handle, k, v)) handle.putSync(k, v);
          rows++;
        }
      } else if (f.kind === FrameKind.Admin) {
        adminRow.table(storage).putSync(adminRow.key, wirePackr.unpack(f.payload));
      }
    }
  }
  keyspace.reloadCounters();
  return rows;
}
