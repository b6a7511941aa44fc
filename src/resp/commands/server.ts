/** Server commands: INFO, CONFIG, COMMAND, TIME, SHUTDOWN. */
import { DATABASES } from '../../engines/kv/keyspace.js';
import { globMatch } from '../../engines/kv/glob.js';
import { word } from '../args.js';
import type { Client, ServerContext } from '../client.js';
import { command, Flag, flagNames, type CommandSpec } from '../command-spec.js';
import { respError, syntaxError } from '../errors.js';
import type { SnapshotLoadProgress } from '../../services/redis-replica/replica-contracts.js';
import { replicationInfo } from './replication.js';

const REDIS_VERSION = '7.0.15';

/** CLIENT LIST's flags: `x` in MULTI, `b` blocked, `P` listening (Pub/Sub), `N` none. */
function clientFlags(c: Client): string {
  const flags =
    (c.multi !== null ? 'x' : '') +
    (c.server.blocked.isBlocked(c) ? 'b' : '') +
    (c.subscriptions.listening ? 'P' : '');
  return flags === '' ? 'N' : flags;
}

/** One CLIENT LIST line, in Redis' field order. */
export function clientLine(c: Client): string {
  const now = Date.now();
  return [
    `id=${c.id}`,
    `addr=${c.addr}`,
    `laddr=${c.laddr}`,
    'fd=-1',
    `name=${c.name}`,
    `age=${Math.floor((now - c.createdAt) / 1000)}`,
    `idle=${Math.floor((now - c.lastInteraction) / 1000)}`,
    `flags=${clientFlags(c)}`,
    `db=${c.db}`,
    `sub=${c.subscriptions.channel.size}`,
    `psub=${c.subscriptions.pattern.size}`,
    `ssub=${c.subscriptions.shard.size}`,
    `multi=${c.multi === null ? -1 : c.multi.queue.length}`,
    'qbuf=0',
    'qbuf-free=0',
    'argv-mem=0',
    'multi-mem=0',
    'rbs=0',
    'rbp=0',
    'obl=0',
    'oll=0',
    `omem=${c.reply.pending}`,
    'tot-mem=0',
    'events=r',
    `cmd=${c.lastCommand}`,
    `user=${c.user?.name ?? 'default'}`,
    'redir=-1',
    `resp=${c.protocol}`,
    `lib-name=${c.libName}`,
    `lib-ver=${c.libVersion}`,
  ].join(' ');
}

const DEFAULT_SECTIONS = [
  'server',
  'clients',
  'memory',
  'persistence',
  'stats',
  'replication',
  'cpu',
  'keyspace',
];

/** INFO persistence's loading fields, as Redis reports a replica's RDB load (ours: either kind of snapshot). */
function loadingLines(load: SnapshotLoadProgress | null): string[] {
  if (load === null) return ['loading:0'];
  const elapsedS = (Date.now() - load.startedAt) / 1000;
  const fraction = load.totalBytes > 0 ? load.loadedBytes / load.totalBytes : 0;
  const eta = fraction > 0 ? Math.round((elapsedS / fraction) * (1 - fraction)) : 1;
  return [
    'loading:1',
    `loading_start_time:${Math.floor(load.startedAt / 1000)}`,
    `loading_total_bytes:${load.totalBytes}`,
    `loading_loaded_bytes:${load.loadedBytes}`,
    `loading_loaded_perc:${(fraction * 100).toFixed(2)}`,
    `loading_eta_seconds:${eta}`,
  ];
}

