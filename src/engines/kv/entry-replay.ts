/**
 * Replays a keyspace journal entry (`KvEntry`) on a node replica: each
 * mutation runs through the same functions the RESP commands use, so the
 * replica's rows end up as the primary's and the entry it journals matches
 * the one it replays. Must run inside `Keyspace.replaying`.
 */
import type { KvEntry, KvMutation } from '../journal/journal-entry.js';
import { hdel, hset } from './hashes.js';
import type { Keyspace } from './keyspace.js';
import { lrem, lset, ltrim, pop, push } from './lists.js';
import { sadd, srem } from './sets.js';
import { append, set, setRange } from './strings.js';
import { zadd, zrem } from './zsets.js';

export function replayKvEntry(ks: Keyspace, entry: KvEntry): void {
  if (entry.op === 'multi') for (const op of entry.ops) replayMutation(ks, op);
  else replayMutation(ks, entry);
}

function replayMutation(ks: Keyspace, m: KvMutation): void {
  switch (m.op) {
    case 'flushall':
      ks.flushAll();
      return;
    case 'flushdb':
      ks.flushDb(m.db);
      return;
    case 'swapdb':
      ks.swapDb(m.db, m.with);
      return;
    case 'set':
      if (m.keepttl === true) set(ks, m.db, m.key, m.value, { keepTtl: true });
      else if (m.pxat !== undefined) set(ks, m.db, m.key, m.value, { expireAt: m.pxat });
      else set(ks, m.db, m.key, m.value);
      return;
    case 'append':
      append(ks, m.db, m.key, m.value);
      return;
    case 'setrange':
      setRange(ks, m.db, m.key, m.offset, m.value);
      return;
    case 'del':
      ks.del(m.db, m.keys);
      return;
    case 'pexpireat':
      ks.expireAt(m.db, m.key, m.pxat);
      return;
    case 'persist':
      ks.persist(m.db, m.key);
      return;
    case 'rename':
      ks.rename(m.db, m.key, m.to);
      return;
    case 'hset':
      hset(ks, m.db, m.key, m.pairs);
      return;
    case 'hdel':
      hdel(ks, m.db, m.key, m.fields);
      return;
    case 'push':
      push(ks, m.db, m.key, m.side, m.values);
      return;
    case 'pop':
      pop(ks, m.db, m.key, m.side, m.count);
      return;
    case 'lset':
      lset(ks, m.db, m.key, m.index, m.value);
      return;
    case 'lrem':
      lrem(ks, m.db, m.key, m.count, m.value);
      return;
    case 'ltrim':
      ltrim(ks, m.db, m.key, m.start, m.stop);
      return;
    case 'sadd':
      sadd(ks, m.db, m.key, m.members);
      return;
    case 'srem':
      srem(ks, m.db, m.key, m.members);
      return;
    case 'zadd':
      zadd(ks, m.db, m.key, m.scores, m.members);
      return;
    case 'zrem':
      zrem(ks, m.db, m.key, m.members);
      return;
  }
}
