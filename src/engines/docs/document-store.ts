import { EventEmitter } from 'node:events';
import type { Database } from 'lmdb';
import { badRequest, conflict, DoppelError, ErrorKind, notFound } from '../../errors.js';
import type { Storage } from '../../storage/environment.js';
import type { AttachmentMeta, DatabaseKind, JournalEntry } from '../journal/journal-entry.js';
import type { Journal } from '../journal/journal.js';
import type { CopiedDoc, CopiedRevision, CopyGuard, DatabaseCopy } from './database-copy.js';
import { validateDatabaseName, type DatabaseRecord } from './database-record.js';
import {
  md5Digest,
  newRevision,
  validateCopiedRevision,
  type AttachmentInput,
  type DocEdit,
} from './doc-input.js';
import { docIdKeyEncoder } from './doc-id-keys.js';
import { changeRevs, renderDoc, type RenderOptions, type StoredRevision } from './doc-output.js';
import {
  decodeInfo,
  decodeRevision,
  encodeInfo,
  encodeRevisionForPut,
  storedLeaves,
  type DocInfo,
  type SeqEntry,
  type StoredDocInfo,
} from './doc-records.js';
import {
  addChild,
  ancestry,
  compareLeaves,
  graftPath,
  isLeaf,
  leaves,
  RevFlag,
  revPos,
  revsDiff,
  stem,
  winner,
  type RevTree,
} from './rev-tree.js';

interface LocalDoc {
  readonly rev: number;
  readonly body: string;
}

interface DbUpdate {
  readonly db: string;
  readonly type: 'created' | 'updated' | 'deleted';
}

/** The journal entries that change a database's settings (its record). */
type RecordEntry = Extract<JournalEntry, { k: 'security' | 'revs_limit' | 'read_only' }>;

export type WriteResult =
  | { readonly ok: true; readonly id: string; readonly rev: string }
  | {
      readonly ok: false;
      readonly id: string;
      readonly rev?: string;
      readonly error: string;
      readonly reason: string;
    };

export interface ChangeRow {
  readonly seq: number;
  readonly id: string;
  readonly changes: readonly string[];
  readonly deleted: boolean;
  /** Rendered winning revision (JSON bytes), when asked for. */
  readonly doc?: Buffer;
}

export interface ChangesQuery {
  readonly since: number;
  readonly limit: number;
  readonly descending: boolean;
  readonly style: 'all_docs' | 'main_only';
  readonly includeDocs: boolean;
  readonly render: RenderOptions;
  /** Decides, for a batch of candidate rows (with docs rendered when `needsDocs`), which pass. */
  readonly filter?: ChangesFilter;
  /** Skip counting `pending` (a scan of the rest of the feed) when the caller pages on. */
  readonly skipPending?: boolean;
}

export interface ChangesFilter {
  readonly needsDocs: boolean;
  test(rows: readonly ChangeRow[]): boolean[] | Promise<boolean[]>;
}

/** What `openRevs` gives for each requested revision: the rendered document, or the rev as missing. */
export type OpenRevsResult = ({ ok: string } | { missing: string })[];

/** `openRevs` bound to one database (see `DocumentStore.revsReader`). */
export type RevsReader = (
  id: string,
  revs: readonly string[] | 'all',
  latest: boolean,
  options: RenderOptions,
) => OpenRevsResult;

export interface AllDocsRow {
  readonly id: string;
  readonly key: string;
  readonly value: { rev: string; deleted?: true };
  readonly doc?: string | null;
  readonly error?: string;
}

export interface AllDocsQuery {
  readonly startkey?: string;
  readonly endkey?: string;
  readonly inclusiveEnd: boolean;
  readonly descending: boolean;
  readonly limit: number;
  readonly skip: number;
  readonly includeDocs: boolean;
  readonly render: RenderOptions;
  readonly keys?: readonly string[];
}

export interface DatabaseInfo {
  readonly db_name: string;
  readonly update_seq: number;
  readonly doc_count: number;
  readonly doc_del_count: number;
  readonly purge_seq: number;
  readonly compact_running: boolean;
  readonly sizes: { active: number; external: number; file: number };
  readonly instance_start_time: '0';
  readonly disk_format_version: number;
  readonly props: Record<string, never>;
  readonly cluster: { q: number; n: number; w: number; r: number };
  readonly doppel: { kind: DatabaseKind; read_only?: string };
}

/** One point of a bucket write: its document id and body (see `engines/points/point-document.ts`). */
export interface PointWrite {
  readonly id: string;
  readonly body: string;
}

export interface PointsWriteOptions {
  /** The body after a rewrite of a stored point; null when it changes nothing. */
  readonly merge: (stored: string, incoming: string) => string | null;
  /** The points as line protocol at ns precision, each line ending in "\n" (the journal entry). */
  readonly lines: string;
  readonly count: number;
  /** Runs inside the write's transaction after the journal append; a throw refuses the write. */
  readonly inTransaction?: (lsn: number, uid: number) => void;
}

function pointEdit(id: string, body: string): DocEdit {
  return { id, rev: undefined, deleted: false, body, path: undefined, attachments: undefined };
}

const CHANGES_BATCH = 256;

function sameTree(a: RevTree, b: RevTree): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => b[k]?.[0] === a[k][0] && b[k]?.[1] === a[k][1]);
}

/** `putSync` options of an append (MDB_APPEND), see `DocumentStore.#putRow`. */
const APPEND = { append: true } as const;

const LOCAL_PREFIX = '_local/';
/** Design document ids: from `_design/` up to, not including, `_design0` ('0' follows '/'). */
const DESIGN_IDS = { low: '_design/', high: '_design0' } as const;

function renderLocal(id: string, local: LocalDoc): string {
  const body = local.body.length > 2 ? `,${local.body.slice(1, -1)}` : '';
  return `{"_id":${JSON.stringify(id)},"_rev":"0-${local.rev}"${body}}`;
}

/** A `_local_docs` query's keys (full `_local/…` ids) as bounds over local ids (prefix removed). */
function localIdQuery(query: AllDocsQuery): AllDocsQuery {
  // A bound outside the `_local/` ids falls before or after all of them.
  const toLocalId = (key: string): string =>
    key.startsWith(LOCAL_PREFIX) ? key.slice(LOCAL_PREFIX.length) : key < LOCAL_PREFIX ? '' : '\u{10FFFF}';
  const { startkey, endkey, ...rest } = query;
  return {
    ...rest,
    ...(startkey === undefined ? {} : { startkey: toLocalId(startkey) }),
    ...(endkey === undefined ? {} : { endkey: toLocalId(endkey) }),
  };
}

/**
 * The rows of `table` (keyed `[uid, id]`) an `_all_docs`-style query selects, in its
 * order, as `[id, value]`: startkey and endkey are inclusive (endkey unless
 * `inclusiveEnd` is false), descending swaps their roles; `within` keeps ids in [low, high).
 */
function* idRange<V>(
  table: Database<V, [number, string]>,
  uid: number,
  query: Pick<AllDocsQuery, 'startkey' | 'endkey' | 'inclusiveEnd' | 'descending'>,
  within?: { readonly low: string; readonly high: string },
): Generator<[string, V]> {
  const { startkey, endkey, inclusiveEnd, descending } = query;
  // LMDB's end bound is exclusive: an inclusive end uses the next possible key. A reverse
  // scan starts at the high bound; its low bound is checked here.
  const low: [number, string] | [number] = within === undefined ? [uid] : [uid, within.low];
  const high: [number, string] | [number] = within === undefined ? [uid + 1] : [uid, within.high];
  let start: [number, string] | [number];
  let end: [number, string] | [number];
  if (!descending) {
    start = startkey !== undefined && (within === undefined || startkey > within.low) ? [uid, startkey] : low;
    end =
      endkey !== undefined && (within === undefined || endkey < within.high)
        ? [uid, inclusiveEnd ? `${endkey}\u0000` : endkey]
        : high;
  } else {
    start =
      startkey !== undefined && (within === undefined || startkey < within.high)
        ? [uid, `${startkey}\u0000`]
        : high;
    end = low;
  }
  for (const { key, value } of table.getRange({ start, end, reverse: descending })) {
    const id = key[1];
    if (within !== undefined && (id < within.low || id >= within.high)) {
      if (descending && id < within.low) return;
      continue;
    }
    if (descending) {
      if (startkey !== undefined && id > startkey) continue;
      if (endkey !== undefined && (id < endkey || (id === endkey && !inclusiveEnd))) return;
    }
    yield [id, value];
  }
}

