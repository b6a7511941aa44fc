/**
 * Crash durability: a node is SIGKILLed in the middle of a `_bulk_docs` load
 * and restarted on the same data directory, several times. Every write the
 * node acknowledged must be there with its revision; the database counters,
 * `_all_docs`, `_changes` and the node journal must agree with each other.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DoppelProcess, fetchJson, makeTempDir, removeTempDir } from './support/doppel-process.js';

const DB = 'crashdb';
const BATCH = 200;
const WORKERS = 4;
const ROUNDS = 3;
/** The same admin password on every start: a changed one would be a new journal entry. */
const PASSWORD = 'crash-test-pw';

interface BulkRow {
  ok?: boolean;
  id: string;
  rev?: string;
  error?: string;
  reason?: string;
}

interface ChangesBody {
  results: { seq: number; id: string; changes: { rev: string }[]; deleted?: boolean }[];
  last_seq: number;
  pending: number;
}

interface DbInfo {
  update_seq: number;
  doc_count: number;
  doc_del_count: number;
}

interface JournalStatus {
  head_lsn: number;
  low_lsn: number;
  entries: number;
}

/** What the test knows about one document: its last acknowledged revision. */
interface Known {
  rev: string;
  deleted: boolean;
  /** md5 digest of the attachment the acknowledged revision carries, if any. */
  attDigest?: string;
}

const revPos = (rev: string): number => Number(rev.slice(0, rev.indexOf('-')));
const md5 = (bytes: Buffer): string => `md5-${createHash('md5').update(bytes).digest('base64')}`;

/** The acknowledged state, and which documents had a write in flight when the node died. */
class Ledger {
  readonly known = new Map<string, Known>();
  /** Every id ever sent (acknowledged or not). */
  readonly sent = new Set<string>();
  readonly inFlight = new Map<string, number>();
  acked = 0;

  begin(ids: readonly string[]): void {
    for (const id of ids) {
      this.sent.add(id);
      this.inFlight.set(id, (this.inFlight.get(id) ?? 0) + 1);
    }
  }

  end(ids: readonly string[]): void {
    for (const id of ids) {
      const n = (this.inFlight.get(id) ?? 1) - 1;
      if (n === 0) this.inFlight.delete(id);
      else this.inFlight.set(id, n);
    }
  }
}

/**
 * One writer: batches of new documents (some with an attachment), updates and
 * deletes of its own earlier documents (so no two writers race on a document).
 * Stops at the first failed request once the node is gone.
 */
async function writer(
  node: DoppelProcess,
  ledger: Ledger,
  prefix: string,
  own: string[],
  isDead: () => boolean,
): Promise<number> {
  let requests = 0;
  for (let batchNo = 0; ; batchNo++) {
    const docs: Record<string, unknown>[] = [];
    const expectations = new Map<string, Known>();
    const live = own.filter((id) => ledger.known.get(id)?.deleted === false);
    const touched = new Set<string>();
    for (let i = 0; i < BATCH; i++) {
      const roll = i % 10;
      if (roll < 2 && live.length > 0) {
        // Update an acknowledged document of this writer.
        const id = live[(batchNo * 37 + i * 13) % live.length];
        if (touched.has(id)) continue;
        touched.add(id);
        const prev = ledger.known.get(id)!;
        if (roll === 0 && i % 20 === 0) {
          docs.push({ _id: id, _rev: prev.rev, _deleted: true });
          expectations.set(id, { rev: '', deleted: true });
        } else {
          docs.push({ _id: id, _rev: prev.rev, batchNo, i, kind: 'update', pad: 'u'.repeat(i % 50) });
          expectations.set(id, { rev: '', deleted: false });
        }
        continue;
      }
      const id = `${prefix}-${String(batchNo).padStart(5, '0')}-${String(i).padStart(3, '0')}`;
      const doc: Record<string, unknown> = {
        _id: id,
        batchNo,
        i,
        kind: 'new',
        text: `document ${id} ${'x'.repeat(i % 80)}`,
      };
      const expect: Known = { rev: '', deleted: false };
      if (i % 50 === 7) {
        const bytes = Buffer.from(`attachment of ${id} \u0000\u00ff`, 'latin1');
        doc['_attachments'] = {
          'a.bin': { content_type: 'application/octet-stream', data: bytes.toString('base64') },
        };
        expect.attDigest = md5(bytes);
      }
      docs.push(doc);
      expectations.set(id, expect);
    }
    const ids = docs.map((d) => d['_id'] as string);
    ledger.begin(ids);
    let rows: BulkRow[];
    try {
      const res = await fetchJson<BulkRow[]>(`${node.url}/${DB}/_bulk_docs`, {
        method: 'POST',
        body: { docs },
        auth: node.adminAuthHeader,
      });
      assert.equal(res.status, 201, `_bulk_docs answered ${res.status}: ${res.text.slice(0, 300)}`);
      rows = res.json;
    } catch (err) {
      if (isDead()) return requests;
      throw err;
    } finally {
      ledger.end(ids);
    }
    requests++;
    assert.equal(rows.length, docs.length);
    rows.forEach((row, k) => {
      const id = ids[k];
      assert.equal(row.id, id);
      assert.ok(
        row.ok === true && typeof row.rev === 'string',
        `write of ${id} failed: ${JSON.stringify(row)}`,
      );
      const expect = expectations.get(id)!;
      if (!ledger.known.has(id)) own.push(id);
      // Only new documents carry an attachment; an update that does not send it again drops it.
      const next: Known = { rev: row.rev, deleted: expect.deleted };
      if (expect.attDigest !== undefined) next.attDigest = expect.attDigest;
      ledger.known.set(id, next);
      ledger.acked++;
    });
    if (isDead()) return requests;
  }
}

