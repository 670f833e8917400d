import { setTimeout as sleep } from 'node:timers/promises';
import { isGone } from '../kcp-client-ts/errors.ts';
import type { ListOptions, WatchOptions } from '../kcp-client-ts/resources.ts';
import type { KubeList, KubeObject, WatchEvent } from '../kcp-client-ts/types.ts';
import { WatchStalledError } from '../kcp-client-ts/watch.ts';
import { silentLogger, type Logger } from '../logging.ts';
import { backoffDelay } from './backoff.ts';
import { encodeKey, objectKeyOf } from './object-key.ts';
import { ObjectStore } from './store.ts';

/** What an informer needs of a resource: ResourceClient provides it (`list` applies `options.transform` to each item). */
export type ListerWatcher<T extends KubeObject> = {
  list(options?: ListOptions): Promise<KubeList<T>>;
  watch(options: WatchOptions): AsyncGenerator<WatchEvent<T>>;
};

export type InformerEvent<T extends KubeObject> =
  | { type: 'added'; object: T }
  | { type: 'updated'; object: T; old: T }
  | { type: 'deleted'; object: T };

export type InformerHandler<T extends KubeObject> = (event: InformerEvent<T>) => void;

export type InformerOptions<T extends KubeObject> = {
  name: string;
  source: ListerWatcher<T>;
  logger?: Logger;
  labelSelector?: string;
  /** Longest silence on a watch before it is treated as stalled and reopened (default: watch timeout + 15 s). */
  stallTimeoutMs?: number;
  /** Server-side watch timeout (default: 60-90 s, jittered); the informer re-watches from its resourceVersion afterwards. */
  watchTimeoutSeconds?: number;
  backoff?: { initialMs: number; maxMs: number };
  /** Page size of the informer's lists (default: the client's); small for large objects that a transform shrinks. */
  pageSize?: number;
  /**
   * What the store keeps of each object (default: all of it). Informers over the same source
   * share one store, so a transform is part of what identifies an informer (by its name).
   */
  transform?: (obj: T) => T;
};

export type InformerStats = {
  lists: number;
  watchRestarts: number;
  stalls: number;
  lastEventAt: number | undefined;
};

/**
 * List+watch into an ObjectStore, for one resource at one cluster base (a workspace, or `*` in
 * a virtual workspace). Keeps the resourceVersion, asks for bookmarks, relists on 410 Gone,
 * reopens stalled or dropped watches with jittered backoff, and emits added/updated/deleted
 * events (also for differences found by a relist) to its handlers.
 */
export class Informer<T extends KubeObject = KubeObject> {
  readonly name: string;
  readonly store = new ObjectStore<T>();
  readonly stats: InformerStats = { lists: 0, watchRestarts: 0, stalls: 0, lastEventAt: undefined };
  readonly #options: InformerOptions<T>;
  readonly #logger: Logger;
  readonly #handlers: InformerHandler<T>[] = [];
  /** What the store keeps of an object as it arrives (MemoryApi feeds its informers through it too). */
  readonly transform: (obj: T) => T;
  #synced = false;
  /** Whether the last list or watch request reached the server (false from a failure until the next success). */
  #connected = false;
  readonly #syncWaiters: (() => void)[] = [];

  constructor(options: InformerOptions<T>) {
    this.#options = options;
    this.name = options.name;
    this.transform = options.transform ?? ((obj) => obj);
    this.#logger = (options.logger ?? silentLogger()).child({ informer: options.name });
  }

  /**
   * Adds a handler; objects already in the store are replayed to it as `added` (as client-go
   * does), so a handler added to a shared, running informer misses nothing. Returns its removal.
   */
  onEvent(handler: InformerHandler<T>): () => void {
    this.#handlers.push(handler);
    for (const object of this.store.list()) this.#call(handler, { type: 'added', object });
    return () => {
      const at = this.#handlers.indexOf(handler);
      if (at >= 0) this.#handlers.splice(at, 1);
    };
  }

  get synced(): boolean {
    return this.#synced;
  }

  /** Whether the server answered the last list or watch request: false while kcp is unreachable or refusing. */
  get connected(): boolean {
    return this.#connected;
  }

