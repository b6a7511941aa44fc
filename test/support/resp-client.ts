/**
 * A minimal RESP client over a raw TCP socket, for tests: sends commands
 * (alone, pipelined in one write, or as raw bytes) and decodes RESP2 and
 * RESP3 replies. Bulk strings decode to UTF-8 strings, or to Buffers with
 * `{ buffers: true }`.
 */
import { connect, type Socket } from 'node:net';

export class RespError extends Error {
  override readonly name = 'RespError';
}

/** A RESP3 map, kept as ordered pairs. */
export class RespMap {
  constructor(readonly entries: [Reply, Reply][]) {}
  get(key: string): Reply | undefined {
    return this.entries.find(([k]) => k === key)?.[1];
  }
  toObject(): Record<string, Reply> {
    return Object.fromEntries(
      this.entries.map(([k, v]) => [typeof k === 'string' ? k : JSON.stringify(k), v]),
    );
  }
}

/** A RESP3 set. */
export class RespSet {
  constructor(readonly items: Reply[]) {}
}

/** A RESP3 double (`,`), distinct from an integer. */
export class RespDouble {
  constructor(readonly value: number) {}
}

export type Reply =
  string | number | bigint | boolean | null | Buffer | RespError | RespMap | RespSet | RespDouble | Reply[];

class Incomplete extends Error {}

export type Arg = string | number | Buffer;

export function encodeCommand(args: readonly Arg[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = Buffer.isBuffer(arg) ? arg : Buffer.from(String(arg));
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

export class RespClient {
  readonly #socket: Socket;
  readonly #buffers: boolean;
  #input = Buffer.alloc(0);
  readonly #replies: Reply[] = [];
  readonly #waiters: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  #ended = false;
  readonly closed: Promise<void>;

  private constructor(socket: Socket, buffers: boolean) {
    this.#socket = socket;
    this.#buffers = buffers;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => {
      this.#input = Buffer.concat([this.#input, chunk]);
      this.#drain();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.#ended = true;
      for (const waiter of this.#waiters.splice(0)) waiter.reject(new Error('connection closed'));
    });
  }

  static connect(port: number, options: { host?: string; buffers?: boolean } = {}): Promise<RespClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host: options.host ?? '127.0.0.1' }, () => {
        socket.off('error', reject);
        resolve(new RespClient(socket, options.buffers ?? false));
      });
      socket.once('error', reject);
    });
  }

  /** Connects and authenticates with AUTH user password. */
  static async open(
    port: number,
    user: string,
    password: string,
    options: { buffers?: boolean } = {},
  ): Promise<RespClient> {
    const client = await RespClient.connect(port, options);
    const reply = await client.call('AUTH', user, password);
    if (reply !== 'OK') throw new Error(`AUTH failed: ${JSON.stringify(reply)}`);
    return client;
  }

  get ended(): boolean {
    return this.#ended;
  }

  writeRaw(data: string | Buffer): void {
    this.#socket.write(data);
  }

  /** The next reply (in order). */
  next(): Promise<Reply> {
    const ready = this.#replies.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.#ended) return Promise.reject(new Error('connection closed'));
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  call(...args: Arg[]): Promise<Reply> {
    this.#socket.write(encodeCommand(args));
    return this.next();
  }

  /** Sends every command in one write, then reads one reply each. */
  async pipeline(commands: readonly (readonly Arg[])[]): Promise<Reply[]> {
    this.#socket.write(Buffer.concat(commands.map(encodeCommand)));
    const out: Reply[] = [];
    for (let i = 0; i < commands.length; i++) out.push(await this.next());
    return out;
  }

  close(): void {
    this.#socket.destroy();
  }

  #drain(): void {
    for (;;) {
      let reply: Reply;
      let used: number;
      try {
        [reply, used] = this.#parse(0);
      } catch (err) {
        if (err instanceof Incomplete) return;
        throw err;
      }
      this.#input = this.#input.subarray(used);
      const waiter = this.#waiters.shift();
      if (waiter !== undefined) waiter.resolve(reply);
      else this.#replies.push(reply);
    }
  }

  #line(at: number): [string, number] {
    const end = this.#input.indexOf('\r\n', at);
    if (end < 0) throw new Incomplete();
    return [this.#input.toString('utf8', at + 1, end), end + 2];
  }

  #parse(at: number): [Reply, number] {
    if (at >= this.#input.length) throw new Incomplete();
    const type = String.fromCharCode(this.#input[at]);
    const [line, next] = this.#line(at);
    switch (type) {
      case '+':
        return [line, next];
      case '-':
        return [new RespError(line), next];
      case ':': {
        const n = BigInt(line);
        return [Number.isSafeInteger(Number(n)) ? Number(n) : n, next];
      }
      case '_':
        return [null, next];
      case '#':
        return [line === 't', next];
      case ',':
        return [new RespDouble(line === 'inf' ? Infinity : line === '-inf' ? -Infinity : Number(line)), next];
      case '(':
        return [BigInt(line), next];
      case '$':
      case '=':
      case '!': {
        const length = Number(line);
        if (length < 0) return [null, next];
        if (this.#input.length < next + length + 2) throw new Incomplete();
        let bytes = this.#input.subarray(next, next + length);
        if (type === '=') bytes = bytes.subarray(4);
        const value = this.#buffers && type === '$' ? Buffer.from(bytes) : bytes.toString('utf8');
        return [type === '!' ? new RespError(String(value)) : value, next + length + 2];
      }
      case '*':
      case '~':
      case '>':
      case '%': {
        const count = Number(line);
        if (count < 0) return [null, next];
        const items: Reply[] = [];
        let pos = next;
        const n = type === '%' ? count * 2 : count;
        for (let i = 0; i < n; i++) {
          const [item, after] = this.#parse(pos);
          items.push(item);
          pos = after;
        }
        if (type === '~') return [new RespSet(items), pos];
        if (type === '%') {
          const entries: [Reply, Reply][] = [];
          for (let i = 0; i < items.length; i += 2) entries.push([items[i]!, items[i + 1]!]);
          return [new RespMap(entries), pos];
        }
        return [items, pos];
      }
      default:
        throw new Error(`unexpected reply type ${JSON.stringify(type)}`);
    }
  }
}
