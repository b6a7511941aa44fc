/**
 * The keyspace's row tables exist twice: set 0 under their plain names, set 1
 * with `~1` appended. One set is live (a row of the node-local `kv-live`
 * table says which; none means 0). A full load from a Redis primary fills the
 * other set in many short writes, so that the node's other writers are not
 * held for the whole load, and then one write makes it live — readers see the
 * old keyspace or the new one, never a part (Redis' `repl-diskless-load
 * swapdb`, on disk).
 */
import type { Database, Transaction } from 'lmdb';
import type { Storage } from '../../storage/environment.js';
import type { OverlaidTable } from '../../storage/overlaid-table.js';

export const ROW_TABLES = ['kv', 'kv-items', 'kv-expires'] as const;
export type RowTable = (typeof ROW_TABLES)[number];
export type TableSet = 0 | 1;

/** The node-local table holding which set is live. */
const LIVE_SET_TABLE = 'kv-live';
const LIVE_KEY = Buffer.from('live');

export const otherSet = (set: TableSet): TableSet => (set === 0 ? 1 : 0);

export function rowTableName(table: RowTable, set: TableSet): string {
  return set === 0 ? table : `${table}~1`;
}

export function isRowTable(name: string): name is RowTable {
  return (ROW_TABLES as readonly string[]).includes(name);
}

export function openRowTable(storage: Storage, table: RowTable, set: TableSet): Database<Buffer, Buffer> {
  return storage.overlaid(rowTableName(table, set)).db;
}

/** The keyspace's view of a row table: its writes readable before they commit. */
export function overlaidRowTable(storage: Storage, table: RowTable, set: TableSet): OverlaidTable {
  return storage.overlaid(rowTableName(table, set));
}

/** Opened once per environment handle: lmdb-js opens a table in a write transaction of its own. */
const liveTables = new WeakMap<Storage, Database<Buffer, Buffer>>();

function liveTable(storage: Storage): Database<Buffer, Buffer> {
  let table = liveTables.get(storage);
  if (table === undefined) {
    table = storage.root.openDB<Buffer, Buffer>(LIVE_SET_TABLE, {
      encoding: 'binary',
      keyEncoding: 'binary',
    });
    liveTables.set(storage, table);
  }
  return table;
}

/** The live set, as of `transaction` when given. */
export function liveSet(storage: Storage, transaction?: Transaction): TableSet {
  const table = liveTable(storage);
  const raw = transaction === undefined ? table.get(LIVE_KEY) : table.get(LIVE_KEY, { transaction });
  return raw !== undefined && raw[0] === 1 ? 1 : 0;
}

/** Inside a write: makes `set` the live one. */
export function putLiveSet(storage: Storage, set: TableSet): void {
  liveTable(storage).putSync(LIVE_KEY, Buffer.from([set]));
}
