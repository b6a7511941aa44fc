/**
 * The TCP fault proxy of test/support against a local echo server: each mode
 * (pass, latency, reset, blackhole, bandwidth) switched at run time, and close().
 */
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FaultProxy } from './support/fault-proxy.js';

/** A client socket to the proxy that collects what it receives. */
class Peer {
  received = Buffer.alloc(0);
  error: NodeJS.ErrnoException | undefined;
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => (this.received = Buffer.concat([this.received, chunk])));
    socket.on('error', (err: NodeJS.ErrnoException) => (this.error = err));
    socket.on('close', () => (this.closed = true));
  }

  static open(port: number): Promise<Peer> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host: '127.0.0.1' }, () => resolve(new Peer(socket)));
      socket.once('error', reject);
    });
  }

  /** Resolves once `bytes` bytes have arrived; rejects after `ms`. */
  async waitFor(bytes: number, ms = 2000): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.received.length < bytes) {
      if (Date.now() > deadline) throw new Error(`got ${this.received.length} of ${bytes} bytes in ${ms} ms`);
      await sleep(5);
    }
  }

  async waitClosed(ms = 2000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('socket did not close');
      await sleep(5);
    }
  }
}

void describe('fault proxy', () => {
  let echo: Server;
  let proxy: FaultProxy;
  const echoSockets = new Set<Socket>();

  before(async () => {
    echo = createServer((socket) => {
      echoSockets.add(socket);
      socket.on('close', () => echoSockets.delete(socket));
      socket.on('error', () => undefined);
      socket.pipe(socket);
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', () => resolve()));
    const address = echo.address();
    assert.ok(address !== null && typeof address === 'object');
    proxy = await FaultProxy.start(address.port);
  });

  after(async () => {
    await proxy.close();
    for (const s of echoSockets) s.destroy();
    await new Promise<void>((resolve) => echo.close(() => resolve()));
  });

  void it('passes bytes both ways', async () => {
    proxy.pass();
    const peer = await Peer.open(proxy.port);
    peer.socket.write('hello');
    await peer.waitFor(5);
    assert.equal(peer.received.toString(), 'hello');
    peer.socket.destroy();
  });

  void it('delays each direction by the latency', async () => {
    proxy.latency(100);
    const peer = await Peer.open(proxy.port);
    const t0 = Date.now();
    peer.socket.write('ping');
    await peer.waitFor(4);
    const rtt = Date.now() - t0;
    assert.ok(rtt >= 190, `round trip ${rtt} ms`);
    assert.ok(rtt < 1000, `round trip ${rtt} ms`);
    proxy.pass();
    peer.socket.destroy();
  });

  void it('resets open connections and refuses new ones while in reset mode', async () => {
    proxy.pass();
    const peer = await Peer.open(proxy.port);
    peer.socket.write('x');
    await peer.waitFor(1);
    proxy.reset();
    await peer.waitClosed();
    assert.equal(peer.error?.code, 'ECONNRESET');
    // A new connection is reset at once: while connecting, or right after.
    let lateError: NodeJS.ErrnoException | undefined;
    try {
      const late = await Peer.open(proxy.port);
      late.socket.write('y');
      await late.waitClosed();
      assert.equal(late.received.length, 0);
      lateError = late.error;
    } catch (err) {
      lateError = err as NodeJS.ErrnoException;
    }
    assert.equal(lateError?.code, 'ECONNRESET');
    proxy.pass();
    const again = await Peer.open(proxy.port);
    again.socket.write('z');
    await again.waitFor(1);
    again.socket.destroy();
  });

  void it('blackholes: accepts but forwards nothing; its connections stay dead after pass()', async () => {
    proxy.pass();
    const before = await Peer.open(proxy.port);
    proxy.blackhole();
    const during = await Peer.open(proxy.port);
    before.socket.write('a');
    during.socket.write('b');
    await sleep(300);
    proxy.pass();
    await sleep(200);
    assert.equal(before.received.length, 0);
    assert.equal(during.received.length, 0);
    assert.equal(before.closed || during.closed, false);
    const fresh = await Peer.open(proxy.port);
    fresh.socket.write('c');
    await fresh.waitFor(1);
    assert.equal(fresh.received.toString(), 'c');
    for (const peer of [before, during, fresh]) peer.socket.destroy();
  });

  void it('caps the bandwidth', async () => {
    proxy.pass();
    proxy.bandwidth(200_000);
    const peer = await Peer.open(proxy.port);
    const payload = Buffer.alloc(60_000, 7);
    const t0 = Date.now();
    peer.socket.write(payload);
    await peer.waitFor(payload.length, 5000);
    const ms = Date.now() - t0;
    // 60 kB up and 60 kB down, each at 200 kB/s: at least ~300 ms (the two directions overlap).
    assert.ok(ms >= 250, `took ${ms} ms`);
    assert.ok(ms < 2000, `took ${ms} ms`);
    assert.deepEqual(peer.received, payload);
    proxy.bandwidth(null);
    peer.socket.destroy();
  });

  void it('close() drops open connections and stops listening', async () => {
    const other = await FaultProxy.start(proxy.targetPort);
    const peer = await Peer.open(other.port);
    peer.socket.write('q');
    await peer.waitFor(1);
    await other.close();
    await peer.waitClosed();
    await assert.rejects(Peer.open(other.port));
  });
});
