/**
 * Every LMDB table a node opens is either copied to node replicas or named
 * node-local (`services/node-replication/replicated-tables.ts`): a new table
 * must be placed in one list or the other, never silently left out of
 * replicas nor silently copied. The node here uses every door once, so
 * tables opened on first use exist too.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { open } from 'lmdb';
import {
  NODE_LOCAL_TABLES,
  REPLICATED_TABLES,
  SECOND_SET_TABLES,
} from '../src/services/node-replication/replicated-tables.js';
import { DoppelProcess } from './support/doppel-process.js';
import { RespClient } from './support/resp-client.js';

void describe('replicated tables', () => {
  let node: DoppelProcess;

  before(async () => {
    node = await DoppelProcess.start();
    const put = async (path: string, body: unknown): Promise<void> => {
      const res = await node.request(path, { method: 'PUT', body });
      assert.ok(res.status < 300, `${path}: ${res.status} ${res.text}`);
    };
    await put('/tables', undefined);
    await put('/tables/doc', {
      _attachments: { 'a.txt': { content_type: 'text/plain', data: Buffer.from('x').toString('base64') } },
    });
    await put('/tables/_local/l', { seq: 1 });
    const bucket = await node.request('/api/v2/buckets', { method: 'POST', body: { name: 'points' } });
    assert.equal(bucket.status, 201, bucket.text);
    const write = await node.request('/api/v2/write?org=doppel&bucket=points', {
      method: 'POST',
      body: 'm v=1 1',
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal(write.status, 204, write.text);
    const client = await RespClient.open(
      Number(node.respAddress?.split(':').at(-1)),
      node.adminUser,
      node.adminPassword,
    );
    assert.equal(await client.call('SET', 'k', 'v', 'EX', 100), 'OK');
    assert.equal(await client.call('HSET', 'h', 'f', 'v'), 1);
    client.close();
    await node.kill('SIGTERM');
  });

  after(async () => {
    await node?.stop();
  });

  void it('places every table the node opened in exactly one list', () => {
    const env = open({ path: node.dataDir, readOnly: true });
    let opened: string[];
    try {
      opened = [...env.getKeys()].map(String).sort();
    } finally {
      void env.close();
    }
    const replicated = REPLICATED_TABLES.map((t) => t.name);
    const both = replicated.filter((name) => NODE_LOCAL_TABLES.includes(name));
    assert.deepEqual(both, [], 'tables in both lists');
    const placed = new Set([...replicated, ...NODE_LOCAL_TABLES, ...SECOND_SET_TABLES]);
    assert.deepEqual(
      opened.filter((name) => !placed.has(name)),
      [],
      'tables neither copied to replicas nor node-local',
    );
    assert.ok(opened.includes('docs') && opened.includes('kv'), `opened: ${opened.join(', ')}`);
  });
});
