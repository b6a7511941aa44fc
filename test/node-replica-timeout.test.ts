/**
 * A frozen replica must not pin its primary: one that stops reading its
 * snapshot is dropped after `repl_timeout`, which releases the snapshot's
 * LMDB read transaction (Dragonfly #2191: "a frozen replica freezes the
 * master").
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { DoppelProcess } from './support/doppel-process.js';
import { field, waitFor } from './support/keyspace-workload.js';
import { RespClient } from './support/resp-client.js';
import { NODE_CAPA } from '../src/services/redis-replica/primary-link.js';

const KEYS = 40_000;

void describe('node replication: a frozen replica', () => {
  let primary: DoppelProcess;
  let client: RespClient;

  before(async () => {
    primary = await DoppelProcess.start({ args: ['--repl-timeout', '2'] });
    client = await RespClient.open(
      Number(primary.respAddress?.split(':').at(-1)),
      primary.adminUser,
      primary.adminPassword,
    );
    // Several MB of snapshot: more than the socket buffers hold.
    const value = 'v'.repeat(200);
    for (let at = 0; at < KEYS; at += 2000) {
      await client.pipeline(Array.from({ length: 2000 }, (_, i) => ['SET', `key:${at + i}`, value]));
    }
  });

  after(async () => {
    client?.close();
    await primary?.stop();
  });

  void it('is dropped once it has read nothing for repl_timeout', async () => {
    const socket = connect(Number(primary.respAddress?.split(':').at(-1)), '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    const command = (...args: string[]): string =>
      `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
    socket.write(
      command('AUTH', primary.adminUser, primary.adminPassword) +
        command('REPLCONF', 'capa', NODE_CAPA) +
        command('PSYNC', '?', '-1'),
    );
    // Read the replies and the first bytes of the snapshot, then freeze.
    await new Promise<void>((resolve) => socket.once('data', () => resolve()));
    socket.pause();
    const started = Date.now();
    await waitFor(
      'the primary to show the replica',
      async () => field(await client.call('INFO', 'replication'), 'connected_slaves') === '1',
    );
    await waitFor('the primary to drop the frozen replica', async () => {
      const info = await client.call('INFO', 'replication');
      return field(info, 'connected_slaves') === '0';
    });
    const waited = Date.now() - started;
    assert.ok(waited >= 1500, `dropped after ${waited} ms, before repl_timeout`);
    assert.equal(field(await client.call('INFO', 'stats'), 'sync_full'), '0', 'no full sync completed');
    // The primary goes on serving writes.
    assert.equal(await client.call('SET', 'after', '1'), 'OK');
    assert.match(primary.output, /the replica read nothing for repl_timeout; dropped/);
    socket.destroy();
  });
});
