import { ApiError } from '../kcp-client-ts/errors.ts';
import type { ListOptions, ResourceClient, WatchOptions } from '../kcp-client-ts/resources.ts';
import type { KubeList, KubeObject, WatchEvent } from '../kcp-client-ts/types.ts';
import type { KeyedSource } from './informer-scope.ts';

/**
 * A source whose URL is learnt later (a virtual workspace that has no endpoint until someone
 * binds its export). Until then it lists nothing, which is the truth (no binding, no object),
 * so an informer over it syncs at once; its watch waits for the URL and then answers 410, which
 * makes the informer relist from the real source and carry on watching it.
 */
export class DeferredSource<T extends KubeObject> implements KeyedSource<T> {
  readonly #name: string;
  #real: ResourceClient<T> | undefined;
  #resolve: (() => void) | undefined;
  readonly #ready: Promise<void>;

  constructor(name: string) {
    this.#name = name;
    this.#ready = new Promise((resolve) => {
      this.#resolve = resolve;
    });
  }

  /** The real source, once known; later calls are ignored. */
  resolve(real: ResourceClient<T>): void {
    if (this.#real) return;
    this.#real = real;
    this.#resolve?.();
  }

  get resolved(): ResourceClient<T> | undefined {
    return this.#real;
  }

  url(): string {
    return `deferred:${this.#name}`;
  }

  list(options?: ListOptions): Promise<KubeList<T>> {
    if (this.#real) return this.#real.list(options);
    return Promise.resolve({ metadata: { resourceVersion: '' }, items: [] });
  }

  watch(options: WatchOptions): AsyncGenerator<WatchEvent<T>> {
    if (this.#real) return this.#real.watch(options);
    const ready = this.#ready;
    const name = this.#name;
    return (async function* (): AsyncGenerator<WatchEvent<T>> {
      await new Promise<void>((resolve) => {
        void ready.then(resolve);
        options.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      if (options.signal.aborted) return;
      throw new ApiError({
        status: 410,
        reason: 'Expired',
        message: `${name}: the real source is known now, relist`,
        method: 'WATCH',
        url: `deferred:${name}`,
      });
    })();
  }
}
