import { bulkDocsBody } from '../../engines/docs/bulk-docs-request.js';
import type { RenderOptions } from '../../engines/docs/doc-output.js';
import {
  pushDocFrames,
  type CopiedDoc,
  type CopyFrame,
  type CopyGuard,
  type DatabaseCopy,
} from '../../engines/docs/database-copy.js';
import { parseDocEdit, type DocEdit } from '../../engines/docs/doc-input.js';
import type {
  AllDocsQuery,
  ChangeRow,
  ChangesFilter,
  ChangesQuery,
  DocumentStore,
  RevsReader,
  WriteResult,
} from '../../engines/docs/document-store.js';
import { compileFilter, type CompiledFilter } from '../../engines/docs/js-sandbox.js';
import { parseFindRequest, runFind } from '../../engines/docs/mango/find.js';
import { compileSelector } from '../../engines/docs/mango/selector.js';
import { badRequest, DoppelError, ErrorKind, forbidden, notFound } from '../../errors.js';
import { USERS_DB } from '../auth/auth-service.js';
import { CopyReader, CopyWriter } from './database-copy-wire.js';
import type { BulkDocsParser } from './parse-pool.js';
import {
  defaultSecurityObject,
  isDbAdmin,
  isServerAdmin,
  normalizeSecurityObject,
  preparePasswordForStorageAsync,
  requireDbAdmin,
  requireDbMember,
  requireServerAdmin,
  USER_DOC_ID_PREFIX,
  validateUserDoc,
  type SecurityObject,
  type UserContext,
} from '../auth/user-context.js';

export type ChangesFilterSpec =
  | { readonly kind: 'none' }
  | { readonly kind: 'doc_ids'; readonly ids: readonly string[] }
  | { readonly kind: 'selector'; readonly selector: unknown }
  | { readonly kind: 'design' }
  | {
      readonly kind: 'js';
      readonly ddoc: string;
      readonly name: string;
      readonly query: Record<string, string>;
    };

/**
 * A rule some databases add to every document write (e.g. `_replicator`'s
 * `user_ctx` check). It sees the parsed document and throws to refuse it.
 */
export interface DocumentRule {
  appliesTo(db: string): boolean;
  /** Every write, deletions too; `existing` is the current winning body (null for a new document). */
  validate(
    ctx: UserContext,
    doc: Readonly<Record<string, unknown>>,
    existing: Readonly<Record<string, unknown>> | null,
  ): void;
}

/**
 * Documents and databases as callers may use them: every method checks the
 * caller's rights (server admin, database admin, member; the `_users` rules)
 * and then calls the document engine.
 */
export class DocumentService {
  readonly #store: DocumentStore;
  readonly #functionTimeoutMs: number;
  readonly #maxDocumentBytes: number;
  readonly #filterCache = new Map<string, { rev: string; compiled: CompiledFilter }>();
  readonly #parser: BulkDocsParser;
  readonly #rules: readonly DocumentRule[];

  constructor(
    store: DocumentStore,
    parser: BulkDocsParser,
    options: { functionTimeoutMs: number; maxDocumentBytes: number; rules?: readonly DocumentRule[] },
  ) {
    this.#store = store;
    this.#parser = parser;
    this.#rules = options.rules ?? [];
    this.#functionTimeoutMs = options.functionTimeoutMs;
    this.#maxDocumentBytes = options.maxDocumentBytes;
  }

  get store(): DocumentStore {
    return this.#store;
  }

  security(db: string): SecurityObject {
    const sec = this.#store.record(db).security;
    return sec === null || sec === undefined ? defaultSecurityObject() : (sec as SecurityObject);
  }

  /** Read access: members and admins; in `_users`, users may only read their own document. */
  requireReader(ctx: UserContext, db: string, docId?: string): void {
    if (db === USERS_DB && !isServerAdmin(ctx)) {
      if (docId !== undefined && ctx.name !== null && docId === USER_DOC_ID_PREFIX + ctx.name) return;
      requireDbAdmin(ctx, this.security(db));
      return;
    }
    requireDbMember(ctx, this.security(db));
  }