/**
 * The document engine: every database of the node, with CouchDB semantics,
 * stored in LMDB. Writes commit in one transaction together with their
 * journal entries; reads go straight to the latest committed snapshot.
 */
export class DocumentStore {
  readonly #storage: Storage;
  readonly #journal: Journal;
  readonly #dbs: Database<DatabaseRecord, string>;
  readonly #docs: Database<StoredDocInfo, [number, string]>;
  readonly #revs: Database<Buffer, [number, string, string]>;
  readonly #seqs: Database<SeqEntry, [number, number]>;
  readonly #locals: Database<LocalDoc, [number, string]>;
  readonly #atts: Database<Buffer, [number, string]>;
  readonly #meta: Database<number, string>;
  readonly #updates: Database<DbUpdate, number>;
  readonly #updateSeqByDb: Database<number, string>;
  readonly #events = new EventEmitter();
  readonly #defaultRevsLimit: number;
  /** Set while this node is a replica: the 403 reason every write gets (replays are not writes). */
  #nodeReadOnly: string | undefined;
  /** Set while a copy is restored: its rows mostly arrive in key order (see `#putRow`). */
  #rowsInOrder = false;

  constructor(storage: Storage, journal: Journal, options: { defaultRevsLimit: number }) {
    this.#storage = storage;
    this.#journal = journal;
    this.#defaultRevsLimit = options.defaultRevsLimit;
    this.#dbs = storage.structured('dbs');
    this.#docs = storage.structured('docs', docIdKeyEncoder);
    this.#revs = storage.binary('revs', docIdKeyEncoder);
    this.#seqs = storage.structured('seqs');
    this.#locals = storage.structured('locals', docIdKeyEncoder);
    this.#atts = storage.binary('atts');
    this.#meta = storage.structured('docs-meta');
    this.#updates = storage.structured('db-updates');
    this.#updateSeqByDb = storage.structured('db-updates-by-name');
    this.#events.setMaxListeners(0);
  }

  /**
   * A row put; while a copy is restored, first as an append (LMDB's MDB_APPEND), which
   * skips the B-tree search and fills pages instead of splitting them in half. A key
   * that is not the table's greatest makes the append fail; then it is an ordinary put.
   */
  #putRow<V, K extends (string | number)[]>(table: Database<V, K>, key: K, value: V): void {
    if (this.#rowsInOrder && (table.putSync(key, value, APPEND) as unknown) === true) return;
    table.putSync(key, value);
  }

