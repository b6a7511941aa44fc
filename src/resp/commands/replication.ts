/**
 * Replication commands on the RESP port: REPLICAOF / SLAVEOF, ROLE, the
 * `# Replication` section of INFO in Redis 7.0's exact format, and the
 * client that runs a primary's command stream on this node.
 */
import type { PrimaryCommandRunner } from '../../services/redis-replica/replica-contracts.js';
import { NODE_CAPA, NODE_MESSAGES_CAPA } from '../../services/redis-replica/primary-link.js';
import { int, text } from '../args.js';
import { Client, type ServerContext } from '../client.js';
import { command, Flag, type CommandSpec } from '../command-spec.js';
import { lookupCommand } from '../command-table.js';
import { executeFromPrimary } from '../dispatch.js';
import { respError } from '../errors.js';

const ZERO_ID = '0'.repeat(40);
const BACKLOG_SIZE = 1048576;

const seconds = (ms: number): number => Math.floor(ms / 1000);

/** INFO replication, line by line (Redis' genRedisInfoString, replica fields first). */
export function replicationInfo(server: ServerContext): string[] {
  const status = server.replication?.status() ?? {
    primary: null,
    replid: server.runId,
    replid2: ZERO_ID,
    offset: 0,
    secondOffset: -1,
  };
  const lines: string[] = [];
  const primary = status.primary;
  if (primary === null) lines.push('role:master');
  else {
    const linked = primary.state === 'connected';
    const offsetOf = (value: number): number => (linked || primary.synced ? value : 1);
    lines.push(
      'role:slave',
      `master_host:${primary.host}`,
      `master_port:${primary.port}`,
      `master_link_status:${linked ? 'up' : 'down'}`,
      `master_last_io_seconds_ago:${linked && primary.lastIoMs !== null ? seconds(primary.lastIoMs) : -1}`,
      `master_sync_in_progress:${primary.state === 'sync' ? 1 : 0}`,
      `slave_read_repl_offset:${offsetOf(primary.readOffset)}`,
      `slave_repl_offset:${offsetOf(primary.appliedOffset)}`,
    );
    const transfer = primary.transfer;
    if (primary.state === 'sync' && transfer !== null) {
      const perc = transfer.size > 0 ? (transfer.read / transfer.size) * 100 : 0;
      lines.push(
        `master_sync_total_bytes:${transfer.size}`,
        `master_sync_read_bytes:${transfer.read}`,
        `master_sync_left_bytes:${transfer.size - transfer.read}`,
        `master_sync_perc:${perc.toFixed(2)}`,
        `master_sync_last_io_seconds_ago:${seconds(transfer.lastIoMs)}`,
      );
    }
    if (!linked) {
      lines.push(
        `master_link_down_since_seconds:${primary.downForMs === null ? -1 : seconds(primary.downForMs)}`,
      );
    }
    lines.push('slave_priority:100', 'slave_read_only:1', 'replica_announced:1');
  }
  const replicas = server.nodePrimary?.replicas() ?? [];
  lines.push(`connected_slaves:${replicas.length}`);
  replicas.forEach((r, i) => {
    const lag = seconds(r.lastAckMs);
    lines.push(
      `slave${i}:ip=${r.address},port=${r.port},state=${r.state},offset=${Math.max(r.ackedLsn, 0)},lag=${lag}`,
    );
  });
  lines.push(
    'master_failover_state:no-failover',
    `master_replid:${status.replid}`,
    `master_replid2:${status.replid2}`,
    `master_repl_offset:${status.offset}`,
    `second_repl_offset:${status.secondOffset}`,
    // Doppel serves Doppel replicas from its journal (by LSN), not from a Redis byte backlog.
    'repl_backlog_active:0',
    `repl_backlog_size:${BACKLOG_SIZE}`,
    'repl_backlog_first_byte_offset:0',
    'repl_backlog_histlen:0',
  );
  return lines;
}