  requireAdmin(ctx: UserContext, db: string): void {
    requireDbAdmin(ctx, this.security(db));
  }

  // ---- databases -----------------------------------------------------------

  async createDatabase(ctx: UserContext, name: string): Promise<void> {
    requireServerAdmin(ctx);
    await this.#store.create(name, 'database', defaultSecurityObject());
  }

  /** Creates the system databases on first start. */
  async ensureSystemDatabases(names: readonly string[]): Promise<void> {
    for (const name of names) {
      if (!this.#store.exists(name)) await this.#store.create(name, 'database', defaultSecurityObject());
    }
  }

  async deleteDatabase(ctx: UserContext, name: string): Promise<void> {
    requireServerAdmin(ctx);
    await this.#store.delete(name);
  }

  listDatabases(ctx: UserContext): string[] {
    requireServerAdmin(ctx);
    return this.#store.list();
  }

  info(ctx: UserContext, db: string): ReturnType<DocumentStore['info']> {
    const info = this.#store.info(db);
    this.requireReader(ctx, db);
    return info;
  }

  getSecurity(ctx: UserContext, db: string): SecurityObject {
    this.requireReader(ctx, db);
    return this.security(db);
  }

  async putSecurity(ctx: UserContext, db: string, body: unknown): Promise<void> {
    this.requireAdmin(ctx, db);
    await this.#store.setSecurity(db, normalizeSecurityObject(body));
  }

  getRevsLimit(ctx: UserContext, db: string): number {
    this.requireReader(ctx, db);
    return this.#store.record(db).revsLimit;
  }

  async putRevsLimit(ctx: UserContext, db: string, body: unknown): Promise<void> {
    this.requireAdmin(ctx, db);
    if (typeof body !== 'number') throw badRequest('_revs_limit must be a positive integer');
    await this.#store.setRevsLimit(db, body);
  }

  async compact(ctx: UserContext, db: string): Promise<void> {
    this.requireAdmin(ctx, db);
    await this.#store.compact(db);
  }

  // ---- writes --------------------------------------------------------------

  /** Validates and normalizes the documents of a write, applying `_users` and design-doc rules. */
  async #prepare(
    ctx: UserContext,
    db: string,
    docs: readonly unknown[],
    newEdits: boolean,
    id?: string,
  ): Promise<DocEdit[]> {
    const sec = this.security(db);
    const isAdmin = isDbAdmin(ctx, sec);
    if (db !== USERS_DB) requireDbMember(ctx, sec);
    const rules = this.#rules.filter((r) => r.appliesTo(db));
    // Rules check a write against the winner, not its own branch: a replicated revision could
    // plant a branch (today's roles, another owner's job) that a later winner change revives.
    if ((db === USERS_DB || rules.length > 0) && !newEdits && !isAdmin)
      throw forbidden(`Only admins can write to ${db} with new_edits=false.`);
    const edits: DocEdit[] = [];
    for (let raw of docs) {
      const docId = id ?? (raw as { _id?: unknown } | null)?._id;
      if (rules.length > 0 && typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
        const existing = this.#winningBody(db, docId);
        for (const rule of rules) rule.validate(ctx, raw as Record<string, unknown>, existing);
      }
      if (db === USERS_DB) {
        const existing = this.#winningBody(db, docId);
        const withId = id === undefined ? raw : { ...(raw as object), _id: id };
        if ((withId as { _deleted?: unknown })._deleted !== true) {
          validateUserDoc(withId, existing, ctx, sec);
          raw = await preparePasswordForStorageAsync(withId as Record<string, unknown>);
        } else if (
          !isAdmin &&
          !(typeof docId === 'string' && ctx.name !== null && docId === USER_DOC_ID_PREFIX + ctx.name)
        ) {
          throw notFound('missing');
        }
      }
      const edit = parseDocEdit(
        raw,
        id === undefined
          ? { newEdits, maxBytes: this.#maxDocumentBytes }
          : { newEdits, id, maxBytes: this.#maxDocumentBytes },
      );
      if (edit.id.startsWith('_design/') && !isAdmin)
        throw forbidden('Only admins can write design documents.');
      edits.push(edit);
    }
    return edits;
  }

  /** The winning revision's body of `docId`, or null (none, deleted, or not an id). */
  #winningBody(db: string, docId: unknown): Record<string, unknown> | null {
    if (typeof docId !== 'string') return null;
    try {
      return JSON.parse(this.#store.revision(db, docId, undefined).stored.b) as Record<string, unknown>;
    } catch {
      return null;
    }
  }

  /**
   * `_bulk_docs` from its raw body. Outside `_users` and databases with
   * document rules, parsing runs on the parser's worker thread.
   */
  async bulkDocsBody(
    ctx: UserContext,
    db: string,
    bytes: Buffer,
  ): Promise<{ newEdits: boolean; results: WriteResult[] }> {
    this.#store.record(db);
    if (db === USERS_DB || this.#rules.some((r) => r.appliesTo(db))) {
      const { docs, newEdits } = bulkDocsBody(bytes);
      return { newEdits, results: await this.bulkDocs(ctx, db, docs, newEdits) };
    }
    const sec = this.security(db);
    requireDbMember(ctx, sec);
    const { newEdits, edits } = await this.#parser.parse(bytes);
    if (!isDbAdmin(ctx, sec) && edits.some((e) => e.id.startsWith('_design/'))) {
      throw forbidden('Only admins can write design documents.');
    }
    return { newEdits, results: await this.#store.bulkWrite(db, edits, { newEdits }) };
  }

  async bulkDocs(
    ctx: UserContext,
    db: string,
    docs: readonly unknown[],
    newEdits: boolean,
  ): Promise<WriteResult[]> {
    this.#store.record(db);
    const edits = await this.#prepare(ctx, db, docs, newEdits);
    return this.#store.bulkWrite(db, edits, { newEdits });
  }

  /** A single write; failures become errors (409 conflict, 412 missing stub). */
  async putDoc(
    ctx: UserContext,
    db: string,
    doc: unknown,
    newEdits: boolean,
    id?: string,
  ): Promise<{ id: string; rev: string }> {
    this.#store.record(db);
    const edits = await this.#prepare(ctx, db, [doc], newEdits, id);
    const [result] = await this.#store.bulkWrite(db, edits, { newEdits });
    if (result === undefined) throw new DoppelError(ErrorKind.Internal, 'write produced no result');
    if (!result.ok) {
      if (result.error === 'conflict') throw new DoppelError(ErrorKind.Conflict, result.reason);
      throw new DoppelError(ErrorKind.PreconditionFailed, result.reason, { errorName: result.error });
    }
    return { id: result.id, rev: result.rev };
  }

  async putLocal(
    ctx: UserContext,
    db: string,
    id: string,
    doc: unknown,
    deleted: boolean,
    rev?: string,
  ): Promise<string> {
    this.#store.record(db);
    this.requireReader(ctx, db);
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
      throw badRequest('Document must be a JSON object');
    const body: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(doc)) if (!k.startsWith('_')) body[k] = v;
    const givenRev = rev ?? (doc as { _rev?: unknown })._rev;
    if (givenRev !== undefined && typeof givenRev !== 'string') throw badRequest('Invalid rev format');
    return this.#store.putLocal(db, id, givenRev, JSON.stringify(body), deleted);
  }

  getLocal(ctx: UserContext, db: string, id: string): string {
    this.#store.record(db);
    this.requireReader(ctx, db);
    return this.#store.getLocal(db, id);
  }

  // ---- whole-database copies and follower replication ------------------------

  /**
   * `GET /{db}/_doppel_copy`: the database's documents after `afterId` from one
   * snapshot, as copy-stream chunks (`database-copy-wire.ts`), for a follower's
   * bootstrap. Readers of the whole database only; checked before the first chunk.
   * The read transaction is held until the generator finishes or is returned.
   */
  copy(ctx: UserContext, db: string, afterId: string | undefined): Generator<Buffer, number> {
    this.#store.record(db);
    this.requireReader(ctx, db);
    return copyChunks(this.#store.openCopy(db, afterId));
  }

  /** `copy` as decoded frames, for a replication reading this node's database. */
  copyFrames(ctx: UserContext, db: string, afterId: string | undefined): Generator<readonly CopyFrame[]> {
    this.#store.record(db);
    this.requireReader(ctx, db);
    return copyFrameGroups(this.#store.openCopy(db, afterId));
  }

  /**
   * The writes of a follower database's own replication (`new_edits=false`):
   * the only document writes a read-only follower accepts. No user check: the
   * follower service calls this for the follower it runs, never for a caller.
   */
  async writeAsFollowerReplication(db: string, docs: readonly unknown[]): Promise<WriteResult[]> {
    const edits = docs.map((raw) => parseDocEdit(raw, { newEdits: false, maxBytes: this.#maxDocumentBytes }));
    return this.#store.bulkWrite(db, edits, { newEdits: false, allowReadOnly: true });
  }

  /** A follower's bootstrap: documents of its leader's copy (`copy`), written as its replication writes. */
  async restoreAsFollowerReplication(
    db: string,
    docs: readonly CopiedDoc[],
    attachments: ReadonlyMap<string, Buffer>,
    guard: CopyGuard,
  ): Promise<WriteResult[]> {
    return this.#store.restoreCopy(db, docs, attachments, this.#maxDocumentBytes, guard, true);
  }

  /**
   * `POST /{db}/_doppel_restore`: one batch of a copy a replication pushes to
   * this node (copy-stream frames: attachment bodies and documents, then `end`
   * with the number of documents), written as `copyWriter` writes, in one
   * transaction. 400 for bytes that are not such a batch; nothing is written then.
   */
  async restoreBatch(ctx: UserContext, db: string, bytes: Buffer): Promise<WriteResult[]> {
    this.#store.record(db);
    const write = this.copyWriter(ctx, db);
    if (write === null)
      throw badRequest(`${db} takes replicated writes document by document (_bulk_docs), not copies`);
    requireDbMember(ctx, this.security(db));
    const reader = new CopyReader();
    const docs: CopiedDoc[] = [];
    const attachments = new Map<string, Buffer>();
    let end: number | null = null;
    try {
      reader.feed(bytes);
      for (let f = reader.next(); f !== undefined; f = reader.next()) {
        if (end !== null) throw new Error('frames after the end of the batch');
        if (f.kind === 'doc') docs.push(f.doc);
        else if (f.kind === 'attachment') attachments.set(f.digest, f.bytes);
        else if (f.kind === 'end') end = f.docs;
        else throw new Error(`a ${f.kind} frame in a batch`);
      }
    } catch (err) {
      throw badRequest(`Not a copy batch: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (end !== docs.length || reader.buffered > 0) throw badRequest('Not a copy batch: it is cut off');
    return write(docs, attachments, { failed: false });
  }

  /**
   * How a replication writes a copy into `db` (`CopyBatchWriter`), as `ctx`:
   * members write, design documents need a database admin (refused one by one,
   * as CouchDB refuses them in a `new_edits=false` write), a read-only
   * database refuses. Null for databases whose writes go through document
   * rules (`_users`, `_replicator`, …): they are replicated document by document.
   */
  copyWriter(
    ctx: UserContext,
    db: string,
  ):
    | ((
        docs: readonly CopiedDoc[],
        attachments: ReadonlyMap<string, Buffer>,
        guard: CopyGuard,
      ) => Promise<WriteResult[]>)
    | null {
    if (db === USERS_DB || this.#rules.some((r) => r.appliesTo(db))) return null;
    return async (docs, attachments, guard) => {
      this.#store.record(db);
      const sec = this.security(db);
      requireDbMember(ctx, sec);
      const restore = (allowed: readonly CopiedDoc[]): Promise<WriteResult[]> =>
        this.#store.restoreCopy(db, allowed, attachments, this.#maxDocumentBytes, guard, false);
      if (isDbAdmin(ctx, sec)) return restore(docs);
      const allowed: CopiedDoc[] = [];
      const refused: WriteResult[] = [];
      for (const doc of docs) {
        if (!doc.id.startsWith('_design/')) allowed.push(doc);
        else
          for (const leaf of doc.leaves)
            refused.push({
              ok: false,
              id: doc.id,
              rev: leaf.path[0] ?? '',
              error: 'forbidden',
              reason: 'Only admins can write design documents.',
            });
      }
      return [...(await restore(allowed)), ...refused];
    };
  }

  /** The follower replication's checkpoint (`_local/{id}`) on its read-only database. */
  async putLocalAsFollowerReplication(
    db: string,
    id: string,
    body: Readonly<Record<string, unknown>>,
    rev: string | undefined,
  ): Promise<string> {
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(body)) if (!k.startsWith('_')) fields[k] = v;
    return this.#store.putLocal(db, id, rev, JSON.stringify(fields), false, true);
  }

  // ---- reads ---------------------------------------------------------------

  get(ctx: UserContext, db: string, id: string, rev: string | undefined, render: RenderOptions): string {
    this.#store.record(db);
    this.requireReader(ctx, db, id);
    return this.#store.get(db, id, rev, render);
  }

  openRevs(
    ctx: UserContext,
    db: string,
    id: string,
    revs: readonly string[] | 'all',
    latest: boolean,
    render: RenderOptions,
  ): ReturnType<DocumentStore['openRevs']> {
    this.#store.record(db);
    this.requireReader(ctx, db, id);
    return this.#store.openRevs(db, id, revs, latest, render);
  }

  /**
   * `openRevs` for the documents of one request (`_bulk_get`, a replication's
   * reads): the database and the caller's access are checked once, not per
   * document. In `_users`, where access depends on the document, every call
   * is checked as `openRevs` does.
   */
  revsReader(ctx: UserContext, db: string): RevsReader {
    if (db === USERS_DB && !isServerAdmin(ctx)) {
      return (id, revs, latest, render) => this.openRevs(ctx, db, id, revs, latest, render);
    }
    this.#store.record(db);
    this.requireReader(ctx, db);
    return this.#store.revsReader(db);
  }

  attachment(
    ctx: UserContext,
    db: string,
    id: string,
    name: string,
    rev: string | undefined,
  ): { contentType: string; digest: string; bytes: Buffer } {
    this.#store.record(db);
    this.requireReader(ctx, db, id);
    const { stored } = this.#store.revision(db, id, rev);
    const meta = stored.a?.[name];
    if (meta === undefined) throw notFound('Document is missing attachment');
    const bytes = this.#store.readAttachmentBytes(db, meta.digest);
    if (bytes === undefined) throw notFound('Document is missing attachment');
    return { contentType: meta.content_type, digest: meta.digest, bytes };
  }

  /** `PUT /{db}/{id}/{name}`: a new revision with the attachment added or replaced. */
  async putAttachment(
    ctx: UserContext,
    db: string,
    id: string,
    name: string,
    rev: string | undefined,
    contentType: string,
    bytes: Buffer,
  ): Promise<{ id: string; rev: string }> {
    // Before the document is read: its revisions are no business of a non-member's (409/404 would tell).
    this.requireReader(ctx, db, id);
    const doc = this.#docWithAttachments(db, id, rev);
    const atts = (doc['_attachments'] ?? {}) as Record<string, unknown>;
    atts[name] = { content_type: contentType, data: bytes.toString('base64') };
    doc['_attachments'] = atts;
    return this.putDoc(ctx, db, doc, true, id);
  }

  async deleteAttachment(
    ctx: UserContext,
    db: string,
    id: string,
    name: string,
    rev: string | undefined,
  ): Promise<{ id: string; rev: string }> {
    this.requireReader(ctx, db, id);
    if (rev === undefined) throw new DoppelError(ErrorKind.Conflict, 'Document update conflict.');
    const doc = this.#docWithAttachments(db, id, rev);
    const atts = (doc['_attachments'] ?? {}) as Record<string, unknown>;
    if (!(name in atts)) throw notFound('Document is missing attachment');
    delete atts[name];
    doc['_attachments'] = atts;
    return this.putDoc(ctx, db, doc, true, id);
  }

  /** The current body with its attachments as stubs, ready to be edited and written back. */
  #docWithAttachments(db: string, id: string, rev: string | undefined): Record<string, unknown> {
    this.#store.record(db);
    if (rev === undefined) {
      if (this.#store.tree(db, id) === undefined) return { _id: id };
      throw new DoppelError(ErrorKind.Conflict, 'Document update conflict.');
    }
    const { stored } = this.#store.revision(db, id, rev);
    const doc = JSON.parse(stored.b) as Record<string, unknown>;
    doc['_id'] = id;
    doc['_rev'] = rev;
    if (stored.a !== undefined) {
      const atts: Record<string, unknown> = {};
      for (const [n, meta] of Object.entries(stored.a)) atts[n] = { ...meta, stub: true };
      doc['_attachments'] = atts;
    }
    return doc;
  }

  revsDiff(ctx: UserContext, db: string, body: unknown): ReturnType<DocumentStore['revsDiff']> {
    this.#store.record(db);
    this.requireReader(ctx, db);
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw badRequest('Request body must be a JSON object');
    for (const revs of Object.values(body)) {
      if (!Array.isArray(revs) || !revs.every((r) => typeof r === 'string'))
        throw badRequest('Each value must be a list of revisions');
    }
    return this.#store.revsDiff(db, body as Record<string, string[]>);
  }

  /** `_all_docs`, or `_design_docs` with `designOnly`. */
  allDocs(
    ctx: UserContext,
    db: string,
    query: AllDocsQuery,
    designOnly = false,
  ): ReturnType<DocumentStore['allDocs']> {
    this.#store.record(db);
    this.requireReader(ctx, db);
    return this.#store.allDocs(db, query, designOnly);
  }

  localDocs(ctx: UserContext, db: string, query: AllDocsQuery): ReturnType<DocumentStore['localDocs']> {
    this.#store.record(db);
    this.requireReader(ctx, db);
    return this.#store.localDocs(db, query);
  }

  find(ctx: UserContext, db: string, body: unknown): ReturnType<typeof runFind> {
    this.#store.record(db);
    this.requireReader(ctx, db);
    const request = parseFindRequest(body);
    const render: RenderOptions = request.conflicts === true ? { conflicts: true } : {};
    const store = this.#store;
    function* docs(): Generator<Record<string, unknown>> {
      let after: string | undefined;
      for (;;) {
        const query: AllDocsQuery = {
          inclusiveEnd: true,
          descending: false,
          limit: 500,
          skip: 0,
          includeDocs: true,
          render,
        };
        const page = store.allDocs(
          db,
          after === undefined ? query : { ...query, startkey: `${after}\u0000` },
        );
        if (page.rows.length === 0) return;
        for (const row of page.rows)
          if (typeof row.doc === 'string') yield JSON.parse(row.doc) as Record<string, unknown>;
        after = page.rows[page.rows.length - 1].id;
      }
    }
    return runFind(docs(), request, { inIdOrder: true });
  }

  /** Builds the engine filter for a `_changes` request (and checks the caller may use it). */
  changesFilter(ctx: UserContext, db: string, spec: ChangesFilterSpec): ChangesFilter | undefined {
    switch (spec.kind) {
      case 'none':
        return undefined;
      case 'doc_ids': {
        const ids = new Set(spec.ids);
        return { needsDocs: false, test: (rows) => rows.map((r) => ids.has(r.id)) };
      }
      case 'design':
        return { needsDocs: false, test: (rows) => rows.map((r) => r.id.startsWith('_design/')) };
      case 'selector': {
        const match = compileSelector(spec.selector);
        return {
          needsDocs: true,
          test: (rows) =>
            rows.map(
              (r) => r.doc !== undefined && match(JSON.parse(r.doc.toString()) as Record<string, unknown>),
            ),
        };
      }
      case 'js': {
        const compiled = this.#jsFilter(db, spec.ddoc, spec.name);
        const req = { query: spec.query, userCtx: { db, name: ctx.name, roles: ctx.roles } };
        return {
          needsDocs: true,
          test: (rows: readonly ChangeRow[]) =>
            compiled.run(
              rows.map((r) => (r.doc === undefined ? null : (JSON.parse(r.doc.toString()) as unknown))),
              req,
            ),
        };
      }
    }
  }

  #jsFilter(db: string, ddoc: string, name: string): CompiledFilter {
    const id = `_design/${ddoc}`;
    let revision;
    try {
      revision = this.#store.revision(db, id, undefined);
    } catch (err) {
      if (err instanceof DoppelError && err.kind === ErrorKind.NotFound)
        throw notFound(`missing json key: ${ddoc}`);
      throw err;
    }
    const key = `${this.#store.record(db).uid}/${id}/${name}`;
    const cached = this.#filterCache.get(key);
    if (cached !== undefined && cached.rev === revision.rev) return cached.compiled;
    const filters = (JSON.parse(revision.stored.b) as { filters?: Record<string, unknown> }).filters;
    const source = filters?.[name];
    if (typeof source !== 'string') throw notFound(`missing json key: ${name}`);
    const compiled = compileFilter(source, { timeoutMs: this.#functionTimeoutMs, name: `${ddoc}/${name}` });
    this.#filterCache.set(key, { rev: revision.rev, compiled });
    return compiled;
  }

  async changes(ctx: UserContext, db: string, query: ChangesQuery): ReturnType<DocumentStore['changes']> {
    this.#store.record(db);
    this.requireReader(ctx, db);
    return this.#store.changes(db, query);
  }

  /** Resolves after the next commit to `db` past `seq`, or on abort. */
  waitForChange(db: string, seq: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      let current: number;
      try {
        current = this.#store.record(db).seq;
      } catch {
        return resolve();
      }
      if (current > seq) return resolve();
      const done = (): void => {
        off();
        signal.removeEventListener('abort', done);
        resolve();
      };
      const off = this.#store.onChange(db, () => done());
      signal.addEventListener('abort', done, { once: true });
    });
  }

  dbUpdates(ctx: UserContext, since: number, limit: number): ReturnType<DocumentStore['dbUpdates']> {
    requireServerAdmin(ctx);
    return this.#store.dbUpdates(since, limit);
  }

  waitForDbUpdate(since: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted || this.#store.dbUpdatesSeq() > since) return resolve();
      const done = (): void => {
        off();
        signal.removeEventListener('abort', done);
        resolve();
      };
      const off = this.#store.onDbUpdate(() => done());
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

/** Documents per group of frames a local copy hands out. */
const FRAMES_DOCS = 256;

/** The copy's frames, in groups; closes the copy when done or returned early. */
function* copyFrameGroups(copy: DatabaseCopy): Generator<readonly CopyFrame[]> {
  try {
    let frames: CopyFrame[] = [
      { kind: 'header', header: { seq: copy.seq, doc_count: copy.docCount, doc_del_count: copy.delCount } },
    ];
    let docs = 0;
    const sent = new Set<string>();
    const bodyOf = (digest: string): Buffer | undefined => copy.attachment(digest);
    for (const doc of copy.docs()) {
      pushDocFrames(frames, doc, bodyOf, sent);
      if (++docs % FRAMES_DOCS === 0) {
        yield frames;
        frames = [];
      }
    }
    frames.push({ kind: 'end', docs, unreadable: copy.unreadable });
    yield frames;
  } finally {
    copy.close();
  }
}

/** The copy's bytes, in chunks; returns the number of documents sent. */
function* copyChunks(copy: DatabaseCopy): Generator<Buffer, number> {
  const writer = new CopyWriter();
  let docs = 0;
  for (const frames of copyFrameGroups(copy)) {
    for (const f of frames) {
      writer.frame(f);
      if (f.kind === 'end') docs = f.docs;
      if (writer.full) yield writer.take();
    }
  }
  yield writer.take();
  return docs;
}
