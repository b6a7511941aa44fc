/**
 * A TCP proxy for fault tests: listens on 127.0.0.1 (a port the kernel
 * picks) and forwards every connection to a target port, with faults that
 * can be switched while connections are open:
 *
 * - `pass()`: bytes flow as they come;
 * - `latency(ms)`: every chunk, in each direction, is delayed by `ms`
 *   (order kept), so a round trip takes at least `2 * ms`;
 * - `reset()`: every open connection is reset (RST) on both sides, and new
 *   ones are reset as soon as they are accepted;
 * - `blackhole()`: connections are accepted, but nothing is forwarded in
 *   either direction, and nothing is closed. The connections open during a
 *   blackhole stay dead after `pass()` (as when a NAT or a load balancer
 *   silently drops its state): only new connections flow again, so a client
 *   must notice the silence itself;
 * - `bandwidth(bytesPerSecond)`: each direction is one link of that
 *   capacity, shared by all connections (`null` lifts the cap). It combines
 *   with `latency`; the other modes replace each other.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export type FaultMode =
  | { readonly kind: 'pass' }
  | { readonly kind: 'latency'; readonly ms: number }
  | { readonly kind: 'reset' }
  | { readonly kind: 'blackhole' };

/** Bytes queued in one direction of one connection before its reading side is paused. */
const HIGH_WATER = 1024 * 1024;

interface Queued {
  readonly chunk: Buffer;
  readonly dueAt: number;
}

/** One direction of one connection: `from`'s bytes, delayed and rate-limited, written to `to`. */
class Pipe {
  readonly #queue: Queued[] = [];
  #queuedBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  #ended = false;
  #waitingForDrain = false;