async function replicaOf(c: Client, argv: Buffer[]): Promise<void> {
  const control = c.server.replication;
  if (control === undefined) throw respError('REPLICAOF is not available on this node');
  const host = text(argv[1]);
  if (host.toLowerCase() === 'no' && text(argv[2]).toLowerCase() === 'one') {
    await control.promote();
    c.reply.ok();
    return;
  }
  let port: number;
  try {
    port = int(argv[2]);
  } catch {
    throw respError('Invalid master port');
  }
  if (port < 0 || port > 65535) throw respError('Invalid master port');
  // A replica pops for nobody: clients waiting in BLPOP & co. are told, as Redis tells them.
  c.server.blocked.abandonAll((waiting) =>
    waiting.reply.error(
      'UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)',
    ),
  );
  if ((await control.replicaOf(host, port)) === 'already') {
    c.reply.simple('OK Already connected to specified master');
  } else c.reply.ok();
}

function role(c: Client): void {
  const status = c.server.replication?.status();
  const primary = status?.primary ?? null;
  const r = c.reply;
  if (primary === null) {
    const replicas = c.server.nodePrimary?.replicas() ?? [];
    r.array(3);
    r.bulkText('master');
    r.integer(status?.offset ?? 0);
    r.array(replicas.length);
    for (const replica of replicas) {
      r.array(3);
      r.bulkText(replica.address);
      r.bulkText(String(replica.port));
      r.bulkText(String(Math.max(replica.ackedLsn, 0)));
    }
    return;
  }
  r.array(5);
  r.bulkText('slave');
  r.bulkText(primary.host);
  r.integer(primary.port);
  r.bulkText(primary.state);
  r.integer(primary.state === 'connected' ? primary.appliedOffset : -1);
}

const replicaOfSpec = (name: string): CommandSpec =>
  command({
    name,
    arity: 3,
    flags: Flag.Admin | Flag.Immediate | Flag.Loading | Flag.Async,
    group: 'server',
    since: name === 'slaveof' ? '1.0.0' : '5.0.0',
    summary: 'Configures a server as replica of another, or promotes it to a master.',
    run: () => undefined,
    runAsync: replicaOf,
  });

/** REPLCONF from a replica during its handshake (and ACKs, which the feed takes once streaming). */
function replconf(c: Client, argv: Buffer[]): void {
  if (argv.length % 2 === 0) throw respError('syntax error');
  let nodeReplica = false;
  for (let i = 1; i < argv.length; i += 2) {
    const option = text(argv[i]).toLowerCase();
    const value = text(argv[i + 1]);
    if (option === 'listening-port') {
      const port = Number(value);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw respError('Invalid listening port');
      c.replicaPort = port;
    } else if (option === 'capa') {
      if (value.toLowerCase() === NODE_CAPA) nodeReplica = true;
      if (value.toLowerCase() === NODE_MESSAGES_CAPA) c.messageReplica = true;
    } else if (option !== 'ip-address' && option !== 'ack' && option !== 'getack' && option !== 'rdb-only') {
      throw respError(`Unrecognized REPLCONF option: ${text(argv[i])}`);
    }
  }
  if (nodeReplica && c.server.nodePrimary !== undefined) {
    c.nodeReplica = true;
    c.reply.simple(`OK ${NODE_CAPA}`);
  } else c.reply.ok();
}

/** What a replica that is not a Doppel node of our storage format is told (Redis' own replicas included). */
const onlyDoppelReplicas = (): Error =>
  respError(
    `Doppel serves replication only to Doppel replicas of its storage format (REPLCONF capa ${NODE_CAPA})`,
  );