function humanBytes(n: number): string {
  const units = ['B', 'K', 'M', 'G', 'T'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n}B` : `${n.toFixed(2)}${units[i]}`;
}

function infoSection(server: ServerContext, name: string): string[] | undefined {
  const now = Date.now();
  const uptime = Math.floor((now - server.startedAt) / 1000);
  const ks = server.keyspace;
  switch (name) {
    case 'server':
      return [
        `redis_version:${REDIS_VERSION}`,
        `doppel_version:${server.version}`,
        'redis_git_sha1:00000000',
        'redis_mode:standalone',
        `os:${process.platform} ${process.arch}`,
        'arch_bits:64',
        `process_id:${process.pid}`,
        `run_id:${server.runId}`,
        `tcp_port:${server.tcpPort()}`,
        `server_time_usec:${now * 1000}`,
        `uptime_in_seconds:${uptime}`,
        `uptime_in_days:${Math.floor(uptime / 86400)}`,
        'hz:10',
        `executable:${process.argv[1] ?? ''}`,
        `node_id:${server.nodeId}`,
      ];
    case 'clients':
      return [
        `connected_clients:${server.clients.size}`,
        `blocked_clients:${server.blocked.count}`,
        'tracking_clients:0',
        `maxclients:${server.config.get('maxclients') ?? '10000'}`,
      ];
    case 'memory': {
      const memory = process.memoryUsage();
      return [
        `used_memory:${memory.heapUsed}`,
        `used_memory_human:${humanBytes(memory.heapUsed)}`,
        `used_memory_rss:${memory.rss}`,
        `used_memory_rss_human:${humanBytes(memory.rss)}`,
        'maxmemory:0',
        'maxmemory_human:0B',
        'maxmemory_policy:noeviction',
      ];
    }
    case 'persistence':
      return [
        ...loadingLines(server.replication?.status().primary?.load ?? null),
        'async_loading:0',
        'rdb_changes_since_last_save:0',
        `rdb_bgsave_in_progress:${server.saves.inProgress ? 1 : 0}`,
        `rdb_last_save_time:${server.saves.lastSave}`,
        `rdb_last_bgsave_status:${server.saves.lastStatus}`,
        'aof_enabled:0',
        'aof_rewrite_in_progress:0',
        `doppel_data_dir:${server.dataDir}`,
      ];
    case 'stats':
      return [
        `total_connections_received:${server.stats.connectionsReceived}`,
        `total_commands_processed:${server.stats.commandsProcessed}`,
        `total_net_input_bytes:${server.stats.netInputBytes}`,
        `total_net_output_bytes:${server.stats.netOutputBytes}`,
        `rejected_connections:${server.stats.rejectedConnections}`,
        `sync_full:${server.nodePrimary?.counters.fullSyncs ?? 0}`,
        `sync_partial_ok:${server.nodePrimary?.counters.partialSyncs ?? 0}`,
        `sync_partial_err:${server.nodePrimary?.counters.partialSyncsRefused ?? 0}`,
        `expired_keys:${ks.stats.expiredKeys}`,
        'evicted_keys:0',
        `keyspace_hits:${ks.stats.hits}`,
        `keyspace_misses:${ks.stats.misses}`,
        `pubsub_channels:${server.pubsub.count('channel')}`,
        `pubsub_patterns:${server.pubsub.count('pattern')}`,
        `pubsubshard_channels:${server.pubsub.count('shard')}`,
      ];
    case 'replication':
      return replicationInfo(server);
    case 'cpu': {
      const cpu = process.cpuUsage();
      return [
        `used_cpu_sys:${(cpu.system / 1e6).toFixed(6)}`,
        `used_cpu_user:${(cpu.user / 1e6).toFixed(6)}`,
      ];
    }
    case 'keyspace': {
      const lines: string[] = [];
      ks.counts().forEach(({ keys, expires }, db) => {
        if (keys > 0) lines.push(`db${db}:keys=${keys},expires=${expires},avg_ttl=0`);
      });
      return lines;
    }
    default:
      return undefined;
  }
}

function info(server: ServerContext, argv: Buffer[]): string {
  let sections = argv.slice(1).map((a) => a.toString('latin1').toLowerCase());
  if (
    sections.length === 0 ||
    sections.includes('default') ||
    sections.includes('all') ||
    sections.includes('everything')
  ) {
    sections = DEFAULT_SECTIONS;
  }
  const parts: string[] = [];
  for (const name of sections) {
    const lines = infoSection(server, name);
    if (lines === undefined) continue;
    parts.push([`# ${name[0].toUpperCase()}${name.slice(1)}`, ...lines].join('\r\n'));
  }
  return parts.join('\r\n\r\n') + '\r\n';
}

