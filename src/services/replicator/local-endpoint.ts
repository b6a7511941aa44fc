/**
 * A `ReplicationEndpoint` over this node's `DocumentService`, acting as one
 * user (`UserContext`): every call goes through the service's access checks.
 * The engine renders documents as JSON text; they are parsed here.
 */
import { DoppelError, ErrorKind, badRequest } from '../../errors.js';
import type {
  BulkGetRequest,
  BulkGetResult,
  ChangeEntry,
  ChangesOptions,
  ChangesResult,
  CopyBatchWriter,
  EndpointInfo,
  FetchedDoc,
  ReplicationEndpoint,
  RevsDiffEntry,
  Seq,
  WriteFailure,
} from '../../engines/replication/endpoint.js';
import type { CopyFrame } from '../../engines/docs/database-copy.js';
import type { RevsReader, WriteResult } from '../../engines/docs/document-store.js';
import type { UserContext } from '../auth/user-context.js';
import type { ChangesFilterSpec, DocumentService } from '../docs/document-service.js';

function numericSeq(seq: Seq): number {
  const n = typeof seq === 'number' ? seq : Number.parseInt(seq, 10);
  if (!Number.isSafeInteger(n) || n < 0) throw badRequest(`invalid since seq: ${String(seq)}`);
  return n;
}

function isNotFound(err: unknown): boolean {
  return err instanceof DoppelError && err.kind === ErrorKind.NotFound;
}

/** The refused writes among `results`, as the engine reports them. */
export function failuresOf(results: readonly WriteResult[]): WriteFailure[] {
  const failures: WriteFailure[] = [];
  for (const r of results)
    if (!r.ok)
      failures.push({
        id: r.id,
        ...(r.rev === undefined ? {} : { rev: r.rev }),
        error: r.error,
        reason: r.reason,
      });
  return failures;
}

/** A copy's frames until `signal` aborts; leaving early closes the copy (its read transaction). */
async function* untilAborted(
  groups: Iterable<readonly CopyFrame[]>,
  signal: AbortSignal,
): AsyncGenerator<readonly CopyFrame[]> {
  for (const frames of groups) {
    signal.throwIfAborted();
    yield frames;
  }
}

export class LocalEndpoint implements ReplicationEndpoint {
  readonly displayName: string;
  readonly identity: string;
  readonly #service: DocumentService;
  readonly #ctx: UserContext;
  readonly #db: string;

  constructor(service: DocumentService, ctx: UserContext, db: string) {
    this.#service = service;
    this.#ctx = ctx;
    this.#db = db;
    this.displayName = db;
    this.identity = JSON.stringify(['local', db]);
  }

  async exists(): Promise<boolean> {
    try {
      this.#service.info(this.#ctx, this.#db);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async create(): Promise<void> {
    try {
      await this.#service.createDatabase(this.#ctx, this.#db);
    } catch (err) {
      if (err instanceof DoppelError && err.kind === ErrorKind.DatabaseExists) return;
      throw err;
    }
  }

  async info(): Promise<EndpointInfo> {
    const info = this.#service.info(this.#ctx, this.#db);
    return {
      db_name: info.db_name,
      update_seq: info.update_seq,
      instance_start_time: info.instance_start_time,
    };
  }

  #filterSpec(options: ChangesOptions): ChangesFilterSpec {
    const f = options.filter;
    switch (f.kind) {
      case 'none':
        return { kind: 'none' };
      case 'doc_ids':
        return { kind: 'doc_ids', ids: f.docIds };
      case 'selector':
        return { kind: 'selector', selector: f.selector };
      case 'js': {
        if (f.name === '_design') return { kind: 'design' };
        const slash = f.name.indexOf('/');
        if (slash <= 0) throw badRequest(`unsupported filter: ${f.name}`);
        return {
          kind: 'js',
          ddoc: f.name.slice(0, slash),
          name: f.name.slice(slash + 1),
          query: { ...f.queryParams },
        };
      }
    }
  }

