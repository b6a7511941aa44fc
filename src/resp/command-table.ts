/**
 * The command table: every command the RESP port serves, with its arity,
 * key positions and flags (see `command-spec.ts`). Lookup accepts any case.
 */
import type { CommandSpec } from './command-spec.js';
import { bitmapCommands } from './commands/bitmaps.js';
import { blockingCommands } from './commands/blocking.js';
import { connectionCommands } from './commands/connection.js';
import { hashCommands } from './commands/hashes.js';
import { hyperLogLogCommands } from './commands/hyperloglog.js';
import { keyCommands } from './commands/keys.js';
import { listCommands } from './commands/lists.js';
import { objectCommands } from './commands/object.js';
import { pubsubCommands } from './commands/pubsub.js';
import { replicationCommands } from './commands/replication.js';
import { serverCommands } from './commands/server.js';
import { setCommands } from './commands/sets.js';
import { stringCommands } from './commands/strings.js';
import { transactionCommands } from './commands/transactions.js';
import { zsetCommands } from './commands/zsets.js';

export { Flag, type CommandSpec } from './command-spec.js';

function buildTable(): Map<string, CommandSpec> {
  const table = new Map<string, CommandSpec>();
  for (const group of [
    connectionCommands,
    serverCommands,
    replicationCommands,
    transactionCommands,
    keyCommands,
    stringCommands,
    bitmapCommands,
    hyperLogLogCommands,
    hashCommands,
    listCommands,
    setCommands,
    zsetCommands,
    pubsubCommands,
    blockingCommands,
    objectCommands,
  ]) {
    for (const spec of group) {
      if (table.has(spec.name)) throw new Error(`command ${spec.name} is defined twice`);
      table.set(spec.name, spec);
    }
  }
  return table;
}

/** Every command by lower-case name. */
export const COMMANDS: ReadonlyMap<string, CommandSpec> = buildTable();

/** Upper-case aliases so the common spelling is found without allocating a lower-case copy. */
const UPPER = new Map<string, CommandSpec>([...COMMANDS].map(([name, spec]) => [name.toUpperCase(), spec]));

/** Names of at most this many bytes are looked up by a number made of their bytes (no string made). */
const SHORT_NAME_BYTES = 6;

/** A name's bytes as one number, letters folded to lower case; -1 if a byte is not a letter. */
function shortNameCode(name: Uint8Array): number {
  let code = 0;
  for (let i = 0; i < name.length; i++) {
    const byte = name[i] | 0x20;
    if (byte < 0x61 || byte > 0x7a) return -1;
    code = code * 256 + byte;
  }
  return code;
}

const SHORT = new Map<number, CommandSpec>(
  [...COMMANDS]
    .filter(([name]) => name.length <= SHORT_NAME_BYTES && /^[a-z]+$/.test(name))
    .map(([name, spec]) => [shortNameCode(Buffer.from(name, 'latin1')), spec]),
);

export function lookupCommand(name: Buffer): CommandSpec | undefined {
  if (name.length <= SHORT_NAME_BYTES) {
    const code = shortNameCode(name);
    if (code >= 0) return SHORT.get(code);
  }
  if (name.length > 32) return undefined;
  const text = name.toString('latin1');
  return UPPER.get(text) ?? COMMANDS.get(text) ?? COMMANDS.get(text.toLowerCase());
}
