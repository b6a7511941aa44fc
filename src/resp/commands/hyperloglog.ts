/** HyperLogLog commands: PFADD, PFCOUNT, PFMERGE. */
import * as hll from '../../engines/kv/hyperloglog.js';
import { command, Flag, keyCommand, type CommandSpec } from '../command-spec.js';

const W = Flag.Write;
const R = Flag.ReadOnly;
const F = Flag.Fast;

export const hyperLogLogCommands: CommandSpec[] = [
  keyCommand({
    name: 'pfadd',
    arity: -2,
    flags: W | F,
    group: 'hyperloglog',
    since: '2.8.9',
    run: (c, argv) => c.reply.integer(hll.pfadd(c.server.keyspace, c.db, argv[1], argv.slice(2))),
  }),
  command({
    name: 'pfcount',
    arity: -2,
    flags: R,
    firstKey: 1,
    lastKey: -1,
    step: 1,
    group: 'hyperloglog',
    since: '2.8.9',
    run: (c, argv) => c.reply.integer(hll.pfcount(c.server.keyspace, c.db, argv.slice(1))),
  }),
  command({
    name: 'pfmerge',
    arity: -2,
    flags: W,
    firstKey: 1,
    lastKey: -1,
    step: 1,
    group: 'hyperloglog',
    since: '2.8.9',
    run: (c, argv) => {
      hll.pfmerge(c.server.keyspace, c.db, argv[1], argv.slice(2));
      c.reply.ok();
    },
  }),
];
