import { silentLogger, type Logger } from '../logging.ts';
import { backoffDelay } from './backoff.ts';
import { NotReadyError, TerminalError } from './errors.ts';
import { deadlineSignal } from '../kcp-client-ts/deadline.ts';

/** What a reconcile returns, after controller-runtime's Result. */
export type ReconcileResult = { requeueAfterMs?: number } | undefined;

/** A reconcile that returns nothing means done (no requeue). */
export type Reconciler = (key: string, signal: AbortSignal) => Promise<ReconcileResult> | Promise<void>;

export type WorkQueueOptions = {
  name: string;
  reconcile: Reconciler;
  concurrency?: number;
  backoff?: { initialMs: number; maxMs: number };
  logger?: Logger;
  /**
   * Longest a reconcile may run: its signal aborts then, and the key is retried with backoff.
   * Nothing a reconcile waits for (kcp, a cache that never syncs) can hold a worker longer.
   */
  deadlineMs?: number;
  /**
   * Fairness: the groups a key belongs to (its consumer workspace, its provider...). While a
   * group has `maxPerGroup` reconciles running, its other keys wait and keys of other groups
   * go first, so no one group can take every worker. `groupsOf` is asked each time a key is
   * considered: when it reaches the head of the queue, and again after a full group of its frees up.
   */
  fairness?: { groupsOf: (key: string) => string[]; maxPerGroup: number };
};

/**
 * What a queue reports for metrics (client-go's workqueue and controller-runtime's reconcile
 * families): a key queued, a key taken by a worker after waiting, a failure requeued with
 * backoff, a reconcile done and how it ended.
 */
export type QueueEvent =
  | { type: 'added' }
  | { type: 'started'; waitedMs: number }
  | { type: 'retried' }
  | { type: 'reconciled'; key: string; result: 'success' | 'error' | 'requeue' | 'requeue_after'; durationMs: number };

/**
 * A rate-limited work queue in the manner of client-go's: a key waiting is queued once however
 * often it is added; a key is never reconciled twice at once (an add during its reconcile runs
 * it again afterwards); failures requeue with per-key exponential backoff; at most
 * `concurrency` reconciles run together. A TerminalError is not retried.
 */
export class WorkQueue {
  readonly name: string;
  readonly #options: WorkQueueOptions;
  readonly #logger: Logger;
  #queue: string[] = [];
  readonly #queued = new Set<string>();
  /** Keys being reconciled, with when each started (for unfinished-work metrics). */
  readonly #processing = new Map<string, number>();
  /** Keys added while being processed: queued again when their reconcile ends. */
  readonly #dirty = new Set<string>();
  readonly #failures = new Map<string, number>();
  /** Pending delayed adds, with when each is due (performance.now()). */
  readonly #timers = new Map<string, { timer: NodeJS.Timeout; due: number }>();
  readonly #inFlight = new Set<Promise<void>>();
  #controller: AbortController | undefined;
  #idleWaiters: (() => void)[] = [];
  /** Keys whose reconcile waits for something to load (NotReadyError): pending work, not failures. */
  readonly #waiting = new Set<string>();
  #observer: ((event: QueueEvent) => void) | undefined;
  /** When each queued key was queued (for queue durations). */
  readonly #queuedAt = new Map<string, number>();
  /** Running reconciles per fairness group, and the groups of each running key. */
  readonly #runningPerGroup = new Map<string, number>();
  readonly #groupsOfRunning = new Map<string, string[]>();
  /**
   * Queued keys set aside because a group of theirs was at its limit, by that group: back at
   * the front of the queue when the group has room. Each key is looked at once per release of
   * its group, so dispatch never rescans keys that cannot run.
   */
  readonly #parked = new Map<string, string[]>();
  #parkedCount = 0;

  constructor(options: WorkQueueOptions) {
    this.#options = options;
    this.name = options.name;
    this.#logger = (options.logger ?? silentLogger()).child({ queue: options.name });
  }

  get depth(): number {
    return this.#queue.length + this.#parkedCount;
  }

  /** Reconciles running now, and the most that may run at once. */
  get active(): number {
    return this.#processing.size;
  }

  get concurrency(): number {
    return this.#options.concurrency ?? 4;
  }

  get running(): boolean {
    return this.#controller !== undefined && !this.#controller.signal.aborted;
  }

