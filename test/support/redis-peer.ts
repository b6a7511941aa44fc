/**
 * A real redis-server for interop tests and benches: temp directory, a free
 * port on 127.0.0.1, no persistence unless asked, killed when the test
 * process exits. A missing binary is an error that says how to install it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeTempDir, removeTempDir } from './doppel-process.js';
import { freePort } from './free-port.js';
import { RespClient, RespError } from './resp-client.js';

export const REDIS_INSTALL_HINT = 'apt-get install redis-server redis-tools';

const live = new Set<ChildProcess>();
let hooked = false;

/** The path of a Debian redis binary (`redis-server`, `redis-cli`); throws the install hint when missing. */
export function redisBinary(name: 'redis-server' | 'redis-cli'): string {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const path = found.stdout.trim();
  if (found.status !== 0 || path === '') {
    throw new Error(`${name} is not installed; these tests need a real Redis 7: ${REDIS_INSTALL_HINT}`);
  }
  return path;
}

export class RedisPeer {
  readonly port: number;
  readonly dir: string;
  readonly #child: ChildProcess;
  #log = '';

  private constructor(port: number, dir: string, child: ChildProcess) {
    this.port = port;
    this.dir = dir;
    this.#child = child;
    child.stdout?.setEncoding('utf8').on('data', (text: string) => {
      this.#log = (this.#log + text).slice(-64 * 1024);
    });
  }

  /** Starts redis-server with `args` added to a no-persistence default, and waits until it answers PING. */
  static async start(args: readonly string[] = []): Promise<RedisPeer> {
    const binary = redisBinary('redis-server');
    if (!hooked) {
      hooked = true;
      process.on('exit', () => {
        for (const child of live) child.kill('SIGKILL');
      });
    }
    const dir = makeTempDir('doppel-redis-');
    const port = await freePort();
    const child = spawn(
      binary,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'no',
        ...args,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    live.add(child);
    child.once('exit', () => live.delete(child));
    const peer = new RedisPeer(port, dir, child);
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        const client = await RespClient.connect(port);
        // With `--requirepass` PING answers NOAUTH: listening all the same.
        const pong = await client.call('PING').catch((err: unknown) => err);
        client.close();
        if (pong === 'PONG' || (pong instanceof RespError && pong.message.startsWith('NOAUTH'))) return peer;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline || child.exitCode !== null) {
        child.kill('SIGKILL');
        throw new Error(`redis-server did not start on port ${port}:\n${peer.#log}`);
      }
      await sleep(50);
    }
  }

  /** A new connection (RESP2), closed by the caller. */
  client(options: { buffers?: boolean } = {}): Promise<RespClient> {
    return RespClient.connect(this.port, options);
  }

  /** One command on a short-lived connection. */
  async call(...args: (string | number | Buffer)[]): Promise<unknown> {
    const client = await this.client();
    try {
      return await client.call(...args);
    } finally {
      client.close();
    }
  }

  /** `INFO <section>` as a field map. */
  async info(section: string): Promise<Record<string, string>> {
    const text = String(await this.call('INFO', section));
    const out: Record<string, string> = {};
    for (const line of text.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0 && !line.startsWith('#')) out[line.slice(0, colon)] = line.slice(colon + 1);
    }
    return out;
  }

  get log(): string {
    return this.#log;
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      const exited = new Promise((resolve) => this.#child.once('exit', resolve));
      this.#child.kill('SIGKILL');
      await exited;
    }
    await removeTempDir(this.dir);
  }
}
