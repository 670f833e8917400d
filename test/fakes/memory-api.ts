/**
 * An in-memory Kubernetes/kcp API server for reconciler unit tests. Objects live per (logical
 * cluster, resource); every write gets a resourceVersion from one global counter, creates get a
 * uid, and spec changes bump the generation. Clients behave like the real API where reconcilers
 * depend on it: 404 NotFound, 409 AlreadyExists, 409 Conflict on a stale resourceVersion or a
 * failed precondition, finalizers (delete marks, removing the last finalizer of a deleting object
 * removes it), and the status subresource (update keeps status, updateStatus changes only status).
 *
 * Writes feed real `Informer` stores synchronously (never `run()`), so a reconciler reads what it
 * wrote, as from a cache; `lagging = true` holds those updates back until `flush()`. Every write a
 * client makes is logged (`writes`, `log()`); `put`/`remove` are other actors' writes (a user, a
 * provider, another controller) and are neither logged nor subject to injected faults.
 */
import { isDeepStrictEqual } from 'node:util';
import { ApiError, isNotFound } from '../../src/kcp-client-ts/errors.ts';
import type { DeletePreconditions, ListOptions, ObjectClient, ResourceClient } from '../../src/kcp-client-ts/resources.ts';
import { CLUSTER_ANNOTATION, gvrString, type GroupVersionResource, type KubeObject } from '../../src/kcp-client-ts/types.ts';
import { Informer } from '../../src/runtime/informer.ts';

export type Verb = 'create' | 'update' | 'updateStatus' | 'patch' | 'delete';
/** One write a client made (a delete that only set deletionTimestamp counts too). */
export type Write = { verb: Verb; cluster: string; resource: string; namespace: string; name: string };
export type WriteMatcher = Partial<Write> | ((write: Write) => boolean);
/** What a client hands out: the verbs controllers write with, plus list (the stage runner's compute). */
export type MemoryClient<T extends KubeObject = KubeObject> = ObjectClient<T> & Pick<ResourceClient<T>, 'list'>;

type Target = { namespace?: string | undefined; name: string };
type Fault = { match: (write: Write, attempt: number) => boolean; error: Error; applied: boolean };
type Watcher = { resource: string; clusters?: Set<string>; selector?: string; informer: Informer<KubeObject> };

/** One line per write: `verb cluster/resource namespace/name`, e.g. `create coord/assignments /a-1`. */
export const formatWrite = (w: Write): string => `${w.verb} ${w.cluster}/${w.resource} ${w.namespace}/${w.name}`;

/** Label selectors as informers use them: `k=v`, `k!=v`, `k` (exists), `!k`, comma-separated. */
export const matchesSelector = (labels: Record<string, string> | undefined, selector: string | undefined): boolean =>
  (selector ?? '')
    .split(',')
    .filter((t) => t.trim() !== '')
    .every((term) => {
      const [, not, key = '', op, value] = /^(!?)([^=!]+)(?:(!?=)(.*))?$/.exec(term.trim()) ?? [];
      const has = labels?.[key] !== undefined;
      if (op === '=') return labels?.[key] === value;
      if (op === '!=') return labels?.[key] !== value;
      return not ? !has : has;
    });

/** Fields a PUT may change: all but apiVersion/kind/metadata/status. Their change bumps the generation. */
const specOf = (o: KubeObject): Record<string, unknown> =>
  Object.fromEntries(Object.entries(o).filter(([k]) => !['apiVersion', 'kind', 'metadata', 'status'].includes(k)));

/** RFC 7386 JSON merge patch. */
const merge = (target: unknown, patch: unknown): unknown => {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = merge(out[k], v);
  }
  return out;
};

/** An Informer the MemoryApi fills: never run, synced from the start. */
class FedInformer<T extends KubeObject> extends Informer<T> {
  override get synced(): boolean {
    return true;
  }
  override waitForSync(): Promise<void> {
    return Promise.resolve();
  }
}
const NO_SOURCE = {
  list: () => Promise.reject(new Error('fed by MemoryApi, never run()')),
  watch: () => {
    throw new Error('fed by MemoryApi, never run()');
  },
};