/** PSYNC from a Doppel replica: the connection becomes its feed. */
async function psync(c: Client, argv: Buffer[]): Promise<void> {
  await Promise.resolve();
  const primary = c.server.nodePrimary;
  if (primary === undefined || !c.nodeReplica) throw onlyDoppelReplicas();
  const replid = text(argv[1]);
  const nextLsn = Number(text(argv[2]));
  if (!Number.isSafeInteger(nextLsn)) throw respError('value is not an integer or out of range');
  const [address] = c.addr.split(/:(?=[^:]*$)/);
  c.replicaFeed = (sink) =>
    primary.attach(
      {
        replid,
        nextLsn,
        address: address ?? c.addr,
        listeningPort: c.replicaPort,
        messages: c.messageReplica,
      },
      sink,
    );
}

/** WAIT's arguments, checked. */
function waitArguments(c: Client, argv: Buffer[]): { count: number; timeout: number } {
  if (c.server.isReadOnly())
    throw respError(
      'WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.',
    );
  const count = int(argv[1]);
  let timeout: number;
  try {
    timeout = int(argv[2]);
  } catch {
    throw respError('timeout is not an integer or out of range');
  }
  if (timeout < 0) throw respError('timeout is negative');
  return { count, timeout };
}

/** WAIT numreplicas timeout: how many replicas acknowledged every write made so far. */
async function wait(c: Client, argv: Buffer[]): Promise<void> {
  const { count, timeout } = waitArguments(c, argv);
  const primary = c.server.nodePrimary;
  c.reply.integer(primary === undefined ? 0 : await primary.waitForReplicas(count, timeout, c.gone));
}

/** WAIT inside EXEC: it cannot block there, so it answers at once, as Redis does. */
function waitInTransaction(c: Client, argv: Buffer[]): void {
  waitArguments(c, argv);
  c.reply.integer(c.server.nodePrimary?.replicasCaughtUp() ?? 0);
}

export const replicationCommands: CommandSpec[] = [
  replicaOfSpec('replicaof'),
  replicaOfSpec('slaveof'),
  command({
    name: 'replconf',
    arity: -1,
    flags: Flag.Admin | Flag.Loading,
    group: 'server',
    since: '3.0.0',
    summary: 'An internal command for configuring the replication stream.',
    run: replconf,
  }),
  command({
    name: 'psync',
    arity: -3,
    flags: Flag.Admin | Flag.NoMulti | Flag.Loading | Flag.Async,
    group: 'server',
    since: '2.8.0',
    summary: 'An internal command used in replication.',
    run: () => undefined,
    runAsync: psync,
  }),
  command({
    // A redis-server replica falls back to SYNC when PSYNC is refused: it is told why too.
    name: 'sync',
    arity: 1,
    flags: Flag.Admin | Flag.NoMulti,
    group: 'server',
    since: '1.0.0',
    summary: 'An internal command used in replication (Redis replicas are not served).',
    run: () => {
      throw onlyDoppelReplicas();
    },
  }),
  command({
    name: 'wait',
    arity: 3,
    flags: Flag.Async,
    group: 'generic',
    since: '3.0.0',
    summary:
      'Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.',
    run: waitInTransaction,
    runAsync: wait,
  }),
  command({
    name: 'role',
    arity: 1,
    flags: Flag.Fast | Flag.Loading,
    group: 'server',
    since: '2.8.12',
    summary: 'Returns the replication role.',
    run: role,
  }),
];

/** Server-side code a Redis primary propagates (FUNCTION LOAD …): not keyspace data, and Doppel runs none. */
const CODE_COMMANDS = new Set(['function', 'script']);

/** The primary's client on this node: runs its stream's commands (see `executeFromPrimary`). */
export function createPrimaryCommandRunner(context: ServerContext): PrimaryCommandRunner {
  const fresh = (): Client => new Client(0, context, 'primary', 'primary');
  let client = fresh();
  return {
    run: (argv) =>
      CODE_COMMANDS.has(argv[0].toString('latin1').toLowerCase())
        ? undefined
        : executeFromPrimary(client, lookupCommand(argv[0]), argv),
    get db() {
      return client.db;
    },
    reset: (db = 0) => {
      client = fresh();
      client.db = db;
    },
  };
}
