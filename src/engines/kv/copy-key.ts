/**
 * COPY and MOVE: a key rebuilt under another name or in another database
 * through the type operations, so that each journals what it wrote (a
 * replica replays those writes), its TTL carried over.
 */
import { hgetall, hset } from './hashes.js';
import type { Keyspace } from './keyspace.js';
import { push, lrange } from './lists.js';
import { KeyType } from './record.js';
import { sadd, smembers } from './sets.js';
import { set } from './strings.js';
import { zadd, zrangeByRank } from './zsets.js';

/** COPY: false when `source` is missing, or `target` exists and `replace` is off. */
export function copyKey(
  ks: Keyspace,
  db: number,
  source: Buffer,
  targetDb: number,
  target: Buffer,
  replace: boolean,
): boolean {
  const record = ks.lookup(db, source);
  if (record === undefined) return false;
  // Everything is read (and copied) before the first write: views die at the next read.
  const copy = (bytes: Buffer): Buffer => Buffer.from(bytes);
  const stringValue = record.type === KeyType.String ? copy(record.value) : null;
  if (!replace && ks.lookup(targetDb, target) !== undefined) return false;
  const expireAt = record.expireAt;
  let write: () => void;
  switch (record.type) {
    case KeyType.String: {
      const value = stringValue!;
      write = () => set(ks, targetDb, target, value, expireAt === 0 ? {} : { expireAt });
      break;
    }
    case KeyType.Hash: {
      const pairs = hgetall(ks, db, source).flatMap(([field, value]) => [copy(field), copy(value)]);
      write = () => hset(ks, targetDb, target, pairs);
      break;
    }
    case KeyType.List: {
      const values = lrange(ks, db, source, 0, -1).map(copy);
      write = () => push(ks, targetDb, target, 'right', values);
      break;
    }
    case KeyType.Set: {
      const members = smembers(ks, db, source).map(copy);
      write = () => sadd(ks, targetDb, target, members);
      break;
    }
    case KeyType.ZSet: {
      const items = zrangeByRank(ks, db, source, 0, -1, false);
      const scores = items.map((item) => item.score);
      const members = items.map((item) => copy(item.member));
      write = () => zadd(ks, targetDb, target, scores, members, {});
      break;
    }
  }
  ks.group(() => {
    ks.del(targetDb, [target]);
    write();
    if (expireAt !== 0 && record.type !== KeyType.String) ks.expireAt(targetDb, target, expireAt);
  });
  return true;
}

/** MOVE: false when `key` is missing here or exists in `targetDb`. */
export function moveKey(ks: Keyspace, db: number, key: Buffer, targetDb: number): boolean {
  if (ks.lookup(db, key) === undefined || ks.lookup(targetDb, key) !== undefined) return false;
  return ks.group(() => {
    copyKey(ks, db, key, targetDb, key, false);
    ks.del(db, [key]);
    return true;
  });
}
