import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readSortableDouble, scoreRow, writeSortableDouble } from './codec.js';
import { globMatch } from './glob.js';
import { addInt64, formatDouble, formatHumanDouble, parseDouble, parseInt64 } from './numbers.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

void describe('numbers', () => {
  void it("parses integers by Redis' strict rules", () => {
    assert.equal(parseInt64(b('0')), 0);
    assert.equal(parseInt64(b('-12')), -12);
    assert.equal(parseInt64(b('9223372036854775807')), 9223372036854775807n);
    assert.equal(parseInt64(b('-9223372036854775808')), -9223372036854775808n);
    for (const bad of ['', '-', '01', '-0', '+1', ' 1', '1 ', '1.0', '9223372036854775808', 'abc']) {
      assert.equal(parseInt64(b(bad)), undefined, bad);
    }
  });

  void it('adds within int64, refusing overflow', () => {
    assert.equal(addInt64(1, 2), 3);
    assert.equal(addInt64(9223372036854775806n, 1), 9223372036854775807n);
    assert.equal(addInt64(9223372036854775807n, 1), undefined);
    assert.equal(addInt64(-9223372036854775808n, -1), undefined);
  });

  void it('parses and formats doubles', () => {
    assert.equal(parseDouble(b('1.5')), 1.5);
    assert.equal(parseDouble(b('-inf')), -Infinity);
    assert.equal(parseDouble(b('+inf')), Infinity);
    assert.equal(parseDouble(b('1e3')), 1000);
    assert.equal(parseDouble(b('.5')), 0.5);
    for (const bad of ['', 'nan', ' 1', '1x', '0x10', '--1'])
      assert.equal(parseDouble(b(bad)), undefined, bad);
    assert.equal(formatDouble(1.5), '1.5');
    assert.equal(formatDouble(3), '3');
    assert.equal(formatDouble(-Infinity), '-inf');
    assert.equal(formatHumanDouble(10.5), '10.5');
    assert.equal(formatHumanDouble(5e21), '5000000000000000000000');
    assert.equal(formatHumanDouble(1e-7), '0.0000001');
  });
});

void describe('glob', () => {
  void it("matches Redis' patterns", () => {
    const cases: [string, string, boolean][] = [
      ['*', 'anything', true],
      ['h?llo', 'hello', true],
      ['h?llo', 'hllo', false],
      ['h*llo', 'heeeello', true],
      ['h[ae]llo', 'hallo', true],
      ['h[ae]llo', 'hillo', false],
      ['h[^e]llo', 'hallo', true],
      ['h[^e]llo', 'hello', false],
      ['h[a-b]llo', 'hbllo', true],
      ['h\\*llo', 'h*llo', true],
      ['h\\*llo', 'hello', false],
      ['*a*b*', 'xxaxxbxx', true],
      ['*a*b', 'xxaxxbxx', false],
      ['', '', true],
      ['a', '', false],
    ];
    for (const [pattern, subject, expected] of cases) {
      assert.equal(globMatch(b(pattern), b(subject)), expected, `${pattern} ~ ${subject}`);
    }
  });
});

void describe('codec', () => {
  void it('orders doubles by their sortable bytes', () => {
    const values = [-Infinity, -1e300, -2.5, -1, -0, 0, 1e-300, 1, 2.5, 1e300, Infinity];
    const encoded = values.map((v) => {
      const out = Buffer.alloc(8);
      writeSortableDouble(out, 0, v);
      return out;
    });
    for (let i = 1; i < encoded.length; i++)
      assert.ok(Buffer.compare(encoded[i - 1], encoded[i]) <= 0, String(values[i]));
    for (let i = 0; i < values.length; i++)
      assert.equal(readSortableDouble(encoded[i], 0), values[i] === 0 ? 0 : values[i]);
  });

  void it('orders score rows by score, then member bytes', () => {
    const rows = [
      scoreRow(7, -1, b('z')),
      scoreRow(7, 1, b('a')),
      scoreRow(7, 1, b('b')),
      scoreRow(7, 2, b('')),
    ];
    for (let i = 1; i < rows.length; i++) assert.ok(Buffer.compare(rows[i - 1], rows[i]) < 0);
  });
});
