/**
 * Small pieces the benches share: argument checks, percentiles, and a
 * continuous `_changes` watcher that reports each row's id as it arrives
 * (for write → visible latencies).
 */

export function positiveInt(raw: string | undefined, name: string, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer (got ${raw})`);
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