/** CONFIG SET accepts these (kept in memory; most are accepted for client compatibility only). */
const MUTABLE_CONFIG = new Set([
  'save',
  'appendonly',
  'maxmemory',
  'maxmemory-policy',
  'timeout',
  'hz',
  'notify-keyspace-events',
  'maxclients',
  'slowlog-log-slower-than',
  'slowlog-max-len',
  'lazyfree-lazy-expire',
  'replica-read-only',
  'slave-read-only',
]);

/** Settings of the replica link (CONFIG SET applies them from its next connection on). */
const PRIMARY_CREDENTIALS = new Set(['masteruser', 'masterauth']);

/** What CONFIG GET shows: the settings, and of the replica link's credentials never the password. */
function configView(c: Client): Map<string, string> {
  const replication = c.server.replication;
  if (replication === undefined) return c.server.config;
  const { user, passwordSet } = replication.primaryCredentials();
  const view = new Map(c.server.config);
  view.set('masteruser', user);
  view.set('masterauth', passwordSet ? '(hidden)' : '');
  return view;
}

function configCommand(c: Client, argv: Buffer[]): void {
  const sub = word(argv[1]);
  if (sub === 'GET') {
    if (argv.length < 3) throw respError("wrong number of arguments for 'config|get' command");
    const found = new Map<string, string>();
    const view = configView(c);
    for (const pattern of argv.slice(2)) {
      for (const [name, value] of view) {
        if (globMatch(pattern, Buffer.from(name, 'latin1'))) found.set(name, value);
      }
    }
    c.reply.map(found.size);
    for (const [name, value] of found) {
      c.reply.bulkText(name);
      c.reply.bulkText(value);
    }
    return;
  }
  if (sub === 'SET') {
    if (argv.length < 4 || argv.length % 2 !== 0)
      throw respError("wrong number of arguments for 'config|set' command");
    const config = c.server.config;
    const replication = c.server.replication;
    const updates: [string, string][] = [];
    const credentials: { user?: string; password?: string } = {};
    for (let i = 2; i < argv.length; i += 2) {
      const name = argv[i].toString('latin1').toLowerCase();
      if (replication !== undefined && PRIMARY_CREDENTIALS.has(name)) {
        // Kept in memory only, as Redis does without CONFIG REWRITE; restarts use `--masterauth`.
        const value = argv[i + 1].toString('utf8');
        if (name === 'masteruser') credentials.user = value;
        else credentials.password = value;
        continue;
      }
      if (!config.has(name)) {
        throw respError(
          `Unknown option or number of arguments for CONFIG SET - '${argv[i].toString('latin1')}'`,
        );
      }
      if (!MUTABLE_CONFIG.has(name)) {
        throw respError(
          `CONFIG SET failed (possibly related to argument '${name}') - can't set immutable config`,
        );
      }
      updates.push([name, argv[i + 1].toString('latin1')]);
    }
    for (const [name, value] of updates) config.set(name, value);
    replication?.setPrimaryCredentials(credentials);
    c.reply.ok();
    return;
  }
  if (sub === 'RESETSTAT') {
    const stats = c.server.stats;
    stats.commandsProcessed = 0;
    stats.connectionsReceived = 0;
    stats.netInputBytes = 0;
    stats.netOutputBytes = 0;
    stats.rejectedConnections = 0;
    const ks = c.server.keyspace.stats;
    ks.expiredKeys = 0;
    ks.hits = 0;
    ks.misses = 0;
    c.reply.ok();
    return;
  }
  if (sub === 'REWRITE') throw respError('The server is running without a config file');
  throw respError(`unknown subcommand '${argv[1].toString('latin1')}'. Try CONFIG HELP.`);
}

function commandInfo(c: Client, spec: CommandSpec | undefined): void {
  const r = c.reply;
  if (spec === undefined) {
    r.nullArray();
    return;
  }
  r.array(10);
  r.bulkText(spec.name);
  r.integer(spec.arity);
  const flags = flagNames(spec.flags);
  r.set(flags.length);
  for (const flag of flags) r.simple(flag);
  r.integer(spec.firstKey);
  r.integer(spec.lastKey);
  r.integer(spec.step);
  r.set(1);
  r.simple(`@${spec.group}`);
  r.array(0);
  r.array(0);
  r.array(0);
}

