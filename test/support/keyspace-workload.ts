/**
 * A keyspace workload for replication tests: 100,000 keys of every type
 * (some large enough to leave Redis' compact encodings, a third with TTLs),
 * a writer of every kind of change a primary propagates, and a key-by-key
 * comparison of two servers (type, value, absolute expiry).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { int, prng, type Rng } from './prng.js';
import type { RespClient } from './resp-client.js';
import { RespError, type Arg, type Reply } from './resp-client.js';

export const KEYS = 100_000;
const BATCH = 2000;

/** The commands that create key `i` (every type, some big enough to leave the compact encodings). */
function keyCommands(i: number): Arg[][] {
  const ttl = i % 3 === 0 ? 600 + (i % 1000) : 0;
  const big = i % 500 === 7;
  const kind = i % 5;
  const out: Arg[][] = [];
  const key = `k:${kind}:${i}`;
  switch (kind) {
    case 0: {
      const value = big ? `lzf-${'abcdef'.repeat(1000)}-${i}` : i % 4 === 0 ? String(i * 7) : `value-${i}`;
      out.push(ttl === 0 ? ['SET', key, value] : ['SET', key, value, 'EX', ttl]);
      break;
    }
    case 1: {
      const n = big ? 300 : 3 + (i % 3);
      out.push([
        'RPUSH',
        key,
        ...Array.from({ length: n }, (_, j) => (j === 5 && big ? 'L'.repeat(9000) : `e${j}-${i}`)),
      ]);
      break;
    }
    case 2: {
      const n = big ? 700 : 4;
      out.push([
        'SADD',
        key,
        ...Array.from({ length: n }, (_, j) => (i % 2 === 0 ? String(j * 1000 + i) : `m${j}`)),
      ]);
      break;
    }
    case 3: {
      const n = big ? 600 : 3;
      const args: Arg[] = [];
      for (let j = 0; j < n; j++) args.push(`f${j}`, j === 1 && i % 7 === 0 ? 'V'.repeat(100) : `v${j}-${i}`);
      out.push(['HSET', key, ...args]);
      break;
    }
    default: {
      const n = big ? 200 : 3;
      const args: Arg[] = [];
      for (let j = 0; j < n; j++) args.push(String(j === 0 ? i : (i % 97) / (j + 1)), `z${j}`);
      out.push(['ZADD', key, ...args]);
    }
  }
  if (ttl !== 0 && kind !== 0) out.push(['EXPIRE', key, ttl]);
  return out;
}

/** Writes the KEYS keys (db 0, every tenth in db 1) through `client`, which it closes. */
export async function loadKeys(client: RespClient): Promise<void> {
  try {
    let batch: Arg[][] = [];
    for (let i = 0; i < KEYS; i++) {
      const db = i % 10 === 0 ? 1 : 0;
      batch.push(['SELECT', db], ...keyCommands(i));
      if (batch.length >= BATCH || i === KEYS - 1) {
        const replies = await client.pipeline(batch);
        const failed = replies.find((r) => r instanceof RespError);
        assert.equal(failed, undefined, `loading failed: ${String(failed)}`);
        batch = [];
      }
    }
  } finally {
    client.close();
  }
}

/** Random writes of every kind Redis propagates, over the loaded keys, until stopped. */
export class Writer {
  #stopped = false;
  readonly done: Promise<number>;

  constructor(open: () => Promise<RespClient>, seed: number) {
    this.done = this.#run(open, prng(seed));
  }

  async stop(): Promise<number> {
    this.#stopped = true;
    return this.done;
  }

  async #run(open: () => Promise<RespClient>, rng: Rng): Promise<number> {
    const client = await open();
    let written = 0;
    try {
      while (!this.#stopped) {
        const batch: Arg[][] = [];
        for (let n = 0; n < 100; n++) batch.push(...randomWrite(rng));
        await client.pipeline(batch);
        written += batch.length;
        await sleep(2);
      }
    } finally {
      client.close();
    }
    return written;
  }
}

