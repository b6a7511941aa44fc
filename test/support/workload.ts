/**
 * A deterministic document workload (generations, deletes, attachments,
 * conflict branches) written through the PouchDB API to either side, with a
 * model of what every document must look like afterwards: its leaves, winner,
 * body and attachments.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { PouchAttachment, PouchDatabase, PouchDoc } from './pouchdb.js';

// ---- deterministic randomness ----------------------------------------------

export class Rng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  /** mulberry32 */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(max: number): number {
    return Math.floor(this.next() * max);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
  hex(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += '0123456789abcdef'[this.int(16)];
    return s;
  }
  /** Picks `count` distinct items. */
  sample<T>(items: readonly T[], count: number): T[] {
    const copy = [...items];
    const out: T[] = [];
    while (out.length < count && copy.length > 0) out.push(copy.splice(this.int(copy.length), 1)[0]);
    return out;
  }
  text(n: number): string {
    const alphabet = 'abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 éü€😀\n"\\\t';
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }
}

// ---- the model -------------------------------------------------------------

export interface AttachmentModel {
  readonly contentType: string;
  readonly data: Buffer;
}

export interface Leaf {
  readonly deleted: boolean;
  readonly body: Readonly<Record<string, unknown>>;
  readonly atts: ReadonlyMap<string, AttachmentModel>;
}

interface DocModel {
  /** The document's first revision, the root conflict branches grow from. */
  readonly first: string;
  readonly leaves: Map<string, Leaf>;
}

export const md5Digest = (bytes: Buffer): string => `md5-${createHash('md5').update(bytes).digest('base64')}`;

const revPos = (rev: string): number => Number(rev.slice(0, rev.indexOf('-')));
const revHash = (rev: string): string => rev.slice(rev.indexOf('-') + 1);

/** CouchDB's (and PouchDB's) winner order: live first, then higher generation, then greater hash. */
export function compareLeaves(a: [string, boolean], b: [string, boolean]): number {
  if (a[1] !== b[1]) return a[1] ? 1 : -1;
  const pa = revPos(a[0]);
  const pb = revPos(b[0]);
  if (pa !== pb) return pb - pa;
  const ha = revHash(a[0]);
  const hb = revHash(b[0]);
  return ha < hb ? 1 : ha > hb ? -1 : 0;
}

export interface ExpectedAttachment {
  readonly content_type: string;
  readonly digest: string;
  readonly length: number;
  readonly data: string;
}

/** What either side must report for one document. */
export interface DocState {
  readonly winner: string;
  readonly deleted: boolean;
  /** Every leaf (live and deleted), sorted. */
  readonly leaves: readonly string[];
  /** `_conflicts`: the live leaves that lost, sorted. */
  readonly conflicts: readonly string[];
  /** The winner's user members (nothing for a deleted winner). */
  readonly body: Readonly<Record<string, unknown>>;
  readonly attachments: Readonly<Record<string, ExpectedAttachment>>;
}

export class Model {
  readonly #docs = new Map<string, DocModel>();

  ids(): string[] {
    return [...this.#docs.keys()].sort();
  }

  has(id: string): boolean {
    return this.#docs.has(id);
  }

  #doc(id: string): DocModel {
    const doc = this.#docs.get(id);
    if (doc === undefined) throw new Error(`model has no document ${id}`);
    return doc;
  }

  winner(id: string): [string, Leaf] {
    const { leaves } = this.#doc(id);
    const [rev] = [...leaves.entries()]
      .map(([r, l]): [string, boolean] => [r, l.deleted])
      .sort(compareLeaves)[0];
    return [rev, leaves.get(rev)!];
  }

  leafCount(id: string): number {
    return this.#doc(id).leaves.size;
  }

  first(id: string): string {
    return this.#doc(id).first;
  }

