import type { KubeObject } from '../kcp-client-ts/types.ts';
import { Informer, type InformerOptions } from './informer.ts';

type Running = { informer: Informer<KubeObject>; controller: AbortController; done: Promise<void> };

/**
 * Informers started and stopped at runtime under a key (one per staging workspace and
 * resource, one per brokered API...), all stopped together at shutdown.
 */
export class InformerSet {
  readonly #running = new Map<string, Running>();
  readonly #parent: AbortSignal;

  constructor(options: { signal: AbortSignal }) {
    this.#parent = options.signal;
  }

  get size(): number {
    return this.#running.size;
  }

  get<T extends KubeObject>(key: string): Informer<T> | undefined {
    return this.#running.get(key)?.informer as Informer<T> | undefined;
  }

  /** Returns the informer under `key`, creating and starting it (with `setup` run before start) when absent. */
  ensure<T extends KubeObject>(key: string, options: InformerOptions<T>, setup?: (informer: Informer<T>) => void): Informer<T> {
    const existing = this.#running.get(key);
    if (existing) return existing.informer as unknown as Informer<T>;
    const informer = new Informer<T>(options);
    setup?.(informer);
    const controller = new AbortController();
    const onAbort = (): void => controller.abort();
    this.#parent.addEventListener('abort', onAbort, { once: true });
    const done = informer.run(controller.signal).finally(() => this.#parent.removeEventListener('abort', onAbort));
    this.#running.set(key, { informer: informer as unknown as Informer<KubeObject>, controller, done });
    return informer;
  }

  keys(): string[] {
    return [...this.#running.keys()];
  }

  async stop(key: string): Promise<void> {
    const running = this.#running.get(key);
    if (!running) return;
    this.#running.delete(key);
    running.controller.abort();
    await running.done;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.keys().map((k) => this.stop(k)));
  }

  /** Informer statistics by key, for metrics. */
  stats(): { key: string; synced: boolean; lastEventAt: number | undefined; watchRestarts: number }[] {
    return [...this.#running].map(([key, r]) => ({ key, synced: r.informer.synced, lastEventAt: r.informer.stats.lastEventAt, watchRestarts: r.informer.stats.watchRestarts }));
  }
}
