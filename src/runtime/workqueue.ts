import { silentLogger, type Logger } from '../logging.ts';
import { backoffDelay } from './backoff.ts';
import { TerminalError } from './errors.ts';

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
  /** Called after each reconcile, for metrics. */
  onReconciled?: (outcome: { key: string; ok: boolean; durationMs: number }) => void;
};

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
  readonly #queue: string[] = [];
  readonly #queued = new Set<string>();
  readonly #processing = new Set<string>();
  /** Keys added while being processed: queued again when their reconcile ends. */
  readonly #dirty = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #inFlight = new Set<Promise<void>>();
  #controller: AbortController | undefined;
  #idleWaiters: (() => void)[] = [];
  #onReconciled: WorkQueueOptions['onReconciled'];

  constructor(options: WorkQueueOptions) {
    this.#options = options;
    this.name = options.name;
    this.#onReconciled = options.onReconciled;
    this.#logger = (options.logger ?? silentLogger()).child({ queue: options.name });
  }

  get depth(): number {
    return this.#queue.length;
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
    this.#queue.push(key);
    this.#pump();
  }

  /** Adds the key after a delay; an earlier pending delay for the key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.#controller?.signal.aborted) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const existing = this.#timers.get(key);
    if (existing) return;
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.#timers.set(key, timer);
  }

  /** Reports each reconcile from now on (metrics); replaces an earlier observer. */
  observe(onReconciled: NonNullable<WorkQueueOptions['onReconciled']>): void {
    this.#onReconciled = onReconciled;
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
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    await Promise.allSettled([...this.#inFlight]);
  }

  /** Keys being reconciled right now (to say what a stuck shutdown waits for). */
  inFlightKeys(): string[] {
    return [...this.#processing];
  }

  /** Resolves when nothing is queued, delayed or running (for tests and benchmarks). */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #isIdle(): boolean {
    return this.#queue.length === 0 && this.#processing.size === 0 && this.#timers.size === 0;
  }

  #pump(): void {
    const controller = this.#controller;
    if (!controller || controller.signal.aborted) return;
    const concurrency = this.#options.concurrency ?? 4;
    while (this.#processing.size < concurrency && this.#queue.length > 0) {
      const key = this.#queue.shift()!;
      this.#queued.delete(key);
      this.#processing.add(key);
      const work = this.#process(key, controller.signal).finally(() => {
        this.#inFlight.delete(work);
        this.#processing.delete(key);
        if (this.#dirty.delete(key)) this.add(key);
        this.#pump();
        if (this.#isIdle()) for (const resolve of this.#idleWaiters.splice(0)) resolve();
      });
      this.#inFlight.add(work);
    }
  }

  async #process(key: string, signal: AbortSignal): Promise<void> {
    const started = performance.now();
    try {
      const result = await this.#options.reconcile(key, signal);
      this.#failures.delete(key);
      this.#onReconciled?.({ key, ok: true, durationMs: performance.now() - started });
      if (result?.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
    } catch (err) {
      this.#onReconciled?.({ key, ok: false, durationMs: performance.now() - started });
      if (signal.aborted) return;
      if (err instanceof TerminalError) {
        // Recorded by the reconciler already; the next event for the key tries again.
        this.#failures.delete(key);
        this.#logger.error({ key, err }, 'reconcile failed with an error retrying cannot fix');
        return;
      }
      const failures = (this.#failures.get(key) ?? 0) + 1;
      this.#failures.set(key, failures);
      const delay = backoffDelay(failures, this.#options.backoff ?? { initialMs: 100, maxMs: 60_000 });
      this.#logger.warn({ key, failures, delayMs: delay, err }, 'reconcile failed, requeueing');
      this.addAfter(key, delay);
    }
  }
}