export class MemoryApi {
  /** Every write clients made, in order. */
  readonly writes: Write[] = [];
  /** The writes an injected fault hit, in order. */
  readonly failed: Write[] = [];
  /** Write attempts so far, failed ones included (what `failWriteNumber` counts). */
  attempts = 0;
  /** When true, informer stores see writes only at `flush()` (a cache that lags). */
  lagging = false;
  readonly #objects = new Map<string, Map<string, KubeObject>>(); // `cluster|gvr` -> `namespace|name` -> object
  readonly #watchers: Watcher[] = [];
  readonly #pending: (() => void)[] = [];
  readonly #faults: Fault[] = [];
  #rv = 0;
  #uid = 0;

  /** The writes as `formatWrite` lines, optionally only those matching. */
  log(matcher?: WriteMatcher): string[] {
    return this.writes.filter((w) => !matcher || matches(matcher, w)).map(formatWrite);
  }

  /** The next write matching fails with `error` (default 500); `applied`: it takes effect first (the reply is lost). */
  failNextWrite(matcher: WriteMatcher, error: Error = serverError(), options: { applied?: boolean } = {}): void {
    this.#faults.push({ match: (w) => matches(matcher, w), error, applied: options.applied ?? false });
  }

  /** The `n`th write attempt from now (1-based) fails; see failNextWrite. */
  failWriteNumber(n: number, error: Error = serverError(), options: { applied?: boolean } = {}): void {
    const at = this.attempts + n;
    this.#faults.push({ match: (_, attempt) => attempt === at, error, applied: options.applied ?? false });
  }