  constructor(
    readonly from: Socket,
    readonly to: Socket,
    readonly link: Link,
    readonly proxy: FaultProxy,
    readonly connection: { dead: boolean },
  ) {
    from.on('data', (chunk: Buffer) => this.#receive(chunk));
    from.on('end', () => {
      this.#ended = true;
      this.pump();
    });
  }

  #receive(chunk: Buffer): void {
    const now = Date.now();
    const mode = this.proxy.mode;
    let dueAt = now + (mode.kind === 'latency' ? mode.ms : 0);
    const rate = this.proxy.bytesPerSecond;
    if (rate !== null) {
      // The link sends one chunk after the other at `rate`: this one is out when its last byte is.
      const start = Math.max(dueAt, this.link.freeAt);
      this.link.freeAt = start + (chunk.length / rate) * 1000;
      dueAt = this.link.freeAt;
    }
    this.#queue.push({ chunk, dueAt });
    this.#queuedBytes += chunk.length;
    if (this.#queuedBytes > HIGH_WATER) this.from.pause();
    this.pump();
  }

  /** Writes every chunk that is due (unless blackholed), then sleeps until the next one is. */
  pump(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.connection.dead || this.to.destroyed || this.#waitingForDrain) return;
    const now = Date.now();
    while (this.#queue.length > 0) {
      const head = this.#queue[0];
      if (head === undefined) break;
      if (head.dueAt > now) {
        this.#timer = setTimeout(() => this.pump(), head.dueAt - now);
        return;
      }
      this.#queue.shift();
      this.#queuedBytes -= head.chunk.length;
      if (!this.to.write(head.chunk)) {
        this.#waitingForDrain = true;
        this.to.once('drain', () => {
          this.#waitingForDrain = false;
          this.pump();
        });
        return;
      }
    }
    if (this.#queuedBytes <= HIGH_WATER && this.from.isPaused()) this.from.resume();
    if (this.#ended && this.#queue.length === 0) this.to.end();
  }

  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** The shared capacity of one direction: when it is next free (ms since the epoch). */
interface Link {
  freeAt: number;
}

interface Connection {
  readonly client: Socket;
  readonly upstream: Socket;
  /** Blackholed: forwards nothing, ever again. */
  dead: boolean;
}

export class FaultProxy {
  readonly targetPort: number;
  readonly targetHost: string;
  #mode: FaultMode = { kind: 'pass' };
  #bytesPerSecond: number | null = null;
  readonly #server: Server;
  readonly #connections = new Set<Connection>();
  readonly #links = { up: { freeAt: 0 }, down: { freeAt: 0 } };
  #port = 0;
  /** Connections accepted so far (reset ones included). */
  accepted = 0;

  private constructor(targetPort: number, targetHost: string) {
    this.targetPort = targetPort;
    this.targetHost = targetHost;
    this.#server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (socket) =>
      this.#accept(socket),
    );
  }

  /** Starts a proxy to `targetHost:targetPort`, in `pass` mode. */
  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<FaultProxy> {
    const proxy = new FaultProxy(targetPort, targetHost);
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once('error', reject);
      proxy.#server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = proxy.#server.address();
    if (address === null || typeof address === 'string') throw new Error('fault proxy: no port');
    proxy.#port = address.port;
    return proxy;
  }

  /** The port it listens on (127.0.0.1); kept after close(). */
  get port(): number {
    return this.#port;
  }

  /** `http://127.0.0.1:<port>`, for HTTP clients. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get mode(): FaultMode {
    return this.#mode;
  }

  get bytesPerSecond(): number | null {
    return this.#bytesPerSecond;
  }

  /** Open connections right now. */
  get connections(): number {
    return this.#connections.size;
  }

  pass(): void {
    this.#setMode({ kind: 'pass' });
  }

  latency(ms: number): void {
    if (!(ms >= 0)) throw new RangeError('latency must be >= 0 ms');
    this.#setMode({ kind: 'latency', ms });
  }

  reset(): void {
    this.#setMode({ kind: 'reset' });
    for (const connection of [...this.#connections]) this.#resetConnection(connection);
  }

  blackhole(): void {
    this.#mode = { kind: 'blackhole' };
    for (const connection of this.#connections) this.#kill(connection);
  }

  /** Caps each direction at `bytesPerSecond` (shared by all connections); null lifts the cap. */
  bandwidth(bytesPerSecond: number | null): void {
    if (bytesPerSecond !== null && !(bytesPerSecond > 0)) throw new RangeError('bandwidth must be > 0');
    this.#bytesPerSecond = bytesPerSecond;
  }

  #setMode(mode: FaultMode): void {
    this.#mode = mode;
  }

  /** Silences a connection for good: it reads nothing more and forwards nothing held. */
  #kill(connection: Connection): void {
    connection.dead = true;
    connection.client.pause();
    connection.upstream.pause();
  }

  #accept(client: Socket): void {
    this.accepted++;
    if (this.#mode.kind === 'reset') {
      client.resetAndDestroy();
      return;
    }
    client.setNoDelay(true);
    const upstream = connect({
      port: this.targetPort,
      host: this.targetHost,
      noDelay: true,
      allowHalfOpen: true,
    });
    const connection: Connection = { client, upstream, dead: false };
    const pipes = [
      new Pipe(client, upstream, this.#links.up, this, connection),
      new Pipe(upstream, client, this.#links.down, this, connection),
    ];
    this.#connections.add(connection);
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      this.#connections.delete(connection);
      for (const pipe of pipes) pipe.stop();
      // One side failed or closed: the other goes the same way (an RST if it was an error).
      if (!client.destroyed) client.destroy();
      if (!upstream.destroyed) upstream.destroy();
    };
    client.on('error', () => {
      if (!upstream.destroyed) upstream.resetAndDestroy();
      close();
    });
    upstream.on('error', () => {
      if (!client.destroyed) client.resetAndDestroy();
      close();
    });
    client.on('close', close);
    upstream.on('close', close);
    if (this.#mode.kind === 'blackhole') this.#kill(connection);
    else client.resume();
  }

  #resetConnection(connection: Connection): void {
    const { client, upstream } = connection;
    if (!client.destroyed) client.resetAndDestroy();
    if (!upstream.destroyed) upstream.resetAndDestroy();
  }

  /** Stops listening and destroys every open connection. */
  async close(): Promise<void> {
    for (const connection of [...this.#connections]) this.#resetConnection(connection);
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
