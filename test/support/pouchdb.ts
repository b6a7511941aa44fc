/**
 * PouchDB 9 from npm, unmodified, with the in-memory adapter for the local
 * side. PouchDB ships no types; the interfaces below describe the part of its
 * API the tests use.
 */
import { createRequire } from 'node:module';

export interface PouchAttachment {
  readonly content_type: string;
  readonly data?: string;
  readonly digest?: string;
  readonly length?: number;
  readonly revpos?: number;
  readonly stub?: boolean;
}

export interface PouchDoc {
  _id: string;
  _rev?: string;
  _deleted?: boolean;
  _attachments?: Record<string, PouchAttachment>;
  _conflicts?: string[];
  _deleted_conflicts?: string[];
  _revisions?: { start: number; ids: string[] };
  [member: string]: unknown;
}

export interface BulkResult {
  readonly ok?: boolean;
  readonly id?: string;
  readonly rev?: string;
  readonly error?: boolean | string;
  readonly name?: string;
  readonly status?: number;
  readonly message?: string;
  readonly reason?: string;
}

export interface AllDocsRow {
  readonly id?: string;
  readonly key: string;
  readonly value?: { readonly rev: string; readonly deleted?: boolean };
  readonly doc?: PouchDoc | null;
  readonly error?: string;
}

export interface AllDocsOptions {
  readonly keys?: readonly string[];
  readonly include_docs?: boolean;
  readonly conflicts?: boolean;
  readonly attachments?: boolean;
  readonly startkey?: string;
  readonly endkey?: string;
  readonly limit?: number;
}

export interface ChangesResult {
  readonly id: string;
  readonly seq: number | string;
  readonly changes: readonly { readonly rev: string }[];
  readonly deleted?: boolean;
}

export interface ChangesResponse {
  readonly results: readonly ChangesResult[];
  readonly last_seq: number | string;
}

export interface ReplicationResult {
  readonly ok: boolean;
  readonly status?: string;
  readonly docs_read: number;
  readonly docs_written: number;
  readonly doc_write_failures: number;
  readonly errors: readonly unknown[];
}

export interface Emitter {
  on(event: string, listener: (...args: unknown[]) => void): this;
  once(event: string, listener: (...args: unknown[]) => void): this;
  removeListener(event: string, listener: (...args: unknown[]) => void): this;
}

export interface ReplicationOptions {
  readonly live?: boolean;
  readonly retry?: boolean;
  readonly batch_size?: number;
  readonly batches_limit?: number;
}

export type Replication = PromiseLike<ReplicationResult> & Emitter & { cancel(): void };
export type Sync = PromiseLike<unknown> & Emitter & { cancel(): void };

export interface PouchDatabase {
  readonly name: string;
  info(): Promise<{ db_name: string; doc_count: number; update_seq: number | string }>;
  bulkDocs(docs: readonly PouchDoc[], options?: { new_edits?: boolean }): Promise<BulkResult[]>;
  get(id: string, options?: Record<string, unknown>): Promise<PouchDoc>;
  put(doc: PouchDoc): Promise<BulkResult>;
  allDocs(options?: AllDocsOptions): Promise<{ total_rows: number; offset?: number; rows: AllDocsRow[] }>;
  changes(options: {
    style?: 'all_docs' | 'main_only';
    since?: number | string;
    limit?: number;
    return_docs?: boolean;
    batch_size?: number;
  }): PromiseLike<ChangesResponse> & { cancel(): void };
  replicate: {
    to(target: PouchDatabase | string, options?: ReplicationOptions): Replication;
    from(source: PouchDatabase | string, options?: ReplicationOptions): Replication;
  };
  sync(other: PouchDatabase | string, options?: ReplicationOptions): Sync;
  destroy(): Promise<unknown>;
  close(): Promise<unknown>;
}

export interface PouchDBConstructor {
  new (name: string, options?: { adapter?: string; skip_setup?: boolean }): PouchDatabase;
  plugin(plugin: unknown): PouchDBConstructor;
}

const requireCjs = createRequire(import.meta.url);
const PouchDB = requireCjs('pouchdb') as PouchDBConstructor;
PouchDB.plugin(requireCjs('pouchdb-adapter-memory'));

let counter = 0;

/** A fresh in-memory PouchDB (unique name per call). */
export function memoryPouch(label: string): PouchDatabase {
  counter++;
  return new PouchDB(`${label}-${process.pid}-${counter}-${Date.now()}`, { adapter: 'memory' });
}

/** PouchDB's HTTP adapter on a remote database (created on first use, as PouchDB does). */
export function remotePouch(url: string): PouchDatabase {
  return new PouchDB(url);
}

export { PouchDB };
