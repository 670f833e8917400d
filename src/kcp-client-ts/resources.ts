import type { KcpEndpoint } from './endpoint.ts';
import { isAlreadyExists, isNotFound } from './errors.ts';
import { resourcePath, withQuery } from './paths.ts';
import type { GroupVersionResource, KubeList, KubeObject, WatchEvent } from './types.ts';
import { watchEvents } from './watch.ts';

export type ResourceClientOptions = {
  endpoint: KcpEndpoint;
  /** A cluster base URL: `endpoint.workspaceUrl(..)` or `endpoint.virtualWorkspaceUrl(..)`. */
  baseUrl: string;
  gvr: GroupVersionResource;
};

export type ListOptions = {
  namespace?: string | undefined;
  labelSelector?: string | undefined;
  /** Page size (default 500). */
  limit?: number | undefined;
  /** Applied to each item as its page arrives, so only what it keeps outlives the page. */
  transform?: ((item: KubeObject) => KubeObject) | undefined;
  signal?: AbortSignal | undefined;
};

export type WatchOptions = {
  namespace?: string | undefined;
  labelSelector?: string | undefined;
  resourceVersion?: string | undefined;
  /** Server-side end of the watch; the informer re-watches from the last resourceVersion. */
  timeoutSeconds?: number;
  stallTimeoutMs: number;
  signal: AbortSignal;
  onOpen?: (() => void) | undefined;
};

type Target = { namespace?: string | undefined; name: string };

/** Preconditions of a delete: the server refuses it (409) when the object is not that one any more. */
export type DeletePreconditions = { uid?: string; resourceVersion?: string };

/** The verbs controllers write with; ResourceClient has them, and unit tests hand in an in-memory fake. */
export type ObjectClient<T extends KubeObject = KubeObject> = Pick<
  ResourceClient<T>,
  'get' | 'find' | 'create' | 'update' | 'updateStatus' | 'mergePatch' | 'delete' | 'createIfAbsent'
>;

/**
 * Untyped access to one resource (any GVR, brokered APIs included) under one cluster base.
 * Knows URLs and verbs, nothing about what the objects mean.
 */
export class ResourceClient<T extends KubeObject = KubeObject> {
  readonly gvr: GroupVersionResource;
  readonly baseUrl: string;
  readonly #endpoint: KcpEndpoint;

  constructor(options: ResourceClientOptions) {
    this.#endpoint = options.endpoint;
    this.baseUrl = options.baseUrl;
    this.gvr = options.gvr;
  }

  /** The same resource under another cluster base (another workspace, or a VW cluster). */
  at(baseUrl: string): ResourceClient<T> {
    return new ResourceClient<T>({ endpoint: this.#endpoint, baseUrl, gvr: this.gvr });
  }

  url(target: { namespace?: string | undefined; name?: string | undefined; subresource?: string } = {}): string {
    return `${this.baseUrl}${resourcePath(this.gvr, target)}`;
  }

  /** Lists every page; returns the items and the list's resourceVersion. */
  async list(options: ListOptions = {}): Promise<KubeList<T>> {
    const items: T[] = [];
    let continueToken: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const page = await this.#endpoint.json<KubeList<T>>({
        method: 'GET',
        url: withQuery(this.url({ namespace: options.namespace }), {
          labelSelector: options.labelSelector,
          limit: options.limit ?? 500,
          continue: continueToken,
        }),
        signal: options.signal,
      });
      const { transform } = options;
      for (const item of page.items) items.push(transform ? (transform(item) as T) : item);
      continueToken = page.metadata.continue || undefined;
      resourceVersion = page.metadata.resourceVersion;
    } while (continueToken);
    return { metadata: { resourceVersion }, items };
  }

  watch(options: WatchOptions): AsyncGenerator<WatchEvent<T>> {
    const url = withQuery(this.url({ namespace: options.namespace }), {
      watch: true,
      allowWatchBookmarks: true,
      resourceVersion: options.resourceVersion,
      labelSelector: options.labelSelector,
      timeoutSeconds: options.timeoutSeconds,
    });
    return watchEvents<T>(this.#endpoint, url, {
      signal: options.signal,
      stallTimeoutMs: options.stallTimeoutMs,
      onOpen: options.onOpen,
    });
  }

  get(target: Target, signal?: AbortSignal): Promise<T> {
    return this.#endpoint.json<T>({ method: 'GET', url: this.url(target), signal });
  }

  /** Like get, but undefined for 404. */
  async find(target: Target, signal?: AbortSignal): Promise<T | undefined> {
    try {
      return await this.get(target, signal);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  create(object: T, signal?: AbortSignal): Promise<T> {
    return this.#endpoint.json<T>({
      method: 'POST',
      url: this.url({ namespace: object.metadata.namespace }),
      body: object,
      signal,
    });
  }

  /** PUT of the whole object; the resourceVersion in it guards against lost updates. */
  update(object: T, signal?: AbortSignal): Promise<T> {
    return this.#endpoint.json<T>({
      method: 'PUT',
      url: this.url({ namespace: object.metadata.namespace, name: object.metadata.name }),
      body: object,
      signal,
    });
  }

  updateStatus(object: T, signal?: AbortSignal): Promise<T> {
    return this.#endpoint.json<T>({
      method: 'PUT',
      url: this.url({ namespace: object.metadata.namespace, name: object.metadata.name, subresource: 'status' }),
      body: object,
      signal,
    });
  }

  /** JSON merge patch (RFC 7386) of the object or one of its subresources. */
  mergePatch(target: Target & { subresource?: string }, patch: unknown, signal?: AbortSignal): Promise<T> {
    return this.#endpoint.json<T>({
      method: 'PATCH',
      url: this.url(target),
      body: patch,
      contentType: 'application/merge-patch+json',
      signal,
    });
  }

  /**
   * Creates the object, or leaves the one of that name alone: returns what was created, or
   * undefined when it existed (the caller's cache will show it).
   */
  async createIfAbsent(object: T, signal?: AbortSignal): Promise<T | undefined> {
    try {
      return await this.create(object, signal);
    } catch (err) {
      if (isAlreadyExists(err)) return undefined;
      throw err;
    }
  }

  /** Deletes; a missing object counts as deleted (returns false). With preconditions, a different object of that name is a 409. */
  async delete(target: Target, signal?: AbortSignal, preconditions?: DeletePreconditions): Promise<boolean> {
    try {
      const body = preconditions ? { apiVersion: 'v1', kind: 'DeleteOptions', preconditions } : undefined;
      await this.#endpoint.json({ method: 'DELETE', url: this.url(target), signal, ...(body ? { body } : {}) });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }
}
