/**
 * Polling helpers for end-to-end tests: wait for a condition that another
 * process makes true, and check HTTP replies.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { JsonResponse } from './doppel-process.js';

/**
 * Polls `probe` every `intervalMs` until it returns something other than
 * undefined; a probe that throws counts as "not yet" (its last error is in
 * the failure message).
 */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      assert.fail(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await sleep(intervalMs);
  }
}

/** The body of a 2xx reply; anything else fails with the status and body. */
export function ok<T>(res: JsonResponse<T>, what: string): T {
  assert.ok(res.status < 300, `${what}: ${res.status} ${res.text}`);
  return res.json;
}