  /** Applies the informer updates held back while lagging. */
  flush(): void {
    for (const apply of this.#pending.splice(0)) apply();
  }

  /** An informer over `gvr` in `clusters` (default: all, like a wildcard or virtual workspace), label-selected. */
  informer<T extends KubeObject = KubeObject>(
    gvr: GroupVersionResource,
    options: { clusters?: string[]; labelSelector?: string; name?: string; transform?: (obj: T) => T } = {},
  ): Informer<T> {
    const informer = new FedInformer<KubeObject>({
      name: options.name ?? gvr.resource,
      source: NO_SOURCE,
      ...(options.transform ? { transform: options.transform as unknown as (obj: KubeObject) => KubeObject } : {}),
    });
    const watcher: Watcher = {
      resource: gvrString(gvr),
      informer,
      ...(options.clusters ? { clusters: new Set(options.clusters) } : {}),
      ...(options.labelSelector ? { selector: options.labelSelector } : {}),
    };
    this.#watchers.push(watcher);
    for (const [bucket, objects] of this.#objects) {
      const [cluster = ''] = bucket.split('|');
      for (const obj of objects.values()) if (bucket.endsWith(`|${watcher.resource}`)) this.#feed(watcher, cluster, obj);
    }
    return informer as unknown as Informer<T>;
  }

  /** The stored object (a copy), as the server has it now. */
  get<T extends KubeObject = KubeObject>(cluster: string, gvr: GroupVersionResource, namespace: string, name: string): T | undefined {
    const obj = this.#bucket(cluster, gvr).get(`${namespace}|${name}`);
    return obj ? (structuredClone(obj) as T) : undefined;
  }

  /** Stored objects of `gvr` in `cluster` (all clusters when undefined). */
  list<T extends KubeObject = KubeObject>(cluster: string | undefined, gvr: GroupVersionResource): T[] {
    return [...this.#objects]
      .filter(([bucket]) => bucket.endsWith(`|${gvrString(gvr)}`) && (cluster === undefined || bucket.startsWith(`${cluster}|`)))
      .flatMap(([, objects]) => [...objects.values()].map((o) => structuredClone(o) as T));
  }

  /** Every stored object with its cluster and resource (`gvrString`), for snapshots. */
  dump(): { cluster: string; resource: string; object: KubeObject }[] {
    return [...this.#objects].flatMap(([bucket, objects]) => {
      const [cluster = '', resource = ''] = bucket.split('|');
      return [...objects.values()].map((o) => ({ cluster, resource, object: structuredClone(o) }));
    });
  }

  /** Another actor's write: stores the object as given (status too), with server metadata; a deleting object without finalizers goes. */
  put<T extends KubeObject>(cluster: string, gvr: GroupVersionResource, obj: T): T {
    const current = this.#bucket(cluster, gvr).get(`${obj.metadata.namespace ?? ''}|${obj.metadata.name}`);
    return this.#save(cluster, gvr, this.#withServerFields(cluster, structuredClone(obj), current)) as T;
  }

  /** Another actor removes the object outright (finalizers ignored). */
  remove(cluster: string, gvr: GroupVersionResource, namespace: string, name: string): void {
    this.#bucket(cluster, gvr).delete(`${namespace}|${name}`);
    this.#notify(cluster, gvr, { metadata: { name, namespace, annotations: { [CLUSTER_ANNOTATION]: cluster } } }, false);
  }

  /** A client for `gvr` in one logical cluster. */
  client<T extends KubeObject = KubeObject>(cluster: string, gvr: GroupVersionResource): MemoryClient<T> {
    const at = (t: Target): KubeObject | undefined => this.#bucket(cluster, gvr).get(`${t.namespace ?? ''}|${t.name}`);
    const existing = (t: Target): KubeObject => at(t) ?? fail(404, 'NotFound', `${gvr.resource} "${t.name}" not found`);
    const write = <R>(verb: Verb, t: Target, apply: () => R): R =>
      this.#write({ verb, cluster, resource: gvr.resource, namespace: t.namespace ?? '', name: t.name }, apply);
    const save = (obj: KubeObject): T => this.#save(cluster, gvr, obj) as T;
    const get = async (t: Target): Promise<T> => structuredClone(existing(t)) as T;
    const create = async (obj: T): Promise<T> =>
      write('create', nameOf(obj), () => {
        if (at(nameOf(obj))) fail(409, 'AlreadyExists', `${gvr.resource} "${obj.metadata.name}" already exists`);
        const { status: _ignored, ...rest } = structuredClone(obj) as KubeObject; // status is a subresource
        return save(this.#withServerFields(cluster, { ...rest, metadata: { ...rest.metadata, deletionTimestamp: undefined } }, undefined));
      });
    return {
      get,
      find: (t) => get(t).catch((err) => (isNotFound(err) ? undefined : Promise.reject(err))),
      create,
      createIfAbsent: (obj) =>
        create(obj).catch((err) => (err instanceof ApiError && err.reason === 'AlreadyExists' ? undefined : Promise.reject(err))),
      update: async (obj) =>
        write('update', nameOf(obj), () => {
          const current = checked(existing(nameOf(obj)), obj.metadata);
          const { status: _status, ...rest } = structuredClone(obj) as KubeObject; // status is a subresource
          const { deletionTimestamp: _deletion, ...metadata } = rest.metadata;
          return save(this.#withServerFields(cluster, { ...rest, metadata, ...statusOf(current) }, current));
        }),
      updateStatus: async (obj) =>
        write('updateStatus', nameOf(obj), () => {
          const current = checked(existing(nameOf(obj)), obj.metadata);
          const { status: _status, ...rest } = structuredClone(current);
          return save({ ...rest, ...statusOf(structuredClone(obj)) });
        }),
      mergePatch: async (t, patch) =>
        write('patch', t, () => {
          const current = existing(t);
          const { status, ...rest } = (patch ?? {}) as Partial<KubeObject>;
          checked(current, rest.metadata ?? {});
          // The main resource ignores status; the status subresource takes only status.
          const merged = merge(current, t.subresource === 'status' ? { status: status ?? null } : rest) as KubeObject;
          return save(this.#withServerFields(cluster, merged, current));
        }),
      delete: async (t, _signal, preconditions?: DeletePreconditions) => {
        try {
          write('delete', t, () => {
            const current = checked(existing(t), preconditions ?? {});
            if (!current.metadata.finalizers?.length) this.remove(cluster, gvr, t.namespace ?? '', t.name);
            else if (!current.metadata.deletionTimestamp) save({ ...current, metadata: { ...current.metadata, deletionTimestamp: now() } });
          });
          return true;
        } catch (err) {
          if (isNotFound(err)) return false;
          throw err;
        }
      },
      list: async (options: ListOptions = {}) => ({
        metadata: { resourceVersion: String(this.#rv) },
        items: this.list<T>(cluster, gvr).filter(
          (o) =>
            (!options.namespace || o.metadata.namespace === options.namespace) && matchesSelector(o.metadata.labels, options.labelSelector),
        ),
      }),
    };
  }

  /** Runs one client write: counts the attempt, applies an injected fault, logs what took effect. */
  #write<R>(write: Write, apply: () => R): R {
    const attempt = ++this.attempts;
    const at = this.#faults.findIndex((f) => f.match(write, attempt));
    const fault = at >= 0 ? this.#faults.splice(at, 1)[0] : undefined;
    if (fault) this.failed.push(write);
    if (fault && !fault.applied) throw fault.error;
    const result = apply();
    this.writes.push(write);
    if (fault) throw fault.error;
    return result;
  }

  /** `obj` with what the server owns: uid, creationTimestamp, deletionTimestamp, generation, the cluster annotation. */
  #withServerFields(cluster: string, obj: KubeObject, current: KubeObject | undefined): KubeObject {
    const generation = current ? (current.metadata.generation ?? 1) + (isDeepStrictEqual(specOf(current), specOf(obj)) ? 0 : 1) : 1;
    const metadata = {
      ...obj.metadata,
      uid: current?.metadata.uid ?? `uid-${++this.#uid}`,
      creationTimestamp: current?.metadata.creationTimestamp ?? now(),
      deletionTimestamp: current?.metadata.deletionTimestamp ?? obj.metadata.deletionTimestamp,
      generation,
      annotations: { ...obj.metadata.annotations, [CLUSTER_ANNOTATION]: cluster },
    };
    if (!metadata.deletionTimestamp) delete metadata.deletionTimestamp;
    return { ...obj, metadata };
  }

  /** Stores with a new resourceVersion (or removes a deleting object without finalizers); feeds informers. */
  #save(cluster: string, gvr: GroupVersionResource, obj: KubeObject): KubeObject {
    const stored: KubeObject = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.#rv) } };
    const key = `${obj.metadata.namespace ?? ''}|${obj.metadata.name}`;
    const gone = !!stored.metadata.deletionTimestamp && !stored.metadata.finalizers?.length;
    if (gone) this.#bucket(cluster, gvr).delete(key);
    else this.#bucket(cluster, gvr).set(key, stored);
    this.#notify(cluster, gvr, stored, !gone);
    return structuredClone(stored);
  }

  #notify(cluster: string, gvr: GroupVersionResource, obj: KubeObject, exists: boolean): void {
    const copy = structuredClone(obj);
    for (const w of this.#watchers.filter((w) => w.resource === gvrString(gvr))) {
      const apply = (): void => (exists ? this.#feed(w, cluster, copy) : void w.informer.store.remove(copy));
      if (this.lagging) this.#pending.push(apply);
      else apply();
    }
  }

  #feed(w: Watcher, cluster: string, obj: KubeObject): void {
    if (w.clusters && !w.clusters.has(cluster)) return;
    if (matchesSelector(obj.metadata.labels, w.selector)) w.informer.store.upsert(w.informer.transform(structuredClone(obj)));
    else w.informer.store.remove(obj);
  }

  #bucket(cluster: string, gvr: GroupVersionResource): Map<string, KubeObject> {
    const key = `${cluster}|${gvrString(gvr)}`;
    const bucket = this.#objects.get(key) ?? new Map<string, KubeObject>();
    this.#objects.set(key, bucket);
    return bucket;
  }
}

/** `{ status }` of an object, or nothing when it has none. */
const statusOf = (obj: KubeObject): { status?: unknown } => (obj['status'] === undefined ? {} : { status: obj['status'] });
const now = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const nameOf = (obj: KubeObject): Target => ({ namespace: obj.metadata.namespace, name: obj.metadata.name ?? '' });
const matches = (m: WriteMatcher, w: Write): boolean =>
  typeof m === 'function' ? m(w) : Object.entries(m).every(([k, v]) => w[k as keyof Write] === v);
const fail = (status: number, reason: string, message: string): never => {
  throw new ApiError({ status, reason, message, method: 'MEMORY', url: 'memory://' });
};
export const serverError = (message = 'injected failure'): ApiError =>
  new ApiError({ status: 500, reason: 'InternalError', message, method: 'MEMORY', url: 'memory://' });
/** 409 Conflict unless `want`'s uid and resourceVersion (where given) are the current object's. */
const checked = (current: KubeObject, want: { uid?: string | undefined; resourceVersion?: string | undefined }): KubeObject => {
  if (want.uid !== undefined && want.uid !== current.metadata.uid) fail(409, 'Conflict', `precondition failed: uid ${want.uid}`);
  if (want.resourceVersion !== undefined && want.resourceVersion !== current.metadata.resourceVersion)
    fail(409, 'Conflict', 'the object has been modified; please apply your changes to the latest version and try again');
  return current;
};