/** Starts the writers, kills the node (SIGKILL) once `killAfter` writes were acknowledged, and waits for the writers. */
async function loadAndCrash(
  node: DoppelProcess,
  ledger: Ledger,
  round: number,
  owned: string[][],
  killAfter: number,
): Promise<{ inFlightAtKill: Set<string> }> {
  let dead = false;
  const startAcked = ledger.acked;
  const writers = owned.map((own, w) => writer(node, ledger, `r${round}w${w}`, own, () => dead));
  let inFlightAtKill = new Set<string>();
  const killer = (async () => {
    const deadline = Date.now() + 120_000;
    while (ledger.acked - startAcked < killAfter || ledger.inFlight.size === 0) {
      if (Date.now() > deadline)
        throw new Error(`only ${ledger.acked - startAcked} writes acknowledged in 120 s`);
      await sleep(2);
    }
    inFlightAtKill = new Set(ledger.inFlight.keys());
    dead = true;
    await node.kill('SIGKILL');
  })();
  // A writer failing before the kill fails the test; the killer must not keep waiting then.
  const outcome = await Promise.allSettled([killer, ...writers]);
  dead = true;
  if (node.exitStatus === undefined) await node.kill('SIGKILL');
  for (const result of outcome) if (result.status === 'rejected') throw result.reason;
  assert.ok(inFlightAtKill.size > 0, 'requests were in flight when the node was killed');
  assert.equal(node.exitStatus?.signal, 'SIGKILL');
  return { inFlightAtKill };
}

async function getJson<T>(node: DoppelProcess, path: string, body?: unknown): Promise<T> {
  const res = await node.request<T>(path, body === undefined ? {} : { method: 'POST', body });
  assert.equal(res.status, 200, `${path}: ${res.status} ${res.text.slice(0, 300)}`);
  return res.json;
}

/**
 * Checks the restarted node against the ledger and its own counters; returns
 * the winning revision of every document, which becomes the known state.
 */
