/**
 * Line protocol parser: InfluxDB's syntax and errors, plus property tests — random
 * points written with `formatLine` parse back to the same point, and random garbage
 * never throws (it is reported per line).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  formatLine,
  nowNs,
  parseLineProtocol,
  parsePrecision,
  type Field,
  type ParsedPoint,
} from './line-protocol.js';
import { prng as rng } from '../../../test/support/prng.js';
import { mergePointBodies, pointBody, pointBodyObject, pointDocId } from './point-document.js';

const parse = (text: string, precision: 'ns' | 'us' | 'ms' | 's' = 'ns') =>
  parseLineProtocol(text, precision, '42');

function one(text: string): ParsedPoint {
  const { points, errors } = parse(text);
  assert.deepEqual(errors, []);
  assert.equal(points.length, 1);
  return points[0];
}

void describe('line protocol', () => {
  void it('parses measurement, tags, every field type and a timestamp', () => {
    const p = one('cpu,host=a,cpu=cpu0 f=1.5,i=-3i,u=7u,s="hi \\"x\\" \\\\",b=true,b2=F 1700000000000000000');
    assert.equal(p.measurement, 'cpu');
    assert.deepEqual(p.tags, [
      ['cpu', 'cpu0'],
      ['host', 'a'],
    ]);
    assert.deepEqual(p.fields, [
      { key: 'f', type: 'float', value: 1.5 },
      { key: 'i', type: 'integer', value: '-3' },
      { key: 'u', type: 'unsigned', value: '7' },
      { key: 's', type: 'string', value: 'hi "x" \\' },
      { key: 'b', type: 'boolean', value: true },
      { key: 'b2', type: 'boolean', value: false },
    ]);
    assert.equal(p.timestampNs, '1700000000000000000');
  });

  void it('unescapes keys and keeps the escaped text in the forwarded line', () => {
    const p = one('we\\ ird\\,m,t\\=k=v\\ 1 fi\\,eld=1 5');
    assert.equal(p.measurement, 'we ird,m');
    assert.deepEqual(p.tags, [['t=k', 'v 1']]);
    assert.equal(p.fields[0].key, 'fi,eld');
    assert.equal(p.line, 'we\\ ird\\,m,t\\=k=v\\ 1 fi\\,eld=1 5');
  });

  void it('scales timestamps to ns and stamps lines without one', () => {
    assert.equal(one('m v=1 3').timestampNs, '3');
    assert.equal(parse('m v=1 3', 's').points[0].timestampNs, '3000000000');
    assert.equal(parse('m v=1 -3', 'ms').points[0].line, 'm v=1 -3000000');
    assert.equal(parse('m v=1', 'us').points[0].timestampNs, '42');
    assert.equal(nowNs('s', 1_700_000_000_123), '1700000000000000000');
    assert.equal(one('m v=1 9223372036854775806').timestampNs, '9223372036854775806');
    assert.equal(parse('m v=1 9223372036854775807').errors.length, 1);
    assert.equal(parse('m v=1 -9223372036854775807').errors.length, 1);
    assert.equal(one('m v=1 007').timestampNs, '7');
    assert.equal(one('m v=1 -0').timestampNs, '0');
    assert.equal(parse('m v=1 9223372036854775', 'ms').errors.length, 1);
    assert.equal(parsePrecision('u'), 'us');
    assert.equal(parsePrecision(undefined), 'ns');
    assert.equal(parsePrecision('h'), undefined);
  });

  void it('reports each bad line with its number and keeps the good ones', () => {
    const text = [
      'ok v=1 1',
      '# a comment',
      '',
      'nofields',
      'm v= 1',
      'm v=1 notatime',
      'm,t v=1',
      'm v="open',
      'm v=1i2',
      'm v=99999999999999999999i',
      'm v=1 99999999999999999999',
      ',t=1 v=1',
      'ok2 v=2 2',
    ].join('\n');
    const { points, errors } = parse(text);
    assert.deepEqual(
      points.map((p) => p.measurement),
      ['ok', 'ok2'],
    );
    assert.deepEqual(
      errors.map((e) => e.line),
      [4, 5, 6, 7, 8, 9, 10, 11, 12],
    );
    assert.match(errors[0].message, /^unable to parse 'nofields': missing fields$/);
    assert.match(errors[2].message, /bad timestamp/);
  });

  void it(
    'refuses a long digit run with a stray letter without backtracking over it',
    { timeout: 10_000 },
    () => {
      // The old float pattern took ~2 s for 40,000 digits and grew with the square of the length.
      const { points, errors } = parse(`m v=${'1'.repeat(200_000)}x 1\nok v=1.5 2`);
      assert.deepEqual(
        points.map((p) => p.measurement),
        ['ok'],
      );
      assert.equal(errors.length, 1);
      assert.match(errors[0].message, /invalid field value/);
    },
  );

  void it('accepts CRLF, leading blanks and trailing blanks', () => {
    const { points, errors } = parse('  m v=1 1 \r\nm v=2\r\n');
    assert.deepEqual(errors, []);
    assert.deepEqual(
      points.map((p) => p.line),
      ['m v=1 1', 'm v=2 42'],
    );
  });
});

void describe('point documents', () => {
  void it('derive ids from the sorted series key and the timestamp', () => {
    const a = one('cpu,b=2,a=1 v=1 10');
    const b = one('cpu,a=1,b=2 v=9 10');
    assert.equal(pointDocId(a), 'cpu,a=1,b=2 10');
    assert.equal(pointDocId(a), pointDocId(b));
    assert.equal(pointDocId(one('_internal v=1 1')), '\\_internal 1');
  });

  void it('merge a rewrite, and a rewrite of the same point changes nothing', () => {
    const first = pointBody(one('m,t=1 a=1,b=2i 5'));
    assert.equal(mergePointBodies(first, pointBody(one('m,t=1 a=1,b=2i 5'))), null);
    const merged = mergePointBodies(first, pointBody(one('m,t=1 b=3,c="x" 5')));
    assert.deepEqual(JSON.parse(merged ?? ''), {
      measurement: 'm',
      tags: { t: '1' },
      fields: { a: 1, b: 3, c: 'x' },
      time: '5',
    });
  });

  void it('keep big integers exactly', () => {
    const body = JSON.parse(pointBody(one('m v=9223372036854775807i,u=18446744073709551615u 1'))) as {
      fields: Record<string, unknown>;
      types: Record<string, string>;
    };
    assert.equal(body.fields['v'], '9223372036854775807');
    assert.deepEqual(body.types, { v: 'integer', u: 'unsigned' });
  });
});

// ---- property tests ------------------------------------------------------------

const ALPHABET = 'abcXYZ019 ,="\\_-.é😀\t';

function randomText(next: () => number, min: number, max: number): string {
  const length = min + Math.floor(next() * (max - min + 1));
  let out = '';
  for (let i = 0; i < length; i++) out += [...ALPHABET][Math.floor(next() * [...ALPHABET].length)];
  return out;
}

/** Keys may not be empty, start with a blank, or end with a backslash (it would escape the delimiter). */
function randomKey(next: () => number): string {
  for (;;) {
    const key = randomText(next, 1, 8).replace(/[\t]/g, 'x');
    if (!key.startsWith(' ') && !key.endsWith('\\') && !key.startsWith('#')) return key;
  }
}