function randomWrite(rng: Rng): Arg[][] {
  const i = int(rng, KEYS);
  const db = i % 10 === 0 ? 1 : 0;
  const kind = i % 5;
  const key = `k:${kind}:${i}`;
  const select: Arg[] = ['SELECT', db];
  const pick = int(rng, 20);
  switch (pick) {
    case 0:
      return [select, ['DEL', key]];
    case 1:
      return [select, ['EXPIRE', key, 300 + int(rng, 300)]];
    case 2:
      return [select, ['PERSIST', key]];
    case 3:
      return [select, ['SET', `short:${int(rng, 500)}`, 'x', 'PX', 300 + int(rng, 700)]];
    case 4:
      return [
        select,
        ['MULTI'],
        ['INCR', `counter:${int(rng, 50)}`],
        ['LPUSH', `mlist:${int(rng, 50)}`, 'a', 'b'],
        ['EXEC'],
      ];
    case 5:
      return [select, ['INCRBYFLOAT', `float:${int(rng, 50)}`, '1.5']];
    case 6:
      return [select, ['RENAME', key, `renamed:${i}`]];
    case 7:
      return [select, ['GETDEL', key]];
    default:
      break;
  }
  // Another key of the same type, in whichever database this command selected.
  const other = `k:${kind}:${(i + 5 * (1 + int(rng, 50))) % KEYS}`;
  switch (kind) {
    case 0: {
      const strings: Arg[][] = [
        ['APPEND', key, '+'],
        ['SET', key, `new-${int(rng, 1e6)}`, 'KEEPTTL'],
        ['SETBIT', key, int(rng, 120), int(rng, 2)],
        ['BITOP', ['AND', 'OR', 'XOR'][int(rng, 3)], `bitop:${int(rng, 20)}`, key, other],
        [
          'PFADD',
          `hll:${int(rng, 10)}`,
          ...Array.from({ length: 1 + int(rng, 40) }, () => `v${int(rng, 5000)}`),
        ],
        // On Redis a PFCOUNT that refreshes the cached count is propagated (and must cache there too).
        ['PFCOUNT', `hll:${int(rng, 10)}`],
      ];
      return [select, strings[pick % strings.length]];
    }
    case 1: {
      const lists: Arg[][] = [
        ['LPOP', key],
        ['RPUSH', key, 'pushed'],
        ['LTRIM', key, 1, -1],
        ['LMOVE', key, other, 'RIGHT', 'LEFT'],
        ['LINSERT', key, int(rng, 2) === 0 ? 'BEFORE' : 'AFTER', `e1-${i}`, 'inserted'],
        ['RPOPLPUSH', key, key],
      ];
      return [select, lists[pick % lists.length]];
    }
    case 2: {
      const sets: Arg[][] = [
        ['SPOP', key],
        ['SADD', key, `n${int(rng, 9)}`],
        ['SREM', key, 'm1'],
        ['SMOVE', key, other, 'm2'],
        [['SINTERSTORE', 'SUNIONSTORE', 'SDIFFSTORE'][int(rng, 3)], `stored:${int(rng, 20)}`, key, other],
      ];
      return [select, sets[pick % sets.length]];
    }
    case 3: {
      const hashes: Arg[][] = [
        ['HINCRBY', key, 'count', 1],
        ['HSET', key, 'f9', 'x'],
        ['HDEL', key, 'f0'],
        ['COPY', key, `copied:${int(rng, 20)}`, 'DB', int(rng, 2), 'REPLACE'],
        ['MOVE', key, 1 - db],
      ];
      return [select, hashes[pick % hashes.length]];
    }
    default: {
      const zsets: Arg[][] = [
        ['ZINCRBY', key, 2.5, 'z1'],
        ['ZREM', key, 'z0'],
        ['ZREMRANGEBYSCORE', key, '(0', 1.5],
        [int(rng, 2) === 0 ? 'ZPOPMIN' : 'ZPOPMAX', key],
        ['ZREMRANGEBYRANK', key, -1, -1],
        ['ZUNIONSTORE', `zstored:${int(rng, 20)}`, 2, key, other, 'WEIGHTS', 1, 0.5, 'AGGREGATE', 'MAX'],
      ];
      if (pick % 7 === 6) {
        // By lex on members of one score (Redis leaves mixed scores unspecified).
        const lex = `lex:${int(rng, 20)}`;
        return [select, ['ZADD', lex, 0, 'a', 0, 'b', 0, 'c'], ['ZREMRANGEBYLEX', lex, '(a', '[b']];
      }
      return [select, zsets[pick % zsets.length]];
    }
  }
}

