/**
 * Replication commands on the RESP port: REPLICAOF / SLAVEOF, ROLE, the
 * `# Replication` section of INFO in Redis 7.0's exact format, and the
 * client that runs a primary's command stream on this node.
 */
import type { PrimaryCommandRunner } from '../../services/redis-replica/replica-contracts.js';
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
  lines.push(
    'connected_slaves:0',
    'master_failover_state:no-failover',
    `master_replid:${status.replid}`,
    `master_replid2:${status.replid2}`,
    `master_repl_offset:${status.offset}`,
    `second_repl_offset:${status.secondOffset}`,
    // Doppel keeps no Redis backlog: it does not serve Redis replicas.
    'repl_backlog_active:0',
    `repl_backlog_size:${BACKLOG_SIZE}`,
    'repl_backlog_first_byte_offset:0',
    'repl_backlog_histlen:0',
  );
  return lines;
}

function replicaOf(c: Client, argv: Buffer[]): void {
  const control = c.server.replication;
  if (control === undefined) throw respError('REPLICAOF is not available on this node');
  const host = text(argv[1]);
  if (host.toLowerCase() === 'no' && text(argv[2]).toLowerCase() === 'one') {
    control.promote();
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
  if (control.replicaOf(host, port) === 'already') c.reply.simple('OK Already connected to specified master');
  else c.reply.ok();
}

function role(c: Client): void {
  const status = c.server.replication?.status();
  const primary = status?.primary ?? null;
  const r = c.reply;
  if (primary === null) {
    r.array(3);
    r.bulkText('master');
    r.integer(status?.offset ?? 0);
    r.array(0);
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
    flags: Flag.Admin | Flag.NoMulti | Flag.Loading,
    group: 'server',
    since: name === 'slaveof' ? '1.0.0' : '5.0.0',
    summary: 'Configures a server as replica of another, or promotes it to a master.',
    run: replicaOf,
  });

export const replicationCommands: CommandSpec[] = [
  replicaOfSpec('replicaof'),
  replicaOfSpec('slaveof'),
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

/** The primary's client on this node: runs its stream's commands (see `executeFromPrimary`). */
export function createPrimaryCommandRunner(context: ServerContext): PrimaryCommandRunner {
  const fresh = (): Client => new Client(0, context, 'primary', 'primary');
  let client = fresh();
  return {
    run: (argv) => executeFromPrimary(client, lookupCommand(argv[0]), argv),
    reset: () => {
      client = fresh();
    },
  };
}
