/** MULTI / EXEC / DISCARD / WATCH / UNWATCH. */
import type { Client } from '../client.js';
import { command, Flag, type CommandSpec } from '../command-spec.js';
import { runAdmitted } from '../dispatch.js';
import { respError } from '../errors.js';

const IMMEDIATE = Flag.Immediate | Flag.Fast | Flag.Loading;

function discardTransaction(c: Client): void {
  c.multi = null;
  c.server.watches.unwatchAll(c);
}

export const transactionCommands: CommandSpec[] = [
  command({
    name: 'multi',
    arity: 1,
    flags: IMMEDIATE,
    group: 'transactions',
    since: '1.2.0',
    run: (c) => {
      if (c.multi !== null) throw respError('MULTI calls can not be nested');
      c.multi = { queue: [], dirty: false };
      c.reply.ok();
    },
  }),
  command({
    name: 'exec',
    arity: 1,
    // Runs inside a storage write, so the queued commands apply atomically and are journaled as one entry.
    flags: Flag.Immediate | Flag.Ordered | Flag.Loading,
    group: 'transactions',
    since: '1.2.0',
    run: (c) => {
      const multi = c.multi;
      if (multi === null) throw respError('EXEC without MULTI');
      const dirtyWatch = c.watchDirty;
      discardTransaction(c);
      if (multi.dirty) throw respError('Transaction discarded because of previous errors.', 'EXECABORT');
      if (dirtyWatch) {
        c.reply.nullArray();
        return;
      }
      c.reply.array(multi.queue.length);
      c.server.keyspace.group(() => {
        for (const queued of multi.queue) runAdmitted(c, queued.spec, queued.argv);
      });
    },
  }),
  command({
    name: 'discard',
    arity: 1,
    flags: IMMEDIATE,
    group: 'transactions',
    since: '2.0.0',
    run: (c) => {
      if (c.multi === null) throw respError('DISCARD without MULTI');
      discardTransaction(c);
      c.reply.ok();
    },
  }),
  command({
    name: 'watch',
    arity: -2,
    // Ordered: it registers after every write already executed, so a key read after WATCH is current.
    flags: IMMEDIATE | Flag.Ordered,
    firstKey: 1,
    lastKey: -1,
    step: 1,
    group: 'transactions',
    since: '2.2.0',
    run: (c, argv) => {
      if (c.multi !== null) throw respError('WATCH inside MULTI is not allowed');
      for (const key of argv.slice(1)) c.server.watches.watch(c, c.db, Buffer.from(key));
      c.reply.ok();
    },
  }),
  command({
    name: 'unwatch',
    arity: 1,
    flags: Flag.Fast | Flag.Loading,
    group: 'transactions',
    since: '2.2.0',
    run: (c) => {
      c.server.watches.unwatchAll(c);
      c.reply.ok();
    },
  }),
];
