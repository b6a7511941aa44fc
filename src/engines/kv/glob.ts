/**
 * Redis glob patterns over bytes (`KEYS`, `SCAN MATCH`): `*`, `?`, `[abc]`,
 * `[^a-z]`, and `\` to escape. Backtracks only to the last `*`, so a pattern
 * never takes more than O(pattern × subject) steps.
 */
export function globMatch(pattern: Uint8Array, subject: Uint8Array): boolean {
  let p = 0;
  let s = 0;
  let starP = -1;
  let starS = 0;
  const plen = pattern.length;
  const slen = subject.length;
  while (s < slen) {
    if (p < plen) {
      const c = pattern[p];
      if (c === 0x2a /* * */) {
        while (p < plen && pattern[p] === 0x2a) p++;
        if (p === plen) return true;
        starP = p;
        starS = s;
        continue;
      }
      const step = matchOne(pattern, p, subject[s]);
      if (step > 0) {
        p += step;
        s++;
        continue;
      }
    }
    if (starP < 0) return false;
    p = starP;
    s = ++starS;
  }
  while (p < plen && pattern[p] === 0x2a) p++;
  return p === plen;
}

/** Whether the pattern element at `p` matches `ch`: its length in pattern bytes, or 0 for no match. */
function matchOne(pattern: Uint8Array, p: number, ch: number): number {
  const plen = pattern.length;
  const c = pattern[p];
  if (c === 0x3f /* ? */) return 1;
  if (c === 0x5c /* \ */ && p + 1 < plen) return pattern[p + 1] === ch ? 2 : 0;
  if (c !== 0x5b /* [ */) return c === ch ? 1 : 0;
  let i = p + 1;
  const not = pattern[i] === 0x5e; /* ^ */
  if (not) i++;
  let matched = false;
  while (i < plen && pattern[i] !== 0x5d /* ] */) {
    if (pattern[i] === 0x5c && i + 1 < plen) {
      if (pattern[i + 1] === ch) matched = true;
      i += 2;
    } else if (i + 2 < plen && pattern[i + 1] === 0x2d /* - */ && pattern[i + 2] !== 0x5d) {
      let lo = pattern[i];
      let hi = pattern[i + 2];
      if (lo > hi) [lo, hi] = [hi, lo];
      if (ch >= lo && ch <= hi) matched = true;
      i += 3;
    } else {
      if (pattern[i] === ch) matched = true;
      i++;
    }
  }
  // An unclosed class runs to the end of the pattern, as in Redis.
  const length = (i < plen ? i + 1 : plen) - p;
  return matched !== not ? length : 0;
}
