/**
 * The TCP connection to a Redis primary, read in the three ways the protocol
 * needs: reply lines during the handshake, raw chunks of the snapshot, then a
 * push stream of the command bytes. Every received byte refreshes `lastIo`.
 */
import { connect, type Socket } from 'node:net';

export class LinkClosed extends Error {
  override readonly name = 'LinkClosed';
}

export class PrimaryConnection {
  readonly #socket: Socket;
  /** Received chunks not taken yet, in order (never concatenated as a whole: a snapshot can be large). */
  #chunks: Buffer[] = [];
  #waiter: (() => void) | null = null;
  #closed: Error | null = null;
  #onStream: ((chunk: Buffer) => boolean) | null = null;
  readonly closed: Promise<Error>;
  lastIo = Date.now();

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.lastIo = Date.now();
      if (this.#onStream !== null) {
        if (!this.#onStream(chunk)) socket.pause();
        return;
      }
      this.#chunks.push(chunk);
      this.#wake();
    });
    this.closed = new Promise((resolve) => {
      const close = (err?: Error): void => {
        if (this.#closed === null)
          this.#closed = new LinkClosed(err?.message ?? 'the primary closed the connection');
        this.#wake();
        resolve(this.#closed);
      };
      socket.on('error', close);
      socket.on('close', () => close());
    });
  }

  /** Connects within `timeoutMs`. */
  static open(host: string, port: number, timeoutMs: number): Promise<PrimaryConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new LinkClosed(`connecting to ${host}:${port} timed out`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        resolve(new PrimaryConnection(socket));
      });
      const onError = (err: Error): void => {
        clearTimeout(timer);
        reject(new LinkClosed(`cannot connect to ${host}:${port}: ${err.message}`));
      };
      socket.once('error', onError);
    });
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.();
  }

  async #more(): Promise<void> {
    if (this.#closed !== null) throw this.#closed;
    await new Promise<void>((resolve) => {
      this.#waiter = resolve;
    });
  }

  send(data: string | Buffer): void {
    if (this.#closed === null) this.#socket.write(data);
  }

  /** Sends a command as a RESP array of bulk strings. */
  command(...args: (string | number)[]): void {
    let out = `*${args.length}\r\n`;
    for (const arg of args) {
      const bytes = String(arg);
      out += `$${Buffer.byteLength(bytes)}\r\n${bytes}\r\n`;
    }
    this.send(out);
  }

  /** The next line without its `\r\n` (or bare `\n`: an empty keepalive line gives ''). */
  async line(maxBytes = 64 * 1024): Promise<string> {
    for (;;) {
      if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks)];
      const buffer = this.#chunks[0] ?? Buffer.alloc(0);
      const lf = buffer.indexOf(0x0a);
      if (lf >= 0) {
        const end = lf > 0 && buffer[lf - 1] === 0x0d ? lf - 1 : lf;
        const text = buffer.toString('latin1', 0, end);
        this.#chunks = lf + 1 < buffer.length ? [buffer.subarray(lf + 1)] : [];
        return text;
      }
      if (buffer.length > maxBytes) throw new LinkClosed('the primary sent an overlong line');
      await this.#more();
    }
  }

  /** The next reply line that is not an empty keepalive. */
  async reply(): Promise<string> {
    for (;;) {
      const line = await this.line();
      if (line !== '') return line;
    }
  }

  /** Whatever bytes are buffered (waiting for some); at most `max`. */
  async chunk(max: number): Promise<Buffer> {
    while (this.#chunks.length === 0) await this.#more();
    const first = this.#chunks[0];
    if (first.length <= max) {
      this.#chunks.shift();
      return first;
    }
    this.#chunks[0] = first.subarray(max);
    return first.subarray(0, max);
  }

  /**
   * From now on every received chunk (the buffered ones first) goes to `onChunk`; when it
   * returns false, reading stops until `resume()`.
   */
  stream(onChunk: (chunk: Buffer) => boolean): void {
    const rest = this.#chunks;
    this.#chunks = [];
    this.#onStream = onChunk;
    let reading = true;
    for (const chunk of rest) reading = onChunk(chunk);
    if (!reading) this.#socket.pause();
  }

  /** Stops reading (the primary's bytes wait in the socket) until `resume()`. */
  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }

  close(reason = 'closed by the replica'): void {
    if (this.#closed === null) this.#closed = new LinkClosed(reason);
    this.#socket.destroy();
    this.#wake();
  }
}
