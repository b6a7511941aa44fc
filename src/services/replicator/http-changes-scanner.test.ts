import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NormalFeedScanner } from './http-changes-scanner.js';

/** xorshift32, so failures reproduce. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

function scan(
  text: string,
  cuts: readonly number[],
): { rows: unknown[]; rest: Record<string, unknown> | null } {
  const scanner = new NormalFeedScanner();
  const rows: unknown[] = [];
  let from = 0;
  for (const cut of [...cuts, text.length]) {
    for (const row of scanner.push(text.slice(from, cut))) rows.push(JSON.parse(row));
    from = cut;
  }
  return { rows, rest: scanner.end() };
}

void describe('NormalFeedScanner', () => {
  void it('finds every row of CouchDB- and PouchDB-style replies, however the text is cut', () => {
    const random = prng(42);
    const tricky = [
      'plain',
      'quote " inside',
      'backslash \\',
      'both \\" and \\\\',
      'brace } ] [ {',
      'ünïcødé ✓',
    ];
    for (let round = 0; round < 300; round++) {
      const rows = Array.from({ length: Math.floor(random() * 20) }, (_, k) => ({
        seq: round % 2 === 0 ? k + 1 : `${k + 1}-g1AAAA${'x'.repeat(k)}`,
        id: `${tricky[k % tricky.length] ?? ''}-${k}`,
        changes: [{ rev: `1-${k}` }, ...(k % 3 === 0 ? [{ rev: `2-${k}` }] : [])],
        ...(k % 4 === 0 ? { deleted: true, doc: { nested: { a: [1, { b: '}' }] } } } : {}),
      }));
      const lastSeq = round % 2 === 0 ? rows.length : `${rows.length}-g1"\\AAAA`;
      const text =
        round % 3 === 0
          ? JSON.stringify({ results: rows, last_seq: lastSeq })
          : round % 3 === 1
            ? `{"results":[\n${rows.map((r) => JSON.stringify(r)).join(',\n')}\n],\n"last_seq":${JSON.stringify(lastSeq)},"pending":0}\n`
            : JSON.stringify({ last_seq: lastSeq, pending: 0, results: rows }, null, 2);
      const cuts = Array.from({ length: Math.floor(random() * 12) }, () =>
        Math.floor(random() * text.length),
      ).sort((a, b) => a - b);
      const got = scan(text, cuts);
      assert.deepEqual(got.rows, rows, `round ${round}, cuts ${cuts.join(',')}`);
      assert.equal(got.rest?.['last_seq'], lastSeq, `round ${round}`);
      assert.deepEqual(got.rest?.['results'], []);
    }
  });

  void it('cuts through every position of a small reply, one character at a time', () => {
    const text = '{"results":[{"seq":1,"id":"a\\"b","changes":[{"rev":"1-x"}]}],"last_seq":"1-\\\\q"}';
    const cuts = Array.from({ length: text.length - 1 }, (_, k) => k + 1);
    const got = scan(text, cuts);
    assert.deepEqual(got.rows, [{ seq: 1, id: 'a"b', changes: [{ rev: '1-x' }] }]);
    assert.equal(got.rest?.['last_seq'], '1-\\q');
  });

  void it('says when the reply was not a feed or was cut short', () => {
    assert.equal(scan('{"error":"not_found"}', []).rest, null);
    assert.equal(scan('{"results":[{"seq":1', []).rest, null);
  });
});
