import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { COMMANDS, lookupCommand } from './command-table.js';

const mixedCase = (name: string): string =>
  [...name].map((c, i) => (i % 2 === 0 ? c.toUpperCase() : c)).join('');

void describe('command lookup', () => {
  void it('finds every command by its name in any case', () => {
    for (const [name, spec] of COMMANDS) {
      for (const spelling of [name, name.toUpperCase(), mixedCase(name)]) {
        assert.equal(lookupCommand(Buffer.from(spelling, 'latin1')), spec, spelling);
      }
    }
  });

  void it('finds nothing for names that are not commands', () => {
    for (const name of ['', 'se', 'sett', 'set1', 's\u00e9t', 'get\0', '[et', '@et', 'x'.repeat(40)]) {
      assert.equal(lookupCommand(Buffer.from(name, 'latin1')), undefined, JSON.stringify(name));
    }
  });
});
