import { setTimeout as sleep } from 'node:timers/promises';
import { isGone } from '../kcp-client-ts/errors.ts';
import type { ListOptions, WatchOptions } from '../kcp-client-ts/resources.ts';
import type { KubeList, KubeObject, WatchEvent } from '../kcp-client-ts/types.ts';
import { WatchStalledError } from '../kcp-client-ts/watch.ts';
import { silentLogger, type Logger } from '../logging.ts';
import { backoffDelay } from './backoff.ts';
import { encodeKey, objectKeyOf, type ObjectKey } from './object-key.ts';
import { ObjectStore } from './store.ts';
import { SharedValues } from './shared-values.ts';

/**
 * One table for every informer: the values worth sharing (cluster ids, annotations, a gvk) are
 * common across resources too: a consumer's object, its staging copy, its Assignment and its
 * Secrets all name the same clusters. 2,048 strings of at most 256 characters (about 1 MiB at
 * most, 0.6 MiB when they are one-byte strings, as kcp's names and ids are) and 2,048 leaves
 * holding at most 256 Ki characters of JSON text between them (about 1 MiB at most, with hostile
 * shapes; the common leaves are under 100 characters).
 */
const sharedValues = new SharedValues({ capacity: 2048, longest: 256 });

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

/**
 * Several lister-watchers that together hold a resource, changing at runtime: one per shard of
 * a virtual workspace (VirtualWorkspace.wildcard). Each keeps its own resourceVersion.
 */
export type SourceSet<T extends KubeObject> = {
  readonly id: string;
  current(): ReadonlyMap<string, ListerWatcher<T>>;
  onChange(listener: () => void): () => void;
};

/** One source as a set (the common case: a workspace, or a virtual workspace on one shard). */
const single = <T extends KubeObject>(source: ListerWatcher<T>): SourceSet<T> => {
  const current = new Map([['', source]]);
  return { id: '', current: () => current, onChange: () => () => undefined };
};

/** How many keys an informer with `keep` remembers passing over (about 100 bytes each). */
const MAX_PASSED_OVER = 4096;

/** What the informer keeps per source: the keys it brought (a relist or a dropped shard removes only those). */
type SourceRun = { controller: AbortController; done: Promise<void>; keys: Set<string>; listed: boolean; connected: boolean };

