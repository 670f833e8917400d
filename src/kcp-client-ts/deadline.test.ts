import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { deadlineSignal } from './deadline.ts';

describe('deadlineSignal', () => {
  it('aborts with a TimeoutError naming what passed', async () => {
    const { signal } = deadlineSignal(undefined, 10, 'The test deadline');
    await sleep(40);
    expect(signal.reason).toMatchObject({ name: 'TimeoutError', message: expect.stringContaining('The test deadline passed') });
  });

  it('aborts with its parent', () => {
    const parent = new AbortController();
    const { signal } = deadlineSignal(parent.signal, 60_000, 'The test deadline');
    parent.abort(new Error('stopping'));
    expect(signal.reason).toEqual(new Error('stopping'));
  });

  it("after end('clear') the deadline no longer aborts it; after end('abort') it is aborted at once", async () => {
    const cleared = deadlineSignal(undefined, 10, 'The test deadline');
    cleared.end('clear');
    const aborted = deadlineSignal(undefined, 60_000, 'The test deadline');
    aborted.end('abort');
    expect(aborted.signal.reason).toMatchObject({ name: 'AbortError' });
    await sleep(40);
    expect(cleared.signal.aborted).toBe(false);
  });
});
