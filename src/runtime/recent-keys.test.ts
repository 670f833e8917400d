import { describe, expect, it, vi } from 'vitest';
import { RecentKeys } from './recent-keys.ts';

describe('RecentKeys', () => {
  it('forgets a key after its time, and the oldest keys beyond its capacity', () => {
    let now = 0;
    const keys = new RecentKeys({ capacity: 2, ttlMs: 100, now: () => now });
    vi.useFakeTimers();
    try {
      keys.add('a');
      expect(vi.getTimerCount()).toBe(0); // an injected clock is not swept by a real-time timer
    } finally {
      vi.useRealTimers();
    }
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

  it('lets its expired keys go at rest, without being asked', () => {
    vi.useFakeTimers();
    try {
      const keys = new RecentKeys({ capacity: 10, ttlMs: 100 }); // Date.now, faked
      keys.add('a');
      vi.advanceTimersByTime(60);
      keys.add('b');
      expect(keys.size).toBe(2);
      vi.advanceTimersByTime(50); // a expired
      expect(keys.size).toBe(1);
      vi.advanceTimersByTime(60); // b expired
      expect(keys.size).toBe(0);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});
