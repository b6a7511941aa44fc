/**
 * Small pieces the benches share: argument checks, percentiles, and a
 * continuous `_changes` watcher that reports each row's id as it arrives
 * (for write → visible latencies), and a paced writer measuring them.
 */
import { performance } from 'node:perf_hooks';
import { bodyOf, type HttpClient } from './http-client.js';

export function positiveInt(raw: string | undefined, name: string, fallback: number): number {
  return intAtLeast(1, raw, name, fallback);
}

export function nonNegativeInt(raw: string | undefined, name: string, fallback: number): number {
  return intAtLeast(0, raw, name, fallback);
}

function intAtLeast(min: number, raw: string | undefined, name: string, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min)
    throw new Error(`--${name} must be an integer of at least ${min} (got ${raw})`);
  return n;
}

/** The p-th percentile of sorted values, to 0.1. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round((sorted[i] ?? Number.NaN) * 10) / 10;
}

/**
 * Follows `{dbUrl}/_changes?feed=continuous` from `since` (the database's
 * current seq, so a row committed before the request arrives is not missed),
 * calling `onRow(id)` as each row arrives, until `signal` aborts.
 */
export async function watchChangeIds(
  dbUrl: string,
  since: number,
  authorization: string,
  signal: AbortSignal,
  onRow: (id: string) => void,
): Promise<void> {
  const res = await fetch(`${dbUrl}/_changes?feed=continuous&since=${since}&heartbeat=5000`, {
    headers: { authorization },
    signal,
  });
  if (res.status !== 200 || res.body === null) throw new Error(`watch ${dbUrl}: HTTP ${res.status}`);
  const decoder = new TextDecoder();
  let buffered = '';
  try {
    for await (const chunk of res.body) {
      buffered += decoder.decode(chunk as Uint8Array, { stream: true });
      let start = 0;
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n', start)) {
        const match = /"id":"([^"]+)"/.exec(buffered.slice(start, nl));
        start = nl + 1;
        if (match?.[1] !== undefined) onRow(match[1]);
      }
      buffered = buffered.slice(start);
    }
  } catch (err) {
    if (!signal.aborted) throw err;
  }
}

export function perSecond(count: number, ms: number): number {
  return Math.round((count / ms) * 1000);
}

export interface LatencyFigures {
  readonly writes: number;
  readonly seen: number;
  /** From the write's acknowledgement to its row in the watched feed. */
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly max_ms: number;
  /** From the moment the write was sent. */
  readonly from_send_p50_ms: number;
  readonly from_send_p99_ms: number;
  readonly achieved_writes_per_s: number;
  /**
   * The same figures for the warm-up writes before the measured ones: the same pace for
   * `seconds` while freshly started processes compile their hot paths (not in the targets).
   */
  readonly warmup: {
    readonly seconds: number;
    readonly p50_ms: number;
    readonly p99_ms: number;
    readonly max_ms: number;
  };
}

/**
 * Writes `rate` small documents per second with `PUT {dbPath}/…` and reports when each
 * showed up in `seenAt` (id → arrival time, filled by a feed watcher the caller runs),
 * waiting up to 30 s for the last ones. The first `warmupSeconds` of writes (ids
 * `w0000000…`) only warm the path up; the figures are those of the next `seconds` (ids
 * `l0000000…`), written at the same pace without a pause in between.
 */
export async function pacedWriteLatency(
  client: HttpClient,
  dbPath: string,
  rate: number,
  seconds: number,
  seenAt: ReadonlyMap<string, number>,
  warmupSeconds = 3,
): Promise<LatencyFigures> {
  const warmups = warmupSeconds * rate;
  const total = seconds * rate;
  const body = Buffer.from(JSON.stringify({ type: 'latency', payload: 'p'.repeat(200) }));
  const sentAt = new Map<string, number>();
  const ackedAt = new Map<string, number>();
  const inFlight = new Set<Promise<void>>();
  const idOf = (n: number): string =>
    n < warmups ? `w${String(n).padStart(7, '0')}` : `l${String(n - warmups).padStart(7, '0')}`;
  const t0 = performance.now();
  let measuredFrom = t0;
  let written = 0;
  while (written < warmups + total) {
    const due = Math.min(warmups + total, Math.floor(((performance.now() - t0) * rate) / 1000) + 1);
    for (; written < due; written++) {
      const id = idOf(written);
      if (written === warmups) measuredFrom = performance.now();
      sentAt.set(id, performance.now());
      const p = client.request('PUT', `${dbPath}/${id}`, body).then((res) => {
        if (res.status !== 201 && res.status !== 202)
          throw new Error(`PUT ${id}: HTTP ${res.status} ${bodyOf(res).toString('utf8')}`);
        ackedAt.set(id, performance.now());
      });
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(inFlight);
  const writeMs = performance.now() - measuredFrom;
  const allSeen = (): boolean => [...sentAt.keys()].every((id) => seenAt.has(id));
  for (const deadline = Date.now() + 30_000; !allSeen() && Date.now() < deadline;)
    await new Promise((r) => setTimeout(r, 20));
  const fromAck: number[] = [];
  const fromSend: number[] = [];
  const warmupFromAck: number[] = [];
  for (const [id, sent] of sentAt) {
    const seen = seenAt.get(id);
    const acked = ackedAt.get(id);
    if (seen === undefined || acked === undefined) continue;
    if (id.startsWith('w')) {
      warmupFromAck.push(Math.max(0, seen - acked));
      continue;
    }
    fromAck.push(Math.max(0, seen - acked));
    fromSend.push(seen - sent);
  }
  const byValue = (x: number, y: number): number => x - y;
  fromAck.sort(byValue);
  fromSend.sort(byValue);
  warmupFromAck.sort(byValue);
  return {
    writes: total,
    seen: fromAck.length,
    p50_ms: percentile(fromAck, 50),
    p99_ms: percentile(fromAck, 99),
    max_ms: percentile(fromAck, 100),
    from_send_p50_ms: percentile(fromSend, 50),
    from_send_p99_ms: percentile(fromSend, 99),
    achieved_writes_per_s: perSecond(total, writeMs),
    warmup: {
      seconds: warmupSeconds,
      p50_ms: percentile(warmupFromAck, 50),
      p99_ms: percentile(warmupFromAck, 99),
      max_ms: percentile(warmupFromAck, 100),
    },
  };
}
