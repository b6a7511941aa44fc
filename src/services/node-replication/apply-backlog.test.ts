import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplyBacklog } from './apply-backlog.js';

void describe('apply backlog', () => {
  void it('stops reading past the limit and resumes once half of it is applied', () => {
    let resumed = 0;
    const backlog = new ApplyBacklog(100, () => resumed++);
    assert.equal(backlog.add(60), true);
    assert.equal(backlog.add(60), false, '120 bytes held: stop reading');
    assert.equal(backlog.add(0), false, 'still held');
    backlog.done(60);
    assert.equal(resumed, 0, '60 left: more than half the limit');
    backlog.done(10);
    assert.equal(resumed, 1, '50 left: read again');
    backlog.done(50);
    assert.equal(resumed, 1, 'resumed once');
    assert.equal(backlog.add(100), true, 'at the limit, not past it');
  });
});