  created(id: string, rev: string, leaf: Leaf): void {
    assert.ok(!this.#docs.has(id), `document ${id} created twice`);
    this.#docs.set(id, { first: rev, leaves: new Map([[rev, leaf]]) });
  }

  /** A new revision `rev` whose parent is the leaf `parent` (or a non-leaf, for branches). */
  revised(id: string, parent: string, rev: string, leaf: Leaf): void {
    const { leaves } = this.#doc(id);
    leaves.delete(parent);
    leaves.set(rev, leaf);
  }

  expected(id: string): DocState {
    const { leaves } = this.#doc(id);
    const [winner, leaf] = this.winner(id);
    const attachments: Record<string, ExpectedAttachment> = {};
    if (!leaf.deleted) {
      for (const [name, att] of leaf.atts) {
        attachments[name] = {
          content_type: att.contentType,
          digest: md5Digest(att.data),
          length: att.data.length,
          data: att.data.toString('base64'),
        };
      }
    }
    return {
      winner,
      deleted: leaf.deleted,
      leaves: [...leaves.keys()].sort(),
      conflicts: [...leaves.entries()]
        .filter(([r, l]) => r !== winner && !l.deleted)
        .map(([r]) => r)
        .sort(),
      body: leaf.deleted ? {} : leaf.body,
      attachments,
    };
  }

  /** Documents whose winner is live. */
  liveCount(): number {
    let n = 0;
    for (const id of this.#docs.keys()) if (!this.winner(id)[1].deleted) n++;
    return n;
  }
}

// ---- writing through PouchDB -------------------------------------------------

const CHUNK = 500;

function chunks<T>(items: readonly T[], size = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function attachmentsJson(
  atts: ReadonlyMap<string, AttachmentModel>,
  stubsFrom?: ReadonlyMap<string, AttachmentModel>,
): Record<string, PouchAttachment> | undefined {
  if (atts.size === 0) return undefined;
  const out: Record<string, PouchAttachment> = {};
  for (const [name, att] of atts) {
    const previous = stubsFrom?.get(name);
    out[name] =
      previous !== undefined && previous.data.equals(att.data) && previous.contentType === att.contentType
        ? { stub: true, content_type: att.contentType, digest: md5Digest(att.data) }
        : { content_type: att.contentType, data: att.data.toString('base64') };
  }
  return out;
}

function writeDoc(
  id: string,
  rev: string | undefined,
  leaf: Leaf,
  stubsFrom?: ReadonlyMap<string, AttachmentModel>,
): PouchDoc {
  const doc: PouchDoc = { ...leaf.body, _id: id };
  if (rev !== undefined) doc._rev = rev;
  if (leaf.deleted) doc._deleted = true;
  const atts = attachmentsJson(leaf.atts, stubsFrom);
  if (atts !== undefined) doc._attachments = atts;
  return doc;
}

async function bulkWrite(db: PouchDatabase, docs: readonly PouchDoc[]): Promise<string[]> {
  const revs: string[] = [];
  for (const chunk of chunks(docs)) {
    const results = await db.bulkDocs(chunk);
    assert.equal(results.length, chunk.length, `bulkDocs on ${db.name} returned ${results.length} results`);
    results.forEach((r, i) => {
      assert.ok(
        r.ok === true && typeof r.rev === 'string',
        `write of ${chunk[i]._id} on ${db.name} failed: ${JSON.stringify(r)}`,
      );
      assert.equal(r.id, chunk[i]._id);
      revs.push(r.rev);
    });
  }
  return revs;
}

/** Ids that exercise URL encoding and collation. */
export const AWKWARD_IDS = [
  'with space',
  'ünïcødé-ö',
  'slash/inside',
  'plus+sign',
  'percent%41',
  'question?mark',
  'hash#tag',
  'emoji-😀',
  'quote"d',
  'amp&ersand=1',
];

export interface CreateOptions {
  /** Share of documents carrying attachments. */
  readonly attachmentShare?: number;
  /** Extra ids (appended to the generated ones). */
  readonly extraIds?: readonly string[];
}

export class Workload {
  constructor(
    readonly model: Model,
    readonly rng: Rng,
  ) {}

  body(id: string, generation: number): Record<string, unknown> {
    const rng = this.rng;
    const body: Record<string, unknown> = {
      type: 'item',
      name: id,
      generation,
      n: rng.int(1_000_000),
      ratio: rng.next(),
      flag: rng.chance(0.5),
      nothing: null,
      tags: Array.from({ length: rng.int(4) }, () => rng.pick(['red', 'green', 'blue', 'ünï', ''])),
      nested: { a: { b: [1, 2.5, -3, 'x', { c: rng.text(8) }] }, empty: {}, list: [] },
      text: rng.text(20 + rng.int(200)),
    };
    if (rng.chance(0.02)) body['big'] = rng.text(20_000);
    if (rng.chance(0.05)) body['control'] = 'nul\u0000 bell\u0007 esc\u001b line\u2028sep';
    return body;
  }

  attachments(id: string): Map<string, AttachmentModel> {
    const rng = this.rng;
    const atts = new Map<string, AttachmentModel>();
    atts.set('note.txt', { contentType: 'text/plain', data: Buffer.from(`note of ${id}: ${rng.text(30)}`) });
    if (rng.chance(0.6))
      atts.set('blob.bin', { contentType: 'application/octet-stream', data: rng.bytes(1 + rng.int(3000)) });
    if (rng.chance(0.2)) {
      // Every byte value, in a random order.
      const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      for (let i = all.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [all[i], all[j]] = [all[j], all[i]];
      }
      atts.set('image.png', { contentType: 'image/png', data: all });
    }
    return atts;
  }

  /** Creates `count` documents `${prefix}-00000`… (plus `extraIds`) in one go. */
  async create(
    db: PouchDatabase,
    prefix: string,
    count: number,
    options: CreateOptions = {},
  ): Promise<string[]> {
    const ids = Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(5, '0')}`);
    ids.push(...(options.extraIds ?? []));
    const share = options.attachmentShare ?? 0.05;
    const leaves = ids.map((id): Leaf => ({
      deleted: false,
      body: this.body(id, 1),
      atts: this.rng.chance(share) ? this.attachments(id) : new Map(),
    }));
    const revs = await bulkWrite(
      db,
      ids.map((id, i) => writeDoc(id, undefined, leaves[i])),
    );
    ids.forEach((id, i) => this.model.created(id, revs[i], leaves[i]));
    return ids;
  }

  /** Adds two design documents (replicated like any other document). */
  async createDesignDocs(db: PouchDatabase, prefix: string): Promise<void> {
    const ids = [`_design/${prefix}-a`, `_design/${prefix}-b`];
    const leaves = ids.map((id): Leaf => ({
      deleted: false,
      body: {
        language: 'javascript',
        filters: { even: 'function (doc, req) { return doc.n % 2 === 0; }' },
        owner: id,
      },
      atts: new Map(),
    }));
    const revs = await bulkWrite(
      db,
      ids.map((id, i) => writeDoc(id, undefined, leaves[i])),
    );
    ids.forEach((id, i) => this.model.created(id, revs[i], leaves[i]));
  }

  /**
   * A normal edit of each document's winner (or of the revision `base` names
   * for it). `change` gets the parent leaf; unchanged attachments travel as stubs.
   */
  async update(
    db: PouchDatabase,
    ids: readonly string[],
    change: (id: string, leaf: Leaf) => Leaf,
    base?: ReadonlyMap<string, readonly [string, Leaf]>,
  ): Promise<void> {
    const parents: string[] = [];
    const next: Leaf[] = [];
    const docs = ids.map((id) => {
      const [rev, leaf] = base?.get(id) ?? this.model.winner(id);
      const updated = change(id, leaf);
      parents.push(rev);
      next.push(updated);
      return writeDoc(id, rev, updated, leaf.deleted ? undefined : leaf.atts);
    });
    const revs = await bulkWrite(db, docs);
    ids.forEach((id, i) => this.model.revised(id, parents[i], revs[i], next[i]));
  }

  /** A regular body/attachment change of a live leaf. */
  edit(id: string, leaf: Leaf, extra: Record<string, unknown> = {}): Leaf {
    const rng = this.rng;
    const generation = typeof leaf.body['generation'] === 'number' ? leaf.body['generation'] + 1 : 1;
    const atts = new Map(leaf.atts);
    const roll = rng.next();
    if (roll < 0.05) atts.clear();
    else if (roll < 0.15)
      atts.set('added.txt', { contentType: 'text/plain', data: Buffer.from(`added ${rng.text(10)}`) });
    else if (roll < 0.2 && atts.has('note.txt'))
      atts.set('note.txt', { contentType: 'text/plain', data: Buffer.from(`rewritten ${id}`) });
    else if (roll < 0.25 && atts.size > 0) atts.delete([...atts.keys()][0]);
    return { deleted: false, body: { ...this.body(id, generation), ...extra }, atts };
  }

  async editMany(
    db: PouchDatabase,
    ids: readonly string[],
    extra: Record<string, unknown> = {},
  ): Promise<void> {
    await this.update(db, ids, (id, leaf) => this.edit(id, leaf, extra));
  }

  /**
   * Recreates deleted documents the CouchDB 2+ way: a write without `_rev`
   * (naming the tombstone is a conflict); the new revision grows from the tombstone.
   */
  async recreate(
    db: PouchDatabase,
    ids: readonly string[],
    extra: Record<string, unknown> = {},
  ): Promise<void> {
    const parents: string[] = [];
    const next: Leaf[] = [];
    const docs = ids.map((id) => {
      const [rev, leaf] = this.model.winner(id);
      assert.ok(leaf.deleted, `${id} is not deleted`);
      const created = this.edit(id, { deleted: false, body: {}, atts: new Map() }, extra);
      parents.push(rev);
      next.push(created);
      return writeDoc(id, undefined, created);
    });
    const revs = await bulkWrite(db, docs);
    ids.forEach((id, i) => this.model.revised(id, parents[i], revs[i], next[i]));
  }

  async remove(db: PouchDatabase, ids: readonly string[]): Promise<void> {
    await this.update(db, ids, () => ({ deleted: true, body: {}, atts: new Map() }));
  }

  /**
   * Grafts a foreign branch of `length` revisions onto each document's first
   * revision with `new_edits: false` (as a replicator would), making a conflict.
   */
  async branch(
    db: PouchDatabase,
    ids: readonly string[],
    options: { length: number; deleted?: boolean },
  ): Promise<void> {
    const docs: PouchDoc[] = [];
    const planned: [string, string, string, Leaf][] = [];
    for (const id of ids) {
      const first = this.model.first(id);
      const start = revPos(first) + options.length;
      const hashes = Array.from({ length: options.length }, () => this.rng.hex(32));
      const rev = `${start}-${hashes[0]}`;
      const leaf: Leaf =
        options.deleted === true
          ? { deleted: true, body: {}, atts: new Map() }
          : {
              deleted: false,
              body: { ...this.body(id, 100 + options.length), branch: true },
              atts: this.rng.chance(0.3) ? this.attachments(id) : new Map(),
            };
      const doc = writeDoc(id, rev, leaf);
      doc._revisions = { start, ids: [...hashes, revHash(first)] };
      docs.push(doc);
      planned.push([id, first, rev, leaf]);
    }
    for (const chunk of chunks(docs)) {
      const results = await db.bulkDocs(chunk, { new_edits: false });
      const failed = results.filter((r) => r.error !== undefined && r.error !== false);
      assert.deepEqual(failed, [], `new_edits=false write on ${db.name} failed`);
    }
    for (const [id, first, rev, leaf] of planned) this.model.revised(id, first, rev, leaf);
  }
}

// ---- reading either side -------------------------------------------------------

interface SnapshotOptions {
  /** Also read attachment bodies (slower). */
  readonly attachmentData?: boolean;
}

/** The state of `ids` as `db` reports it (`allDocs` with conflicts, `_changes` style=all_docs). */
export async function snapshot(
  db: PouchDatabase,
  ids: readonly string[],
  options: SnapshotOptions = {},
): Promise<{ docs: Map<string, DocState | { missing: true }>; listed: ReadonlySet<string> }> {
  const leaves = new Map<string, string[]>();
  const changes = await db.changes({ style: 'all_docs', since: 0, return_docs: true, batch_size: 1000 });
  for (const row of changes.results) {
    assert.ok(!leaves.has(row.id), `${db.name}: _changes lists ${row.id} twice`);
    leaves.set(
      row.id,
      row.changes.map((c) => c.rev),
    );
  }
  const out = new Map<string, DocState | { missing: true }>();
  for (const chunk of chunks(ids, 1000)) {
    const { rows } = await db.allDocs({
      keys: chunk,
      include_docs: true,
      conflicts: true,
      attachments: options.attachmentData === true,
    });
    assert.equal(rows.length, chunk.length);
    rows.forEach((row, i) => {
      const id = chunk[i];
      assert.equal(row.key, id, `${db.name}: allDocs row ${i} is for ${row.key}, not ${id}`);
      if (row.error !== undefined || row.value === undefined) {
        out.set(id, { missing: true });
        return;
      }
      const deleted = row.value.deleted === true;
      const body: Record<string, unknown> = {};
      const attachments: Record<string, ExpectedAttachment> = {};
      let conflicts: string[] = [];
      if (!deleted) {
        const doc = row.doc;
        assert.ok(doc !== null && doc !== undefined, `${db.name}: allDocs gave no doc for live ${id}`);
        assert.equal(doc._rev, row.value.rev, `${db.name}: ${id} doc._rev differs from value.rev`);
        for (const [k, v] of Object.entries(doc)) if (!k.startsWith('_')) body[k] = v;
        conflicts = [...(doc._conflicts ?? [])].sort();
        for (const [name, att] of Object.entries(doc._attachments ?? {})) {
          const data = att.data ?? '';
          attachments[name] = {
            content_type: att.content_type,
            digest: att.digest ?? '',
            length: options.attachmentData === true ? Buffer.from(data, 'base64').length : (att.length ?? -1),
            data,
          };
        }
      }
      out.set(id, {
        winner: row.value.rev,
        deleted,
        leaves: [...(leaves.get(id) ?? [])].sort(),
        conflicts,
        body,
        attachments,
      });
    });
  }
  return { docs: out, listed: new Set(leaves.keys()) };
}

/** Differences between what `db` holds and the model, as readable lines (empty: all good). */
export async function differences(
  db: PouchDatabase,
  model: Model,
  options: SnapshotOptions = {},
): Promise<string[]> {
  const ids = model.ids();
  const { docs: state, listed } = await snapshot(db, ids, options);
  const problems: string[] = [];
  for (const id of listed) if (!model.has(id)) problems.push(`${id}: in _changes but not in the model`);
  for (const id of ids) {
    const actual = state.get(id);
    const expected = model.expected(id);
    if (actual === undefined || 'missing' in actual) {
      problems.push(`${id}: missing`);
      continue;
    }
    const compare = (what: string, a: unknown, e: unknown): void => {
      try {
        assert.deepStrictEqual(a, e);
      } catch {
        problems.push(
          `${id}: ${what} is ${JSON.stringify(a)?.slice(0, 300)}, expected ${JSON.stringify(e)?.slice(0, 300)}`,
        );
      }
    };
    compare('winning _rev', actual.winner, expected.winner);
    compare('deleted', actual.deleted, expected.deleted);
    compare('leaves', actual.leaves, expected.leaves);
    compare('_conflicts', actual.conflicts, expected.conflicts);
    compare('body', actual.body, expected.body);
    const attView = (atts: Readonly<Record<string, ExpectedAttachment>>): Record<string, unknown> =>
      Object.fromEntries(
        Object.entries(atts)
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([name, a]) => [
            name,
            // Stubs of attachments PouchDB wrote itself carry no length, so it is compared with the data.
            options.attachmentData === true
              ? { content_type: a.content_type, digest: a.digest, length: a.length, data: a.data }
              : { content_type: a.content_type, digest: a.digest },
          ]),
      );
    compare('attachments', attView(actual.attachments), attView(expected.attachments));
  }
  return problems;
}

/** Asserts that `db` holds exactly what the model says (first problems in the message). */
export async function assertMatchesModel(db: PouchDatabase, model: Model, label: string): Promise<void> {
  const problems = await differences(db, model, { attachmentData: true });
  assert.deepEqual(
    problems.slice(0, 15),
    [],
    `${label}: ${problems.length} document(s) differ from the model`,
  );
  const info = await db.info();
  assert.equal(info.doc_count, model.liveCount(), `${label}: doc_count`);
}
