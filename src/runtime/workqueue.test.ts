import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { NotReadyError } from './errors.ts';
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

  it('runs a key that waited for a module to load again as soon as it has loaded: not a failure, no backoff', async () => {
    let loaded = false;
    let finishLoading!: () => void;
    const ready = new Promise<void>((resolve) => (finishLoading = resolve));
    const runs: [string, boolean][] = [];
    const queue = new WorkQueue({
      name: 't',
      // A failure would be retried a minute later: the test would time out.
      backoff: { initialMs: 60_000, maxMs: 60_000 },
      reconcile: async (key) => {
        runs.push([key, loaded]);
        if (!loaded) throw new NotReadyError('the engine', ready);
      },
    });
    queue.start();
    queue.add('a');
    queue.add('b');
    let idle = false;
    void queue.idle().then(() => (idle = true));
    await sleep(20);
    expect(runs).toEqual([
      ['a', false],
      ['b', false],
    ]);
    // Waiting keys are pending work.
    expect(idle).toBe(false);
    loaded = true;
    finishLoading();
    await queue.idle();
    expect(runs.slice(2).sort()).toEqual([
      ['a', true],
      ['b', true],
    ]);
    await queue.shutdown();
  });

  it('retries with backoff a key whose module failed to load, counted once however often it met the wait', async () => {
    const times: number[] = [];
    let failLoad!: (err: Error) => void;
    const ready = new Promise<void>((_, reject) => (failLoad = reject));
    const results: string[] = [];
    const queue = new WorkQueue({
      name: 't',
      backoff: { initialMs: 20, maxMs: 1_000 },
      reconcile: async () => {
        times.push(performance.now());
        if (times.length <= 2) throw new NotReadyError('the engine', ready);
      },
    });
    queue.observe((e) => {
      if (e.type === 'retried') results.push('retried');
      if (e.type === 'reconciled') results.push(e.result);
    });
    queue.start();
    queue.add('a');
    await sleep(10);
    // An event brings it again while it waits.
    queue.add('a');
    await sleep(10);
    failLoad(new Error('cannot load'));
    await queue.idle();
    expect(times).toHaveLength(3);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(9);
    expect(results).toEqual(['requeue', 'requeue', 'retried', 'success']);
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

  it('runs a delayed key at the earliest of its pending delays, once', async () => {
    const runs: number[] = [];
    const started = performance.now();
    const queue = new WorkQueue({ name: 't', reconcile: async () => void runs.push(performance.now() - started) });
    queue.start();
    queue.addAfter('a', 5_000);
    queue.addAfter('a', 30); // sooner: replaces the 5 s wait
    queue.addAfter('a', 2_000); // later than the pending one: ignored
    await sleep(300);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toBeLessThan(1_000);
    expect(queue.depth).toBe(0);
    await queue.idle(); // nothing else pending: the 5 s and 2 s adds are gone
    expect(runs).toHaveLength(1);
    await queue.shutdown();
  });

  it('keeps other groups served while one group has as many reconciles running as it may', async () => {
    const gate = deferred();
    const started: string[] = [];
    const queue = new WorkQueue({
      name: 't',
      concurrency: 4,
      fairness: { groupsOf: (key) => [key.split('/')[0]!], maxPerGroup: 2 },
      reconcile: async (key) => {
        started.push(key);
        if (key.startsWith('bad/')) await gate.promise; // a provider that never answers
      },
    });
    for (let i = 0; i < 10; i++) queue.add(`bad/${i}`);
    for (let i = 0; i < 3; i++) queue.add(`good/${i}`);
    queue.start();
    await sleep(20);
    // Two of the stuck group run; the others wait, and every key of the other group went through.
    expect(started.filter((k) => k.startsWith('bad/'))).toEqual(['bad/0', 'bad/1']);
    expect(started.filter((k) => k.startsWith('good/'))).toEqual(['good/0', 'good/1', 'good/2']);
    gate.resolve();
    await queue.idle();
    expect(started.filter((k) => k.startsWith('bad/'))).toHaveLength(10);
    await queue.shutdown();
  });

  it('looks at a key of a full group once per release of that group, not once per dispatch, and keeps its order', async () => {
    const gate = Promise.withResolvers<void>();
    let groupLookups = 0;
    const started: string[] = [];
    const queue = new WorkQueue({
      name: 't',
      concurrency: 4,
      fairness: {
        groupsOf: (key) => {
          groupLookups++;
          return [key.split('/')[0]!];
        },
        maxPerGroup: 2,
      },
      reconcile: async (key) => {
        started.push(key);
        if (key.startsWith('bad/')) await gate.promise;
      },
    });
    for (let i = 0; i < 5000; i++) queue.add(`bad/${i}`);
    for (let i = 0; i < 200; i++) queue.add(`good/${i}`);
    queue.start();
    await sleep(50);
    expect(started.filter((k) => k.startsWith('good/'))).toHaveLength(200);
    expect(groupLookups).toBeLessThan(5200 + 10);
    expect(queue.depth).toBe(4998);
    gate.resolve();
    await queue.idle();
    expect(started.filter((k) => k.startsWith('bad/'))).toEqual(Array.from({ length: 5000 }, (_, i) => `bad/${i}`));
    // Each completion lets one parked key go, not all of them: linear, not quadratic (12 M looks).
    expect(groupLookups).toBeLessThan(3 * 5200);
    await queue.shutdown();
  });

  it('lets keys go that a released key left parked under a group with room', async () => {
    const gates = new Map<string, PromiseWithResolvers<void>>();
    const started: string[] = [];
    const queue = new WorkQueue({
      name: 't',
      concurrency: 10,
      fairness: { groupsOf: (key) => key.split('/').slice(0, 2), maxPerGroup: 1 },
      reconcile: async (key) => {
        started.push(key);
        const gate = Promise.withResolvers<void>();
        gates.set(key, gate);
        await gate.promise;
      },
    });
    // a/x holds group a and x; a/y waits for a; b/x waits for x.
    queue.add('a/x/1');
    queue.add('a/y/2');
    queue.add('b/x/3');
    queue.add('c/z/4');
    queue.start();
    await sleep(20);
    expect(started).toEqual(['a/x/1', 'c/z/4']);
    gates.get('a/x/1')!.resolve(); // a and x free: a/y and b/x both run
    await sleep(20);
    expect(started.sort()).toEqual(['a/x/1', 'a/y/2', 'b/x/3', 'c/z/4']);
    for (const gate of gates.values()) gate.resolve();
    await queue.idle();
    await queue.shutdown();
  });

  it('aborts a reconcile past its deadline and retries it, so a wait that never ends frees its worker', async () => {
    const attempts: string[] = [];
    const queue = new WorkQueue({
      name: 't',
      concurrency: 1,
      deadlineMs: 50,
      backoff: { initialMs: 10, maxMs: 10 },
      reconcile: async (key, signal) => {
        attempts.push(key);
        if (key === 'stuck' && attempts.filter((k) => k === 'stuck').length === 1) {
          // Waits like a cache that never syncs: resolves (does not throw) when the signal aborts.
          await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
        }
      },
    });
    queue.add('stuck');
    queue.add('next');
    queue.start();
    await queue.idle();
    // 'next' ran although the only worker was held first; 'stuck' ran again after its deadline.
    expect(attempts).toEqual(['stuck', 'next', 'stuck']);
    await queue.shutdown();
  });

  it("ends each reconcile's signal with it, so nothing left listening on it outlives the reconcile", async () => {
    const signals: AbortSignal[] = [];
    const queue = new WorkQueue({
      name: 't',
      concurrency: 4,
      deadlineMs: 60_000,
      reconcile: async (_key, signal) => {
        // Like a wait for a cache that synced meanwhile: its listener is never removed.
        signal.addEventListener('abort', () => undefined);
        expect(signal.aborted).toBe(false);
        signals.push(signal);
      },
    });
    for (let i = 0; i < 20; i++) queue.add(`k${i}`);
    queue.start();
    await queue.idle();
    expect(signals).toHaveLength(20);
    // Node holds a signal with a listener until it aborts; before, that was the deadline, a minute on.
    expect(signals.every((s) => s.aborted && (s.reason as DOMException).name === 'AbortError')).toBe(true);
    await queue.shutdown();
  });
});
