/**
 * The follower database as the replication engine's target: reads go
 * through `LocalEndpoint` (as the node's admin), writes through the
 * document service's follower-replication methods, the only ones a
 * read-only follower accepts.
 */
import type {
  BulkGetRequest,
  BulkGetResult,
  ChangeEntry,
  ChangesOptions,
  ChangesResult,
  EndpointInfo,
  FetchedDoc,
  ReplicationEndpoint,
  RevsDiffEntry,
  Seq,
  WriteFailure,
} from '../../engines/replication/endpoint.js';
import { serverAdminContext } from '../auth/user-context.js';
import type { DocumentService } from '../docs/document-service.js';
import { failuresOf, LocalEndpoint } from '../replicator/local-endpoint.js';

export class FollowerTarget implements ReplicationEndpoint {
  readonly displayName: string;
  readonly identity: string;
  readonly #docs: DocumentService;
  readonly #db: string;
  readonly #local: LocalEndpoint;
  /** Time spent writing replicated documents (follower_stats `total_write_time_millis`). */
  writeTimeMs = 0;

  constructor(docs: DocumentService, db: string) {
    this.#docs = docs;
    this.#db = db;
    this.#local = new LocalEndpoint(docs, serverAdminContext('_follower'), db);
    this.displayName = this.#local.displayName;
    this.identity = this.#local.identity;
  }

  exists(): Promise<boolean> {
    return this.#local.exists();
  }

  create(): Promise<void> {
    // The follower service creates the database before any run; a run never creates it.
    return Promise.resolve();
  }

  info(): Promise<EndpointInfo> {
    return this.#local.info();
  }

  changes(
    options: ChangesOptions,
    onBatch: (rows: readonly ChangeEntry[], lastSeq: Seq) => Promise<void>,
  ): Promise<ChangesResult> {
    return this.#local.changes(options, onBatch);
  }

  pending(since: Seq): Promise<number | null> {
    return this.#local.pending(since);
  }

  revsDiff(
    revs: Readonly<Record<string, readonly string[]>>,
  ): Promise<Readonly<Record<string, RevsDiffEntry>>> {
    return this.#local.revsDiff(revs);
  }

  bulkGet(requests: readonly BulkGetRequest[]): Promise<BulkGetResult> {
    return this.#local.bulkGet(requests);
  }

  async bulkDocs(docs: readonly FetchedDoc[]): Promise<readonly WriteFailure[]> {
    if (docs.length === 0) return [];
    const began = performance.now();
    const results = await this.#docs.writeAsFollowerReplication(this.#db, docs);
    this.writeTimeMs += Math.round(performance.now() - began);
    return failuresOf(results);
  }

  getLocal(id: string): Promise<Record<string, unknown> | null> {
    return this.#local.getLocal(id);
  }

  putLocal(id: string, body: Record<string, unknown>): Promise<string> {
    const rev = body['_rev'];
    return this.#docs.putLocalAsFollowerReplication(
      this.#db,
      id,
      body,
      typeof rev === 'string' ? rev : undefined,
    );
  }

  ensureFullCommit(): Promise<void> {
    return this.#local.ensureFullCommit();
  }

  filterSource(ddocAndName: string): Promise<string> {
    return this.#local.filterSource(ddocAndName);
  }

  close(): Promise<void> {
    return this.#local.close();
  }
}
