/**
 * Pub/Sub on the RESP door: the subscription commands, the RESP2 listening
 * context, PUBSUB and RESET reply exactly as a real redis-server 7.0 does
 * (side by side, both requiring the same password); messages reach channel,
 * pattern and shard listeners in RESP2 and RESP3; a message published after
 * a write is only delivered once that write can be read; a real Redis
 * primary's PUBLISH reaches Doppel's listeners; a listener that stops
 * reading is disconnected instead of growing the node's memory.
 *
 * Needs Debian's redis-server (`apt-get install redis-server redis-tools`);
 * without it the test fails saying so.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { DoppelProcess } from './support/doppel-process.js';
import { field, waitFor } from './support/keyspace-workload.js';
import { RedisPeer } from './support/redis-peer.js';
import { encodeCommand, RespClient, type Arg, type Reply, type RespMap } from './support/resp-client.js';

/** A command and how many replies it produces (one per channel for the subscription commands). */
type Step = readonly [args: readonly Arg[], replies: number];

async function exchange(client: RespClient, [args, replies]: Step): Promise<Reply[]> {
  client.writeRaw(encodeCommand(args));
  const out: Reply[] = [];
  for (let i = 0; i < replies; i++) out.push(await client.next());
  return out;
}

/** Runs each step on both servers in turn; the replies must be equal. */
async function sideBySide(redis: RespClient, doppel: RespClient, steps: readonly Step[]): Promise<void> {
  for (const step of steps) {
    const want = await exchange(redis, step);
    const got = await exchange(doppel, step);
    assert.deepEqual(got, want, step[0].join(' '));
  }
}

