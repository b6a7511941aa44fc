/**
 * The replication job between two `LocalEndpoint`s over an in-process
 * DocumentService: conflicts, deletes and attachments arrive, a second run
 * resumes from the checkpoint, and a continuous job follows new writes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DocumentStore } from '../src/engines/docs/document-store.js';
import { Journal } from '../src/engines/journal/journal.js';
import type { CopyBatchWriter, FetchedDoc, WriteFailure } from '../src/engines/replication/endpoint.js';
import { ReplicationJob } from '../src/engines/replication/replication-job.js';
import { ErrorKind } from '../src/errors.js';
import { serverAdminContext } from '../src/services/auth/user-context.js';
import { DocumentService } from '../src/services/docs/document-service.js';
import { BulkDocsParser } from '../src/services/docs/parse-pool.js';
import { LocalEndpoint } from '../src/services/replicator/local-endpoint.js';
import { Storage } from '../src/storage/environment.js';

const ctx = serverAdminContext('admin');

/** A local target that counts how its documents arrive. */
class WriteCounting extends LocalEndpoint {
  bulkDocsCalls = 0;
  copyWrites = 0;

  override bulkDocs(docs: readonly FetchedDoc[]): Promise<readonly WriteFailure[]> {
    this.bulkDocsCalls++;
    return super.bulkDocs(docs);
  }

  override async copyWriter(): Promise<CopyBatchWriter | null> {
    const write = await super.copyWriter();
    if (write === null) return null;
    this.copyWrites++;
    return write;
  }
}