async function verify(
  node: DoppelProcess,
  ledger: Ledger,
  inFlightAtKill: ReadonlySet<string>,
  label: string,
): Promise<void> {
  const info = await getJson<DbInfo>(node, `/${DB}`);
  const changes = await getJson<ChangesBody>(node, `/${DB}/_changes`);
  const allDocs = await getJson<{ total_rows: number; rows: { id: string; value: { rev: string } }[] }>(
    node,
    `/${DB}/_all_docs`,
  );

  // _changes: every document exactly once, only documents the test sent.
  const winners = new Map<string, { rev: string; deleted: boolean }>();
  for (const row of changes.results) {
    assert.ok(!winners.has(row.id), `${label}: _changes lists ${row.id} more than once`);
    assert.ok(ledger.sent.has(row.id), `${label}: _changes lists ${row.id}, which was never written`);
    assert.equal(row.changes.length, 1, `${label}: ${row.id} has ${row.changes.length} leaves`);
    winners.set(row.id, { rev: row.changes[0].rev, deleted: row.deleted === true });
  }
  assert.equal(changes.last_seq, info.update_seq, `${label}: _changes last_seq vs update_seq`);
  const seqs = changes.results.map((r) => r.seq);
  assert.deepEqual(
    seqs,
    [...seqs].sort((a, b) => a - b),
    `${label}: _changes is in seq order`,
  );

  // Counters agree with the listings.
  const liveIds = [...winners]
    .filter(([, w]) => !w.deleted)
    .map(([id]) => id)
    .sort();
  assert.equal(info.doc_count, allDocs.rows.length, `${label}: doc_count vs rows of _all_docs`);
  assert.equal(allDocs.total_rows, allDocs.rows.length, `${label}: total_rows vs rows of _all_docs`);
  assert.deepEqual(
    allDocs.rows.map((r) => r.id),
    liveIds,
    `${label}: _all_docs lists the live documents of _changes`,
  );
  for (const row of allDocs.rows)
    assert.equal(row.value.rev, winners.get(row.id)!.rev, `${label}: _all_docs rev of ${row.id}`);
  assert.equal(info.doc_del_count, winners.size - liveIds.length, `${label}: doc_del_count`);

  // Every acknowledged write is there. A document with a write in flight at the kill may have moved one revision on.
  const problems: string[] = [];
  for (const [id, known] of ledger.known) {
    const winner = winners.get(id);
    if (winner === undefined) {
      problems.push(`${id}: acknowledged ${known.rev} but the document is gone`);
      continue;
    }
    if (winner.rev === known.rev) {
      if (winner.deleted !== known.deleted)
        problems.push(`${id}: deleted is ${winner.deleted}, acknowledged ${known.deleted}`);
      continue;
    }
    if (!inFlightAtKill.has(id) || revPos(winner.rev) !== revPos(known.rev) + 1) {
      problems.push(`${id}: winner ${winner.rev}, acknowledged ${known.rev}`);
    }
  }
  assert.deepEqual(
    problems.slice(0, 10),
    [],
    `${label}: ${problems.length} acknowledged writes are not as acknowledged`,
  );
  for (const [id] of winners) {
    if (!ledger.known.has(id))
      assert.ok(inFlightAtKill.has(id), `${label}: ${id} exists but was neither acknowledged nor in flight`);
  }

  // The acknowledged revisions themselves are readable (bodies and attachments), via _bulk_get.
  const acked = [...ledger.known].filter(([, k]) => !k.deleted);
  for (let i = 0; i < acked.length; i += 1000) {
    const chunk = acked.slice(i, i + 1000);
    const res = await getJson<{
      results: { id: string; docs: ({ ok: Record<string, unknown> } | { error: unknown })[] }[];
    }>(node, `/${DB}/_bulk_get`, { docs: chunk.map(([id, k]) => ({ id, rev: k.rev })) });
    assert.equal(res.results.length, chunk.length);
    res.results.forEach((result, j) => {
      const [id, known] = chunk[j];
      const doc = result.docs[0];
      if (doc === undefined || !('ok' in doc)) {
        problems.push(`${id}@${known.rev}: ${JSON.stringify(doc)}`);
        return;
      }
      if (doc.ok['_rev'] !== known.rev || doc.ok['_id'] !== id)
        problems.push(`${id}: _bulk_get gave ${String(doc.ok['_rev'])}`);
      const atts = doc.ok['_attachments'] as Record<string, { digest: string }> | undefined;
      const digest = atts?.['a.bin']?.digest;
      if (digest !== known.attDigest)
        problems.push(`${id}@${known.rev}: attachment digest ${digest}, expected ${known.attDigest}`);
    });
  }
  assert.deepEqual(
    problems.slice(0, 10),
    [],
    `${label}: ${problems.length} acknowledged revisions are not readable`,
  );

  // Every revision is one journal entry and one update_seq step (linear histories, no stemming).
  const revisions = [...winners.values()].reduce((sum, w) => sum + revPos(w.rev), 0);
  assert.equal(info.update_seq, revisions, `${label}: update_seq vs revisions stored`);
  const journal = await getJson<JournalStatus>(node, '/_doppel/journal');
  // 1 admin entry (first start), db.create for _users, _replicator and the test database,
  // one `local`, one `security` and one `revs_limit` entry (written before the load), one entry per revision.
  const expectedEntries = 1 + 3 + 3 + revisions;
  assert.equal(journal.low_lsn, 1, `${label}: nothing was trimmed from the journal`);
  assert.equal(journal.head_lsn, expectedEntries, `${label}: journal head_lsn vs what the data implies`);
  assert.equal(journal.entries, journal.head_lsn - journal.low_lsn + 1, `${label}: journal entries`);

  // What the node holds now is what the next round builds on; writes that landed without an
  // acknowledgement are read back for their attachment.
  const landed = [...winners].filter(([id, w]) => ledger.known.get(id)?.rev !== w.rev && !w.deleted);
  const attachmentOf = new Map<string, string>();
  if (landed.length > 0) {
    const res = await getJson<{
      results: { id: string; docs: { ok?: { _attachments?: Record<string, { digest: string }> } }[] }[];
    }>(node, `/${DB}/_bulk_get`, { docs: landed.map(([id, w]) => ({ id, rev: w.rev })) });
    for (const result of res.results) {
      const digest = result.docs[0]?.ok?._attachments?.['a.bin']?.digest;
      if (digest !== undefined) attachmentOf.set(result.id, digest);
    }
  }
  for (const [id, w] of winners) {
    const previous = ledger.known.get(id);
    const next: Known = { rev: w.rev, deleted: w.deleted };
    const digest = previous?.rev === w.rev ? previous.attDigest : attachmentOf.get(id);
    if (digest !== undefined) next.attDigest = digest;
    ledger.known.set(id, next);
  }
}