  /** Resolves after the first complete list, or when `signal` aborts. */
  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.#synced || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      this.#syncWaiters.push(resolve);
      signal?.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  /** Runs until `signal` aborts; never throws for API or network errors. */
  async run(signal: AbortSignal): Promise<void> {
    const backoff = this.#options.backoff ?? { initialMs: 200, maxMs: 30_000 };
    let resourceVersion: string | undefined;
    let needList = true;
    let failures = 0;
    while (!signal.aborted) {
      try {
        if (needList) {
          // Transformed page by page: a relist never holds every full object at once.
          const list = await this.#options.source.list({
            labelSelector: this.#options.labelSelector,
            limit: this.#options.pageSize,
            transform: this.#options.transform as ((item: KubeObject) => KubeObject) | undefined,
            signal,
          });
          this.stats.lists++;
          this.#connected = true;
          this.#replace(list.items);
          resourceVersion = list.metadata.resourceVersion;
          needList = false;
          this.#markSynced();
        }
        // The server ends each watch after a jittered timeout (as client-go does); a stream
        // silent for longer than that plus a margin is stalled, since kcp may send no bookmarks.
        const timeoutSeconds = this.#options.watchTimeoutSeconds ?? Math.round(60 + Math.random() * 30);
        const events = this.#options.source.watch({
          resourceVersion,
          labelSelector: this.#options.labelSelector,
          timeoutSeconds,
          stallTimeoutMs: this.#options.stallTimeoutMs ?? (timeoutSeconds + 15) * 1000,
          signal,
          onOpen: () => {
            this.#connected = true;
          },
        });
        for await (const event of events) {
          failures = 0;
          this.stats.lastEventAt = Date.now();
          resourceVersion = event.object.metadata.resourceVersion ?? resourceVersion;
          this.#apply(event);
        }
        // The server ended the watch (timeout): reopen from where we are.
        this.stats.watchRestarts++;
      } catch (err) {
        if (signal.aborted) break;
        this.stats.watchRestarts++;
        if (!isGone(err)) this.#connected = false;
        if (isGone(err)) {
          this.#logger.info({ resourceVersion }, 'resourceVersion expired, relisting');
          needList = true;
          continue;
        }
        if (err instanceof WatchStalledError) {
          this.stats.stalls++;
          this.#logger.warn({ resourceVersion }, 'watch stalled, reopening');
          continue;
        }
        failures++;
        const delay = backoffDelay(failures, backoff);
        this.#logger.warn({ err, failures, delayMs: delay, relist: needList }, 'list/watch failed, retrying');
        await sleep(delay, undefined, { signal }).catch(() => undefined);
      }
    }
  }

  /** `transformed`: the object went through the transform already (a list's items do, page by page). */
  #apply(event: WatchEvent<T>, transformed = false): void {
    switch (event.type) {
      case 'BOOKMARK':
        return;
      case 'ADDED':
      case 'MODIFIED': {
        const object = transformed ? event.object : this.transform(event.object);
        const old = this.store.upsert(object);
        if (old && old.metadata.resourceVersion === object.metadata.resourceVersion) return;
        this.#emit(old ? { type: 'updated', object, old } : { type: 'added', object });
        return;
      }
      case 'DELETED': {
        const old = this.store.remove(event.object);
        if (old) this.#emit({ type: 'deleted', object: transformed ? event.object : this.transform(event.object) });
        return;
      }
    }
  }

  /** Makes the store equal to a fresh list, emitting the differences. */
  #replace(items: T[]): void {
    const seen = new Set<string>();
    for (const item of items) {
      seen.add(encodeKey(objectKeyOf(item)));
      this.#apply({ type: 'MODIFIED', object: item }, true);
    }
    for (const obj of this.store.list()) {
      if (!seen.has(encodeKey(objectKeyOf(obj)))) this.#apply({ type: 'DELETED', object: obj }, true);
    }
  }

  #emit(event: InformerEvent<T>): void {
    for (const handler of [...this.#handlers]) this.#call(handler, event);
  }

  #call(handler: InformerHandler<T>, event: InformerEvent<T>): void {
    try {
      handler(event);
    } catch (err) {
      this.#logger.error({ err }, 'informer handler threw');
    }
  }

  #markSynced(): void {
    if (this.#synced) return;
    this.#synced = true;
    for (const resolve of this.#syncWaiters.splice(0)) resolve();
  }
}