/** The next reply, or a failure naming `what` after `ms`. */
async function nextWithin(client: RespClient, what: string, ms = 5000): Promise<Reply> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([client.next(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

void describe('Pub/Sub, against redis-server', { timeout: 90_000 }, () => {
  let redis: RedisPeer;
  let doppel: DoppelProcess;
  let doppelPort: number;
  const opened: RespClient[] = [];

  /** A connection to each server, both logged in with the same one-argument AUTH. */
  async function pair(): Promise<[RespClient, RespClient]> {
    const r = await redis.client();
    const d = await RespClient.connect(doppelPort);
    opened.push(r, d);
    for (const client of [r, d]) assert.equal(await client.call('AUTH', doppel.adminPassword), 'OK');
    return [r, d];
  }

  before(async () => {
    doppel = await DoppelProcess.start();
    doppelPort = Number(doppel.respAddress?.split(':').at(-1));
    // The same password: AUTH, RESET's logout and NOAUTH then read the same on both.
    redis = await RedisPeer.start(['--requirepass', doppel.adminPassword, '--repl-diskless-sync', 'no']);
  });

  after(async () => {
    for (const client of opened) client.close();
    await doppel?.stop();
    await redis?.stop();
  });

  void it('subscriptions, the RESP2 listening context, PUBSUB and RESET reply as redis-server does', async () => {
    const [r, d] = await pair();
    await sideBySide(r, d, [
      [['SUBSCRIBE', 'a', 'b'], 2],
      [['SUBSCRIBE', 'a'], 1],
      [['PING'], 1],
      [['PING', 'x'], 1],
      [['GET', 'k'], 1],
      [['CONFIG', 'GET', 'maxmemory'], 1],
      [['PUBSUB', 'NUMSUB', 'a'], 1],
      [['PSUBSCRIBE', 'n*', 'a?'], 2],
      [['SSUBSCRIBE', 's1', 's2'], 2],
      [['PUNSUBSCRIBE', 'n*', 'never'], 2],
      [['UNSUBSCRIBE', 'a', 'zz'], 2],
      [['SUNSUBSCRIBE', 's2'], 1],
      [['SUNSUBSCRIBE'], 1],
      [['UNSUBSCRIBE'], 1],
      [['PUNSUBSCRIBE'], 1],
      [['UNSUBSCRIBE'], 1],
      [['PUNSUBSCRIBE'], 1],
      [['PING'], 1],
      [['GET', 'k'], 1],
      [['SUBSCRIBE'], 1],
      [['PUBLISH', 'a'], 1],
      [['PUBSUB'], 1],
      [['PUBSUB', 'NUMPAT', 'x'], 1],
      [['PUBSUB', 'CHANNELS', 'a', 'b'], 1],
      [['PUBSUB', 'FOO'], 1],
      [['PUBSUB', 'NUMSUB'], 1],
      [['MULTI'], 1],
      [['SUBSCRIBE', 'q'], 1],
      [['EXEC'], 1],
      [['PUBSUB', 'CHANNELS'], 1],
      [['CLIENT', 'SETNAME', 'named'], 1],
      [['SELECT', '3'], 1],
      [['MULTI'], 1],
      [['RESET'], 1],
      [['GET', 'k'], 1],
      [['AUTH', doppel.adminPassword], 1],
      [['CLIENT', 'GETNAME'], 1],
      [['PUBSUB', 'CHANNELS'], 1],
      [['EXEC'], 1],
    ]);
    // RESP3 (HELLO's reply holds each server's own client id): no listening context.
    for (const client of [r, d]) assert.equal(((await client.call('HELLO', '3')) as RespMap).get('proto'), 3);
    await sideBySide(r, d, [
      [['SUBSCRIBE', 'c3'], 1],
      [['SET', 'k3', 'v'], 1],
      [['GET', 'k3'], 1],
      [['PING'], 1],
      [['RESET'], 1],
    ]);
  });

  void it('messages reach channel, pattern and shard listeners, counted as redis-server counts them', async () => {
    const received: Reply[][] = [];
    for (const server of ['redis', 'doppel'] as const) {
      const [r, d] = await pair();
      const [l1, publisher] = server === 'redis' ? [r, (await pair())[0]] : [d, (await pair())[1]];
      const l2 = server === 'redis' ? (await pair())[0] : (await pair())[1];
      await exchange(l1, [['SUBSCRIBE', 'news'], 1]);
      await exchange(l1, [['PSUBSCRIBE', 'n*'], 1]);
      await exchange(l2, [['HELLO', '3'], 1]);
      await exchange(l2, [['SUBSCRIBE', 'news'], 1]);
      await exchange(l2, [['SSUBSCRIBE', 's'], 1]);
      const replies: Reply[] = [];
      for (const args of [
        ['PUBLISH', 'news', 'héllo'],
        ['PUBLISH', 'nothing', 'x'],
        ['PUBLISH', 'other', 'x'],
        ['SPUBLISH', 's', 'm'],
        ['SPUBLISH', 'news', 'x'],
        ['PUBSUB', 'NUMSUB', 'news', 's'],
        ['PUBSUB', 'SHARDNUMSUB', 's', 'news'],
        ['PUBSUB', 'NUMPAT'],
        ['PUBSUB', 'CHANNELS', 'n*'],
        ['PUBSUB', 'SHARDCHANNELS'],
      ]) {
        replies.push(await publisher.call(...args));
      }
      const heard: Reply[] = [];
      for (let i = 0; i < 3; i++) heard.push(await nextWithin(l1, `message ${i} on the RESP2 listener`));
      for (let i = 0; i < 2; i++) heard.push(await nextWithin(l2, `message ${i} on the RESP3 listener`));
      received.push([...replies, ...heard]);
      for (const client of [l1, l2, publisher]) client.close();
    }
    const [want, got] = received;
    assert.deepEqual(got, want);
    assert.deepEqual(got.slice(0, 5), [3, 1, 0, 1, 0]);
  });

  void it('a RESP3 listener gets its confirmations and messages as pushes', async () => {
    const socket = connect(doppelPort, '127.0.0.1');
    let bytes = '';
    socket.on('data', (chunk: Buffer) => (bytes += chunk.toString('latin1')));
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(encodeCommand(['HELLO', '3', 'AUTH', doppel.adminUser, doppel.adminPassword]));
    socket.write(encodeCommand(['SUBSCRIBE', 'raw']));
    const [, d] = await pair();
    await waitFor('the subscription', () => Promise.resolve(bytes.includes('raw')));
    assert.equal(await d.call('PUBLISH', 'raw', 'payload'), 1);
    await waitFor('the message', () => Promise.resolve(bytes.includes('payload')));
    socket.destroy();
    assert.ok(bytes.includes('>3\r\n$9\r\nsubscribe\r\n$3\r\nraw\r\n:1\r\n'), bytes);
    assert.ok(bytes.endsWith('>3\r\n$7\r\nmessage\r\n$3\r\nraw\r\n$7\r\npayload\r\n'), bytes);
  });

  void it('a message published behind a write is delivered only once that write can be read', async () => {
    const [, listener] = await pair();
    const [, writer] = await pair();
    const [, reader] = await pair();
    await exchange(listener, [['SUBSCRIBE', 'written'], 1]);
    const ROUNDS = 40;
    // Each SET and the PUBLISH announcing it in one pipeline: the PUBLISH runs before the SET
    // commits. A large value in each round makes the commits slow enough for an early message
    // to be read before its write.
    const pad = Buffer.alloc(4 * 1024 * 1024, 0x70);
    const pipeline: Arg[][] = [];
    for (let i = 1; i <= ROUNDS; i++) {
      pipeline.push(['SET', `pad${i % 4}`, pad], ['SET', 'counter', i], ['PUBLISH', 'written', i]);
    }
    const sent = writer.pipeline(pipeline);
    for (let i = 1; i <= ROUNDS; i++) {
      const message = (await nextWithin(listener, `announcement ${i}`)) as Reply[];
      assert.deepEqual(message, ['message', 'written', String(i)]);
      const value = Number(await reader.call('GET', 'counter'));
      assert.ok(value >= i, `announced ${i}, read ${value}`);
    }
    const replies = await sent;
    assert.equal(replies.filter((reply) => reply === 1).length, ROUNDS);
  });

  void it("a Redis primary's PUBLISH reaches Doppel's listeners after the writes before it", async () => {
    const replica = await DoppelProcess.start();
    try {
      const port = Number(replica.respAddress?.split(':').at(-1));
      const control = await RespClient.open(port, replica.adminUser, replica.adminPassword);
      const listener = await RespClient.open(port, replica.adminUser, replica.adminPassword);
      const reader = await RespClient.open(port, replica.adminUser, replica.adminPassword);
      opened.push(control, listener, reader);
      assert.equal(await control.call('CONFIG', 'SET', 'masterauth', doppel.adminPassword), 'OK');
      assert.equal(await control.call('REPLICAOF', '127.0.0.1', redis.port), 'OK');
      await waitFor(
        'the link to come up',
        async () => field(await control.call('INFO', 'replication'), 'master_link_status') === 'up',
      );
      await exchange(listener, [['SUBSCRIBE', 'from-redis'], 1]);
      const [primary] = await pair();
      for (let i = 1; i <= 50; i++) {
        assert.equal(await primary.call('SET', 'announced', i), 'OK');
        // Redis counts its own listeners only: none.
        assert.equal(await primary.call('PUBLISH', 'from-redis', i), 0);
        const message = await nextWithin(listener, `message ${i} from the primary`);
        assert.deepEqual(message, ['message', 'from-redis', String(i)]);
        assert.equal(await reader.call('GET', 'announced'), String(i));
      }
      const status = (await (
        await fetch(`${replica.url}/_doppel/replications`, {
          headers: {
            authorization: `Basic ${Buffer.from(`${replica.adminUser}:${replica.adminPassword}`).toString('base64')}`,
          },
        })
      ).json()) as { replications: { counters: { command_errors: number } }[] };
      assert.equal(status.replications[0]?.counters.command_errors, 0);
      assert.equal(await control.call('REPLICAOF', 'NO', 'ONE'), 'OK');
    } finally {
      await replica.stop();
    }
  });

  void it('a listener that stops reading is disconnected once 32 MB of messages wait for it', async () => {
    const socket = connect(doppelPort, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.on('error', () => undefined);
    let confirmed = '';
    const onData = (chunk: Buffer): void => {
      confirmed += chunk.toString('latin1');
      if (confirmed.includes('slow')) {
        socket.off('data', onData);
        // From here on nothing is read: the server's output for this client only grows.
        socket.pause();
      }
    };
    socket.on('data', onData);
    socket.write(encodeCommand(['AUTH', doppel.adminPassword]));
    socket.write(encodeCommand(['SUBSCRIBE', 'slow']));
    await waitFor('the subscription', () => Promise.resolve(confirmed.includes('slow')));
    const [, publisher] = await pair();
    const payload = Buffer.alloc(1024 * 1024, 0x61);
    // PUBLISH answers how many listeners got the message: 0 once the listener is gone.
    let delivered = 0;
    for (let i = 0; i < 80; i++) {
      const receivers = Number(await publisher.call('PUBLISH', 'slow', payload));
      if (receivers === 0) break;
      delivered += receivers;
    }
    socket.destroy();
    assert.ok(delivered >= 32 && delivered < 80, `messages delivered before the disconnect: ${delivered}`);
    assert.equal(await publisher.call('PUBSUB', 'NUMSUB', 'slow').then((reply) => (reply as Reply[])[1]), 0);
    await waitFor('the log line', () =>
      Promise.resolve(doppel.output.includes('its unsent Pub/Sub messages exceeded 32 MB')),
    );
  });
});
