/**
 * A real InfluxDB 1.x (`influxd`, Debian's package `influxdb`) as a child process for
 * interop tests and benches: 127.0.0.1 on free ports, a temporary config and data
 * directory, optional authentication, restartable on the same data. A missing
 * `influxd` fails with how to install it (never a silent skip).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeTempDir, removeTempDir } from './doppel-process.js';
import { freePort } from './free-port.js';

const INFLUXD = process.env['INFLUXD_BIN'] ?? 'influxd';
const START_TIMEOUT_MS = 30_000;

export function requireInfluxd(): void {
  const probe = spawnSync(INFLUXD, ['version'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) {
    throw new Error(
      `InfluxDB 1.x ("${INFLUXD}") is not installed. Install Debian's package: ` +
        `"apt-get update && apt-get install -y influxdb" (or set INFLUXD_BIN to an influxd binary).`,
    );
  }
}

export interface InfluxOptions {
  /** Turn on authentication, with this admin created at start. */
  readonly admin?: { readonly user: string; readonly password: string };
}

export class InfluxProcess {
  readonly dir: string;
  readonly url: string;
  readonly #config: string;
  readonly #options: InfluxOptions;
  #child: ChildProcess | undefined;
  #output = '';

  private constructor(dir: string, url: string, config: string, options: InfluxOptions) {
    this.dir = dir;
    this.url = url;
    this.#config = config;
    this.#options = options;
  }

  static async start(options: InfluxOptions = {}): Promise<InfluxProcess> {
    requireInfluxd();
    const dir = makeTempDir('doppel-influx-');
    const [httpPort, rpcPort] = [await freePort(), await freePort()];
    const config = join(dir, 'influxdb.conf');
    writeFileSync(
      config,
      [
        'reporting-disabled = true',
        `bind-address = "127.0.0.1:${rpcPort}"`,
        '[meta]',
        `  dir = "${join(dir, 'meta')}"`,
        '[data]',
        `  dir = "${join(dir, 'data')}"`,
        `  wal-dir = "${join(dir, 'wal')}"`,
        '  query-log-enabled = false',
        '[monitor]',
        '  store-enabled = false',
        '[http]',
        `  bind-address = "127.0.0.1:${httpPort}"`,
        `  auth-enabled = ${options.admin === undefined ? 'false' : 'true'}`,
        '  log-enabled = false',
        '  max-body-size = 0',
        '[logging]',
        '  level = "warn"',
        '[continuous_queries]',
        '  enabled = false',
        '',
      ].join('\n'),
    );
    const influx = new InfluxProcess(dir, `http://127.0.0.1:${httpPort}`, config, options);
    await influx.restart();
    if (options.admin !== undefined) {
      // With no user yet, InfluxDB accepts the one statement that creates the first admin.
      const q = `CREATE USER "${options.admin.user}" WITH PASSWORD '${options.admin.password}' WITH ALL PRIVILEGES`;
      const res = await fetch(`${influx.url}/query`, { method: 'POST', body: new URLSearchParams({ q }) });
      if (!res.ok) throw new Error(`creating the InfluxDB admin failed: ${res.status} ${await res.text()}`);
      // influxd's HTTP handler sees the new admin a moment later (under load: "create admin user
      // first" for a while); wait until a query as that admin is accepted.
      const deadline = Date.now() + START_TIMEOUT_MS;
      for (;;) {
        const check = await fetch(`${influx.url}/query`, {
          method: 'POST',
          body: new URLSearchParams({ q: 'SHOW USERS' }),
          headers: influx.#auth(),
        });
        if (check.ok) break;
        if (Date.now() > deadline) {
          throw new Error(`InfluxDB does not accept its new admin: ${check.status} ${await check.text()}`);
        }
        await sleep(50);
      }
    }
    return influx;
  }

  get output(): string {
    return this.#output;
  }

  /** Starts influxd (again, on the same data) and waits for `/ping`. */
  async restart(): Promise<void> {
    if (this.#child !== undefined) throw new Error('influxd is already running');
    const child = spawn(INFLUXD, ['-config', this.#config], { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer): void => {
      this.#output = (this.#output + chunk.toString()).slice(-64 * 1024);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.#child = child;
    process.once('exit', () => child.kill('SIGKILL'));
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`influxd exited (${child.exitCode}):\n${this.#output}`);
      try {
        const res = await fetch(`${this.url}/ping`);
        if (res.status === 204) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`influxd did not start:\n${this.#output}`);
      await sleep(100);
    }
  }

  /** Stops influxd (SIGTERM, then SIGKILL after 10 s); the data stays for `restart`. */
  async halt(): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    this.#child = undefined;
    if (child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  async stop(): Promise<void> {
    await this.halt();
    await removeTempDir(this.dir);
  }

  #auth(): Record<string, string> {
    const admin = this.#options.admin;
    return admin === undefined
      ? {}
      : { authorization: `Basic ${Buffer.from(`${admin.user}:${admin.password}`).toString('base64')}` };
  }

  /** Runs an InfluxQL statement; returns the parsed JSON response. */
  async query(q: string, db?: string): Promise<InfluxQueryResult> {
    const params = new URLSearchParams({ q, epoch: 'ns' });
    if (db !== undefined) params.set('db', db);
    const res = await fetch(`${this.url}/query`, { method: 'POST', body: params, headers: this.#auth() });
    const text = await res.text();
    if (!res.ok) throw new Error(`InfluxDB query failed: ${res.status} ${text}`);
    return JSON.parse(text) as InfluxQueryResult;
  }

  async createDatabase(db: string): Promise<void> {
    await this.query(`CREATE DATABASE "${db}"`);
  }

  /** `SELECT count(field) FROM measurement`: how many points InfluxDB holds. */
  async count(db: string, measurement: string, field: string): Promise<number> {
    const result = await this.query(`SELECT count("${field}") FROM "${measurement}"`, db);
    const value = result.results[0]?.series?.[0]?.values[0]?.[1];
    return typeof value === 'number' ? value : 0;
  }

  /** Writes line protocol straight to InfluxDB (`/write`, ns precision). */
  async write(db: string, lines: string): Promise<void> {
    const res = await fetch(`${this.url}/write?db=${encodeURIComponent(db)}&precision=n`, {
      method: 'POST',
      body: lines,
      headers: this.#auth(),
    });
    if (res.status !== 204) throw new Error(`InfluxDB write failed: ${res.status} ${await res.text()}`);
  }
}

export interface InfluxQueryResult {
  readonly results: readonly {
    readonly series?: readonly {
      readonly name: string;
      readonly columns: string[];
      readonly values: unknown[][];
    }[];
    readonly error?: string;
  }[];
}