  async changes(
    options: ChangesOptions,
    onBatch: (rows: readonly ChangeEntry[], lastSeq: Seq) => Promise<void>,
  ): Promise<ChangesResult> {
    let since = numericSeq(options.since);
    const filter = this.#service.changesFilter(this.#ctx, this.#db, this.#filterSpec(options));
    while (!options.signal.aborted) {
      const page = await this.#service.changes(this.#ctx, this.#db, {
        since,
        limit: options.batchSize,
        descending: false,
        style: options.winningRevsOnly ? 'main_only' : 'all_docs',
        includeDocs: false,
        render: {},
        skipPending: true,
        ...(filter === undefined ? {} : { filter }),
      });
      const rows: ChangeEntry[] = page.rows.map((r) =>
        r.deleted
          ? { seq: r.seq, id: r.id, changes: r.changes.map((rev) => ({ rev })), deleted: true }
          : { seq: r.seq, id: r.id, changes: r.changes.map((rev) => ({ rev })) },
      );
      if (rows.length > 0 || page.lastSeq !== since) await onBatch(rows, page.lastSeq);
      since = page.lastSeq;
      if (rows.length >= options.batchSize) continue;
      if (!options.continuous) break;
      await this.#service.waitForChange(this.#db, since, options.signal);
    }
    return { lastSeq: since };
  }

  async pending(since: Seq): Promise<number | null> {
    const info = this.#service.info(this.#ctx, this.#db);
    return Math.max(0, info.update_seq - numericSeq(since));
  }

  async revsDiff(
    revs: Readonly<Record<string, readonly string[]>>,
  ): Promise<Readonly<Record<string, RevsDiffEntry>>> {
    return this.#service.revsDiff(this.#ctx, this.#db, revs);
  }

  async bulkGet(requests: readonly BulkGetRequest[]): Promise<BulkGetResult> {
    const byId = new Map<string, { revs: string[]; attsSince: Set<string> }>();
    for (const r of requests) {
      let e = byId.get(r.id);
      if (e === undefined) byId.set(r.id, (e = { revs: [], attsSince: new Set() }));
      e.revs.push(r.rev);
      for (const a of r.attsSince ?? []) e.attsSince.add(a);
    }
    const docs: FetchedDoc[] = [];
    const missing: BulkGetRequest[] = [];
    let reader: RevsReader | undefined;
    for (const [id, e] of byId) {
      let results;
      try {
        reader ??= this.#service.revsReader(this.#ctx, this.#db);
        results = reader(id, e.revs, true, {
          revs: true,
          attachments: true,
          ...(e.attsSince.size > 0 ? { attsSince: [...e.attsSince] } : {}),
        });
      } catch (err) {
        if (!isNotFound(err)) throw err;
        for (const rev of e.revs) missing.push({ id, rev });
        continue;
      }
      for (const item of results) {
        if ('ok' in item) docs.push(JSON.parse(item.ok) as FetchedDoc);
        else missing.push({ id, rev: item.missing });
      }
    }
    return { docs, missing };
  }

  async bulkDocs(docs: readonly FetchedDoc[]): Promise<readonly WriteFailure[]> {
    if (docs.length === 0) return [];
    return failuresOf(await this.#service.bulkDocs(this.#ctx, this.#db, docs, false));
  }

  async getLocal(id: string): Promise<Record<string, unknown> | null> {
    try {
      return JSON.parse(this.#service.getLocal(this.#ctx, this.#db, id)) as Record<string, unknown>;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async putLocal(id: string, body: Record<string, unknown>): Promise<string> {
    const rev = body['_rev'];
    return this.#service.putLocal(
      this.#ctx,
      this.#db,
      id,
      body,
      false,
      typeof rev === 'string' ? rev : undefined,
    );
  }

  /** This database's copy, read from one snapshot (as `GET /{db}/_doppel_copy` serves it). */
  async copy(afterId: string | undefined, signal: AbortSignal): Promise<AsyncIterable<readonly CopyFrame[]>> {
    return untilAborted(this.#service.copyFrames(this.#ctx, this.#db, afterId), signal);
  }

  async copyWriter(): Promise<CopyBatchWriter | null> {
    const write = this.#service.copyWriter(this.#ctx, this.#db);
    if (write === null) return null;
    return async (docs, attachments, guard) => failuresOf(await write(docs, attachments, guard));
  }

  async ensureFullCommit(): Promise<void> {
    // Every acknowledged write is already committed.
  }

  async filterSource(ddocAndName: string): Promise<string> {
    const slash = ddocAndName.indexOf('/');
    if (slash <= 0) throw badRequest(`invalid filter name: ${ddocAndName}`);
    const ddoc = ddocAndName.slice(0, slash);
    const name = ddocAndName.slice(slash + 1);
    const doc = JSON.parse(this.#service.get(this.#ctx, this.#db, `_design/${ddoc}`, undefined, {})) as {
      filters?: Record<string, unknown>;
    };
    const source = doc.filters?.[name];
    if (typeof source !== 'string')
      throw new DoppelError(ErrorKind.NotFound, `missing filter ${name} in _design/${ddoc}`);
    return source;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