function commandDocs(c: Client, spec: CommandSpec): void {
  const r = c.reply;
  r.bulkText(spec.name);
  r.map(3);
  r.bulkText('summary');
  r.bulkText(spec.summary === '' ? `The ${spec.name.toUpperCase()} command.` : spec.summary);
  r.bulkText('since');
  r.bulkText(spec.since);
  r.bulkText('group');
  r.bulkText(spec.group);
}

function commandCommand(c: Client, argv: Buffer[]): void {
  const table = c.server.commands;
  if (argv.length === 1) {
    c.reply.array(table.size);
    for (const spec of table.values()) commandInfo(c, spec);
    return;
  }
  const sub = word(argv[1]);
  const names = argv.slice(2).map((a) => a.toString('latin1').toLowerCase());
  switch (sub) {
    case 'COUNT':
      c.reply.integer(table.size);
      return;
    case 'LIST':
      c.reply.array(table.size);
      for (const name of table.keys()) c.reply.bulkText(name);
      return;
    case 'INFO': {
      const specs = names.length === 0 ? [...table.values()] : names.map((n) => table.get(n));
      c.reply.array(specs.length);
      for (const spec of specs) commandInfo(c, spec);
      return;
    }
    case 'DOCS': {
      const specs = (names.length === 0 ? [...table.values()] : names.map((n) => table.get(n))).filter(
        (s): s is CommandSpec => s !== undefined,
      );
      c.reply.map(specs.length);
      for (const spec of specs) commandDocs(c, spec);
      return;
    }
    case 'GETKEYS': {
      const spec = names[0] === undefined ? undefined : table.get(names[0]);
      if (spec === undefined) throw respError('Invalid command specified');
      const args = argv.slice(2);
      if (spec.firstKey === 0) throw respError('The command has no key arguments');
      const last = spec.lastKey < 0 ? args.length + spec.lastKey : spec.lastKey;
      const keys: Buffer[] = [];
      for (let i = spec.firstKey; i <= last && i < args.length; i += spec.step) keys.push(args[i]);
      c.reply.array(keys.length);
      for (const key of keys) c.reply.bulk(key);
      return;
    }
    default:
      throw respError(`unknown subcommand '${argv[1].toString('latin1')}'. Try COMMAND HELP.`);
  }
}

/** The CONFIG GET view of a node (mutable ones may be CONFIG SET). */
export function initialConfig(port: number, host: string, dataDir: string): Map<string, string> {
  return new Map([
    ['databases', String(DATABASES)],
    ['port', String(port)],
    ['bind', host],
    ['dir', dataDir],
    ['save', ''],
    ['appendonly', 'no'],
    ['maxmemory', '0'],
    ['maxmemory-policy', 'noeviction'],
    ['timeout', '0'],
    ['hz', '10'],
    ['proto-max-bulk-len', String(512 * 1024 * 1024)],
    ['maxclients', '10000'],
    ['notify-keyspace-events', ''],
    ['slowlog-log-slower-than', '10000'],
    ['slowlog-max-len', '128'],
    ['lazyfree-lazy-expire', 'no'],
    ['replica-read-only', 'yes'],
    ['slave-read-only', 'yes'],
    ['cluster-enabled', 'no'],
  ]);
}

const SHUTDOWN_MODIFIERS = new Set(['NOSAVE', 'SAVE', 'NOW', 'FORCE', 'ABORT']);

/**
 * SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: stops the node as SIGTERM does. Every
 * acknowledged write is already durable, so SAVE and NOSAVE change nothing, and the
 * node does not wait for its replicas (they resume from their offset once it is back),
 * so there is never a shutdown in progress to ABORT. On success nothing is replied: the
 * connection closes, as Redis' does when its process exits.
 */