void describe('crash durability', () => {
  const dataDir = makeTempDir('doppel-crash-');
  let node: DoppelProcess | undefined;

  after(async () => {
    await node?.stop();
    await removeTempDir(dataDir);
  });

  void it(`keeps every acknowledged write across ${ROUNDS} SIGKILLs in the middle of a _bulk_docs load`, async (t) => {
    node = await DoppelProcess.start({ dataDir, adminPassword: PASSWORD });
    const created = await node.request(`/${DB}`, { method: 'PUT' });
    assert.equal(created.status, 201, created.text);
    const local = await node.request(`/${DB}/_local/marker`, {
      method: 'PUT',
      body: { note: 'not a revision' },
    });
    assert.equal(local.status, 201, local.text);
    const security = await node.request(`/${DB}/_security`, {
      method: 'PUT',
      body: { admins: { names: [], roles: ['_admin'] }, members: { names: [], roles: ['_admin'] } },
    });
    assert.equal(security.status, 200, security.text);
    const revsLimit = await node.request(`/${DB}/_revs_limit`, { method: 'PUT', body: 500 });
    assert.equal(revsLimit.status, 200, revsLimit.text);
    const ledger = new Ledger();
    const owned: string[][] = Array.from({ length: WORKERS }, () => []);
    for (let round = 1; round <= ROUNDS; round++) {
      const ackedBefore = ledger.acked;
      const { inFlightAtKill } = await loadAndCrash(node, ledger, round, owned, 2000 + round * 700);
      const acked = new Map([...ledger.known].map(([id, k]) => [id, k.rev]));
      node = await DoppelProcess.start({ dataDir, adminPassword: PASSWORD });
      await verify(node, ledger, inFlightAtKill, `after crash ${round}`);
      const landed = [...inFlightAtKill].filter(
        (id) => ledger.known.has(id) && ledger.known.get(id)!.rev !== acked.get(id),
      ).length;
      t.diagnostic(
        `round ${round}: ${ledger.acked - ackedBefore} writes acknowledged, ${inFlightAtKill.size} in flight at the kill, ` +
          `${landed} of those landed; ${ledger.known.size} documents`,
      );
      const marker = await node.request<{ note: string }>(`/${DB}/_local/marker`);
      assert.equal(marker.json.note, 'not a revision', `_local doc after crash ${round}`);
      // Documents created by a write in flight at the kill belong to their writer from now on.
      for (const id of inFlightAtKill) {
        const w = /^r\d+w(\d+)-/.exec(id);
        if (w !== null && ledger.known.has(id) && !owned[Number(w[1])].includes(id))
          owned[Number(w[1])].push(id);
      }
    }
    // A clean stop and start changes nothing.
    const before = await node.request<JournalStatus>('/_doppel/journal');
    const status = await node.stop();
    assert.equal(status.code, 0, `graceful stop exit code (output:\n${node.output.slice(-2000)})`);
    node = await DoppelProcess.start({ dataDir, adminPassword: PASSWORD });
    await verify(node, ledger, new Set(), 'after a clean restart');
    const afterRestart = await node.request<JournalStatus>('/_doppel/journal');
    assert.equal(
      afterRestart.json.head_lsn,
      before.json.head_lsn,
      'a clean restart appends nothing to the journal',
    );
  });
});