  #info(key: [number, string]): DocInfo | undefined {
    const stored = this.#docs.get(key);
    return stored === undefined ? undefined : decodeInfo(stored);
  }

  #rev(key: [number, string, string]): StoredRevision | undefined {
    const bytes = this.#revs.getBinaryFast(key);
    return bytes === undefined ? undefined : decodeRevision(bytes);
  }

  // ---- notifications -------------------------------------------------------

  /** Calls `listener(seq)` after each commit that changed `db`; returns the unsubscribe function. */
  onChange(db: string, listener: (seq: number) => void): () => void {
    const event = `db:${db}`;
    this.#events.on(event, listener);
    return () => this.#events.off(event, listener);
  }

  /** Calls `listener()` after each commit that changed any database's updates feed. */
  onDbUpdate(listener: () => void): () => void {
    this.#events.on('db-updates', listener);
    return () => this.#events.off('db-updates', listener);
  }

  #notify(db: string, seq: number): void {
    this.#events.emit(`db:${db}`, seq);
    this.#events.emit('db-updates');
  }

  // ---- databases -----------------------------------------------------------

  /** Makes every database read-only (a node replica) with `reason`, or writable again. */
  setNodeReadOnly(reason: string | undefined): void {
    this.#nodeReadOnly = reason;
  }

  #checkNodeWritable(): void {
    if (this.#nodeReadOnly !== undefined) throw new DoppelError(ErrorKind.Forbidden, this.#nodeReadOnly);
  }

  list(): string[] {
    return [...this.#dbs.getKeys()];
  }

  record(name: string): DatabaseRecord {
    const rec = this.#dbs.get(name);
    if (rec === undefined) throw new DoppelError(ErrorKind.NotFound, 'Database does not exist.');
    return rec;
  }

  exists(name: string): boolean {
    return this.#dbs.doesExist(name);
  }

  info(name: string): DatabaseInfo {
    const rec = this.record(name);
    const doppel: DatabaseInfo['doppel'] =
      rec.readOnly === undefined ? { kind: rec.kind } : { kind: rec.kind, read_only: rec.readOnly };
    return {
      db_name: rec.name,
      update_seq: rec.seq,
      doc_count: rec.docCount,
      doc_del_count: rec.delCount,
      purge_seq: 0,
      compact_running: false,
      sizes: { active: rec.activeBytes, external: rec.activeBytes, file: rec.activeBytes },
      instance_start_time: '0',
      disk_format_version: 8,
      props: {},
      cluster: { q: 1, n: 1, w: 1, r: 1 },
      doppel,
    };
  }

  async create(name: string, kind: DatabaseKind, security: unknown): Promise<void> {
    validateDatabaseName(name);
    await this.#storage.write(() => {
      this.#checkNodeWritable();
      this.#createInWrite(name, kind, security, Date.now());
    });
    this.#notify(name, 0);
  }

  #createInWrite(name: string, kind: DatabaseKind, security: unknown, now: number): DatabaseRecord {
    if (this.#dbs.doesExist(name)) {
      throw new DoppelError(
        ErrorKind.DatabaseExists,
        'The database could not be created, the file already exists.',
      );
    }
    const uid = this.#meta.get('nextUid') ?? 1;
    this.#meta.putSync('nextUid', uid + 1);
    const rec: DatabaseRecord = {
      uid,
      name,
      kind,
      createdAt: now,
      seq: 0,
      docCount: 0,
      delCount: 0,
      revsLimit: this.#defaultRevsLimit,
      security,
      activeBytes: 0,
    };
    this.#dbs.putSync(name, rec);
    this.#recordDbUpdate(name, 'created');
    this.#journal.append({ k: 'db.create', db: name, uid, kind }, now);
    return rec;
  }

  async delete(name: string): Promise<void> {
    const uid = await this.#storage.write(() => {
      this.#checkNodeWritable();
      return this.#deleteInWrite(name, Date.now(), false);
    });
    this.#notify(name, 0);
    await this.#dropData(uid);
  }

  #deleteInWrite(name: string, now: number, allowReadOnly: boolean): number {
    const rec = this.#dbs.get(name);
    if (rec === undefined) throw notFound('Database does not exist.');
    if (rec.readOnly !== undefined && !allowReadOnly)
      throw new DoppelError(ErrorKind.Forbidden, rec.readOnly);
    this.#dbs.removeSync(name);
    this.#recordDbUpdate(name, 'deleted');
    this.#journal.append({ k: 'db.delete', db: name, uid: rec.uid }, now);
    return rec.uid;
  }

  /** Removes the rows of a deleted database in bounded transactions; safe to rerun. */
  async #dropData(uid: number): Promise<void> {
    const ranges: Database<unknown, (string | number)[]>[] = [
      this.#docs,
      this.#revs,
      this.#seqs,
      this.#locals,
      this.#atts,
    ];
    for (const db of ranges) {
      for (;;) {
        const keys = [...db.getKeys({ start: [uid], end: [uid + 1], limit: 5000 })];
        if (keys.length === 0) break;
        await this.#storage.write(() => {
          for (const key of keys) db.removeSync(key);
        });
      }
    }
  }

  /** Drops rows of databases that no longer exist (e.g. after a crash in the middle of a delete). */
  async sweepDeleted(): Promise<void> {
    const live = new Set([...this.#dbs.getRange()].map((r) => r.value.uid));
    const seen = new Set<number>();
    for (const key of this.#docs.getKeys()) seen.add(key[0]);
    for (const key of this.#seqs.getKeys()) seen.add(key[0]);
    for (const uid of seen) if (!live.has(uid)) await this.#dropData(uid);
  }

  async setSecurity(name: string, security: unknown): Promise<void> {
    await this.#updateRecord({ k: 'security', db: name, security });
  }

  async setRevsLimit(name: string, limit: number): Promise<void> {
    if (!Number.isSafeInteger(limit) || limit < 1) throw badRequest('_revs_limit must be a positive integer');
    await this.#updateRecord({ k: 'revs_limit', db: name, limit });
  }

  /** Marks a database read-only (a follower); `reason` is the 403's reason. Undefined: writable. */
  async setReadOnly(name: string, reason: string | undefined): Promise<void> {
    await this.#updateRecord({ k: 'read_only', db: name, reason: reason ?? null });
  }

  async #updateRecord(entry: RecordEntry): Promise<void> {
    await this.#storage.write(() => {
      this.#checkNodeWritable();
      this.#updateRecordInWrite(entry, Date.now());
    });
  }

  /** Applies a database setting and journals it: the same on a primary and on a replica. */
  #updateRecordInWrite(entry: RecordEntry, now: number): void {
    const rec = this.#dbs.get(entry.db);
    if (rec === undefined) throw notFound('Database does not exist.');
    const next = { ...rec };
    switch (entry.k) {
      case 'security':
        next.security = entry.security;
        break;
      case 'revs_limit':
        next.revsLimit = entry.limit;
        break;
      case 'read_only':
        if (entry.reason === null) delete next.readOnly;
        else next.readOnly = entry.reason;
        break;
    }
    this.#dbs.putSync(entry.db, next);
    this.#journal.append(entry, now);
  }

  #recordDbUpdate(db: string, type: DbUpdate['type']): void {
    const seq = (this.#meta.get('dbUpdatesSeq') ?? 0) + 1;
    this.#meta.putSync('dbUpdatesSeq', seq);
    const previous = this.#updateSeqByDb.get(db);
    if (previous !== undefined) this.#updates.removeSync(previous);
    this.#updates.putSync(seq, { db, type });
    this.#updateSeqByDb.putSync(db, seq);
  }

  /** `_db_updates` rows after `since`, coalesced to the newest per database. */
  dbUpdates(
    since: number,
    limit: number,
  ): { rows: { seq: number; db_name: string; type: string }[]; last: number } {
    const rows: { seq: number; db_name: string; type: string }[] = [];
    for (const { key, value } of this.#updates.getRange({ start: since + 1, limit })) {
      rows.push({ seq: key, db_name: value.db, type: value.type });
    }
    return { rows, last: rows.length > 0 ? rows[rows.length - 1].seq : this.dbUpdatesSeq() };
  }

  dbUpdatesSeq(): number {
    return this.#meta.get('dbUpdatesSeq') ?? 0;
  }

  // ---- document writes -----------------------------------------------------

  /**
   * Applies a batch of edits in one transaction. Per-document failures
   * (conflicts, missing stubs) are results, not throws; nothing else is
   * written for a failed document.
   */
  async bulkWrite(
    dbName: string,
    edits: readonly DocEdit[],
    options: { newEdits: boolean; allowReadOnly?: boolean },
  ): Promise<WriteResult[]> {
    const results = await this.#storage.write(() => {
      this.#checkNodeWritable();
      const rec = this.#dbs.get(dbName);
      if (rec === undefined) throw notFound('Database does not exist.');
      if (rec.readOnly !== undefined && options.allowReadOnly !== true) {
        throw new DoppelError(ErrorKind.Forbidden, rec.readOnly);
      }
      const next = { ...rec };
      const now = Date.now();
      const out: WriteResult[] = [];
      for (const edit of edits)
        out.push(options.newEdits ? this.#applyEdit(next, edit, now) : this.#applyGraft(next, edit, now));
      if (next.seq !== rec.seq) {
        this.#dbs.putSync(dbName, next);
        this.#recordDbUpdate(dbName, 'updated');
      }
      return { out, seq: next.seq, changed: next.seq !== rec.seq };
    });
    if (results.changed) this.#notify(dbName, results.seq);
    return results.out;
  }

  #applyEdit(rec: DatabaseRecord, edit: DocEdit, now: number): WriteResult {
    const info = this.#info([rec.uid, edit.id]);
    const refused: WriteResult = {
      ok: false,
      id: edit.id,
      error: 'conflict',
      reason: 'Document update conflict.',
    };
    let parent: string | null = null;
    if (info === undefined) {
      if (edit.rev !== undefined) return refused;
    } else if (edit.rev === undefined) {
      // Without a rev, only a live write may recreate a document whose every leaf is deleted.
      const win = winner(info.t);
      if ((info.t[win][1] & RevFlag.Deleted) === 0 || edit.deleted) return refused;
      parent = win;
    } else {
      // As CouchDB 2+: a fully deleted document is not edited by naming a tombstone; it is
      // recreated without a rev.
      if (!isLeaf(info.t, edit.rev) || (info.t[winner(info.t)][1] & RevFlag.Deleted) !== 0) return refused;
      parent = edit.rev;
    }
    const parentAtts = parent === null ? undefined : this.#rev([rec.uid, edit.id, parent])?.a;
    const atts = this.#resolveAttachments(rec, parentAtts, (parent === null ? 0 : revPos(parent)) + 1, edit);
    if (!Array.isArray(atts)) return { ok: false, id: edit.id, ...atts };
    const rev =
      parent === null && atts.length === 0 && edit.firstRev !== undefined
        ? edit.firstRev
        : newRevision(
            parent,
            edit,
            atts.map(([name, meta]) => `${name}:${meta.content_type}:${meta.digest}`),
          );
    if (info !== undefined && rev in info.t) {
      // The same edit of the same parent was already applied: it converges on the same revision.
      return { ok: true, id: edit.id, rev };
    }
    const flags = RevFlag.Available | (edit.deleted ? RevFlag.Deleted : 0);
    if (info === undefined) {
      // A new document: a one-node tree, nothing to stem or rank.
      this.#writeRevision(rec, edit, undefined, [rec.seq + 1, rev, null, flags], rev, [rev], 1, atts, now);
    } else {
      this.#commitRevision(rec, edit, info, addChild(info.t, parent, rev, flags), rev, atts, now);
    }
    return { ok: true, id: edit.id, rev };
  }

  #applyGraft(rec: DatabaseRecord, edit: DocEdit, now: number): WriteResult {
    const info = this.#info([rec.uid, edit.id]);
    const path = edit.path!;
    const rev = path[0];
    const flags = RevFlag.Available | (edit.deleted ? RevFlag.Deleted : 0);
    if (info === undefined) return this.#graftNew(rec, edit, path, flags, now);
    const tree = graftPath(info.t, path, flags);
    // A path that only brings back revisions stemming drops again changes nothing.
    if (tree === null || sameTree(stem(tree, rec.revsLimit).tree, info.t)) {
      return { ok: true, id: edit.id, rev };
    }
    const known = this.#rev([rec.uid, edit.id, rev]);
    if (known !== undefined) {
      // Only the ancestry grew: keep the body we already hold.
      const kept: DocEdit = { ...edit, body: known.b, attachments: undefined };
      this.#commitRevision(rec, kept, info, tree, rev, Object.entries(known.a ?? {}), now);
      return { ok: true, id: edit.id, rev };
    }
    // Stubs refer to the nearest ancestor on the path whose body we hold.
    let ancestorAtts: Readonly<Record<string, AttachmentMeta>> | undefined;
    for (const r of path.slice(1)) {
      const stored = this.#rev([rec.uid, edit.id, r]);
      if (stored !== undefined) {
        ancestorAtts = stored.a;
        break;
      }
    }
    const atts = this.#resolveAttachments(rec, ancestorAtts, revPos(rev), edit);
    if (!Array.isArray(atts)) return { ok: false, id: edit.id, rev, ...atts };
    this.#commitRevision(rec, edit, info, tree, rev, atts, now);
    return { ok: true, id: edit.id, rev };
  }

  /**
   * `new_edits=false` for a document this database does not have (the usual
   * case of a replication): its tree is the path alone, stemmed to the revs
   * limit, a single branch whose leaf wins. It is encoded directly, without
   * building, grafting, stemming and ranking a tree; the result is the same as
   * `graftPath` and `stem` over an empty tree would give.
   */
  #graftNew(
    rec: DatabaseRecord,
    edit: DocEdit,
    path: readonly string[],
    flags: number,
    now: number,
  ): WriteResult {
    const rev = path[0];
    const atts = this.#resolveAttachments(rec, undefined, revPos(rev), edit);
    if (!Array.isArray(atts)) return { ok: false, id: edit.id, rev, ...atts };
    const kept = path.length > rec.revsLimit ? path.slice(0, rec.revsLimit) : path;
    // Oldest first, as the grafted tree would enumerate; the oldest kept revision is the root.
    const encoded: (string | number | null)[] = [rec.seq + 1];
    for (let i = kept.length - 1; i > 0; i--)
      encoded.push(kept[i], i + 1 < kept.length ? kept[i + 1] : null, 0);
    encoded.push(rev, kept.length > 1 ? kept[1] : null, flags);
    this.#writeRevision(rec, edit, undefined, encoded, rev, kept, 1, atts, now);
    return { ok: true, id: edit.id, rev };
  }

  /**
   * Turns the edit's attachment inputs into stored metadata: new bodies are
   * stored (content-addressed), and a stub must name an attachment of the
   * revision it builds on (with the same revpos when it gives one).
   */
  #resolveAttachments(
    rec: DatabaseRecord,
    baseAtts: Readonly<Record<string, AttachmentMeta>> | undefined,
    newPos: number,
    edit: DocEdit,
  ): [string, AttachmentMeta][] | { error: string; reason: string } {
    if (edit.attachments === undefined || edit.attachments.size === 0) return [];
    const out: [string, AttachmentMeta][] = [];
    for (const [name, input] of edit.attachments) {
      if (input.kind === 'data') {
        if (!this.#atts.doesExist([rec.uid, input.digest])) {
          this.#atts.putSync([rec.uid, input.digest], input.bytes);
          rec.activeBytes += input.bytes.length;
        }
        out.push([
          name,
          {
            content_type: input.contentType,
            digest: input.digest,
            length: input.bytes.length,
            revpos: newPos,
          },
        ]);
        continue;
      }
      if (input.kind === 'replica') {
        out.push([name, input.meta]);
        continue;
      }
      const known = baseAtts?.[name];
      if (known === undefined || (input.revpos !== undefined && input.revpos !== known.revpos)) {
        return { error: 'missing_stub', reason: `Invalid attachment stub in ${edit.id} for ${name}` };
      }
      out.push([name, known]);
    }
    return out;
  }

  #commitRevision(
    rec: DatabaseRecord,
    edit: DocEdit,
    info: DocInfo | undefined,
    grown: RevTree,
    rev: string,
    atts: readonly [string, AttachmentMeta][],
    now: number,
    journaled = true,
  ): void {
    const { tree, dropped } = stem(grown, rec.revsLimit);
    for (const r of dropped) this.#revs.removeSync([rec.uid, edit.id, r]);
    const leafRevs = leaves(tree);
    const win = leafRevs.reduce((best, leaf) => (compareLeaves(tree, leaf, best) < 0 ? leaf : best));
    this.#writeRevision(
      rec,
      edit,
      info,
      encodeInfo(tree, rec.seq + 1),
      win,
      ancestry(tree, rev),
      leafRevs.length,
      atts,
      now,
      (tree[win][1] & RevFlag.Deleted) !== 0,
      journaled,
    );
  }

  /** Writes a revision's body, the document's tree, its by-seq row, the counters and the journal entry. */
  #writeRevision(
    rec: DatabaseRecord,
    edit: DocEdit,
    info: DocInfo | undefined,
    encodedInfo: StoredDocInfo,
    win: string,
    path: readonly string[],
    leafCount: number,
    atts: readonly [string, AttachmentMeta][],
    now: number,
    isDeleted = edit.deleted,
    journaled = true,
  ): void {
    const rev = path[0];
    const stored: StoredRevision =
      atts.length === 0 ? { b: edit.body } : { b: edit.body, a: Object.fromEntries(atts) };
    this.#putRow(this.#revs, [rec.uid, edit.id, rev], encodeRevisionForPut(stored));
    rec.activeBytes += edit.body.length;
    const wasDeleted = info === undefined ? null : (info.t[winner(info.t)][1] & RevFlag.Deleted) !== 0;
    if (wasDeleted === null) {
      if (isDeleted) rec.delCount++;
      else rec.docCount++;
    } else if (wasDeleted !== isDeleted) {
      if (isDeleted) {
        rec.docCount--;
        rec.delCount++;
      } else {
        rec.docCount++;
        rec.delCount--;
      }
    }
    rec.seq++;
    if (info !== undefined) this.#seqs.removeSync([rec.uid, info.s]);
    this.#putRow(this.#seqs, [rec.uid, rec.seq], [edit.id, win, isDeleted ? 1 : 0, leafCount]);
    this.#putRow(this.#docs, [rec.uid, edit.id], encodedInfo);
    const entry: JournalEntry =
      stored.a === undefined
        ? { k: 'doc', db: rec.name, id: edit.id, seq: rec.seq, path, deleted: edit.deleted, body: edit.body }
        : {
            k: 'doc',
            db: rec.name,
            id: edit.id,
            seq: rec.seq,
            path,
            deleted: edit.deleted,
            body: edit.body,
            atts: stored.a,
          };
    if (journaled) this.#journal.append(entry, now);
  }

  // ---- bucket points -------------------------------------------------------

  /**
   * Writes line protocol points to a bucket in one transaction: each point becomes (or
   * merges into) its document, and the whole request is one `points` journal entry
   * carrying the lines, so outbound streams forward them without rendering documents.
   * `inTransaction` runs inside the same transaction right after the journal append
   * (stream queues account the entry there); a throw from it refuses the whole write.
   */
  async writePoints(
    dbName: string,
    points: readonly PointWrite[],
    options: PointsWriteOptions,
  ): Promise<{ seq: number; lsn: number }> {
    const result = await this.#storage.write(() => {
      this.#checkNodeWritable();
      return this.#writePointsInWrite(dbName, points, options, Date.now());
    });
    if (result.changed) this.#notify(dbName, result.seq);
    return { seq: result.seq, lsn: result.lsn };
  }

  #writePointsInWrite(
    dbName: string,
    points: readonly PointWrite[],
    options: PointsWriteOptions,
    now: number,
  ): { seq: number; lsn: number; changed: boolean } {
    const rec = this.#dbs.get(dbName);
    if (rec === undefined) throw notFound('Database does not exist.');
    if (rec.kind !== 'bucket') throw badRequest(`database "${dbName}" is not a bucket`);
    if (rec.readOnly !== undefined) throw new DoppelError(ErrorKind.Forbidden, rec.readOnly);
    const next = { ...rec };
    for (const point of points) this.#applyPoint(next, point, options.merge, now);
    if (next.seq !== rec.seq) {
      this.#dbs.putSync(dbName, next);
      this.#recordDbUpdate(dbName, 'updated');
    }
    const entry: JournalEntry = {
      k: 'points',
      db: dbName,
      seq: next.seq,
      lines: options.lines,
      count: options.count,
    };
    const lsn = this.#journal.append(entry, now);
    options.inTransaction?.(lsn, rec.uid);
    return { seq: next.seq, lsn, changed: next.seq !== rec.seq };
  }

  #applyPoint(rec: DatabaseRecord, point: PointWrite, merge: PointsWriteOptions['merge'], now: number): void {
    const info = this.#info([rec.uid, point.id]);
    if (info === undefined) {
      const edit = pointEdit(point.id, point.body);
      const rev = newRevision(null, edit, []);
      const node: StoredDocInfo = [rec.seq + 1, rev, null, RevFlag.Available];
      this.#writeRevision(rec, edit, undefined, node, rev, [rev], 1, [], now, false, false);
      return;
    }
    const win = winner(info.t);
    let body = point.body;
    if ((info.t[win][1] & RevFlag.Deleted) === 0) {
      const stored = this.#rev([rec.uid, point.id, win]);
      if (stored !== undefined) {
        const merged = merge(stored.b, body);
        if (merged === null) return;
        body = merged;
      }
    }
    const edit = pointEdit(point.id, body);
    const rev = newRevision(win, edit, []);
    if (rev in info.t) return;
    this.#commitRevision(rec, edit, info, addChild(info.t, win, rev, RevFlag.Available), rev, [], now, false);
  }

  // ---- document reads ------------------------------------------------------

  #uid(dbName: string): number {
    return this.record(dbName).uid;
  }

  /** The revision tree of a document, or undefined. */
  tree(dbName: string, id: string): RevTree | undefined {
    return this.#info([this.#uid(dbName), id])?.t;
  }

  readAttachmentBytes(dbName: string, digest: string): Buffer | undefined {
    return this.#atts.get([this.#uid(dbName), digest]);
  }

  #render(uid: number, id: string, tree: RevTree, rev: string, options: RenderOptions): string {
    const stored = this.#rev([uid, id, rev]);
    return renderDoc(id, rev, tree, stored, options, (digest) => this.#atts.get([uid, digest]));
  }

  /**
   * Renders a revision as JSON bytes. The common case (no attachments, no
   * extra members asked for) splices the stored bytes without decoding them.
   */
  #renderBytes(
    uid: number,
    id: string,
    tree: RevTree,
    rev: string,
    deleted: boolean,
    options: RenderOptions,
  ): Buffer {
    const bytes = this.#revs.getBinaryFast([uid, id, rev]);
    const plain =
      options.conflicts !== true &&
      options.deletedConflicts !== true &&
      options.revs !== true &&
      options.revsInfo !== true;
    if (bytes === undefined || bytes[0] !== 0 || !plain) {
      return Buffer.from(this.#render(uid, id, tree, rev, options));
    }
    const head = `{"_id":${JSON.stringify(id)},"_rev":${JSON.stringify(rev)}${deleted ? ',"_deleted":true' : ''}`;
    // bytes: [flag 0]['{' …body… '}']; an empty body is just "{}".
    if (bytes.length <= 3) return Buffer.from(`${head}}`);
    const headBytes = Buffer.from(`${head},`);
    const out = Buffer.allocUnsafe(headBytes.length + bytes.length - 2);
    headBytes.copy(out, 0);
    bytes.copy(out, headBytes.length, 2);
    return out;
  }

  /** `GET /{db}/{id}`: the winner, or `rev`; 404 `deleted` for a deleted winner without `rev`. */
  get(dbName: string, id: string, rev: string | undefined, options: RenderOptions): string {
    const uid = this.#uid(dbName);
    const info = this.#info([uid, id]);
    if (info === undefined) throw notFound('missing');
    if (rev === undefined) {
      const win = winner(info.t);
      if ((info.t[win][1] & RevFlag.Deleted) !== 0) throw notFound('deleted');
      return this.#render(uid, id, info.t, win, options);
    }
    const node = info.t[rev];
    if (node === undefined || (node[1] & RevFlag.Available) === 0) throw notFound('missing');
    return this.#render(uid, id, info.t, rev, options);
  }

  /** The stored revision and its metadata, for attachment requests and validation. */
  revision(
    dbName: string,
    id: string,
    rev: string | undefined,
  ): { rev: string; stored: StoredRevision; deleted: boolean } {
    const uid = this.#uid(dbName);
    const info = this.#info([uid, id]);
    if (info === undefined) throw notFound('missing');
    const target = rev ?? winner(info.t);
    const node = info.t[target];
    if (node === undefined) throw notFound('missing');
    const deleted = (node[1] & RevFlag.Deleted) !== 0;
    if (rev === undefined && deleted) throw notFound('deleted');
    const stored = this.#rev([uid, id, target]);
    if (stored === undefined) throw notFound('missing');
    return { rev: target, stored, deleted };
  }

  /**
   * `open_revs`: each requested revision (or every leaf for `all`) as
   * `{ok: doc}` or `{missing: rev}`. With `latest`, a non-leaf rev is replaced
   * by the leaves descending from it.
   */
  openRevs(
    dbName: string,
    id: string,
    revs: readonly string[] | 'all',
    latest: boolean,
    options: RenderOptions,
  ): OpenRevsResult {
    return this.#openRevs(this.#uid(dbName), id, revs, latest, options);
  }

  /**
   * `openRevs` for many documents of one database (`_bulk_get`): the database
   * is looked up once, here, rather than once per document.
   */
  revsReader(dbName: string): RevsReader {
    const uid = this.#uid(dbName);
    return (id, revs, latest, options) => this.#openRevs(uid, id, revs, latest, options);
  }

  #openRevs(
    uid: number,
    id: string,
    revs: readonly string[] | 'all',
    latest: boolean,
    options: RenderOptions,
  ): OpenRevsResult {
    const info = this.#info([uid, id]);
    if (revs === 'all') {
      if (info === undefined) return [];
      return leaves(info.t).map((r) => ({ ok: this.#render(uid, id, info.t, r, options) }));
    }
    const out: ({ ok: string } | { missing: string })[] = [];
    // The common request: one rev, a leaf (or unknown). No set, no leaf scan beyond `isLeaf`.
    if (revs.length === 1) {
      const requested = revs[0];
      const node = info?.t[requested];
      if (info === undefined || node === undefined) return [{ missing: requested }];
      if (!latest || isLeaf(info.t, requested)) {
        return [
          (node[1] & RevFlag.Available) === 0
            ? { missing: requested }
            : { ok: this.#render(uid, id, info.t, requested, options) },
        ];
      }
    }
    const seen = new Set<string>();
    for (const requested of revs) {
      let targets = [requested];
      if (info !== undefined && latest && requested in info.t && !isLeaf(info.t, requested)) {
        targets = leaves(info.t).filter((l) => ancestry(info.t, l).includes(requested));
      }
      for (const r of targets) {
        if (seen.has(r)) continue;
        seen.add(r);
        const node = info?.t[r];
        if (info === undefined || node === undefined || (node[1] & RevFlag.Available) === 0)
          out.push({ missing: r });
        else out.push({ ok: this.#render(uid, id, info.t, r, options) });
      }
    }
    return out;
  }

  revsDiff(
    dbName: string,
    request: Readonly<Record<string, readonly string[]>>,
  ): Record<string, { missing: string[]; possible_ancestors?: string[] }> {
    const uid = this.#uid(dbName);
    const out: Record<string, { missing: string[]; possible_ancestors?: string[] }> = {};
    for (const id of Object.keys(request)) {
      const tree = this.#info([uid, id])?.t;
      const { missing, possibleAncestors } = revsDiff(tree, request[id]);
      if (missing.length === 0) continue;
      out[id] =
        possibleAncestors.length > 0 ? { missing, possible_ancestors: possibleAncestors } : { missing };
    }
    return out;
  }

  /** `_all_docs`, or with `designOnly` `_design_docs` (total_rows then counts design documents). */
  allDocs(
    dbName: string,
    query: AllDocsQuery,
    designOnly = false,
  ): { totalRows: number; offset: number; rows: AllDocsRow[] } {
    const within = designOnly ? DESIGN_IDS : undefined;
    const rec = this.record(dbName);
    const uid = rec.uid;
    const rows: AllDocsRow[] = [];
    const row = (id: string, info: DocInfo): AllDocsRow => {
      const rev = winner(info.t);
      const base = { id, key: id, value: { rev } };
      return query.includeDocs ? { ...base, doc: this.#render(uid, id, info.t, rev, query.render) } : base;
    };
    if (query.keys !== undefined) {
      for (const key of query.keys) {
        // As CouchDB (since 3.3.3): `_design_docs` looks up only ids in the design namespace.
        const outside = within !== undefined && !(key >= within.low && key < within.high);
        const info = outside ? undefined : this.#info([uid, key]);
        if (info === undefined) {
          rows.push({ id: key, key, value: { rev: '' }, error: 'not_found' });
          continue;
        }
        const rev = winner(info.t);
        if ((info.t[rev][1] & RevFlag.Deleted) !== 0) {
          const deletedRow: AllDocsRow = { id: key, key, value: { rev, deleted: true } };
          rows.push(query.includeDocs ? { ...deletedRow, doc: null } : deletedRow);
        } else {
          rows.push(row(key, info));
        }
      }
      return { totalRows: rec.docCount, offset: 0, rows };
    }
    let skipped = 0;
    for (const [id, stored] of idRange(this.#docs, uid, query, within)) {
      const value = decodeInfo(stored);
      const rev = winner(value.t);
      if ((value.t[rev][1] & RevFlag.Deleted) !== 0) continue;
      if (skipped < query.skip) {
        skipped++;
        continue;
      }
      if (rows.length >= query.limit) break;
      rows.push(row(id, value));
    }
    return {
      totalRows: within === undefined ? rec.docCount : this.#designDocCount(uid),
      offset: query.skip,
      rows,
    };
  }

  /** Live design documents of a database (`_design_docs`' total_rows). */
  #designDocCount(uid: number): number {
    let count = 0;
    for (const { value } of this.#docs.getRange({
      start: [uid, DESIGN_IDS.low],
      end: [uid, DESIGN_IDS.high],
    })) {
      const info = decodeInfo(value);
      if ((info.t[winner(info.t)][1] & RevFlag.Deleted) === 0) count++;
    }
    return count;
  }

  /**
   * `_local_docs`: the database's local documents in id order (ids and keys with their
   * `_local/` prefix), with `_all_docs`' range options; CouchDB counts no total for them.
   */
  localDocs(dbName: string, query: AllDocsQuery): AllDocsRow[] {
    const uid = this.#uid(dbName);
    const row = (id: string, local: LocalDoc): AllDocsRow => {
      const base = { id, key: id, value: { rev: `0-${local.rev}` } };
      return query.includeDocs ? { ...base, doc: renderLocal(id, local) } : base;
    };
    if (query.keys !== undefined) {
      return query.keys.map((key) => {
        const local = key.startsWith(LOCAL_PREFIX)
          ? this.#locals.get([uid, key.slice(LOCAL_PREFIX.length)])
          : undefined;
        return local === undefined
          ? { id: key, key, value: { rev: '' }, error: 'not_found' }
          : row(key, local);
      });
    }
    const rows: AllDocsRow[] = [];
    let skipped = 0;
    for (const [localId, local] of idRange(this.#locals, uid, localIdQuery(query))) {
      if (skipped++ < query.skip) continue;
      if (rows.length >= query.limit) break;
      rows.push(row(LOCAL_PREFIX + localId, local));
    }
    return rows;
  }

  /**
   * One page of `_changes`: rows with seq > since (or < since when
   * descending), filtered, at most `limit`. `lastSeq` is the seq of the last
   * row examined, so a filtered feed still makes progress.
   */
  async changes(
    dbName: string,
    query: ChangesQuery,
  ): Promise<{ rows: ChangeRow[]; lastSeq: number; pending: number }> {
    const rec = this.record(dbName);
    const uid = rec.uid;
    const rows: ChangeRow[] = [];
    let lastSeq = query.descending ? rec.seq : query.since;
    // Descending feeds start at the newest change whatever `since` says, as CouchDB does.
    const range = query.descending
      ? {
          start: [uid, Number.MAX_SAFE_INTEGER] as [number, number],
          end: [uid, 0] as [number, number],
          reverse: true,
        }
      : {
          start: [uid, query.since + 1] as [number, number],
          end: [uid, Number.MAX_SAFE_INTEGER] as [number, number],
        };
    let batch: ChangeRow[] = [];
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const pass = query.filter === undefined ? null : await query.filter.test(batch);
      for (let i = 0; i < batch.length && rows.length < query.limit; i++) {
        const row = batch[i];
        if (pass === null || pass[i] === true) {
          if (query.includeDocs || row.doc === undefined) rows.push(row);
          else rows.push({ seq: row.seq, id: row.id, changes: row.changes, deleted: row.deleted });
        }
        lastSeq = row.seq;
      }
      batch = [];
    };
    const wantDocs = query.includeDocs || query.filter?.needsDocs === true;
    const needTree = query.render.conflicts === true || query.render.deletedConflicts === true;
    for (const { key, value: entry } of this.#seqs.getRange(range)) {
      const [id, win, deletedFlag, leafCount] = entry;
      const seq = key[1];
      let row: ChangeRow;
      if (leafCount === 1 || (query.style === 'main_only' && !needTree)) {
        // The by-seq entry has all a single-branch document needs: no tree decode.
        const tree: RevTree = {
          [win]: [null, RevFlag.Available | (deletedFlag === 1 ? RevFlag.Deleted : 0)],
        };
        row = {
          seq,
          id,
          changes: [win],
          deleted: deletedFlag === 1,
          ...(wantDocs
            ? { doc: this.#renderBytes(uid, id, tree, win, deletedFlag === 1, query.render) }
            : {}),
        };
      } else {
        const info = this.#info([uid, id]);
        if (info === undefined) continue;
        row = {
          seq,
          id,
          changes: changeRevs(info.t, query.style),
          deleted: deletedFlag === 1,
          ...(wantDocs
            ? { doc: this.#renderBytes(uid, id, info.t, win, deletedFlag === 1, query.render) }
            : {}),
        };
      }
      batch.push(row);
      if (
        batch.length >= CHANGES_BATCH ||
        (query.filter === undefined && rows.length + batch.length >= query.limit)
      ) {
        await flush();
        if (rows.length >= query.limit) break;
      }
    }
    await flush();
    const pending =
      query.descending || query.skipPending === true
        ? 0
        : this.#seqs.getCount({ start: [uid, lastSeq + 1], end: [uid, Number.MAX_SAFE_INTEGER] });
    return { rows, lastSeq, pending };
  }

  // ---- local documents -----------------------------------------------------

  getLocal(dbName: string, id: string): string {
    const uid = this.#uid(dbName);
    const local = this.#locals.get([uid, id]);
    if (local === undefined) throw notFound('missing');
    return renderLocal(LOCAL_PREFIX + id, local);
  }

  /** Writes (or with `deleted`, removes) `_local/{id}`; `rev` must match the current one when it exists. */
  async putLocal(
    dbName: string,
    id: string,
    rev: string | undefined,
    body: string,
    deleted: boolean,
    allowReadOnly = false,
  ): Promise<string> {
    return this.#storage.write(() => {
      this.#checkNodeWritable();
      const rec = this.#dbs.get(dbName);
      if (rec === undefined) throw notFound('Database does not exist.');
      if (rec.readOnly !== undefined && !allowReadOnly)
        throw new DoppelError(ErrorKind.Forbidden, rec.readOnly);
      const key: [number, string] = [rec.uid, id];
      const current = this.#locals.get(key);
      const currentRev = current === undefined ? undefined : `0-${current.rev}`;
      if (deleted) {
        if (current === undefined) throw notFound('missing');
        if (rev !== currentRev) throw conflict();
      } else if (current !== undefined && rev !== currentRev) throw conflict();
      return this.#putLocalInWrite(dbName, rec.uid, id, deleted ? null : body, Date.now());
    });
  }

  /** Writes (body) or removes (null) `_local/{id}`; returns its new rev. */
  #putLocalInWrite(dbName: string, uid: number, id: string, body: string | null, now: number): string {
    const key: [number, string] = [uid, id];
    if (body === null) {
      this.#locals.removeSync(key);
      this.#journal.append({ k: 'local', db: dbName, id, body: null }, now);
      return '0-0';
    }
    const nextRev = (this.#locals.get(key)?.rev ?? 0) + 1;
    this.#locals.putSync(key, { rev: nextRev, body });
    this.#journal.append({ k: 'local', db: dbName, id, body }, now);
    return `0-${nextRev}`;
  }

  // ---- maintenance ---------------------------------------------------------

  /** Waits until every committed write is on disk (`_ensure_full_commit`). */
  async sync(): Promise<void> {
    await this.#storage.sync();
  }

  /**
   * Compaction: drops the bodies of non-leaf revisions (their tree nodes stay
   * as `missing`), then attachment bodies nothing references any more.
   */
  async compact(dbName: string): Promise<void> {
    const uid = this.#uid(dbName);
    let after: string | undefined;
    for (;;) {
      const page = [
        ...this.#docs.getRange({
          start: after === undefined ? [uid] : [uid, `${after}\u0000`],
          end: [uid + 1],
          limit: 1000,
        }),
      ];
      if (page.length === 0) break;
      after = page[page.length - 1].key[1];
      await this.#storage.write(() => {
        for (const { key } of page) {
          const info = this.#info(key);
          if (info === undefined) continue;
          const leafSet = new Set(leaves(info.t));
          let changed = false;
          const tree: Record<string, readonly [string | null, number]> = {};
          for (const [rev, [parent, flags]] of Object.entries(info.t)) {
            if (!leafSet.has(rev) && (flags & RevFlag.Available) !== 0) {
              this.#revs.removeSync([uid, key[1], rev]);
              tree[rev] = [parent, flags & ~RevFlag.Available];
              changed = true;
            } else {
              tree[rev] = [parent, flags];
            }
          }
          if (changed) this.#docs.putSync(key, encodeInfo(tree, info.s));
        }
      });
    }
    // Attachment bytes are collected inside one write transaction, so a concurrent write
    // that references an existing blob either commits before (and is seen) or after (and
    // finds the blob gone, storing it again).
    await this.#storage.write(() => {
      const referenced = new Set<string>();
      let active = 0;
      for (const { value } of this.#revs.getRange({ start: [uid], end: [uid + 1] })) {
        const stored = decodeRevision(value);
        active += stored.b.length;
        for (const meta of Object.values(stored.a ?? {})) referenced.add(meta.digest);
      }
      for (const { key, value } of this.#atts.getRange({ start: [uid], end: [uid + 1] })) {
        if (referenced.has(key[1])) active += value.length;
        else this.#atts.removeSync(key);
      }
      const rec = this.#dbs.get(dbName);
      if (rec !== undefined && rec.uid === uid) this.#dbs.putSync(dbName, { ...rec, activeBytes: active });
    });
  }

  // ---- node replication ----------------------------------------------------

  /**
   * A node replica applies its primary's journal entry: must run inside
   * `Storage.write`, under `Journal.replay`. The same code paths as on the
   * primary run, so rows, sequences and the journaled entry come out the
   * same; a result that differs (another seq) throws, and the replica then
   * syncs in full. `attachments` holds the bytes the primary sent with a
   * document entry, by digest. Returns the database changed and whether its
   * rows must be dropped (a delete), for `afterReplay`.
   */
  replay(
    entry: Exclude<JournalEntry, { k: 'admin' | 'kv' | 'points' }>,
    attachments: ReadonlyMap<string, Buffer>,
    newSecurity: () => unknown,
    now: number,
  ): { db: string; droppedUid?: number } {
    switch (entry.k) {
      case 'db.create': {
        const rec = this.#createInWrite(entry.db, entry.kind, newSecurity(), now);
        if (rec.uid !== entry.uid)
          throw new Error(`replayed database ${entry.db} got uid ${rec.uid}, not ${entry.uid}`);
        return { db: entry.db };
      }
      case 'db.delete':
        return { db: entry.db, droppedUid: this.#deleteInWrite(entry.db, now, true) };
      case 'security':
      case 'revs_limit':
      case 'read_only':
        this.#updateRecordInWrite(entry, now);
        return { db: entry.db };
      case 'local': {
        const rec = this.record(entry.db);
        this.#putLocalInWrite(entry.db, rec.uid, entry.id, entry.body, now);
        return { db: entry.db };
      }
      case 'doc':
        this.#replayRevision(entry, attachments, now);
        return { db: entry.db };
    }
  }

  /**
   * A node replica applies its primary's `points` entry, the points parsed
   * again from the entry's lines: revisions are content hashes, so the same
   * points on the same rows give the primary's documents and sequence.
   */
  replayPoints(
    entry: Extract<JournalEntry, { k: 'points' }>,
    points: readonly PointWrite[],
    merge: PointsWriteOptions['merge'],
    now: number,
  ): void {
    const { seq } = this.#writePointsInWrite(
      entry.db,
      points,
      { merge, lines: entry.lines, count: entry.count },
      now,
    );
    if (seq !== entry.seq)
      throw new Error(`replayed points of ${entry.db} at seq ${seq}, the primary at ${entry.seq}`);
  }

  #replayRevision(
    entry: Extract<JournalEntry, { k: 'doc' }>,
    attachments: ReadonlyMap<string, Buffer>,
    now: number,
  ): void {
    const rec = this.record(entry.db);
    const next = { ...rec };
    const result = this.#graftCopied(next, entry, attachments, now);
    if (!result.ok || next.seq !== entry.seq) {
      throw new Error(`replayed ${entry.db}/${entry.id} at seq ${next.seq}, the primary at ${entry.seq}`);
    }
    this.#dbs.putSync(entry.db, next);
    this.#recordDbUpdate(entry.db, 'updated');
  }

  /**
   * Grafts a revision copied from another node (a journal entry, a database
   * copy) as `new_edits=false` would, storing the attachment bodies it refers
   * to that `attachments` holds and this database lacks.
   */
  #graftCopied(
    next: DatabaseRecord,
    copied: {
      readonly id: string;
      readonly path: readonly string[];
      readonly deleted: boolean;
      readonly body: string;
      readonly atts?: Readonly<Record<string, AttachmentMeta>> | undefined;
    },
    attachments: ReadonlyMap<string, Buffer>,
    now: number,
  ): WriteResult {
    let inputs: Map<string, AttachmentInput> | undefined;
    if (copied.atts !== undefined) {
      inputs = new Map();
      for (const [name, meta] of Object.entries(copied.atts)) {
        const bytes = attachments.get(meta.digest);
        if (bytes !== undefined && !this.#atts.doesExist([next.uid, meta.digest])) {
          this.#atts.putSync([next.uid, meta.digest], bytes);
          next.activeBytes += bytes.length;
        }
        inputs.set(name, { kind: 'replica', meta });
      }
    }
    const edit: DocEdit = {
      id: copied.id,
      rev: copied.path[0],
      deleted: copied.deleted,
      body: copied.body,
      path: copied.path,
      attachments: inputs,
    };
    return this.#applyGraft(next, edit, now);
  }

  // ---- whole-database copies (a follower's bootstrap) -------------------------

  /**
   * Opens a consistent copy of a database: its seq and counters, and its
   * documents after `afterId` with their leaf revisions, all from one read
   * transaction while writes go on. The caller must `close()` it.
   */
  openCopy(dbName: string, afterId: string | undefined): DatabaseCopy {
    const transaction = this.#storage.root.useReadTransaction();
    const rec = this.#dbs.get(dbName, { transaction });
    if (rec === undefined) {
      transaction.done();
      throw notFound('Database does not exist.');
    }
    const { uid } = rec;
    const docs = this.#docs;
    const revs = this.#revs;
    const atts = this.#atts;
    let unreadable = 0;
    return {
      get unreadable() {
        return unreadable;
      },
      seq: rec.seq,
      docCount: rec.docCount,
      delCount: rec.delCount,
      *docs(): Generator<CopiedDoc> {
        const start: [number, string] | [number] = afterId === undefined ? [uid] : [uid, afterId];
        // Revision rows are keyed [uid, id, rev]: read by one cursor in step with the documents
        // rather than one lookup per leaf. A leaf whose row is not where the cursor stands (a
        // row without its document holds the cursor back) is looked up.
        const revRows = revs.getRange({ start, end: [uid + 1], transaction })[Symbol.iterator]();
        let row = revRows.next();
        for (const { key, value } of docs.getRange({ start, end: [uid + 1], transaction })) {
          const id = key[1];
          const bodies = new Map<string, Buffer>();
          while (row.done !== true && row.value.key[1] === id) {
            bodies.set(row.value.key[2], row.value.value);
            row = revRows.next();
          }
          if (id === afterId) continue;
          const copied = [];
          let lost = false;
          for (const { rev, flags, path } of storedLeaves(value)) {
            if ((flags & RevFlag.Available) === 0) continue;
            const stored = bodies.get(rev) ?? revs.get([uid, id, rev], { transaction });
            if (stored === undefined) lost = true;
            else copied.push({ path, deleted: (flags & RevFlag.Deleted) !== 0, stored });
          }
          if (lost) unreadable++;
          else if (copied.length > 0) yield { id, leaves: copied };
        }
      },
      attachment: (digest) => atts.get([uid, digest], { transaction }),
      close: () => transaction.done(),
    };
  }

  /**
   * Writes documents read from another database's copy (`openCopy`) in one
   * transaction: each leaf is grafted as a replication with `new_edits=false`
   * would, journaled like one. For a follower's bootstrap (its database is
   * read-only to everyone else).
   */
  async restoreCopy(
    dbName: string,
    copied: readonly CopiedDoc[],
    attachments: ReadonlyMap<string, Buffer>,
    maxBodyBytes: number,
    guard: CopyGuard,
    allowReadOnly: boolean,
  ): Promise<WriteResult[]> {
    const results = await this.#storage.write(() => {
      if (guard.failed) throw new DoppelError(ErrorKind.Unavailable, 'an earlier batch of this copy failed');
      this.#rowsInOrder = true;
      try {
        return this.#restoreInWrite(dbName, copied, attachments, maxBodyBytes, allowReadOnly);
      } catch (err) {
        guard.failed = true;
        throw err;
      } finally {
        this.#rowsInOrder = false;
      }
    });
    if (results.changed) this.#notify(dbName, results.seq);
    return results.out;
  }

  #restoreInWrite(
    dbName: string,
    copied: readonly CopiedDoc[],
    attachments: ReadonlyMap<string, Buffer>,
    maxBodyBytes: number,
    allowReadOnly: boolean,
  ): { out: WriteResult[]; seq: number; changed: boolean } {
    this.#checkNodeWritable();
    const rec = this.record(dbName);
    if (rec.readOnly !== undefined && !allowReadOnly)
      throw new DoppelError(ErrorKind.Forbidden, rec.readOnly);
    const next = { ...rec };
    const now = Date.now();
    const out: WriteResult[] = [];
    const refuse = (doc: CopiedDoc, leaf: CopiedRevision, error: string, reason: string): void => {
      out.push({ ok: false, id: doc.id, rev: leaf.path[0] ?? '', error, reason });
    };
    const verified = new Set<string>();
    for (const doc of copied) {
      for (const leaf of doc.leaves) {
        let revision: StoredRevision;
        try {
          revision = decodeRevision(leaf.stored);
          validateCopiedRevision(doc.id, leaf.path, revision.b, revision.a);
        } catch (err) {
          refuse(doc, leaf, 'bad_request', err instanceof Error ? err.message : String(err));
          continue;
        }
        const { b, a } = revision;
        if (b.length * 3 > maxBodyBytes && Buffer.byteLength(b) > maxBodyBytes) {
          refuse(doc, leaf, 'document_too_large', doc.id);
          continue;
        }
        const problem = this.#copiedAttachmentsProblem(rec.uid, a, attachments, verified);
        if (problem !== null) {
          refuse(doc, leaf, 'bad_request', `The copy of ${doc.id} ${problem}`);
          continue;
        }
        out.push(
          this.#graftCopied(
            next,
            { id: doc.id, path: leaf.path, deleted: leaf.deleted, body: b, atts: a },
            attachments,
            now,
          ),
        );
      }
    }
    if (next.seq !== rec.seq) {
      this.#dbs.putSync(dbName, next);
      this.#recordDbUpdate(dbName, 'updated');
    }
    return { out, seq: next.seq, changed: next.seq !== rec.seq };
  }

  /**
   * Why a copied revision's attachments cannot be stored, or null: each one
   * is stored already, or its body is in the copy with the length and the
   * digest the revision gives it. Bodies are stored by digest and shared by
   * every revision naming it, so one stored under a false digest would serve
   * wrong bytes to later writes of the true content.
   */
  #copiedAttachmentsProblem(
    uid: number,
    atts: Readonly<Record<string, AttachmentMeta>> | undefined,
    given: ReadonlyMap<string, Buffer>,
    verified: Set<string>,
  ): string | null {
    for (const meta of Object.values(atts ?? {})) {
      if (verified.has(meta.digest) || this.#atts.doesExist([uid, meta.digest])) continue;
      const bytes = given.get(meta.digest);
      if (bytes === undefined) return `lacks the body of attachment ${meta.digest}`;
      if (bytes.length !== meta.length || md5Digest(bytes) !== meta.digest)
        return `has a body for attachment ${meta.digest} that does not match it`;
      verified.add(meta.digest);
    }
    return null;
  }

  /** The greatest document id of a database (where an interrupted copy continues), or undefined. */
  lastDocId(dbName: string): string | undefined {
    const uid = this.#uid(dbName);
    for (const key of this.#docs.getKeys({ start: [uid + 1], end: [uid], reverse: true, limit: 1 }))
      return key[1];
    return undefined;
  }

  /** After a replayed batch committed: wakes feeds of the changed databases and drops deleted ones' rows. */
  async afterReplay(changed: ReadonlySet<string>, droppedUids: readonly number[]): Promise<void> {
    for (const db of changed) {
      const rec = this.#dbs.get(db);
      this.#notify(db, rec?.seq ?? 0);
    }
    for (const uid of droppedUids) await this.#dropData(uid);
  }

  /** After a full sync replaced every row: wakes every feed (sequences may have moved anywhere). */
  notifyAll(): void {
    for (const { key, value } of this.#dbs.getRange()) this.#notify(key, value.seq);
  }
}
