import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatBasicAuth, parseBasicAuth } from './basic-auth.js';

void describe('parseBasicAuth', () => {
  void it('decodes name and password', () => {
    assert.deepEqual(parseBasicAuth('Basic Zm9vOmJhcg=='), { name: 'foo', password: 'bar' });
  });

  void it('is tolerant of scheme case and surrounding whitespace', () => {
    for (const header of [
      'basic Zm9vOmJhcg==',
      'BASIC Zm9vOmJhcg==',
      '  Basic   Zm9vOmJhcg==  ',
      'Basic\tZm9vOmJhcg==',
    ]) {
      assert.deepEqual(parseBasicAuth(header), { name: 'foo', password: 'bar' }, header);
    }
  });

  void it('splits at the first colon only, and decodes UTF-8', () => {
    // base64 of "jöhn:pa:ss", computed with Python.
    assert.deepEqual(parseBasicAuth('Basic asO2aG46cGE6c3M='), { name: 'jöhn', password: 'pa:ss' });
  });

  void it('keeps empty passwords and empty names', () => {
    assert.deepEqual(parseBasicAuth(formatBasicAuth('foo', '')), { name: 'foo', password: '' });
    assert.deepEqual(parseBasicAuth(formatBasicAuth('', 'pw')), { name: '', password: 'pw' });
  });

  void it("treats CouchDB's _:_ logout pair as no credentials", () => {
    assert.equal(parseBasicAuth(formatBasicAuth('_', '_')), null);
  });

  void it('round-trips formatBasicAuth', () => {
    assert.deepEqual(parseBasicAuth(formatBasicAuth('a b', 'ü:€')), { name: 'a b', password: 'ü:€' });
  });

  const rejected: Array<string | undefined> = [
    undefined,
    '',
    'Basic',
    'Basic ',
    'Bearer Zm9vOmJhcg==',
    'Digest Zm9vOmJhcg==',
    'BasicZm9vOmJhcg==',
    'Basic Zm9vYmFy', // "foobar": no colon
    'Basic x', // CouchDB's own invalid-base64 test cases
    'Basic XX=',
    'Basic Zm9v!mJhcg==',
    'Basic Zm9vOmJhcg==extra',
    'Basic Zm9v OmJhcg==',
    'Basic =Zm9vOmJhcg=',
    'Basic Zm9vOmJhcg===',
    `Basic ${Buffer.from([0x66, 0x3a, 0xff, 0xfe]).toString('base64')}`, // not UTF-8
    `Basic ${'A'.repeat(20_000)}`,
  ];
  for (const header of rejected) {
    void it(`rejects ${JSON.stringify(header)?.slice(0, 40) ?? 'undefined'}`, () => {
      assert.equal(parseBasicAuth(header), null);
    });
  }

  void it('never throws on non-string input', () => {
    for (const junk of [null, 42, {}, ['Basic Zm9vOmJhcg==']]) {
      assert.equal(parseBasicAuth(junk as unknown as string), null);
    }
  });
});
