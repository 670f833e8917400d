import type { KcpEndpoint } from './endpoint.ts';
import { ApiError } from './errors.ts';
import type { ListOptions, WatchOptions } from './resources.ts';
import { ResourceClient } from './resources.ts';
import { clusterOf, gvrString, type GroupVersionResource, type KubeList, type KubeObject, type WatchEvent } from './types.ts';

/** What an informer needs of one shard's endpoint (ResourceClient's list and watch). */
type ShardSource<T extends KubeObject> = {
  list(options?: ListOptions): Promise<KubeList<T>>;
  watch(options: WatchOptions): AsyncGenerator<WatchEvent<T>>;
};

/** No shard of a virtual workspace is known to hold a cluster (not seen yet, or its shard left the slice). */
export class UnroutableClusterError extends ApiError {
  constructor(virtualWorkspace: string, cluster: string, endpoints: number) {
    super({
      status: 503,
      reason: 'ServiceUnavailable',
      message: `no shard of virtual workspace ${virtualWorkspace} is known to hold cluster ${cluster} (${endpoints} endpoints)`,
      method: 'GET',
      url: `virtualworkspace:${virtualWorkspace}/clusters/${cluster}`,
    });
    this.name = 'UnroutableClusterError';
  }
}

/** Clusters remembered as lost with their shard, at most (oldest forgotten first). */
const MAX_LOST = 100_000;

/**
 * One APIExport's virtual workspace on a (possibly sharded) kcp: one URL per shard, as its
 * APIExportEndpointSlice lists them, changing while the process runs. Each shard serves only
 * the logical clusters it holds, so a wildcard read goes to every URL, and a write goes to the
 * URL its cluster was last seen on (learnt from what the reads bring back).
 */
export class VirtualWorkspace {
  readonly name: string;
  readonly #endpoint: KcpEndpoint;
  #urls: string[] = [];
  readonly #listeners = new Set<() => void>();
  /** cluster -> the shard URL whose wildcard reads brought an object of it. */
  readonly #routes = new Map<string, string>();
  /** Clusters whose shard left the slice: never guessed to be on a remaining shard. */
  readonly #lost = new Set<string>();

  constructor(endpoint: KcpEndpoint, name: string) {
    this.#endpoint = endpoint;
    this.name = name;
  }

  get urls(): readonly string[] {
    return this.#urls;
  }

  /**
   * Takes the slice's current URLs; listeners (informers) add and drop per-shard watches. Returns
   * whether anything changed. Only https URLs without credentials are taken (the broker sends its
   * own credentials there), each in one spelling (a trailing slash does not make a second shard).
   */
  update(urls: readonly string[]): boolean {
    const next = [...new Set(urls.map(normalisedUrl).filter((u): u is string => u !== undefined))].sort();
    if (next.length === this.#urls.length && next.every((u, i) => u === this.#urls[i])) return false;
    this.#urls = next;
    for (const [cluster, url] of this.#routes) {
      if (next.includes(url)) continue;
      this.#routes.delete(cluster);
      this.#lost.add(cluster);
      if (this.#lost.size > MAX_LOST) this.#lost.delete(this.#lost.values().next().value!);
    }
    for (const listener of [...this.#listeners]) listener();
    return true;
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * The shard URL serving `cluster`: where it was seen, or the only one (unless its shard left the
   * slice: then it is nowhere). Undefined when no read has shown it yet.
   */
  urlOf(cluster: string): string | undefined {
    const seen = this.#routes.get(cluster);
    if (seen !== undefined) return seen;
    return this.#urls.length === 1 && !this.#lost.has(cluster) ? this.#urls[0] : undefined;
  }

  /** The base URL of one cluster (for callers that build requests themselves, e.g. Events); throws when no shard is known to hold it. */
  clusterUrl(cluster: string): string {
    const url = this.urlOf(cluster);
    if (url === undefined) throw new UnroutableClusterError(this.name, cluster, this.#urls.length);
    return this.#endpoint.virtualWorkspaceUrl(url, cluster);
  }

  /** A client for `gvr` in one cluster, on the shard that holds it. */
  client<T extends KubeObject = KubeObject>(cluster: string, gvr: GroupVersionResource): ResourceClient<T> {
    return new ResourceClient<T>({ endpoint: this.#endpoint, baseUrl: this.clusterUrl(cluster), gvr });
  }

  /**
   * `gvr` across all clusters, as a set of per-shard sources that follows the slice: what an
   * informer lists and watches. Every object read through it teaches the route of its cluster.
   */
  wildcard<T extends KubeObject = KubeObject>(gvr: GroupVersionResource): ShardedSource<T> {
    return new ShardedSource<T>(
      this,
      gvr,
      (url) => new ResourceClient<T>({ endpoint: this.#endpoint, baseUrl: this.#endpoint.virtualWorkspaceUrl(url, '*'), gvr }),
    );
  }

  /** Records where a cluster's objects come from (called by the sources). */
  learn(cluster: string, url: string): void {
    if (cluster === '' || !this.#urls.includes(url)) return;
    this.#lost.delete(cluster);
    if (this.#routes.get(cluster) !== url) this.#routes.set(cluster, url);
  }
}

const normalisedUrl = (text: string): string | undefined => {
  try {
    const url = new URL(text);
    if (url.protocol !== 'https:' || url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') return undefined;
    return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
  } catch {
    return undefined;
  }
};

/** One resource of a virtual workspace on every shard: a source per URL, changing with the slice. */
export class ShardedSource<T extends KubeObject> {
  readonly #vw: VirtualWorkspace;
  readonly #gvr: GroupVersionResource;
  readonly #make: (url: string) => ResourceClient<T>;
  #sources = new Map<string, ShardSource<T>>();

  constructor(vw: VirtualWorkspace, gvr: GroupVersionResource, make: (url: string) => ResourceClient<T>) {
    this.#vw = vw;
    this.#gvr = gvr;
    this.#make = make;
  }

  /** Identifies what is watched (informers over the same resource of the same virtual workspace share a cache). */
  get id(): string {
    return `vw:${this.#vw.name}/${gvrString(this.#gvr)}`;
  }

  /** The current per-shard sources, keyed by shard URL. */
  current(): ReadonlyMap<string, ShardSource<T>> {
    const urls = this.#vw.urls;
    const next = new Map<string, ShardSource<T>>();
    for (const url of urls) next.set(url, this.#sources.get(url) ?? this.#learning(url, this.#make(url)));
    this.#sources = next;
    return next;
  }

  onChange(listener: () => void): () => void {
    return this.#vw.onChange(listener);
  }

  #learning(url: string, client: ResourceClient<T>): ShardSource<T> {
    const vw = this.#vw;
    return {
      list: async (options) => {
        const list = await client.list(options);
        for (const item of list.items) vw.learn(clusterOf(item), url);
        return list;
      },
      watch: (options) =>
        (async function* (): AsyncGenerator<WatchEvent<T>> {
          for await (const event of client.watch(options)) {
            if (event.type !== 'BOOKMARK') vw.learn(clusterOf(event.object), url);
            yield event;
          }
        })(),
    };
  }
}
