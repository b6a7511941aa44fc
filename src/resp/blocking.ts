/**
 * Clients blocked on keys (BLPOP, BLMOVE, BZPOPMIN …): who waits on which
 * key, in arrival order, and serving them when a write makes a key ready.
 *
 * As in Redis, a blocked client is served right after the command that
 * pushed to its key, inside that command's storage write: the pop and the
 * push commit together, the first client to block is the first served, and
 * nobody can take the element in between. The served client's reply goes
 * out once that write has committed.
 */
import type { Client } from './client.js';

/** One blocked command. */
export interface BlockedCommand {
  readonly client: Client;
  readonly db: number;
  readonly keys: readonly Buffer[];
  /**
   * Inside a write: serves the command from `key` (pops, writes the reply);
   * false when `key` holds nothing it can take (empty, another type).
   */
  readonly serve: (key: Buffer) => boolean;
  /** Called after the serving write committed. */
  readonly served: () => void;
  /** Ends the wait without serving: `reply` writes what the client gets (timeout, CLIENT UNBLOCK). */
  readonly abandon: (reply: (client: Client) => void) => void;
}

function keyId(db: number, key: Buffer): string {
  return `${db}:${key.toString('latin1')}`;
}

export class BlockedClients {
  /** Waiters per key, in the order they blocked. */
  readonly #byKey = new Map<string, BlockedCommand[]>();
  readonly #byClient = new Map<Client, BlockedCommand>();
  /** Keys written since the last `serveReady`, that someone waits on. */
  readonly #ready = new Map<string, { db: number; key: Buffer }>();

  get count(): number {
    return this.#byClient.size;
  }

  isBlocked(client: Client): boolean {
    return this.#byClient.has(client);
  }

  /** True when a write touched a key someone waits on: `serveReady` has work. */
  get hasReady(): boolean {
    return this.#ready.size > 0;
  }

  block(command: BlockedCommand): void {
    this.#byClient.set(command.client, command);
    for (const key of command.keys) {
      const id = keyId(command.db, key);
      const waiters = this.#byKey.get(id);
      if (waiters === undefined) this.#byKey.set(id, [command]);
      else if (!waiters.includes(command)) waiters.push(command);
    }
  }

  /** Removes a blocked command (served, timed out, or its client gone); false when it was not blocked. */
  unblock(command: BlockedCommand): boolean {
    if (this.#byClient.get(command.client) !== command) return false;
    this.#byClient.delete(command.client);
    for (const key of command.keys) {
      const id = keyId(command.db, key);
      const waiters = this.#byKey.get(id);
      if (waiters === undefined) continue;
      const at = waiters.indexOf(command);
      if (at >= 0) waiters.splice(at, 1);
      if (waiters.length === 0) this.#byKey.delete(id);
    }
    return true;
  }

  /** The blocked command of `client`, if any (CLIENT UNBLOCK). */
  of(client: Client): BlockedCommand | undefined {
    return this.#byClient.get(client);
  }

  /** From the keyspace's touch hook, inside a write: `key` may now hold what a waiter needs. */
  touched(db: number, key: Buffer): void {
    if (this.#byKey.size === 0) return;
    const id = keyId(db, key);
    if (this.#byKey.has(id) && !this.#ready.has(id)) this.#ready.set(id, { db, key: Buffer.from(key) });
  }

  /**
   * Inside a write, after a command: serves the waiters of every key made
   * ready, first blocked first, while the key has something for them. A
   * served command may make further keys ready (BLMOVE's destination):
   * those are served in the same pass.
   */
  serveReady(): void {
    while (this.#ready.size > 0) {
      const [id, { key }] = this.#ready.entries().next().value as [string, { db: number; key: Buffer }];
      this.#ready.delete(id);
      const waiters = this.#byKey.get(id);
      while (waiters !== undefined && waiters.length > 0) {
        const next = waiters[0];
        if (!next.serve(key)) break;
        this.unblock(next);
        next.served();
      }
    }
  }

  /** Ends every wait with `reply` (the node became a replica: it pops for nobody). */
  abandonAll(reply: (client: Client) => void): void {
    for (const command of [...this.#byClient.values()]) command.abandon(reply);
    this.#ready.clear();
  }
}
