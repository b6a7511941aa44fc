/**
 * Runs one command for a client: the checks every command passes (auth,
 * arity, permissions, MULTI queueing, read-only replica) in one place, then
 * the command. Errors become the command's reply.
 */
import { ADMIN_ROLE } from '../services/auth/user-context.js';
import type { Client } from './client.js';
import { Flag, type CommandSpec } from './command-spec.js';
import { noPermission, respError, toRespError, unknownCommand, wrongArity } from './errors.js';

export const NOAUTH = 'Authentication required.';

/** What a RESP2 client that listens on channels may still send (its input is otherwise only messages). */
const WHILE_LISTENING = new Set([
  'subscribe',
  'ssubscribe',
  'psubscribe',
  'unsubscribe',
  'sunsubscribe',
  'punsubscribe',
  'ping',
  'quit',
  'reset',
]);
/** Commands Redis names with their subcommand (`config|get`) in errors. */
const CONTAINERS = new Set(['client', 'command', 'config', 'memory', 'object', 'pubsub']);

function whileListening(spec: CommandSpec, argv: Buffer[]): Error {
  const name =
    CONTAINERS.has(spec.name) && argv.length > 1
      ? `${spec.name}|${argv[1].toString('latin1').toLowerCase()}`
      : spec.name;
  return respError(
    `Can't execute '${name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context`,
  );
}

/** The checks before a command runs; throws the error it must reply (flagging an open MULTI). */
export function admit(client: Client, spec: CommandSpec | undefined, argv: Buffer[]): CommandSpec {
  try {
    if (spec === undefined) throw unknownCommand(argv);
    if (client.user === null && (spec.flags & Flag.NoAuth) === 0) throw respError(NOAUTH, 'NOAUTH');
    if ((spec.arity > 0 && argv.length !== spec.arity) || argv.length < -spec.arity)
      throw wrongArity(spec.name);
    if ((spec.flags & Flag.Admin) !== 0 && client.user?.roles.includes(ADMIN_ROLE) !== true) {
      throw noPermission(spec.name);
    }
    if ((spec.flags & Flag.Write) !== 0 && client.server.isReadOnly()) {
      throw respError("You can't write against a read only replica.", 'READONLY');
    }
    // RESP3 carries messages as pushes beside replies; RESP2 cannot tell them apart.
    if (client.protocol === 2 && client.subscriptions.listening && !WHILE_LISTENING.has(spec.name)) {
      throw whileListening(spec, argv);
    }
    if ((spec.flags & Flag.NoMulti) !== 0 && client.multi !== null) {
      throw respError('Command not allowed inside a transaction');
    }
    return spec;
  } catch (err) {
    if (client.multi !== null) client.multi.dirty = true;
    throw err;
  }
}

/** Admits and runs a command, or queues it inside MULTI. Writes exactly one reply. */
export function execute(client: Client, spec: CommandSpec | undefined, argv: Buffer[]): void {
  client.server.stats.commandsProcessed++;
  try {
    const admitted = admit(client, spec, argv);
    if (client.multi !== null && (admitted.flags & Flag.Immediate) === 0) {
      client.multi.queue.push({ spec: admitted, argv });
      client.reply.simple('QUEUED');
      return;
    }
    client.lastCommand = admitted.name;
    admitted.run(client, argv);
  } catch (err) {
    client.reply.error(toRespError(err));
  }
  // A write that pushed to a key someone waits on serves them now, in the same transaction.
  if (client.server.blocked.hasReady && client.server.keyspace.inWrite) client.server.blocked.serveReady();
}

/**
 * Runs a command of the replication stream as the primary's own client
 * (Redis' CLIENT_MASTER): the primary is trusted, so there is no auth,
 * permission, READONLY or MULTI handling (the link groups MULTI/EXEC itself);
 * only the arity is checked. Must run inside a keyspace write. Returns the
 * error the command replied, if any; the reply itself is discarded.
 */
export function executeFromPrimary(
  client: Client,
  spec: CommandSpec | undefined,
  argv: Buffer[],
): string | undefined {
  const mark = client.reply.position;
  let error: string | undefined;
  try {
    if (spec === undefined) throw unknownCommand(argv);
    if ((spec.arity > 0 && argv.length !== spec.arity) || argv.length < -spec.arity)
      throw wrongArity(spec.name);
    spec.run(client, argv);
  } catch (err) {
    error = toRespError(err);
  }
  client.reply.take(Math.max(mark, client.reply.position));
  return error;
}

/** Runs an admitted command (EXEC's queued ones), its error becoming its reply. */
export function runAdmitted(client: Client, spec: CommandSpec, argv: Buffer[]): void {
  try {
    if ((spec.flags & Flag.Write) !== 0 && client.server.isReadOnly()) {
      throw respError("You can't write against a read only replica.", 'READONLY');
    }
    spec.run(client, argv);
  } catch (err) {
    client.reply.error(toRespError(err));
  }
}
