/**
 * pouchdb-server (npm, in memory) as a real CouchDB-protocol peer in its own
 * process, on 127.0.0.1 and a free port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fetchJson, makeTempDir, REPO_ROOT } from './doppel-process.js';
import { freePort } from './free-port.js';

export class PouchServer {
  constructor(
    readonly url: string,
    readonly child: ChildProcess,
  ) {}

  static async start(): Promise<PouchServer> {
    const dir = makeTempDir('doppel-pouchserver-');
    const port = await freePort();
    const bin = join(REPO_ROOT, 'node_modules', '.bin', 'pouchdb-server');
    if (!existsSync(bin))
      throw new Error(`pouchdb-server is missing (${bin}): run 'npm install' (it is a devDependency)`);
    const child = spawn(
      bin,
      ['-m', '-n', '-o', '127.0.0.1', '-p', String(port), '--dir', dir, '-c', join(dir, 'config.json')],
      { cwd: dir, stdio: 'ignore' },
    );
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const res = await fetchJson(`${url}/`);
        if (res.status === 200) break;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error('pouchdb-server did not start');
      }
      await sleep(100);
    }
    return new PouchServer(url, child);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}