function shutdownCommand(c: Client, argv: Buffer[]): void {
  const modifiers = new Set(argv.slice(1).map((arg) => word(arg)));
  for (const modifier of modifiers) if (!SHUTDOWN_MODIFIERS.has(modifier)) throw syntaxError();
  if (modifiers.has('SAVE') && modifiers.has('NOSAVE')) throw syntaxError();
  if (modifiers.has('ABORT')) throw respError('No shutdown in progress.');
  const requestShutdown = c.server.requestShutdown;
  if (requestShutdown === undefined) throw respError('Errors trying to SHUTDOWN. Check logs.');
  // No reply: the connection ends here; the node stops once this command's turn is over.
  c.closeRequested = true;
  setImmediate(() => requestShutdown(`SHUTDOWN from ${clientName(c)}`));
}

const SAVE_RUNNING = 'Background save already in progress';
const clientName = (c: Client): string => `client id=${c.id} addr=${c.addr} user=${c.user?.name ?? ''}`;

async function saveCommand(c: Client): Promise<void> {
  if (c.server.saves.inProgress) throw respError(SAVE_RUNNING);
  try {
    await c.server.saves.run(`SAVE from ${clientName(c)}`);
  } catch {
    throw respError('Errors trying to SAVE. Check logs.');
  }
  c.reply.ok();
}

/** BGSAVE [SCHEDULE]: a save never waits for another kind of background work here, so it starts at once. */
function bgsaveCommand(c: Client, argv: Buffer[]): void {
  if (argv.length > 2 || (argv.length === 2 && word(argv[1]) !== 'SCHEDULE')) throw syntaxError();
  const saves = c.server.saves;
  if (saves.inProgress) throw respError(SAVE_RUNNING);
  // A failure is logged by the save itself, and shows in INFO persistence.
  saves.run(`BGSAVE from ${clientName(c)}`).catch(() => undefined);
  c.reply.simple('Background saving started');
}

export const serverCommands: CommandSpec[] = [
  command({
    name: 'info',
    arity: -1,
    flags: Flag.Loading,
    group: 'server',
    run: (c, argv) => c.reply.verbatim(info(c.server, argv)),
  }),
  command({
    name: 'config',
    arity: -2,
    flags: Flag.Admin | Flag.Loading,
    group: 'server',
    since: '2.0.0',
    run: configCommand,
  }),
  command({
    name: 'command',
    arity: -1,
    flags: Flag.Loading,
    group: 'server',
    since: '2.8.13',
    run: commandCommand,
  }),
  command({
    name: 'shutdown',
    arity: -1,
    flags: Flag.Admin | Flag.NoMulti | Flag.Loading,
    group: 'server',
    summary: 'Stops the node, as SIGTERM does.',
    run: shutdownCommand,
  }),
  command({
    name: 'save',
    arity: 1,
    flags: Flag.Admin | Flag.NoMulti | Flag.Async,
    group: 'server',
    since: '1.0.0',
    summary: 'Makes every acknowledged write durable on disk now, then replies.',
    run: () => undefined,
    runAsync: saveCommand,
  }),
  command({
    name: 'bgsave',
    arity: -1,
    flags: Flag.Admin,
    group: 'server',
    since: '1.0.0',
    summary: 'Makes every acknowledged write durable on disk, in the background.',
    run: bgsaveCommand,
  }),
  command({
    name: 'lastsave',
    arity: 1,
    flags: Flag.Fast | Flag.Loading,
    group: 'server',
    since: '1.0.0',
    summary: 'The Unix time of the last successful save.',
    run: (c) => c.reply.integer(c.server.saves.lastSave),
  }),
  command({
    name: 'time',
    arity: 1,
    flags: Flag.Fast | Flag.Loading,
    group: 'server',
    since: '2.6.0',
    run: (c) => {
      const micros = BigInt(Date.now()) * 1000n + ((process.hrtime.bigint() / 1000n) % 1000n);
      c.reply.array(2);
      c.reply.bulkText(String(micros / 1_000_000n));
      c.reply.bulkText(String(micros % 1_000_000n));
    },
  }),
];
