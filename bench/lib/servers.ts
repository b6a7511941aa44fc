/**
 * Child servers for the benches: a Doppel node (from dist/, fresh data dir)
 * and pouchdb-server in memory. Every child and temp dir is registered so
 * that `cleanupAll()` (and the exit hooks of `installCleanupHooks()`) remove
 * them, also after an error or a Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { HttpClient } from './http-client.js';
import { freePort } from '../../test/support/free-port.js';

export { freePort };

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface RunningServer {
  readonly name: string;
  readonly client: HttpClient;
  /** The server's URL with its admin credentials (when it has an admin). */
  readonly authUrl: string;
  readonly pid: number;
  /** Stops the child (gracefully first) and removes its temp dir. */
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();

export function say(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** A temp dir whose path has no dot (LMDB treats a path with an extension as a file). */
function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** Kills every child still running and removes every temp dir (synchronous: safe in an exit hook). */
export function cleanupSync(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

export function installCleanupHooks(): void {
  process.once('exit', cleanupSync);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      say(`${signal}: stopping children and removing temp dirs`);
      cleanupSync();
      process.exit(130);
    });
  }
}

/** Sends SIGTERM, waits up to `graceMs` for the exit, then SIGKILL. */
async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
  children.delete(child);
}

function prefixLines(
  stream: NodeJS.ReadableStream,
  prefix: string,
  onLine?: (line: string) => boolean,
): void {
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  lines.on('line', (line) => {
    if (onLine?.(line) === true) return;
    process.stderr.write(`${prefix} ${line}\n`);
  });
}

function exitedEarly(child: ChildProcess, what: string): Promise<never> {
  return new Promise((_resolve, reject) => {
    child.once('exit', (code, signal) =>
      reject(new Error(`${what} exited before it was ready (code ${code}, signal ${signal})`)),
    );
  });
}

function timeout(ms: number, what: string): { promise: Promise<never>; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} not ready after ${ms} ms`)), ms);
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

export interface DoppelOptions {
  /** Extra `node` flags, e.g. `--cpu-prof --cpu-prof-dir=...`. */
  readonly nodeArgs?: readonly string[];
  /** Extra `doppel serve` flags. */
  readonly serveArgs?: readonly string[];
}

/**
 * Starts `node bin/doppel serve` on a fresh temp data dir, a random admin
 * password, port 0; waits for its `listening` log line.
 */
export async function startDoppel(options: DoppelOptions = {}): Promise<RunningServer> {
  if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'))) {
    throw new Error('dist/ is missing: run `npm run build` first');
  }
  const dir = makeTempDir('doppel-bench');
  const password = randomBytes(16).toString('hex');
  const args = [
    ...(options.nodeArgs ?? []),
    join(REPO_ROOT, 'bin', 'doppel'),
    'serve',
    '--data-dir',
    join(dir, 'data'),
    '--host',
    '127.0.0.1',
    '--http-port',
    '0',
    '--resp-port',
    '0',
    // Info only to read the `listening` line; request logging is off, so steady-state output stays quiet.
    '--log-level',
    'info',
    ...(options.serveArgs ?? []),
  ];
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, DOPPEL_ADMIN_USER: 'admin', DOPPEL_ADMIN_PASSWORD: password },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  prefixLines(child.stderr, '[doppel:stderr]');
  const listening = new Promise<string>((resolve) => {
    prefixLines(child.stdout, '[doppel]', (line) => {
      let record: { msg?: unknown; http?: unknown; level?: unknown };
      try {
        record = JSON.parse(line) as typeof record;
      } catch {
        return false;
      }
      if (record.msg === 'listening' && typeof record.http === 'string') {
        resolve(record.http);
        return true;
      }
      // Keep warnings and errors visible; drop the info chatter.
      return typeof record.level === 'number' && record.level < 40;
    });
  });
  const limit = timeout(60_000, 'doppel');
  let url: string;
  try {
    url = await Promise.race([listening, exitedEarly(child, 'doppel'), limit.promise]);
  } finally {
    limit.cancel();
  }
  const client = new HttpClient(url, { user: 'admin', password });
  const auth = new URL(url);
  auth.username = 'admin';
  auth.password = password;
  return {
    name: 'doppel',
    client,
    authUrl: auth.toString().replace(/\/$/, ''),
    pid: child.pid!,
    async stop() {
      client.close();
      // Graceful: Doppel flushes LMDB and, under --cpu-prof, writes its profile on exit.
      await stopChild(child, 30_000);
      removeTempDir(dir);
    },
  };
}

/** Starts pouchdb-server in memory (`-m`) on a free port; waits until it answers HTTP. */
export async function startPouchdbServer(): Promise<RunningServer> {
  const bin = join(REPO_ROOT, 'node_modules', 'pouchdb-server', 'bin', 'pouchdb-server');
  if (!existsSync(bin)) throw new Error('pouchdb-server is not installed (npm install)');
  const dir = makeTempDir('pouchdb-bench');
  const port = await freePort();
  const args = [
    bin,
    '-m',
    '-n',
    '-o',
    '127.0.0.1',
    '-p',
    String(port),
    '--dir',
    dir,
    '--config',
    join(dir, 'config.json'),
  ];
  // cwd is the temp dir too: pouchdb-server writes log.txt next to its config.
  const child = spawn(process.execPath, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  prefixLines(child.stdout, '[pouchdb-server]');
  prefixLines(child.stderr, '[pouchdb-server:stderr]');
  const client = new HttpClient(`http://127.0.0.1:${port}`, undefined);
  let waiting = true;
  const ready = (async (): Promise<void> => {
    while (waiting) {
      try {
        const res = await client.request('GET', '/');
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  const limit = timeout(60_000, 'pouchdb-server');
  try {
    await Promise.race([ready, exitedEarly(child, 'pouchdb-server'), limit.promise]);
  } finally {
    waiting = false;
    limit.cancel();
  }
  return {
    name: 'pouchdb-server',
    client,
    authUrl: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    async stop() {
      client.close();
      await stopChild(child, 5_000);
      removeTempDir(dir);
    },
  };
}

/** Starts `null-server.ts` (the client-ceiling stand-in) under tsx. */
export async function startNullServer(): Promise<RunningServer> {
  const script = join(REPO_ROOT, 'bench', 'lib', 'null-server.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  prefixLines(child.stderr, '[null-server:stderr]');
  const listening = new Promise<number>((resolve) => {
    prefixLines(child.stdout, '[null-server]', (line) => {
      const match = /^\{"port":(\d+)\}$/.exec(line);
      if (match === null) return false;
      resolve(Number(match[1]));
      return true;
    });
  });
  const limit = timeout(60_000, 'null-server');
  let port: number;
  try {
    port = await Promise.race([listening, exitedEarly(child, 'null-server'), limit.promise]);
  } finally {
    limit.cancel();
  }
  const client = new HttpClient(`http://127.0.0.1:${port}`, undefined);
  return {
    name: 'null-server',
    client,
    authUrl: `http://127.0.0.1:${port}`,
    pid: child.pid ?? 0,
    async stop() {
      client.close();
      await stopChild(child, 5_000);
    },
  };
}
