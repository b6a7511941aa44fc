/**
 * How the document replication algorithm sees a database: the CouchDB
 * replication protocol's calls, and nothing else. A local implementation
 * talks to this node's document service; an HTTP implementation talks to any
 * CouchDB-compatible server. The same job code therefore replicates
 * local→local, local→remote, remote→local and remote→remote.
 *
 * Errors: implementations throw `DoppelError` (src/errors.ts). Kinds
 * `unauthorized`/`forbidden` are permanent for the current run (a bad
 * credential); `not_found` means the database is missing; `unavailable` and
 * `internal` are transient (network, 5xx, timeouts) and make the job crash
 * and retry with backoff.
 */
import type { CopiedDoc, CopyFrame, CopyGuard } from '../docs/database-copy.js';

export interface EndpointInfo {
  readonly db_name: string;
  /** Opaque; only an upper bound for progress. */
  readonly update_seq: Seq;
  readonly instance_start_time: string;
}

/** Sequences are opaque: numbers for Doppel and PouchDB, strings for CouchDB 2+. Never compared. */
export type Seq = number | string;

export interface ChangeEntry {
  readonly seq: Seq;
  readonly id: string;
  /** Leaf revisions (style=all_docs), or just the winner with winning_revs_only. */
  readonly changes: readonly { readonly rev: string }[];
  readonly deleted?: boolean;
}

export type ChangesFilterOptions =
  | { readonly kind: 'none' }
  | { readonly kind: 'doc_ids'; readonly docIds: readonly string[] }
  | { readonly kind: 'selector'; readonly selector: unknown }
  | { readonly kind: 'js'; readonly name: string; readonly queryParams: Readonly<Record<string, string>> };

export interface ChangesOptions {
  readonly since: Seq;
  readonly filter: ChangesFilterOptions;
  readonly winningRevsOnly: boolean;
  /** Rows per batch handed to `onBatch`. */
  readonly batchSize: number;
  /**
   * continuous: keep the feed open (with heartbeats and reconnects inside the
   * implementation) until `signal` aborts; normal: end at the current head.
   */
  readonly continuous: boolean;
  readonly heartbeatMs: number;
  readonly signal: AbortSignal;
}

export interface ChangesResult {
  readonly lastSeq: Seq;
}

export interface RevsDiffEntry {
  readonly missing: readonly string[];
  readonly possible_ancestors?: readonly string[];
}

export interface BulkGetRequest {
  readonly id: string;
  readonly rev: string;
  /** Known ancestors on the target: attachments older than these come as stubs. */
  readonly attsSince?: readonly string[];
}

/** A fetched revision with `_revisions` and inline attachments (or stubs per attsSince). */
export type FetchedDoc = Readonly<Record<string, unknown>> & { readonly _id: string; readonly _rev: string };

export interface BulkGetResult {
  readonly docs: readonly FetchedDoc[];
  /** Requested revisions the source no longer has (compacted or purged). */
  readonly missing: readonly BulkGetRequest[];
}

export interface WriteFailure {
  readonly id: string;
  readonly rev?: string;
  readonly error: string;
  readonly reason: string;
}

/**
 * Writes a batch of a database copy into a target: each leaf grafted as
 * `_bulk_docs` with `new_edits=false` would, with the same rights; returns the
 * per-revision failures only.
 */
export type CopyBatchWriter = (
  docs: readonly CopiedDoc[],
  attachments: ReadonlyMap<string, Buffer>,
  guard: CopyGuard,
) => Promise<readonly WriteFailure[]>;

export interface ReplicationEndpoint {
  /** For logs and the replication id: the URL without credentials, or the local db name. */
  readonly displayName: string;
  /** A stable identity for the replication id (never includes a password). */
  readonly identity: string;
  /** `HEAD /db`: false when the database does not exist. */
  exists(): Promise<boolean>;
  create(): Promise<void>;
  info(): Promise<EndpointInfo>;
  /**
   * Streams `_changes` in batches; resolves when a normal feed ends or the
   * signal aborts. `onBatch` may apply backpressure by not resolving.
   */
  changes(
    options: ChangesOptions,
    onBatch: (rows: readonly ChangeEntry[], lastSeq: Seq) => Promise<void>,
  ): Promise<ChangesResult>;
  /** Rows still to read after `since` (for `changes_pending`), or null if unknown. */
  pending(since: Seq): Promise<number | null>;
  revsDiff(
    revs: Readonly<Record<string, readonly string[]>>,
  ): Promise<Readonly<Record<string, RevsDiffEntry>>>;
  /** `_bulk_get?revs=true&latest=true` (or `open_revs` GETs where `_bulk_get` is missing). */
  bulkGet(requests: readonly BulkGetRequest[]): Promise<BulkGetResult>;
  /** `_bulk_docs` with `new_edits=false`; returns the per-document failures only. */
  bulkDocs(docs: readonly FetchedDoc[]): Promise<readonly WriteFailure[]>;
  /** The `_local/{id}` document (`id` without the `_local/` prefix) with its `_rev`, or null. */
  getLocal(id: string): Promise<Record<string, unknown> | null>;
  /** Writes `_local/{id}` (with `_rev` in the body when updating); returns its new rev. */
  putLocal(id: string, body: Record<string, unknown>): Promise<string>;
  ensureFullCommit(): Promise<void>;
  /** The source code of `filters[name]` of `_design/{ddoc}` (for the replication id). */
  filterSource(ddocAndName: string): Promise<string>;
  /**
   * Doppel peers only: the database whole from one read snapshot
   * (`GET /{db}/_doppel_copy`), its documents after `afterId` in id order;
   * null when the peer cannot copy. A first replication into an empty
   * database reads it instead of the changes feed.
   */
  copy?(
    afterId: string | undefined,
    signal: AbortSignal,
  ): Promise<AsyncIterable<readonly CopyFrame[]> | null>;
  /**
   * Doppel targets only: how a copy is written into this database (locally,
   * or `POST /{db}/_doppel_restore`), or null when it cannot take one (not a
   * Doppel node, or a database that takes replicated writes one by one only).
   */
  copyWriter?(): Promise<CopyBatchWriter | null>;
  close(): Promise<void>;
}