  add(key: string): void {
    if (this.#controller?.signal.aborted) return;
    if (this.#processing.has(key)) {
      this.#dirty.add(key);
      return;
    }
    if (this.#queued.has(key)) return;
    this.#queued.add(key);
    this.#queuedAt.set(key, performance.now());
    this.#observer?.({ type: 'added' });
    this.#queue.push(key);
    this.#pump();
  }

  /**
   * Adds the key after a delay. The earliest pending add for a key wins, as in client-go's
   * delaying queue: a "check again in 500 ms" is not held back by an earlier "in 5 s".
   */
  addAfter(key: string, delayMs: number): void {
    if (this.#controller?.signal.aborted) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const due = performance.now() + delayMs;
    const existing = this.#timers.get(key);
    if (existing) {
      if (existing.due <= due) return;
      clearTimeout(existing.timer);
    }
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.#timers.set(key, { timer, due });
  }

  /** Reports what the queue does from now on (metrics); replaces an earlier observer. */
  observe(observer: (event: QueueEvent) => void): void {
    this.#observer = observer;
  }

  /** How long each running reconcile has run so far, in ms (for unfinished-work metrics). */
  runningForMs(): number[] {
    const now = performance.now();
    return [...this.#processing.values()].map((at) => now - at);
  }

  /** Starts processing; keys added before start wait until then. */
  start(): void {
    if (this.#controller) return;
    this.#controller = new AbortController();
    this.#pump();
  }

  /** Stops taking keys, aborts in-flight reconciles' signals, and waits for them to return. */
  async shutdown(): Promise<void> {
    this.#controller ??= new AbortController();
    this.#controller.abort(new Error(`work queue ${this.name} shut down`));
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    await Promise.allSettled([...this.#inFlight]);
    // Waiters for a delayed key that will now never run.
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }

  /** Keys being reconciled right now (to say what a stuck shutdown waits for). */
  inFlightKeys(): string[] {
    return [...this.#processing.keys()];
  }

  /** Resolves when nothing is queued, delayed or running (for tests and benchmarks). */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #isIdle(): boolean {
    return this.depth === 0 && this.#processing.size === 0 && this.#timers.size === 0 && this.#waiting.size === 0;
  }

  #pump(): void {
    const controller = this.#controller;
    if (!controller || controller.signal.aborted) return;
    while (this.#processing.size < this.concurrency) {
      const next = this.#nextRunnable();
      if (next === undefined) return; // nothing queued, or every waiting key's group is at its limit
      const { key, groups } = next;
      this.#queued.delete(key);
      const now = performance.now();
      this.#observer?.({ type: 'started', waitedMs: now - (this.#queuedAt.get(key) ?? now) });
      this.#queuedAt.delete(key);
      this.#processing.set(key, now);
      this.#enterGroups(key, groups);
      const work = this.#process(key, controller.signal).finally(() => {
        this.#inFlight.delete(work);
        this.#processing.delete(key);
        this.#leaveGroups(key);
        if (this.#dirty.delete(key)) this.add(key);
        this.#pump();
        if (this.#isIdle()) for (const resolve of this.#idleWaiters.splice(0)) resolve();
      });
      this.#inFlight.add(work);
    }
  }

  /** The first queued key whose groups all have room (parking the ones met on the way whose group is full). */
  #nextRunnable(): { key: string; groups: string[] } | undefined {
    const fairness = this.#options.fairness;
    for (;;) {
      while (this.#queue.length > 0) {
        const key = this.#queue.shift()!;
        if (!fairness) return { key, groups: [] };
        const groups = fairness.groupsOf(key);
        const full = groups.find((g) => (this.#runningPerGroup.get(g) ?? 0) >= fairness.maxPerGroup);
        if (full === undefined) return { key, groups };
        const parked = this.#parked.get(full);
        if (parked) parked.push(key);
        else this.#parked.set(full, [key]);
        this.#parkedCount++;
      }
      // Keys released by a group may have been parked under another, full group: a group with room
      // and keys still parked under it lets them go now, or they would wait for a completion of
      // a group that has nothing running. Each round moves keys to other groups' lists, so it ends.
      if (!fairness || !this.#releaseWhereRoom(fairness.maxPerGroup)) return undefined;
    }
  }

  /** Moves parked keys of every group with room back to the queue; whether any moved. */
  #releaseWhereRoom(maxPerGroup: number): boolean {
    let moved = false;
    for (const [g, parked] of this.#parked) {
      const room = maxPerGroup - (this.#runningPerGroup.get(g) ?? 0);
      if (room <= 0) continue;
      const released = parked.splice(0, room);
      if (parked.length === 0) this.#parked.delete(g);
      this.#parkedCount -= released.length;
      this.#queue.push(...released);
      moved = true;
    }
    return moved;
  }

  #enterGroups(key: string, groups: string[]): void {
    if (groups.length === 0) return;
    this.#groupsOfRunning.set(key, groups);
    for (const g of groups) this.#runningPerGroup.set(g, (this.#runningPerGroup.get(g) ?? 0) + 1);
  }

  #leaveGroups(key: string): void {
    for (const g of this.#groupsOfRunning.get(key) ?? []) {
      const left = (this.#runningPerGroup.get(g) ?? 1) - 1;
      if (left > 0) this.#runningPerGroup.set(g, left);
      else this.#runningPerGroup.delete(g);
      // The group has room again: as many of its parked keys as it has room for go first, in the
      // order they came (all of them would be looked at again only to be parked again).
      const parked = this.#parked.get(g);
      if (parked) {
        const room = (this.#options.fairness?.maxPerGroup ?? 0) - left;
        const released = parked.splice(0, Math.max(0, room));
        if (parked.length === 0) this.#parked.delete(g);
        this.#parkedCount -= released.length;
        this.#queue = released.concat(this.#queue);
      }
    }
    this.#groupsOfRunning.delete(key);
  }

  async #process(key: string, queueSignal: AbortSignal): Promise<void> {
    const started = performance.now();
    const deadline = this.#options.deadlineMs;
    // The reconcile's own signal ends with it: aborted at the deadline, and at the end, so that
    // Node lets go of it and of any listener left on it.
    const bounded = deadline ? deadlineSignal(queueSignal, deadline, 'The reconcile deadline') : undefined;
    const signal = bounded?.signal ?? queueSignal;
    try {
      const result = await this.#options.reconcile(key, signal);
      // Returned normally after its signal aborted (a wait that ended on it): not done, retry.
      if (signal.aborted && !queueSignal.aborted) throw new Error(`reconcile of ${key} exceeded its deadline`);
      this.#failures.delete(key);
      const requeue = result?.requeueAfterMs !== undefined;
      this.#observer?.({ type: 'reconciled', key, result: requeue ? 'requeue_after' : 'success', durationMs: performance.now() - started });
      if (requeue) this.addAfter(key, result.requeueAfterMs!);
    } catch (err) {
      // Waiting for a module is a requeue (controller-runtime's label for "run me again"), not an error.
      const result = err instanceof NotReadyError && !signal.aborted ? 'requeue' : 'error';
      this.#observer?.({ type: 'reconciled', key, result, durationMs: performance.now() - started });
      if (queueSignal.aborted) return;
      if (signal.aborted) {
        this.#logger.warn({ key, deadlineMs: deadline }, 'reconcile exceeded its deadline, requeueing');
      }
      if (err instanceof TerminalError) {
        // Recorded by the reconciler already; the next event for the key tries again.
        this.#failures.delete(key);
        this.#logger.error({ key, err }, 'reconcile failed with an error retrying cannot fix');
        return;
      }
      if (err instanceof NotReadyError) {
        // Not a failure: the key runs again as soon as what it waits for is ready.
        this.#logger.debug({ key, waitingFor: err.message }, 'reconcile waits for a module to load');
        // Already waiting (it ran again meanwhile, on an event): the first wait re-adds it, once.
        if (this.#waiting.has(key)) return;
        this.#waiting.add(key);
        err.ready.then(
          () => {
            this.#waiting.delete(key);
            this.add(key);
          },
          (cause: unknown) => {
            this.#waiting.delete(key);
            this.#retryWithBackoff(key, cause);
          },
        );
        return;
      }
      this.#retryWithBackoff(key, err);
    } finally {
      bounded?.end('abort');
    }
  }

  #retryWithBackoff(key: string, err: unknown): void {
    const failures = (this.#failures.get(key) ?? 0) + 1;
    this.#failures.set(key, failures);
    const delay = backoffDelay(failures, this.#options.backoff ?? { initialMs: 100, maxMs: 60_000 });
    this.#logger.warn({ key, failures, delayMs: delay, err }, 'reconcile failed, requeueing');
    this.#observer?.({ type: 'retried' });
    this.addAfter(key, delay);
  }
}
