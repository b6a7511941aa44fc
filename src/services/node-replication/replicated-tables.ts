/**
 * Which LMDB tables a node replica copies from its primary in a full sync,
 * and which belong to the node itself. Every table the node opens must be in
 * one of the two lists (a test checks it), so a new table is never silently
 * left out of replicas, nor silently copied.
 *
 * Copied: the document databases and the keyspace (and, separately, the
 * server admin from `auth`). Node-local: identity, credentials and secrets
 * of this node, outbound connections (remotes, streams, followers: a
 * replica would otherwise send everything a second time), the journal
 * (rebuilt from the snapshot's LSN) and storage bookkeeping.
 *
 * The keyspace's row tables (`kv`, `kv-items`, `kv-expires`) travel under
 * these names from whichever of their two sets is live on the primary, into
 * the one live on the replica (see `engines/kv/table-sets.ts`).
 */
import { rowTableName, ROW_TABLES } from '../../engines/kv/table-sets.js';

export type TableEncoding = 'binary' | 'structured';

export interface ReplicatedTable {
  readonly name: string;
  /** Binary tables are copied byte for byte; structured ones decoded and re-encoded (msgpack structures are per node). */
  readonly encoding: TableEncoding;
}

export const REPLICATED_TABLES: readonly ReplicatedTable[] = [
  { name: 'dbs', encoding: 'structured' },
  { name: 'docs', encoding: 'structured' },
  { name: 'revs', encoding: 'binary' },
  { name: 'seqs', encoding: 'structured' },
  { name: 'locals', encoding: 'structured' },
  { name: 'atts', encoding: 'binary' },
  { name: 'docs-meta', encoding: 'structured' },
  { name: 'db-updates', encoding: 'structured' },
  { name: 'db-updates-by-name', encoding: 'structured' },
  { name: 'kv', encoding: 'binary' },
  { name: 'kv-items', encoding: 'binary' },
  { name: 'kv-expires', encoding: 'binary' },
  { name: 'kv-meta', encoding: 'structured' },
];

export const NODE_LOCAL_TABLES: readonly string[] = [
  'node',
  'auth',
  'storage',
  'journal',
  'journal-meta',
  'journal-cursors',
  'remotes',
  'streams',
  'followers',
  'autofollow-rules',
  'kv-live',
];

/** The second set's names of the keyspace's row tables: copied, under the first set's names. */
export const SECOND_SET_TABLES: readonly string[] = ROW_TABLES.map((table) => rowTableName(table, 1));
