/** Pub/Sub: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH, PUBSUB. */
import type { PublishedMessage } from '../../services/node-replication/contracts.js';
import { word } from '../args.js';
import type { Client, ServerContext } from '../client.js';
import { command, Flag, type CommandSpec } from '../command-spec.js';
import { respError, wrongArity } from '../errors.js';
import type { ListenKind } from '../pubsub.js';

/** The reply names of each kind's subscribe and unsubscribe. */
const VERBS: Record<ListenKind, { readonly on: string; readonly off: string }> = {
  channel: { on: 'subscribe', off: 'unsubscribe' },
  pattern: { on: 'psubscribe', off: 'punsubscribe' },
  shard: { on: 'ssubscribe', off: 'sunsubscribe' },
};

/** The count a (un)subscribe reply carries: shard channels alone, or channels and patterns together. */
function countFor(c: Client, kind: ListenKind): number {
  return kind === 'shard' ? c.subscriptions.shard.size : c.subscriptions.count;
}

function confirm(c: Client, verb: string, name: Buffer | null, count: number): void {
  const r = c.reply;
  r.push(3);
  r.bulkText(verb);
  r.bulk(name);
  r.integer(count);
}

function subscribe(c: Client, kind: ListenKind, names: Buffer[]): void {
  for (const name of names) {
    c.server.pubsub.subscribe(c, kind, name);
    confirm(c, VERBS[kind].on, name, countFor(c, kind));
  }
}

/** Unsubscribes from `names`, or from everything of `kind` when none is given. */
function unsubscribe(c: Client, kind: ListenKind, names: Buffer[]): void {
  const hub = c.server.pubsub;
  const verb = VERBS[kind].off;
  if (names.length === 0) {
    const all = [...c.subscriptions[kind]];
    if (all.length === 0) confirm(c, verb, null, countFor(c, kind));
    for (const id of all) {
      hub.unsubscribe(c, kind, id);
      confirm(c, verb, Buffer.from(id, 'latin1'), countFor(c, kind));
    }
    return;
  }
  for (const name of names) {
    hub.unsubscribe(c, kind, name);
    confirm(c, verb, name, countFor(c, kind));
  }
}

function publish(c: Client, argv: Buffer[], shard: boolean): void {
  c.reply.integer(publishMessage(c.server, { channel: argv[1], message: argv[2], shard }));
}

/**
 * Delivers a message to this node's listeners and sends it on to its
 * replicas, both once the write running now (if any) has committed: they
 * never hear of data they cannot read yet. Returns the local listeners.
 */
export function publishMessage(server: ServerContext, { channel, message, shard }: PublishedMessage): number {
  const keyspace = server.keyspace;
  const receivers = server.pubsub.publish(channel, message, shard, (deliver) =>
    keyspace.afterCommit(deliver),
  );
  const primary = server.nodePrimary;
  if (primary?.hasReplicas === true) {
    // Sent behind the journal entries appended by then (a MULTI appends its entry at EXEC's end).
    const kept = { channel: Buffer.from(channel), message: Buffer.from(message), shard };
    keyspace.afterCommit(() => primary.publish(kept));
  }
  return receivers;
}

