/**
 * OBJECT and MEMORY: what tools ask about a key's representation and size,
 * answered as Redis 7.0 would hold the value (see `engines/kv/redis-layout.ts`).
 */
import { encodingOf, memoryUsageOf, refcountOf } from '../../engines/kv/redis-layout.js';
import { int, word } from '../args.js';
import type { Client } from '../client.js';
import { command, Flag, type CommandSpec } from '../command-spec.js';
import { respError, syntaxError, wrongArity } from '../errors.js';

/** MEMORY USAGE's default: elements of a large collection looked at. */
const DEFAULT_SAMPLES = 5;

function help(c: Client, lines: readonly string[]): void {
  c.reply.array(lines.length);
  for (const line of lines) c.reply.simple(line);
}

function objectCommand(c: Client, argv: Buffer[]): void {
  const sub = word(argv[1]);
  const ks = c.server.keyspace;
  if (sub === 'HELP') {
    help(c, [
      'OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
      'ENCODING <key>',
      '    Return the kind of internal representation used in order to store the value',
      '    associated with a <key>.',
      'FREQ <key>',
      '    Return the access frequency index of the <key>. The returned integer is',
      '    proportional to the logarithm of the recent access frequency of the key.',
      'IDLETIME <key>',
      '    Return the idle time of the <key>, that is the approximated number of',
      '    seconds elapsed since the last access to the key.',
      'REFCOUNT <key>',
      '    Return the number of references of the value associated with the specified',
      '    <key>.',
      'HELP',
      '    Prints this help.',
    ]);
    return;
  }
  if (sub !== 'ENCODING' && sub !== 'REFCOUNT' && sub !== 'FREQ' && sub !== 'IDLETIME') {
    throw respError(`unknown subcommand '${argv[1].toString('latin1')}'. Try OBJECT HELP.`);
  }
  if (argv.length !== 3) throw wrongArity(`object|${sub.toLowerCase()}`);
  const key = argv[2];
  if (ks.lookup(c.db, key) === undefined) {
    c.reply.nullBulk();
    return;
  }
  switch (sub) {
    case 'ENCODING':
      c.reply.bulkText(encodingOf(ks, c.db, key)!);
      return;
    case 'REFCOUNT':
      c.reply.integer(refcountOf(ks, c.db, key)!);
      return;
    case 'FREQ':
      // Redis' answer under its default maxmemory-policy (noeviction): LFU counters are off.
      throw respError(
        'An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when ' +
          'switching between policies at runtime LRU and LFU data will take some time to adjust.',
      );
    default:
      throw respError('Doppel does not track when a key was last accessed, idle time not tracked.');
  }
}

function memoryCommand(c: Client, argv: Buffer[]): void {
  const sub = word(argv[1]);
  if (sub === 'HELP') {
    help(c, [
      'MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
      'USAGE <key> [SAMPLES <count>]',
      '    Return memory in bytes used by <key> and its value. Nested values are',
      '    sampled up to <count> times (default: 5, 0 means sample all).',
      'HELP',
      '    Prints this help.',
    ]);
    return;
  }
  if (sub !== 'USAGE')
    throw respError(`unknown subcommand '${argv[1].toString('latin1')}'. Try MEMORY HELP.`);
  if (argv.length < 3) throw wrongArity('memory|usage');
  let samples = DEFAULT_SAMPLES;
  for (let i = 3; i < argv.length; i++) {
    if (word(argv[i]) !== 'SAMPLES' || i + 1 >= argv.length) throw syntaxError();
    samples = int(argv[++i]);
    if (samples < 0) throw syntaxError();
  }
  const usage = memoryUsageOf(c.server.keyspace, c.db, argv[2], samples);
  if (usage === undefined) c.reply.nullBulk();
  else c.reply.integer(usage);
}

export const objectCommands: CommandSpec[] = [
  command({
    name: 'object',
    arity: -2,
    flags: Flag.ReadOnly,
    group: 'generic',
    since: '2.2.3',
    summary: "Tells a key's encoding (as Redis 7.0 would hold the value) and reference count.",
    run: objectCommand,
  }),
  command({
    name: 'memory',
    arity: -2,
    flags: Flag.ReadOnly,
    group: 'server',
    since: '4.0.0',
    summary: 'MEMORY USAGE: the bytes Redis 7.0 would use for a key and its value.',
    run: memoryCommand,
  }),
];