export async function scanAll(client: RespClient, db: number): Promise<string[]> {
  await client.call('SELECT', db);
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = (await client.call('SCAN', cursor, 'COUNT', 5000)) as [string, string[]];
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys.sort();
}

/** type, value (canonical), PEXPIRETIME of each key. */
export async function describeKeys(
  client: RespClient,
  db: number,
  keys: string[],
): Promise<[string, string, number][]> {
  await client.call('SELECT', db);
  const out: [string, string, number][] = [];
  for (let at = 0; at < keys.length; at += 1000) {
    const slice = keys.slice(at, at + 1000);
    const types = (await client.pipeline(slice.map((k) => ['TYPE', k]))) as string[];
    const reads: Arg[][] = [];
    slice.forEach((key, j) => {
      const read: Record<string, Arg[]> = {
        string: ['GET', key],
        list: ['LRANGE', key, 0, -1],
        set: ['SMEMBERS', key],
        hash: ['HGETALL', key],
        zset: ['ZRANGE', key, 0, -1, 'WITHSCORES'],
      };
      reads.push(read[types[j]] ?? ['TYPE', key], ['PEXPIRETIME', key]);
    });
    const replies = await client.pipeline(reads);
    slice.forEach((_, j) => {
      const value = replies[2 * j];
      const type = types[j];
      let text: string;
      if (type === 'set') text = JSON.stringify([...(value as string[])].sort());
      else if (type === 'hash') {
        const pairs = value as string[];
        const fields: string[] = [];
        for (let p = 0; p < pairs.length; p += 2) fields.push(`${pairs[p]}=${pairs[p + 1]}`);
        text = JSON.stringify(fields.sort());
      } else if (type === 'zset') {
        // Compared as numbers: Redis 7.0 prints %.17g, Doppel the shortest exact form (same double).
        const pairs = value as string[];
        const members: string[] = [];
        for (let p = 0; p < pairs.length; p += 2) members.push(`${pairs[p]}=${Number(pairs[p + 1])}`);
        text = JSON.stringify(members);
      } else text = JSON.stringify(value);
      out.push([type, text, replies[2 * j + 1] as number]);
    });
  }
  return out;
}

/** Compares every key of dbs 0 and 1 of two servers; returns how many were compared. */
export async function assertSameKeyspace(want: RespClient, got: RespClient): Promise<number> {
  let compared = 0;
  for (const db of [0, 1]) {
    const [wantKeys, gotKeys] = await Promise.all([scanAll(want, db), scanAll(got, db)]);
    const gotSet = new Set(gotKeys);
    const wantSet = new Set(wantKeys);
    const missing = wantKeys.filter((k) => !gotSet.has(k));
    const extra = gotKeys.filter((k) => !wantSet.has(k));
    assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, `db ${db}: the same keys`);
    const [expected, actual] = await Promise.all([
      describeKeys(want, db, wantKeys),
      describeKeys(got, db, wantKeys),
    ]);
    for (let i = 0; i < expected.length; i++) {
      const [type, value, ttl] = expected[i];
      const [gotType, gotValue, gotTtl] = actual[i];
      const key = wantKeys[i];
      assert.equal(gotType, type, `db ${db} ${key}: type`);
      assert.equal(gotValue, value, `db ${db} ${key}: value`);
      // Absolute expiry times travel as absolute ms, so they match exactly.
      assert.equal(gotTtl, ttl, `db ${db} ${key}: expire time`);
    }
    compared += expected.length;
  }
  // Both clients go back to db 0, where callers expect them.
  await Promise.all([want.call('SELECT', 0), got.call('SELECT', 0)]);
  return compared;
}

export function field(info: Reply, name: string): string {
  const match = new RegExp(`^${name}:(.*)$`, 'm').exec(typeof info === 'string' ? info : '');
  return match?.[1]?.trim() ?? '';
}

export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