function pubsubCommand(c: Client, argv: Buffer[]): void {
  const sub = word(argv[1]);
  const hub = c.server.pubsub;
  const r = c.reply;
  switch (sub) {
    case 'CHANNELS':
    case 'SHARDCHANNELS': {
      if (argv.length > 3) {
        throw respError(
          `unknown subcommand or wrong number of arguments for '${argv[1].toString('latin1')}'. Try PUBSUB HELP.`,
        );
      }
      const channels = hub.activeChannels(sub === 'CHANNELS' ? 'channel' : 'shard', argv[2]);
      r.array(channels.length);
      for (const channel of channels) r.bulk(channel);
      return;
    }
    case 'NUMSUB':
    case 'SHARDNUMSUB': {
      const kind = sub === 'NUMSUB' ? 'channel' : 'shard';
      r.array((argv.length - 2) * 2);
      for (const channel of argv.slice(2)) {
        r.bulk(channel);
        r.integer(hub.listeners(kind, channel));
      }
      return;
    }
    case 'NUMPAT':
      if (argv.length !== 2) throw wrongArity('pubsub|numpat');
      r.integer(hub.patternCount);
      return;
    case 'HELP': {
      const lines = [
        'PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
        'CHANNELS [<pattern>]',
        "    Return the currently active channels matching a <pattern> (default: '*').",
        'NUMPAT',
        '    Return number of subscriptions to patterns.',
        'NUMSUB [<channel> ...]',
        '    Return the number of subscribers for the specified channels, excluding',
        '    pattern subscriptions(default: no channels).',
        'SHARDCHANNELS [<pattern>]',
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        'SHARDNUMSUB [<shardchannel> ...]',
        '    Return the number of subscribers for the specified shard level channel(s)',
        'HELP',
        '    Prints this help.',
      ];
      r.array(lines.length);
      for (const line of lines) r.simple(line);
      return;
    }
    default:
      throw respError(`unknown subcommand '${argv[1].toString('latin1')}'. Try PUBSUB HELP.`);
  }
}

/** Listening and publishing never touch the keyspace; a read-only replica serves them too, as Redis does. */
const LISTEN = Flag.Loading;

export const pubsubCommands: CommandSpec[] = [
  command({
    name: 'subscribe',
    since: '2.0.0',
    arity: -2,
    flags: LISTEN,
    group: 'pubsub',
    summary: 'Listens for messages published to channels.',
    run: (c, argv) => subscribe(c, 'channel', argv.slice(1)),
  }),
  command({
    name: 'unsubscribe',
    since: '2.0.0',
    arity: -1,
    flags: LISTEN,
    group: 'pubsub',
    summary: 'Stops listening to channels (all of them without arguments).',
    run: (c, argv) => unsubscribe(c, 'channel', argv.slice(1)),
  }),
  command({
    name: 'psubscribe',
    since: '2.0.0',
    arity: -2,
    flags: LISTEN,
    group: 'pubsub',
    summary: 'Listens for messages published to channels matching glob patterns.',
    run: (c, argv) => subscribe(c, 'pattern', argv.slice(1)),
  }),
  command({
    name: 'punsubscribe',
    since: '2.0.0',
    arity: -1,
    flags: LISTEN,
    group: 'pubsub',
    summary: 'Stops listening to patterns (all of them without arguments).',
    run: (c, argv) => unsubscribe(c, 'pattern', argv.slice(1)),
  }),
  command({
    name: 'ssubscribe',
    arity: -2,
    flags: LISTEN,
    firstKey: 1,
    lastKey: -1,
    step: 1,
    group: 'pubsub',
    since: '7.0.0',
    summary: 'Listens for messages published to shard channels.',
    run: (c, argv) => subscribe(c, 'shard', argv.slice(1)),
  }),
  command({
    name: 'sunsubscribe',
    arity: -1,
    flags: LISTEN,
    firstKey: 1,
    lastKey: -1,
    step: 1,
    group: 'pubsub',
    since: '7.0.0',
    summary: 'Stops listening to shard channels (all of them without arguments).',
    run: (c, argv) => unsubscribe(c, 'shard', argv.slice(1)),
  }),
  command({
    name: 'publish',
    arity: 3,
    flags: LISTEN | Flag.Fast,
    group: 'pubsub',
    since: '2.0.0',
    summary: 'Posts a message to a channel; replies how many listeners receive it.',
    run: (c, argv) => publish(c, argv, false),
  }),
  command({
    name: 'spublish',
    arity: 3,
    flags: LISTEN | Flag.Fast,
    firstKey: 1,
    lastKey: 1,
    step: 1,
    group: 'pubsub',
    since: '7.0.0',
    summary: 'Posts a message to a shard channel.',
    run: (c, argv) => publish(c, argv, true),
  }),
  command({
    name: 'pubsub',
    arity: -2,
    flags: LISTEN,
    group: 'pubsub',
    since: '2.8.0',
    summary: 'Inspects the Pub/Sub state (CHANNELS, NUMSUB, NUMPAT, SHARDCHANNELS, SHARDNUMSUB).',
    run: pubsubCommand,
  }),
];