export type InformerOptions<T extends KubeObject> = {
  name: string;
  /** The name without the workspace it watches (`staging secrets`), for metric labels that stay few; default: name. */
  family?: string;
  /** One lister-watcher, or a set of them that changes (every shard of a virtual workspace). */
  source: ListerWatcher<T> | SourceSet<T>;
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
  /**
   * Which objects the store keeps, judged after the transform (default: all). The others are seen
   * and forgotten: no handler hears of them. What is kept may change with other state; the owner
   * of that state calls `admit` for an object it read that the stream brought earlier, and
   * `forget` for one no longer kept.
   */
  keep?: (obj: T) => boolean;
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
  readonly family: string;
  readonly store = new ObjectStore<T>();
  readonly stats: InformerStats = { lists: 0, watchRestarts: 0, stalls: 0, lastEventAt: undefined };
  readonly #options: InformerOptions<T>;
  readonly #logger: Logger;
  readonly #handlers: InformerHandler<T>[] = [];
  /** What the store keeps of an object as it arrives (MemoryApi feeds its informers through it too). */
  readonly transform: (obj: T) => T;
  #synced = false;
  /** Per source: its loop, the keys it brought, whether it listed and whether its last request reached the server. */
  readonly #runs = new Map<string, SourceRun>();
  readonly #syncWaiters: (() => void)[] = [];
  /** With `keep`: the keys whose events the store did not follow lately, with when (see `admit`). */
  readonly #passedOver = new Map<string, number>();
  #passedSeq = 0;
  /** The newest record dropped from #passedOver: reads marked before it are refused. */
  #passedBeyond = 0;

  constructor(options: InformerOptions<T>) {
    this.#options = options;
    this.name = options.name;
    this.family = options.family ?? options.name;
    // managedFields are often the largest part of an object and no controller reads them; an
    // update sent without them keeps the server's (only an empty list would reset them).
    const keep = options.transform ?? ((obj: T) => obj);
    this.transform = (obj) => {
      if (obj.metadata?.managedFields) {
        // A copy without them, not `delete`: V8 turns an object a property was deleted from into
        // a hash table, about 450 bytes for a metadata that takes about 100 (measured at 500
        // objects: the tables were 1.4 KiB per brokered object; the copy saves about 1.1).
        const { managedFields: _, ...metadata } = obj.metadata;
        obj.metadata = metadata;
      }
      const kept = keep(obj);
      sharedValues.internValuesOf(kept);
      return kept;
    };
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

  /** List+watch loops running now: one per source (shard), each a watch open on kcp. */
  get watches(): number {
    return this.#runs.size;
  }

  /** Whether the server answered the last list or watch request on every source: false while kcp is unreachable or refusing. */
  get connected(): boolean {
    return [...this.#runs.values()].every((r) => r.connected);
  }

  /**
   * A mark to take before reading an object outside the stream (a GET) that `admit` may store:
   * the read is refused if the stream passed over that key after the mark was taken.
   */
  admissionMark(): number {
    return this.#passedSeq;
  }

  /**
   * Stores an object read outside the stream (a GET, begun after `mark` was taken) that the `keep`
   * option turned away when the stream brought it, unless the store holds that key already (the
   * stream's version is as new or newer) or the stream passed over the key since the mark (a
   * change or deletion not kept, or a `forget`: the read may be older than what the server has).
   * Later events replace it. Not announced to handlers: the caller read it. Whether it was stored.
   * Like every cached object, what is stored is read only (its small leaves shared and frozen):
   * without a copying transform that is `obj` itself, which the caller must not change after.
   */
  admit(obj: T, mark: number): boolean {
    // Without `keep` the stream holds everything, and nothing records what a read could miss.
    if (!this.#options.keep) return false;
    const object = this.transform(obj);
    if (!this.#options.keep(object)) return false;
    const key = encodeKey(objectKeyOf(object));
    if (this.store.getByKey(key)) return false;
    if ((this.#passedOver.get(key) ?? 0) > mark || this.#passedBeyond > mark) return false;
    this.store.upsert(object, key);
    return true;
  }

  /**
   * Drops an object that is no longer kept (see `keep`): not a deletion, so no handler hears of
   * it; its next event is judged again.
   */
  forget(key: ObjectKey): void {
    const encoded = encodeKey(key);
    this.#passOver(encoded);
    const object = this.store.getByKey(encoded);
    if (!object) return;
    this.store.remove(object);
    for (const run of this.#runs.values()) run.keys.delete(encoded);
  }

  /**
   * Records that the store did not follow an event of `key` (or forgot it): an object of that
   * key read before now may be stale. Bounded: past MAX_PASSED_OVER keys, the oldest records go
   * and reads older than them are refused as a whole.
   */
  #passOver(key: string): void {
    if (!this.#options.keep) return;
    this.#passedSeq++;
    this.#passedOver.delete(key);
    this.#passedOver.set(key, this.#passedSeq);
    if (this.#passedOver.size <= MAX_PASSED_OVER) return;
    const [oldest, seq] = this.#passedOver.entries().next().value!;
    this.#passedOver.delete(oldest);
    this.#passedBeyond = seq;
  }

  /**
   * Resolves after the first complete list, or when `signal` aborts. Leaves nothing on either:
   * a listener left on a signal keeps it (and what it holds) alive until it aborts.
   */
  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.#synced || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        signal?.removeEventListener('abort', done);
        const at = this.#syncWaiters.indexOf(done);
        if (at >= 0) this.#syncWaiters.splice(at, 1);
        resolve();
      };
      this.#syncWaiters.push(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /**
   * Runs until `signal` aborts; never throws for API or network errors. With a source set, one
   * list+watch loop per source, started and ended as the set changes; synced once every source
   * present has listed (at once when there is none: nothing is served, so nothing exists).
   */
  async run(signal: AbortSignal): Promise<void> {
    const sources = 'current' in this.#options.source ? this.#options.source : single(this.#options.source);
    const follow = (): void => {
      if (signal.aborted) return;
      const current = sources.current();
      for (const [id, run] of this.#runs) {
        if (current.has(id)) continue;
        run.controller.abort();
        this.#runs.delete(id);
        this.#logger.info({ source: id, objects: run.keys.size }, 'source removed, dropping its objects');
        for (const key of run.keys) {
          const object = this.store.getByKey(key);
          if (object) this.#apply({ type: 'DELETED', object }, run, true);
        }
      }
      for (const [id, source] of current) {
        if (this.#runs.has(id)) continue;
        const controller = new AbortController();
        const onAbort = (): void => controller.abort();
        signal.addEventListener('abort', onAbort, { once: true });
        const run: SourceRun = { controller, done: Promise.resolve(), keys: new Set(), listed: false, connected: false };
        run.done = this.#runSource(id, source, run, controller.signal).finally(() => signal.removeEventListener('abort', onAbort));
        this.#runs.set(id, run);
        if (id !== '') this.#logger.info({ source: id }, 'source added');
      }
      this.#checkSynced();
    };
    const stop = sources.onChange(follow);
    follow();
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
    stop();
    await Promise.all([...this.#runs.values()].map((r) => r.done));
  }

  async #runSource(id: string, source: ListerWatcher<T>, run: SourceRun, signal: AbortSignal): Promise<void> {
    const backoff = this.#options.backoff ?? { initialMs: 200, maxMs: 30_000 };
    const logger = id === '' ? this.#logger : this.#logger.child({ source: id });
    let resourceVersion: string | undefined;
    let needList = true;
    let failures = 0;
    while (!signal.aborted) {
      try {
        if (needList) {
          // Transformed page by page: a relist never holds every full object at once.
          const list = await source.list({
            labelSelector: this.#options.labelSelector,
            limit: this.#options.pageSize,
            transform: this.transform as unknown as (item: KubeObject) => KubeObject,
            signal,
          });
          if (signal.aborted) return;
          this.stats.lists++;
          run.connected = true;
          this.#replace(list.items, run);
          resourceVersion = list.metadata.resourceVersion;
          needList = false;
          run.listed = true;
          this.#checkSynced();
        }
        // The server ends each watch after a jittered timeout (as client-go does); a stream
        // silent for longer than that plus a margin is stalled, since kcp may send no bookmarks.
        const timeoutSeconds = this.#options.watchTimeoutSeconds ?? Math.round(60 + Math.random() * 30);
        const events = source.watch({
          resourceVersion,
          labelSelector: this.#options.labelSelector,
          timeoutSeconds,
          stallTimeoutMs: this.#options.stallTimeoutMs ?? (timeoutSeconds + 15) * 1000,
          signal,
          onOpen: () => {
            run.connected = true;
          },
        });
        for await (const event of events) {
          if (signal.aborted) return;
          failures = 0;
          this.stats.lastEventAt = Date.now();
          resourceVersion = event.object.metadata.resourceVersion ?? resourceVersion;
          this.#apply(event, run);
        }
        // The server ended the watch (timeout): reopen from where we are.
        this.stats.watchRestarts++;
      } catch (err) {
        if (signal.aborted) break;
        this.stats.watchRestarts++;
        if (!isGone(err)) run.connected = false;
        if (isGone(err)) {
          logger.info({ resourceVersion }, 'resourceVersion expired, relisting');
          needList = true;
          continue;
        }
        if (err instanceof WatchStalledError) {
          this.stats.stalls++;
          logger.warn({ resourceVersion }, 'watch stalled, reopening');
          continue;
        }
        failures++;
        const delay = backoffDelay(failures, backoff);
        logger.warn({ err, failures, delayMs: delay, relist: needList }, 'list/watch failed, retrying');
        await sleep(delay, undefined, { signal }).catch(() => undefined);
      }
    }
  }

  /** `transformed`: the object went through the transform already (a list's items do, page by page). */
  #apply(event: WatchEvent<T>, run: SourceRun, transformed = false): void {
    switch (event.type) {
      case 'BOOKMARK':
        return;
      case 'ADDED':
      case 'MODIFIED': {
        const object = transformed ? event.object : this.transform(event.object);
        const key = encodeKey(objectKeyOf(object));
        // A key belongs to the source that brought it last (a cluster moved to another shard).
        for (const other of this.#runs.values()) if (other !== run) other.keys.delete(key);
        if (this.#options.keep && !this.#options.keep(object)) {
          run.keys.delete(key);
          this.#passOver(key);
          const dropped = this.store.remove(object);
          if (dropped) this.#emit({ type: 'deleted', object: dropped });
          return;
        }
        run.keys.add(key);
        const old = this.store.upsert(object, key);
        if (old && old.metadata.resourceVersion === object.metadata.resourceVersion) return;
        this.#emit(old ? { type: 'updated', object, old } : { type: 'added', object });
        return;
      }
      case 'DELETED': {
        const key = encodeKey(objectKeyOf(event.object));
        // Another source holds it now; one admitted from a read is held by none, and goes.
        if (!run.keys.delete(key) && [...this.#runs.values()].some((r) => r.keys.has(key))) return;
        const old = this.store.remove(event.object);
        this.#passOver(key); // a read of it in flight must not bring it back
        if (old) this.#emit({ type: 'deleted', object: transformed ? event.object : this.transform(event.object) });
        return;
      }
    }
  }

  /** Makes this source's part of the store equal to a fresh list, emitting the differences. */
  #replace(items: T[], run: SourceRun): void {
    const seen = new Set<string>();
    for (const item of items) {
      seen.add(encodeKey(objectKeyOf(item)));
      this.#apply({ type: 'MODIFIED', object: item }, run, true);
    }
    for (const key of [...run.keys]) {
      if (seen.has(key)) continue;
      const object = this.store.getByKey(key);
      if (object) this.#apply({ type: 'DELETED', object }, run, true);
      else run.keys.delete(key);
    }
    if (!this.#options.keep) return;
    // The watch had a gap: a read begun before it may have missed anything, and an object admitted
    // from a read (held by no source) may be gone. Those go unless this list has them; one that
    // another shard holds is read again when needed.
    this.#passedBeyond = ++this.#passedSeq;
    for (const key of this.store.keys()) {
      if (seen.has(key) || [...this.#runs.values()].some((r) => r.keys.has(key))) continue;
      const object = this.store.getByKey(key);
      if (object) this.store.remove(object);
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

  /**
   * Synced while every current source has listed: a shard joining makes it false until that
   * shard's list is in (a controller must not read "absent" from a half-filled cache).
   */
  #checkSynced(): void {
    if (![...this.#runs.values()].every((r) => r.listed)) {
      this.#synced = false;
      return;
    }
    if (this.#synced) return;
    this.#synced = true;
    for (const resolve of this.#syncWaiters.splice(0)) resolve();
  }
}
