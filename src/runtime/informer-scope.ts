import type { KubeObject } from '../kcp-client-ts/types.ts';
import { Informer, type InformerOptions, type ListerWatcher, type SourceSet } from './informer.ts';

/** A source an informer can be keyed by: what it lists and watches, as a URL. */
export type KeyedSource<T extends KubeObject> = ListerWatcher<T> & { url(): string };

type Running = { informer: Informer<KubeObject>; done: Promise<void> };

export type InformerStats = {
  name: string;
  family: string;
  synced: boolean;
  lastEventAt: number | undefined;
  watchRestarts: number;
  watches: number;
  /** Objects in its store. */
  objects: number;
};

/**
 * Informers started and ended as one unit: the whole process, one brokered resource, one
 * staging workspace. Each informer runs until its scope ends (or the parent's does). Informers
 * are keyed by what they watch (URL and label selector), so two controllers needing the same
 * watch in a scope share one cache; each adds, and later removes, its own handlers.
 */
export class InformerScope {
  readonly name: string;
  readonly #controller = new AbortController();
  readonly #informers = new Map<string, Running>();
  readonly #children = new Set<InformerScope>();
  readonly #detach: () => void;

  constructor(options: { name: string; signal?: AbortSignal }) {
    this.name = options.name;
    const parent = options.signal;
    if (parent?.aborted) this.#controller.abort();
    const onAbort = (): void => this.#controller.abort();
    parent?.addEventListener('abort', onAbort, { once: true });
    this.#detach = () => parent?.removeEventListener('abort', onAbort);
  }

  get ended(): boolean {
    return this.#controller.signal.aborted;
  }

  /** Aborted when the scope ends: for work that belongs to it. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** The informer for `source` (and label selector) in this scope, started when first asked for. */
  informer<T extends KubeObject>(source: KeyedSource<T> | SourceSet<T>, options: Omit<InformerOptions<T>, 'source'>): Informer<T> {
    // What the store holds is part of the identity: a transform (by its name), and a keep (by the informer's).
    const key = `${'current' in source ? source.id : source.url()}?${options.labelSelector ?? ''}#${options.transform?.name ?? ''}${options.keep ? `|${options.name}` : ''}`;
    const existing = this.#informers.get(key);
    if (existing) return existing.informer as unknown as Informer<T>;
    if (this.ended) throw new Error(`informer scope ${this.name} has ended`);
    const informer = new Informer<T>({ ...options, source });
    const done = informer.run(this.#controller.signal);
    this.#informers.set(key, { informer: informer as unknown as Informer<KubeObject>, done });
    return informer;
  }

  /** A scope ended with this one (or on its own, by `end`). */
  child(name: string): InformerScope {
    const child = new InformerScope({ name, signal: this.#controller.signal });
    this.#children.add(child);
    child.#onEnd = () => this.#children.delete(child);
    return child;
  }

  #onEnd: () => void = () => undefined;

  /** Stops every informer of this scope and its children; resolves when their loops have returned. */
  async end(): Promise<void> {
    this.#controller.abort();
    this.#detach();
    this.#onEnd();
    await Promise.all([...[...this.#informers.values()].map((r) => r.done), ...[...this.#children].map((c) => c.end())]);
  }

  /** Every informer here and in child scopes, for metrics and readiness. */
  stats(): InformerStats[] {
    const own = [...this.#informers.values()].map(({ informer }) => ({
      name: informer.name,
      family: informer.family,
      synced: informer.synced,
      lastEventAt: informer.stats.lastEventAt,
      watchRestarts: informer.stats.watchRestarts,
      watches: informer.watches,
      objects: informer.store.size,
    }));
    return [...own, ...[...this.#children].flatMap((c) => c.stats())];
  }
}

/**
 * One child scope per logical cluster, engaged on first use and disengaged as a unit (the
 * shape of multicluster-provider's per-cluster engage/disengage): what a controller watches in
 * a staging or verification workspace ends when that workspace goes.
 */
export class ClusterScopes {
  readonly #parent: InformerScope;
  readonly #scopes = new Map<string, InformerScope>();
  readonly #endedListeners: ((cluster: string) => void)[] = [];

  constructor(parent: InformerScope) {
    this.#parent = parent;
  }

  /** The scope of one cluster, created when first asked for. */
  of(cluster: string): InformerScope {
    let scope = this.#scopes.get(cluster);
    if (!scope || scope.ended) {
      scope = this.#parent.child(`${this.#parent.name}/${cluster}`);
      this.#scopes.set(cluster, scope);
    }
    return scope;
  }

  has(cluster: string): boolean {
    return this.#scopes.has(cluster);
  }

  /** Called after a cluster's scope ended, so users drop what they keep per cluster. */
  onEnded(listener: (cluster: string) => void): () => void {
    this.#endedListeners.push(listener);
    return () => this.#endedListeners.splice(this.#endedListeners.indexOf(listener), 1);
  }

  /** Ends everything watched in one cluster. */
  async end(cluster: string): Promise<void> {
    const scope = this.#scopes.get(cluster);
    if (!scope) return;
    this.#scopes.delete(cluster);
    await scope.end();
    for (const listener of [...this.#endedListeners]) listener(cluster);
  }
}
