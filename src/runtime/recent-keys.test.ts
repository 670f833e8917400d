import { describe, expect, it } from 'vitest';
import { RecentKeys } from './recent-keys.ts';

describe('RecentKeys', () => {
  it('forgets a key after its time, and the oldest keys beyond its capacity', () => {
    let now = 0;
    const keys = new RecentKeys({ capacity: 2, ttlMs: 100, now: () => now });
    keys.add('a');
    now = 50;
    keys.add('b');
    expect(keys.has('a')).toBe(true);
    now = 120;
    expect(keys.has('a')).toBe(false); // 120 ms old
    expect(keys.has('b')).toBe(true);
    keys.add('c');
    keys.add('d'); // over capacity: b, the oldest, goes
    expect(keys.has('b')).toBe(false);
    expect(keys.size).toBe(2);
    keys.add('c'); // re-adding makes it the newest
    keys.add('e');
    expect([keys.has('c'), keys.has('d'), keys.has('e')]).toEqual([true, false, true]);
  });
});
