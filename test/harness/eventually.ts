import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Retries `check` until it stops throwing (returns its value) or the time is up (rethrows the
 * last failure). For state that converges through kcp and controllers, not for timing claims.
 */
export const eventually = async <T>(check: () => Promise<T> | T, options: { timeoutMs?: number; intervalMs?: number } = {}): Promise<T> => {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      return await check();
    } catch (err) {
      last = err;
    }
    await sleep(options.intervalMs ?? 100);
  }
  throw last;
};