function randomField(next: () => number, key: string): Field {
  switch (Math.floor(next() * 5)) {
    case 0:
      return { key, type: 'float', value: Math.round((next() - 0.5) * 1e6) / 100 };
    case 1:
      return { key, type: 'integer', value: String(Math.floor((next() - 0.5) * 1e12)) };
    case 2:
      return { key, type: 'unsigned', value: String(Math.floor(next() * 1e12)) };
    case 3:
      return { key, type: 'boolean', value: next() < 0.5 };
    default:
      return { key, type: 'string', value: randomText(next, 0, 10).replace(/\t/g, ' ') };
  }
}

void describe('line protocol properties', () => {
  void it('formatted random points parse back to the same point', () => {
    const next = rng(7);
    for (let n = 0; n < 2000; n++) {
      const measurement = randomKey(next);
      const tagCount = Math.floor(next() * 4);
      const tagMap = new Map<string, string>();
      for (let i = 0; i < tagCount; i++) tagMap.set(randomKey(next), randomKey(next));
      const tags = [...tagMap].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      const fieldMap = new Map<string, Field>();
      const fieldCount = 1 + Math.floor(next() * 4);
      for (let i = 0; i < fieldCount; i++) {
        const key = randomKey(next);
        fieldMap.set(key, randomField(next, key));
      }
      const fields = [...fieldMap.values()];
      const ts = String(Math.floor((next() - 0.3) * 1e18));
      const line = formatLine(measurement, tags, fields, ts);
      const { points, errors } = parse(line);
      assert.deepEqual(errors, [], `line ${JSON.stringify(line)}`);
      assert.equal(points[0].measurement, measurement, line);
      assert.deepEqual(points[0].tags, tags, line);
      assert.deepEqual(points[0].fields, fields, line);
      assert.equal(points[0].timestampNs, BigInt(ts).toString(), line);
      // The forwarded line parses to the same point again.
      assert.deepEqual(parse(points[0].line).points[0], points[0]);
    }
  });

  void it('random garbage never throws and every line is either a point or an error', () => {
    const next = rng(11);
    for (let n = 0; n < 3000; n++) {
      const lines = Array.from({ length: 1 + Math.floor(next() * 5) }, () => randomText(next, 0, 30));
      const text = lines.join('\n');
      const { points, errors } = parse(text);
      const meaningful = lines.filter((l) => {
        const t = l.replace(/^[ \t]+/, '').replace(/\r$/, '');
        return t !== '' && !t.startsWith('#');
      }).length;
      assert.equal(points.length + errors.length, meaningful, JSON.stringify(text));
      for (const e of errors) assert.ok(e.line >= 1 && e.line <= lines.length);
    }
  });
});

void describe('point bodies', () => {
  void it('are the point object, written directly as JSON', () => {
    const next = rng(3);
    for (let n = 0; n < 500; n++) {
      const fields = Array.from({ length: 1 + Math.floor(next() * 4) }, (_, i) =>
        randomField(next, i % 3 === 2 ? 'dup' : randomKey(next)),
      );
      const tags: [string, string][] = [[randomKey(next), randomKey(next)]];
      const point = parse(formatLine(randomKey(next), tags, fields, '1')).points[0];
      assert.deepEqual(JSON.parse(pointBody(point)), pointBodyObject(point));
    }
  });
});
