import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { describe, it } from 'node:test';
import { linkedSignal } from './linked-signal.js';

void describe('linkedSignal', () => {
  void it('aborts with the reason of the first source that aborts, and then lets go of them all', () => {
    const first = new AbortController();
    const second = new AbortController();
    const { signal } = linkedSignal(first.signal, second.signal);
    assert.equal(signal.aborted, false);
    second.abort(new Error('second'));
    assert.equal(signal.aborted, true);
    assert.equal((signal.reason as Error).message, 'second');
    assert.equal(getEventListeners(first.signal, 'abort').length, 0);
  });

  void it('is aborted at once when a source already is', () => {
    const done = new AbortController();
    done.abort('gone');
    const { signal } = linkedSignal(new AbortController().signal, done.signal);
    assert.equal(signal.aborted, true);
    assert.equal(signal.reason, 'gone');
  });

  void it('leaves nothing on a long-lived source once unlinked', () => {
    const longLived = new AbortController();
    for (let i = 0; i < 1000; i++) linkedSignal(longLived.signal, new AbortController().signal).unlink();
    assert.equal(getEventListeners(longLived.signal, 'abort').length, 0);
    const { signal, unlink } = linkedSignal(longLived.signal);
    unlink();
    longLived.abort();
    assert.equal(signal.aborted, false, 'an unlinked signal no longer follows its sources');
  });
});
