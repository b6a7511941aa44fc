/**
 * The scheduler's policy over real local endpoints (an in-process document
 * service on a temporary LMDB environment): `max_jobs`, rotation of
 * continuous jobs with `max_churn`, one-shot jobs never rotated out, crash
 * penalties that double within a streak, cancellation, bounded history.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { DocumentStore } from '../../engines/docs/document-store.js';
import { Journal } from '../../engines/journal/journal.js';
import { Storage } from '../../storage/environment.js';
import { serverAdminContext } from '../auth/user-context.js';
import { DocumentService } from '../docs/document-service.js';
import { BulkDocsParser } from '../docs/parse-pool.js';
import { RemoteRegistry } from '../remotes/remote-registry.js';
import { jobEndpoints } from './endpoint-factory.js';
import { DEFAULT_TUNING, parseReplicationSpec, type ReplicationSpec } from './replication-spec.js';
import type { ScheduledJob } from './scheduled-job.js';
import { Scheduler, type SchedulerOptions } from './scheduler.js';

const ctx = serverAdminContext('admin');

async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

void describe('Scheduler', () => {
  let dir: string;
  let storage: Storage;
  let service: DocumentService;
  let remotes: RemoteRegistry;
  const schedulers: Scheduler[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'doppel-scheduler-'));
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
    remotes = new RemoteRegistry(storage);
    await service.createDatabase(ctx, 'src');
    await service.bulkDocs(
      ctx,
      'src',
      Array.from({ length: 20 }, (_, i) => ({ _id: `d${i}` })),
      true,
    );
  });

  after(async () => {
    await Promise.all(schedulers.map((s) => s.stop()));
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function scheduler(options: Partial<SchedulerOptions>): Scheduler {
    const s = new Scheduler({
      maxJobs: 2,
      intervalMs: 100,
      maxChurn: 1,
      maxHistory: 5,
      healthThresholdMs: 60_000,
      crashBackoffMs: 100,
      stallMs: 60_000,
      createEndpoints: (spec, signal) => jobEndpoints(service, spec, signal),
      log: pino({ level: 'silent' }),
      ...options,
    });
    schedulers.push(s);
    s.start();
    return s;
  }

  function spec(body: Record<string, unknown>): ReplicationSpec {
    return parseReplicationSpec(body, { remotes, defaults: DEFAULT_TUNING, defaultUser: ctx });
  }

  async function add(s: Scheduler, body: Record<string, unknown>): Promise<ScheduledJob> {
    const sp = spec(body);
    return s.add(await s.ids(sp), sp, null);
  }

  void it('runs at most max_jobs and rotates continuous jobs so every one gets to run', async () => {
    const s = scheduler({ maxJobs: 2, maxChurn: 1 });
    const jobs = await Promise.all(
      [0, 1, 2, 3].map((i) =>
        add(s, { source: 'src', target: `rot${i}`, create_target: true, continuous: true }),
      ),
    );
    await until('two running', () => jobs.filter((j) => j.state === 'running').length === 2);
    const ran = new Set<string>();
    const deadline = Date.now() + 5000;
    while (ran.size < 4 && Date.now() < deadline) {
      const running = jobs.filter((j) => j.run !== null && j.state === 'running');
      assert.ok(running.length <= 2, `${running.length} jobs running at once`);
      for (const j of running) ran.add(j.id);
      await sleep(20);
    }
    assert.equal(ran.size, 4, 'every continuous job ran in turn');
    assert.ok(
      jobs.some((j) => j.history.some((h) => h.type === 'stopped')),
      'rotation is in the history',
    );
    for (const j of jobs) assert.ok(j.history.length <= 5, 'history is bounded');
    for (const j of jobs) s.remove(j.id);
  });

  void it('never rotates one-shot jobs out', async () => {
    await service.createDatabase(ctx, 'big');
    await service.bulkDocs(
      ctx,
      'big',
      Array.from({ length: 3000 }, (_, i) => ({ _id: `b${i}`, pad: 'x'.repeat(100) })),
      true,
    );
    const s = scheduler({ maxJobs: 1, maxChurn: 1 });
    const oneShot = await add(s, {
      source: 'big',
      target: 'once',
      create_target: true,
      worker_batch_size: 10,
    });
    await until('one-shot running', () => oneShot.state === 'running');
    const waiting = await add(s, { source: 'src', target: 'after', create_target: true, continuous: true });
    const result = await oneShot.finished();
    assert.equal(result.status, 'completed');
    assert.ok(!oneShot.history.some((h) => h.type === 'stopped'), 'the one-shot job was not stopped');
    await until('the waiting job runs once the slot is free', () => waiting.state === 'running');
    s.remove(waiting.id);
  });

  void it('keeps a crashing job out for a penalty that doubles within a streak', async () => {
    const s = scheduler({ crashBackoffMs: 150 });
    const job = await add(s, {
      source: 'missing-db',
      target: 'nowhere',
      create_target: true,
      continuous: true,
    });
    await until('crashing', () => job.state === 'crashing');
    const firstWait = job.notBefore - Date.now();
    assert.ok(firstWait > 50 && firstWait <= 150, `first penalty ${firstWait} ms`);
    assert.match(job.lastError ?? '', /db_not_found/);
    await until('second crash', () => job.errorCount >= 2, 3000);
    await until('crashing again', () => job.state === 'crashing');
    const secondWait = job.notBefore - Date.now();
    assert.ok(secondWait > 150 && secondWait <= 300, `second penalty ${secondWait} ms`);
    assert.equal(job.crashStreak, 2);
    // The database appears: the job runs after its penalty.
    await service.createDatabase(ctx, 'missing-db');
    await until('running once the source exists', () => job.state === 'running', 3000);
    assert.ok(s.remove(job.id));
    assert.equal(s.get(job.id), undefined);
    assert.equal((await job.finished()).status, 'stopped');
  });
});
