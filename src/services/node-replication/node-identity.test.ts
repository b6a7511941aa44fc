import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Storage } from '../../storage/environment.js';
import { NodeIdentity } from './node-identity.js';

void describe('node identity', () => {
  void it("keeps a new primary's replid across a restart, so its replicas can continue", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'doppel-identity-'));
    const open = (): Storage => new Storage({ path: dir, durability: 'flush', maxUnsyncedMs: 1000 });
    try {
      let storage = open();
      const first = new NodeIdentity(storage);
      await first.persistNew();
      const { replid } = first.current;
      await storage.close();
      storage = open();
      const again = new NodeIdentity(storage);
      await again.persistNew();
      assert.equal(again.current.replid, replid);
      await storage.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
