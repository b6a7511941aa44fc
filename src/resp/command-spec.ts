/** What the command table says about one command. */
import type { Client } from './client.js';

export const Flag = {
  /** Mutates the keyspace: runs inside a storage write; refused with -READONLY on a read-only replica. */
  Write: 1 << 0,
  /** Reads the keyspace only. */
  ReadOnly: 1 << 1,
  /** Server admins only (-NOPERM otherwise). */
  Admin: 1 << 2,
  /** O(1) or O(log n). */
  Fast: 1 << 3,
  /** Allowed before AUTH. */
  NoAuth: 1 << 4,
  /**
   * Runs at once inside MULTI instead of being queued: MULTI, EXEC, DISCARD, WATCH, QUIT
   * and RESET, as in Redis; also AUTH, HELLO and REPLICAOF, which Redis queues (their
   * work is asynchronous, and EXEC runs its commands in one synchronous write).
   */
  Immediate: 1 << 5,
  /** Runs in storage-write order even though it writes nothing (WATCH, EXEC). */
  Ordered: 1 << 6,
  /** Has `runAsync`: the connection waits for earlier replies, then awaits it (AUTH, HELLO). */
  Async: 1 << 7,
  /** May be served while loading / stale (informational, for COMMAND INFO). */
  Loading: 1 << 8,
  /** Refused inside MULTI, which it aborts (Redis' `no-multi`: PSYNC, SHUTDOWN). */
  NoMulti: 1 << 9,
} as const;

const FLAG_NAMES: [number, string][] = [
  [Flag.Write, 'write'],
  [Flag.ReadOnly, 'readonly'],
  [Flag.Admin, 'admin'],
  [Flag.Fast, 'fast'],
  [Flag.NoAuth, 'no_auth'],
  [Flag.NoMulti, 'no_multi'],
  [Flag.Loading, 'loading'],
];

export function flagNames(flags: number): string[] {
  return FLAG_NAMES.filter(([bit]) => (flags & bit) !== 0).map(([, name]) => name);
}

export interface CommandSpec {
  /** Lower case. */
  readonly name: string;
  /** Argument count including the name; negative: at least -arity. */
  readonly arity: number;
  readonly flags: number;
  /** Key positions (1-based; 0 when the command takes no key; last -1: to the end). */
  readonly firstKey: number;
  readonly lastKey: number;
  readonly step: number;
  /** COMMAND DOCS: group (string, hash, …), since, summary. */
  readonly group: string;
  readonly since: string;
  readonly summary: string;
  /** Writes exactly one reply (or throws before writing anything); SHUTDOWN, none: its connection ends. */
  readonly run: (client: Client, argv: Buffer[]) => void;
  readonly runAsync?: (client: Client, argv: Buffer[]) => Promise<void>;
}

export type CommandDefinition = Omit<CommandSpec, 'firstKey' | 'lastKey' | 'step' | 'since' | 'summary'> &
  Partial<Pick<CommandSpec, 'firstKey' | 'lastKey' | 'step' | 'since' | 'summary'>>;

/** Fills defaults: keyless unless told, since 1.0.0. */
export function command(def: CommandDefinition): CommandSpec {
  return {
    firstKey: 0,
    lastKey: 0,
    step: 0,
    since: '1.0.0',
    summary: '',
    ...def,
  };
}

/** A command with one key at position 1. */
export function keyCommand(def: CommandDefinition): CommandSpec {
  return command({ firstKey: 1, lastKey: 1, step: 1, ...def });
}
