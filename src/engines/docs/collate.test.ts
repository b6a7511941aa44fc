import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { collate, collateRaw, collateStrings, compareCodePoints } from './collate.js';
import { prng as rng } from '../../../test/support/prng.js';

// The ordering example from CouchDB's view collation documentation.
const DOCUMENTED_ORDER: unknown[] = [
  null,
  false,
  true,
  1,
  2,
  3.0,
  4,
  'a',
  'A',
  'aa',
  'b',
  'B',
  'ba',
  'bb',
  ['a'],
  ['b'],
  ['b', 'c'],
  ['b', 'c', 'a'],
  ['b', 'd'],
  ['b', 'd', 'e'],
  { a: 1 },
  { a: 2 },
  { b: 1 },
  { b: 2 },
  { b: 2, a: 1 },
  { b: 2, c: 2 },
];

function randomValue(r: () => number, depth = 0): unknown {
  const pick = Math.floor(r() * (depth > 2 ? 5 : 7));
  const strings = ['', 'a', 'A', 'b', 'B', 'aa', 'é', 'e\u0301', 'z', '_', '1', '\u{1f600}', '\uffff'];
  switch (pick) {
    case 0:
      return null;
    case 1:
      return r() < 0.5;
    case 2:
      return Math.floor(r() * 7) - 3 + (r() < 0.2 ? 0.5 : 0);
    case 3:
    case 4:
      return strings[Math.floor(r() * strings.length)];
    case 5:
      return Array.from({ length: Math.floor(r() * 3) }, () => randomValue(r, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(r() * 3); i > 0; i--)
        o[['a', 'b', 'B'][Math.floor(r() * 3)]] = randomValue(r, depth + 1);
      return o;
    }
  }
}

void describe('collate', () => {
  void it('orders the documented example', () => {
    for (let i = 0; i < DOCUMENTED_ORDER.length; i++) {
      for (let j = 0; j < DOCUMENTED_ORDER.length; j++) {
        const expected = Math.sign(i - j);
        assert.equal(collate(DOCUMENTED_ORDER[i], DOCUMENTED_ORDER[j]), expected, `${i} vs ${j}`);
      }
    }
    const shuffled = [...DOCUMENTED_ORDER].reverse();
    assert.deepEqual(shuffled.sort(collate), DOCUMENTED_ORDER);
  });

  void it('puts lowercase before uppercase of the same letter, both before the next letter', () => {
    assert.deepEqual(['b', 'B', 'A', 'a'].sort(collate), ['a', 'A', 'b', 'B']);
  });

  void it('treats canonically equivalent strings as equal, like ICU', () => {
    assert.equal(collateStrings('\u00e9', 'e\u0301'), 0);
    assert.equal(collate('\u00e9', 'e\u0301'), 0);
  });

  void it('compares arrays element-wise then by length', () => {
    assert.equal(collate([1, 2], [1, 2, 0]), -1);
    assert.equal(collate([2], [1, 9, 9]), 1);
    assert.equal(collate([], []), 0);
    assert.equal(collate([[1]], [[1]]), 0);
  });

  void it('compares objects key then value in their order, then by key count', () => {
    assert.equal(collate({ a: 1, b: 2 }, { b: 2, a: 1 }), -1);
    assert.equal(collate({ a: 1 }, { a: 1, b: 0 }), -1);
    assert.equal(collate({ a: 1, b: 2 }, { a: 1, b: 2 }), 0);
  });

  void it('compares numbers numerically', () => {
    assert.equal(collate(-1, 0.5), -1);
    assert.equal(collate(10, 9), 1);
    assert.equal(collate(0, -0), 0);
  });

  void it('is a consistent total preorder on random values', () => {
    const r = rng(7);
    const values = Array.from({ length: 120 }, () => randomValue(r));
    for (const a of values) {
      assert.equal(collate(a, a), 0);
      for (const b of values) {
        assert.equal(collate(a, b), -collate(b, a) || 0);
      }
    }
    const sorted = [...values].sort(collate);
    for (let i = 1; i < sorted.length; i++) assert.ok(collate(sorted[i - 1], sorted[i]) <= 0);
  });
});

void describe('collateRaw', () => {
  void it('orders strings by code point, not by collation', () => {
    assert.equal(collateRaw('B', 'a'), -1);
    assert.equal(collate('B', 'a'), 1);
    assert.equal(collateRaw('\u00e9', 'e\u0301'), 1);
  });

  void it('orders astral characters after the rest of the BMP, as UTF-8 bytes do', () => {
    assert.equal(collateRaw('\u{1f600}', '\uffff'), 1);
    assert.equal('\u{1f600}' < '\uffff', true);
  });

  void it('matches UTF-8 byte order on random strings', () => {
    const r = rng(11);
    const alphabet = ['a', 'B', '\u00e9', '\ud7ff', '\ue000', '\uffff', '\u{10000}', '\u{1f600}', '\u0000'];
    const word = () =>
      Array.from({ length: Math.floor(r() * 4) }, () => alphabet[Math.floor(r() * alphabet.length)]).join('');
    for (let i = 0; i < 2000; i++) {
      const a = word();
      const b = word();
      assert.equal(compareCodePoints(a, b), Buffer.compare(Buffer.from(a), Buffer.from(b)), `${a} vs ${b}`);
    }
  });

  void it('follows Erlang term order across types', () => {
    const order: unknown[] = [1, false, null, true, { a: 1 }, [], ['x'], 'a'];
    for (let i = 1; i < order.length; i++) assert.equal(collateRaw(order[i - 1], order[i]), -1);
  });
});
