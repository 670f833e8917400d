import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { WorkQueue, type Reconciler } from './workqueue.ts';

const deferred = (): { promise: Promise<void>; resolve: () => void } => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
};

describe('WorkQueue', () => {
  it('queues a waiting key once however often it is added', async () => {
    const seen: string[] = [];
    const queue = new WorkQueue({ name: 't', reconcile: async (key) => void seen.push(key) });
    for (let i = 0; i < 5; i++) queue.add('a');
    queue.add('b');
    queue.start();
    await queue.idle();
    expect(seen.sort()).toEqual(['a', 'b']);
    await queue.shutdown();
  });

  it('never runs a key twice at once, and runs it again when added during its reconcile', async () => {
    const gate = deferred();
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const reconcile: Reconciler = async () => {
      running++;
      runs++;
      maxRunning = Math.max(maxRunning, running);
      if (runs === 1) await gate.promise;
      running--;
    };
    const queue = new WorkQueue({ name: 't', reconcile, concurrency: 4 });
    queue.start();
    queue.add('a');
    await sleep(5);
    queue.add('a');
    queue.add('a');
    gate.resolve();
    await queue.idle();
    expect(maxRunning).toBe(1);
    expect(runs).toBe(2);
    await queue.shutdown();
  });

  it('bounds concurrency', async () => {
    let running = 0;
    let maxRunning = 0;
    const queue = new WorkQueue({
      name: 't',
      concurrency: 3,
      reconcile: async () => {
        maxRunning = Math.max(maxRunning, ++running);
        await sleep(5);
        running--;
      },
    });
    queue.start();
    for (let i = 0; i < 20; i++) queue.add(`k${i}`);
    await queue.idle();
    expect(maxRunning).toBe(3);
    await queue.shutdown();
  });

  it('requeues failures with growing per-key backoff and forgets on success', async () => {
    const times: number[] = [];
    const queue = new WorkQueue({
      name: 't',
      backoff: { initialMs: 20, maxMs: 1_000 },
      reconcile: async () => {
        times.push(performance.now());
        if (times.length < 4) throw new Error('not yet');
      },
    });
    queue.start();
    queue.add('a');
    await queue.idle();
    expect(times).toHaveLength(4);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    // Full jitter keeps each delay within [ceiling/2, ceiling] for ceilings 20, 40, 80 ms.
    expect(gaps[0]).toBeGreaterThanOrEqual(9);
    expect(gaps[2]).toBeGreaterThanOrEqual(39);
    await queue.shutdown();
  });

  it('honours requeueAfterMs', async () => {
    let runs = 0;
    const queue = new WorkQueue({ name: 't', reconcile: async () => (++runs === 1 ? { requeueAfterMs: 10 } : undefined) });
    queue.start();
    queue.add('a');
    await queue.idle();
    expect(runs).toBe(2);
    await queue.shutdown();
  });

  it('shuts down: aborts in-flight reconciles, waits for them, drops delayed keys', async () => {
    let aborted = false;
    let finished = false;
    const queue = new WorkQueue({
      name: 't',
      reconcile: async (key, signal) => {
        if (key === 'slow') {
          await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
          aborted = signal.aborted;
          finished = true;
        }
      },
    });
    queue.start();
    queue.add('slow');
    queue.addAfter('later', 60_000);
    await sleep(5);
    await queue.shutdown();
    expect(aborted).toBe(true);
    expect(finished).toBe(true);
    queue.add('after-shutdown');
    expect(queue.depth).toBe(0);
  });
});
