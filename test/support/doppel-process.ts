/**
 * Runs a Doppel node as a real child process (`node bin/doppel serve`) for
 * end-to-end tests, and a small JSON-over-HTTP helper.
 *
 * Every node binds 127.0.0.1 on a port the kernel picks, on a fresh data
 * directory under os.tmpdir() (removed by `stop()`), or on a given one (kept,
 * so a test can restart a node on it). Children never outlive the test
 * process: they are killed on exit or on SIGINT/SIGTERM of the test process,
 * and each child also watches its parent and exits when it is gone (for a
 * test runner that was itself SIGKILLed).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The CLI the tests start; `DOPPEL_TEST_BIN` points at another build (e.g. a checkout elsewhere). */
export const DOPPEL_BIN = process.env['DOPPEL_TEST_BIN'] ?? join(REPO_ROOT, 'bin', 'doppel');

const OUTPUT_LIMIT = 256 * 1024;
const DEFAULT_START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;

// ---- leak protection -------------------------------------------------------

const liveChildren = new Set<ChildProcess>();
const ownedDirs = new Set<string>();
let hooksInstalled = false;

function cleanupSync(): void {
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  liveChildren.clear();
  for (const dir of ownedDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
  ownedDirs.clear();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', cleanupSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanupSync();
      process.kill(process.pid, signal);
    });
  }
}

/**
 * Loaded into the child with `--import`: exits the node once its parent (the
 * test process) is gone, so a test runner killed with SIGKILL leaks nothing;
 * the temp directory named by DOPPEL_TEST_ORPHAN_CLEANUP is removed then too.
 */
const PARENT_WATCHDOG =
  'data:text/javascript,' +
  encodeURIComponent(
    "import { rmSync } from 'node:fs';" +
      'const parent = process.ppid;' +
      'const dir = process.env.DOPPEL_TEST_ORPHAN_CLEANUP;' +
      'setInterval(() => {' +
      '  if (process.ppid === parent) return;' +
      '  if (dir) { try { rmSync(dir, { recursive: true, force: true }); } catch {} }' +
      '  process.exit(70);' +
      '}, 500).unref();',
  );

/** A fresh directory under os.tmpdir(), removed when the test process exits (or by `removeTempDir`). */
export function makeTempDir(prefix = 'doppel-test-'): string {
  installHooks();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  ownedDirs.add(dir);
  return dir;
}

export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  ownedDirs.delete(dir);
}

// ---- the node --------------------------------------------------------------

