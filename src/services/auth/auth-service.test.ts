import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DocumentStore } from '../../engines/docs/document-store.js';
import { Journal } from '../../engines/journal/journal.js';
import { DoppelError, ErrorKind } from '../../errors.js';
import { Storage } from '../../storage/environment.js';
import { AuthService } from './auth-service.js';
import { hashPassword, verifyPasswordAsync } from './passwords.js';

const dir = mkdtempSync(join(tmpdir(), 'doppel-auth-test-'));
const storage = new Storage({ path: dir, durability: 'flush', maxUnsyncedMs: 1000 });
const journal = new Journal(storage, { maxBytes: 1 << 30, maxAgeMs: 1e9, backlogBytes: 1 << 26 });
const docs = new DocumentStore(storage, journal, { defaultRevsLimit: 1000 });
const auth = new AuthService(storage, journal, docs, { sessionTimeoutS: 600 });

after(async () => {
  await storage.close();
  rmSync(dir, { recursive: true, force: true });
});

void describe('AuthService.verify', () => {
  void it('hashes the password of a name that has no account, as for one that has', async () => {
    // With every hashing turn taken, a check that hashes is refused; one that answers
    // "no such user" at once would resolve null and tell an attacker the name is free.
    const stored = hashPassword('pw', 2);
    const holding = Array.from({ length: 2 + 256 }, () => verifyPasswordAsync(stored, 'pw'));
    await assert.rejects(
      auth.verify('nobody', 'guess'),
      (err: unknown) => err instanceof DoppelError && err.kind === ErrorKind.Unavailable,
    );
    await Promise.all(holding);
    assert.equal(await auth.verify('nobody', 'guess'), null);
  });
});