void describe('replication between local endpoints', () => {
  let dir: string;
  let storage: Storage;
  let service: DocumentService;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'doppel-repl-local-'));
    storage = new Storage({ path: dir, durability: 'flush', maxUnsyncedMs: 1000 });
    const journal = new Journal(storage, { maxBytes: 1 << 30, maxAgeMs: 1e9, backlogBytes: 1 << 26 });
    const store = new DocumentStore(storage, journal, { defaultRevsLimit: 1000 });
    service = new DocumentService(
      store,
      new BulkDocsParser({ maxDocumentBytes: 1 << 24, useWorker: false }),
      {
        functionTimeoutMs: 5000,
        maxDocumentBytes: 1 << 24,
      },
    );
    await service.createDatabase(ctx, 'a');
    const docs = Array.from({ length: 120 }, (_, i) => ({ _id: `d${i}`, n: i }));
    const written = await service.bulkDocs(ctx, 'a', docs, true);
    const deletes = written.slice(0, 10).map((w) => ({ _id: w.id, _rev: w.ok ? w.rev : '', _deleted: true }));
    await service.bulkDocs(ctx, 'a', deletes, true);
    await service.bulkDocs(
      ctx,
      'a',
      [
        { _id: 'c', _rev: `1-${'a'.repeat(32)}`, side: 'a' },
        { _id: 'c', _rev: `1-${'b'.repeat(32)}`, side: 'b' },
        {
          _id: 'att',
          _rev: `1-${'c'.repeat(32)}`,
          _attachments: {
            'x.txt': { content_type: 'text/plain', data: Buffer.from('xyz').toString('base64') },
          },
        },
      ],
      false,
    );
  });

  after(async () => {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function leaves(db: string): Promise<Map<string, string>> {
    const page = await service.changes(ctx, db, {
      since: 0,
      limit: 10_000,
      descending: false,
      style: 'all_docs',
      includeDocs: false,
      render: {},
    });
    return new Map(
      page.rows.map((r) => [r.id, `${[...r.changes].sort().join(',')}${r.deleted ? ' d' : ''}`]),
    );
  }

  void it('copies a first replication into an empty database whole, then resumes from the checkpoint', async () => {
    const source = new LocalEndpoint(service, ctx, 'a');
    const target = new WriteCounting(service, ctx, 'b');
    const first = await new ReplicationJob(source, target, { createTarget: true, workerBatchSize: 25 }).run(
      new AbortController().signal,
    );
    assert.equal(first.status, 'completed');
    assert.equal(first.stats.docs_written, 123);
    assert.equal(target.bulkDocsCalls, 0, 'copied, not written by _bulk_docs');
    assert.equal(target.copyWrites, 1);
    assert.equal(first.status === 'completed' && first.sourceLastSeq, service.info(ctx, 'a').update_seq);
    assert.deepEqual(await leaves('b'), await leaves('a'));
    const att = JSON.parse(service.get(ctx, 'b', 'att', undefined, { attachments: true })) as {
      _attachments: Record<string, { data: string }>;
    };
    assert.equal(Buffer.from(att._attachments['x.txt']?.data ?? '', 'base64').toString(), 'xyz');
    const again = await new ReplicationJob(source, target, { createTarget: true }).run(
      new AbortController().signal,
    );
    assert.equal(again.status, 'completed');
    assert.equal(again.stats.docs_read, 0);
  });

  void it('replicates by changes into a database that already has documents', async () => {
    await service.createDatabase(ctx, 'seeded');
    await service.bulkDocs(ctx, 'seeded', [{ _id: 'own' }], true);
    const target = new WriteCounting(service, ctx, 'seeded');
    const result = await new ReplicationJob(new LocalEndpoint(service, ctx, 'a'), target, {
      workerBatchSize: 50,
    }).run(new AbortController().signal);
    assert.equal(result.status, 'completed');
    assert.equal(target.copyWrites, 0);
    assert.ok(target.bulkDocsCalls > 0);
    const want = await leaves('a');
    want.set('own', (await leaves('seeded')).get('own') ?? '');
    assert.deepEqual(await leaves('seeded'), want);
  });

  void it("copies with the target user's rights: design documents need a database admin", async () => {
    await service.createDatabase(ctx, 'app');
    await service.bulkDocs(ctx, 'app', [{ _id: '_design/app', views: {} }, { _id: 'x' }, { _id: 'y' }], true);
    await service.createDatabase(ctx, 'members');
    await service.putSecurity(ctx, 'members', { members: { names: ['bob'] }, admins: {} });
    const bob = { name: 'bob', roles: [] };
    const result = await new ReplicationJob(
      new LocalEndpoint(service, ctx, 'app'),
      new LocalEndpoint(service, bob, 'members'),
    ).run(new AbortController().signal);
    assert.equal(result.status, 'completed');
    assert.equal(result.stats.doc_write_failures, 1);
    const want = await leaves('app');
    want.delete('_design/app');
    assert.deepEqual(await leaves('members'), want);
    // Not a member: the copy is refused as _bulk_docs would be.
    await service.createDatabase(ctx, 'closed');
    await service.putSecurity(ctx, 'closed', { members: { names: ['carol'] }, admins: {} });
    const refused = await new ReplicationJob(
      new LocalEndpoint(service, ctx, 'app'),
      new LocalEndpoint(service, bob, 'closed'),
    ).run(new AbortController().signal);
    assert.equal(refused.status, 'failed');
    assert.equal(refused.status === 'failed' && refused.error.kind, ErrorKind.Forbidden);
    assert.equal(service.info(ctx, 'closed').doc_count, 0);
  });

  void it('refuses to copy into a read-only database', async () => {
    await service.createDatabase(ctx, 'ro');
    await service.store.setReadOnly('ro', 'ro follows a leader; stop it first');
    const result = await new ReplicationJob(
      new LocalEndpoint(service, ctx, 'a'),
      new LocalEndpoint(service, ctx, 'ro'),
    ).run(new AbortController().signal);
    assert.equal(result.status, 'failed');
    assert.equal(result.status === 'failed' && result.error.message, 'ro follows a leader; stop it first');
    assert.equal(service.info(ctx, 'ro').doc_count, 0);
  });

  void it('follows new writes continuously', async () => {
    const job = new ReplicationJob(
      new LocalEndpoint(service, ctx, 'a'),
      new LocalEndpoint(service, ctx, 'live'),
      {
        createTarget: true,
        continuous: true,
        checkpointInterval: 100,
      },
    );
    const controller = new AbortController();
    const running = job.run(controller.signal);
    await service.bulkDocs(ctx, 'a', [{ _id: 'late' }], true);
    const deadline = Date.now() + 5000;
    while (!(await leaves('live')).has('late')) {
      assert.ok(Date.now() < deadline, 'late doc did not arrive');
      await sleep(20);
    }
    controller.abort();
    const result = await running;
    assert.equal(result.status, 'stopped');
    assert.equal(job.stats.docs_written, 124);
  });
});