export interface DoppelStartOptions {
  /** Reuse this data directory (it is not removed by `stop()`); default: a fresh temp dir. */
  readonly dataDir?: string;
  /** Extra CLI flags, e.g. `['--cors-origins', 'http://example.test']`. */
  readonly args?: readonly string[];
  /** Extra environment variables for the child. */
  readonly env?: Readonly<Record<string, string>>;
  readonly adminUser?: string;
  readonly adminPassword?: string;
  readonly startTimeoutMs?: number;
}

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export class DoppelProcess implements AsyncDisposable {
  readonly url: string;
  readonly port: number;
  /** `host:port` of the Redis-protocol door, when the node logged one. */
  readonly respAddress: string | undefined;
  readonly dataDir: string;
  readonly adminUser: string;
  readonly adminPassword: string;
  readonly #child: ChildProcess;
  readonly #ownsDataDir: boolean;
  readonly #output: { text: string };
  readonly #exited: Promise<ExitStatus>;
  #exitStatus: ExitStatus | undefined;

  private constructor(init: {
    url: string;
    respAddress: string | undefined;
    dataDir: string;
    ownsDataDir: boolean;
    adminUser: string;
    adminPassword: string;
    child: ChildProcess;
    output: { text: string };
    exited: Promise<ExitStatus>;
  }) {
    this.url = init.url;
    this.port = Number(new URL(init.url).port);
    this.respAddress = init.respAddress;
    this.dataDir = init.dataDir;
    this.#ownsDataDir = init.ownsDataDir;
    this.adminUser = init.adminUser;
    this.adminPassword = init.adminPassword;
    this.#child = init.child;
    this.#output = init.output;
    this.#exited = init.exited.then((status) => {
      this.#exitStatus = status;
      return status;
    });
  }

  /** Starts a node and resolves once it logged `listening`; rejects with its output otherwise. */
  static async start(options: DoppelStartOptions = {}): Promise<DoppelProcess> {
    installHooks();
    const ownsDataDir = options.dataDir === undefined;
    const dataDir = options.dataDir ?? makeTempDir('doppel-node-');
    const adminUser = options.adminUser ?? 'admin';
    const adminPassword = options.adminPassword ?? `pw-${randomBytes(6).toString('hex')}`;
    const env: Record<string, string> = {};
    for (const [name, value] of Object.entries(process.env)) {
      // Settings of the developer's shell must not leak into test nodes.
      if (value !== undefined && !name.startsWith('DOPPEL_')) env[name] = value;
    }
    Object.assign(env, { DOPPEL_ADMIN_USER: adminUser, DOPPEL_ADMIN_PASSWORD: adminPassword }, options.env);
    const tempRoot = [...ownedDirs].find((d) => dataDir === d || dataDir.startsWith(d + sep));
    if (tempRoot !== undefined) env['DOPPEL_TEST_ORPHAN_CLEANUP'] = tempRoot;
    const args = [
      `--import=${PARENT_WATCHDOG}`,
      DOPPEL_BIN,
      'serve',
      '--data-dir',
      dataDir,
      '--host',
      '127.0.0.1',
      '--http-port',
      '0',
      // Every door on a port the kernel picks, so nodes (and test files) run side by side.
      '--resp-port',
      '0',
      '--cluster-port',
      '0',
      '--log-level',
      'info',
      ...(options.args ?? []),
    ];
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    liveChildren.add(child);
    const output = { text: '' };
    const append = (chunk: string): void => {
      output.text += chunk;
      if (output.text.length > OUTPUT_LIMIT) output.text = output.text.slice(-OUTPUT_LIMIT);
    };
    const exited = new Promise<ExitStatus>((resolve) => {
      child.once('exit', (code, signal) => {
        liveChildren.delete(child);
        resolve({ code, signal });
      });
    });

    const timeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    let pending = '';
    let respAddress: string | undefined;
    const url = await new Promise<string>((resolve, reject) => {
      const fail = (why: string): void => {
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(
          new Error(
            `doppel did not start: ${why}\n--- command: node ${args.slice(1).join(' ')}\n--- output:\n${output.text}`,
          ),
        );
      };
      const timer = setTimeout(() => fail(`no "listening" line within ${timeoutMs} ms`), timeoutMs);
      child.stdout.setEncoding('utf8');
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', append);
      child.stdout.on('data', (chunk: string) => {
        append(chunk);
        pending += chunk;
        let newline: number;
        while ((newline = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, newline);
          pending = pending.slice(newline + 1);
          const fields = logFields(line);
          if (typeof fields?.['resp'] === 'string') respAddress = fields['resp'];
          const http = fields?.['msg'] === 'listening' ? fields['http'] : undefined;
          if (typeof http === 'string') {
            clearTimeout(timer);
            pending = '';
            resolve(http);
            return;
          }
        }
      });
      child.once('error', (err) => fail(`spawn failed: ${err.message}`));
      void exited.then(({ code, signal }) => fail(`exited (code ${code}, signal ${signal})`));
    });
    return new DoppelProcess({
      url,
      respAddress,
      dataDir,
      ownsDataDir,
      adminUser,
      adminPassword,
      child,
      output,
      exited,
    });
  }

  /** The node's URL with the admin's credentials, optionally of one database. */
  authUrl(db?: string): string {
    const { protocol, host } = new URL(this.url);
    const base = `${protocol}//${encodeURIComponent(this.adminUser)}:${encodeURIComponent(this.adminPassword)}@${host}`;
    return db === undefined ? base : `${base}/${encodeURIComponent(db)}`;
  }

  get adminAuthHeader(): string {
    return basicAuth(this.adminUser, this.adminPassword);
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Everything the node wrote to stdout and stderr so far (the last 256 KiB). */
  get output(): string {
    return this.#output.text;
  }

  get exitStatus(): ExitStatus | undefined {
    return this.#exitStatus;
  }

  /** Resolves when the process has exited. */
  get exited(): Promise<ExitStatus> {
    return this.#exited;
  }

  /** Sends `signal` (default SIGKILL, a crash) and waits for the process to exit. Keeps the data dir. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<ExitStatus> {
    if (this.#exitStatus === undefined) this.#child.kill(signal);
    return this.#exited;
  }

  /** Graceful stop (SIGTERM, SIGKILL after a grace period); removes the data dir if this node created it. */
  async stop(): Promise<ExitStatus> {
    let status = this.#exitStatus;
    if (status === undefined) {
      this.#child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), STOP_GRACE_MS);
      });
      status = await Promise.race([this.#exited, grace]);
      clearTimeout(timer);
      if (status === undefined) status = await this.kill('SIGKILL');
    }
    if (this.#ownsDataDir) await removeTempDir(this.dataDir);
    return status;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** `fetchJson` against this node, as the admin unless `auth` says otherwise (`null`: anonymous). */
  request<T = unknown>(path: string, init: FetchJsonInit = {}): Promise<JsonResponse<T>> {
    const auth = init.auth === undefined ? this.adminAuthHeader : init.auth;
    return fetchJson<T>(new URL(path, this.url).toString(), { ...init, auth });
  }
}

/** The fields of a JSON log line (pino), or undefined for other output. */
function logFields(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const parsed: unknown = JSON.parse(line);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

// ---- HTTP ------------------------------------------------------------------

export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

export interface FetchJsonInit {
  readonly method?: string;
  /** An object or array is sent as JSON; a string or Buffer as is. */
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  /** An `Authorization` header value; `null` sends none. */
  readonly auth?: string | null;
  readonly signal?: AbortSignal;
}

export interface JsonResponse<T> {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** The body parsed as JSON; undefined when it is empty or not JSON. */
  readonly json: T;
}

/** One HTTP request; the body is read in full and parsed as JSON when it is JSON. */
export async function fetchJson<T = unknown>(
  url: string,
  init: FetchJsonInit = {},
): Promise<JsonResponse<T>> {
  const headers: Record<string, string> = { accept: 'application/json', ...init.headers };
  if (init.auth !== undefined && init.auth !== null) headers['authorization'] = init.auth;
  let body: string | Buffer | undefined;
  if (typeof init.body === 'string' || Buffer.isBuffer(init.body)) body = init.body;
  else if (init.body !== undefined) {
    body = JSON.stringify(init.body);
    headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(url, {
    method: init.method ?? (body === undefined ? 'GET' : 'POST'),
    headers,
    ...(body === undefined ? {} : { body }),
    ...(init.signal === undefined ? {} : { signal: init.signal }),
  });
  const text = await response.text();
  let json: unknown;
  if (text.trim() !== '') {
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
  }
  return { status: response.status, headers: response.headers, text, json: json as T };
}
