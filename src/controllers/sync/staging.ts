import type { Clients } from '../../kcp-client-ts/clients.ts';
import type { ObjectClient } from '../../kcp-client-ts/resources.ts';
import { clusterOf, CONFIGMAPS, SECRETS, type GroupVersionResource, type KubeObject } from '../../kcp-client-ts/types.ts';
import type { Logger } from '../../logging.ts';
import type { Informer, InformerEvent } from '../../runtime/informer.ts';
import type { InformerScope } from '../../runtime/informer-scope.ts';
import { encodeKey, objectKeyOf, type ObjectKey } from '../../runtime/object-key.ts';
import { RELATED_PAGE_SIZE, relatedDigestOf } from '../related/digest.ts';
import type { RelatedKind } from '../related/mirror.ts';
import { referencesOfCopy, relatedReferenceOf } from './related-references.ts';
import type { StagingView, StagingViewSource } from './staging-views.ts';

/** One kind of object in staging workspaces, as cached: looked up by cluster, namespace and name. */
export type StagingStore = {
  get(key: ObjectKey): KubeObject | undefined;
  /**
   * Reads with `read` (a GET) an object the cache has none of, and keeps what was read if the
   * cache keeps that object and saw nothing newer of it meanwhile (a Secret the watch brought
   * before any copy named it); later events replace it.
   */
  readThrough(read: () => Promise<KubeObject | undefined>): Promise<KubeObject | undefined>;
  /** Resolves once everything watched of this kind has listed (or `signal` aborts). */
  waitForSync(signal?: AbortSignal): Promise<void>;
};

/**
 * What the sync controller sees of one staging workspace: its copies, and digests of the
 * Secrets/ConfigMaps next to them (no data: the provider decides how many and how large they are).
 */
export type StagingCache = {
  objects: StagingStore;
  secrets: StagingStore;
  configMaps: StagingStore;
};

/** The staging side of the sync: per staging workspace, caches and clients. */
export type StagingSide = {
  cache(cluster: string): StagingCache;
  client(cluster: string, gvr?: GroupVersionResource): ObjectClient;
  /** Stops delivering events (the sync controller stops). */
  close?(): void;
};

const RELATED_INDEX = 'related';

/** Longest a view's related caches keep everything while this resource's copies list. */
const WARM_LIMIT_MS = 60_000;

/** A cached Secret/ConfigMap as a copy would name it. */
const referenceOf = (o: KubeObject, kind: RelatedKind): string =>
  relatedReferenceOf(clusterOf(o), kind, o.metadata.namespace ?? '', o.metadata.name ?? '');

type ViewCaches = {
  objects: Informer<KubeObject>;
  secrets: Informer<KubeObject>;
  configMaps: Informer<KubeObject>;
  /** This resource's watches through the view (the copies); Secrets and ConfigMaps are the view's. */
  scope: InformerScope;
  /** Stops this resource's handlers and withdraws its copies' references from the view. */
  release: () => void;
};

/** Several caches of one kind (one per view) as one store: a staging workspace is in exactly one. */
const storeOver = (informers: Informer<KubeObject>[]): StagingStore => ({
  get: (key) => {
    for (const informer of informers) {
      const found = informer.store.get(key);
      if (found) return found;
    }
    return undefined;
  },
  readThrough: async (read) => {
    const marks = informers.map((i) => i.admissionMark());
    const obj = await read();
    if (obj) for (const [i, informer] of informers.entries()) informer.admit(obj, marks[i]!);
    return obj;
  },
  waitForSync: async (signal) => {
    await Promise.all(informers.map((i) => i.waitForSync(signal)));
  },
});

/**
 * The watches of one brokered resource in all its staging workspaces: through each staging view
 * serving the resource, one wildcard watch of the copies, the Secrets and the ConfigMaps per shard
 * (Secrets and ConfigMaps shared with other resources of the same view). Events map to the consumer
 * object a copy stands for by the broker's record of the copy's staging workspace; a Secret or
 * ConfigMap event to every copy naming it in the same workspace. A staging workspace is read
 * through the view recorded on its StagingWorkspace only, so a view that cannot list (a shard
 * down, a claim not served yet) holds up only the workspaces bound to it.
 */
export class StagingCaches implements StagingSide {
  readonly #clients: Clients;
  readonly #gvr: GroupVersionResource;
  readonly #logger: Logger;
  readonly #enqueue: (consumerKey: string) => void;
  readonly #consumerClusterOf: (stagingCluster: string) => string | undefined;
  readonly #viewOf: (stagingCluster: string) => string | undefined;
  readonly #views: StagingViewSource;
  /** This resource's copies: ended with its sync controller. */
  readonly #scope: InformerScope;
  readonly #engaged = new Map<string, ViewCaches>();
  readonly #stopFollowing: () => void;

  constructor(options: {
    views: StagingViewSource;
    scope: InformerScope;
    clients: Clients;
    gvr: GroupVersionResource;
    logger: Logger;
    enqueue: (consumerKey: string) => void;
    /** The consumer workspace a staging workspace serves, as the broker recorded it. */
    consumerClusterOf: (stagingCluster: string) => string | undefined;
    /** The staging view a staging workspace is bound to, as the broker recorded it. */
    viewOf: (stagingCluster: string) => string | undefined;
  }) {
    this.#views = options.views;
    this.#scope = options.scope;
    this.#clients = options.clients;
    this.#gvr = options.gvr;
    this.#logger = options.logger;
    this.#enqueue = options.enqueue;
    this.#consumerClusterOf = options.consumerClusterOf;
    this.#viewOf = options.viewOf;
    this.#stopFollowing = this.#views.onChange(() => this.#follow());
    this.#follow();
  }

  client(cluster: string, gvr: GroupVersionResource = this.#gvr): ObjectClient {
    return this.#clients.inWorkspace(cluster, gvr);
  }

  /** The caches a staging workspace's objects are in: its view's (all views' for a workspace with none recorded). */
  cache(cluster: string): StagingCache {
    const view = this.#viewOf(cluster);
    const engaged = view === undefined ? [...this.#engaged.values()] : [this.#engaged.get(view)].filter((v) => v !== undefined);
    return {
      objects: storeOver(engaged.map((v) => v.objects)),
      secrets: storeOver(engaged.map((v) => v.secrets)),
      configMaps: storeOver(engaged.map((v) => v.configMaps)),
    };
  }

  /** Starts watching through views that newly serve this resource; stops for views deleted. */
  #follow(): void {
    if (this.#scope.ended) return;
    const serving = this.#views.serving(this.#gvr);
    for (const view of serving) if (!this.#engaged.has(view.name) && !view.scope.ended) this.#engaged.set(view.name, this.#engage(view));
    for (const [name, engaged] of this.#engaged) {
      if (serving.some((v) => v.name === name)) continue;
      this.#engaged.delete(name);
      engaged.release();
      void engaged.scope.end();
    }
  }

  #engage(view: StagingView): ViewCaches {
    const { vw } = view;
    const scope = this.#scope.child(`staging ${view.name} ${this.#gvr.resource}`);
    const objects = scope.informer(vw.wildcard(this.#gvr), {
      name: `staging ${view.name} ${this.#gvr.resource}`,
      family: `staging ${this.#gvr.resource}`,
      logger: this.#logger,
    });
    objects.store.addIndex(RELATED_INDEX, referencesOfCopy);
    const { references } = view;
    // Shared by every resource of the view: the first to engage creates them, all count references.
    const related = (gvr: GroupVersionResource, kind: RelatedKind): Informer<KubeObject> =>
      view.scope.informer(vw.wildcard(gvr), {
        name: `staging ${view.name} ${gvr.resource}`,
        family: `staging ${gvr.resource}`,
        logger: this.#logger,
        transform: relatedDigestOf,
        pageSize: RELATED_PAGE_SIZE,
        keep: (o) => references.keeps(referenceOf(o, kind)),
      });
    const secrets = related(SECRETS, 'Secret');
    const configMaps = related(CONFIGMAPS, 'ConfigMap');
    // A Secret no copy names any more leaves the cache (one named again is read, then admitted).
    const forgetAll = (unreferenced: string[]): void => {
      for (const reference of unreferenced) {
        const [cluster = '', kind, namespace = '', name = ''] = reference.split('/');
        (kind === 'Secret' ? secrets : configMaps).forget({ cluster, namespace, name });
      }
    };
    // Everything is kept until this resource's copies have listed; then what no copy names goes.
    const warming = {};
    references.warm(warming);
    // Bounded: a shard of the view that cannot list must not keep every Secret of the others.
    const warmLimit = setTimeout(() => settle(), WARM_LIMIT_MS);
    warmLimit.unref();
    const settle = (): void => {
      clearTimeout(warmLimit);
      if (!references.cool(warming)) return;
      for (const [informer, kind] of [
        [secrets, 'Secret'],
        [configMaps, 'ConfigMap'],
      ] as const)
        for (const o of informer.store.list()) if (!references.has(referenceOf(o, kind))) informer.forget(objectKeyOf(o));
    };
    void objects.waitForSync(scope.signal).then(settle);
    const count = (e: InformerEvent<KubeObject>): void => {
      if (e.type !== 'deleted') references.add(referencesOfCopy(e.object));
      if (e.type !== 'added') forgetAll(references.remove(referencesOfCopy(e.type === 'updated' ? e.old : e.object)));
    };
    // The consumer comes from the broker's record of the copy's workspace, never from the copy's
    // annotations: a provider can edit those, and must not make the broker work on other tenants'
    // keys. kcp sets the cluster annotation; a workspace the broker has no record of is ignored.
    const consumerKeyOf = (copy: KubeObject): string | undefined => {
      const consumerCluster = this.#consumerClusterOf(clusterOf(copy));
      return consumerCluster
        ? encodeKey({ cluster: consumerCluster, namespace: copy.metadata.namespace ?? '', name: copy.metadata.name ?? '' })
        : undefined;
    };
    const onRelated = (kind: RelatedKind) => (e: { object: KubeObject }) => {
      const { namespace = '', name = '' } = e.object.metadata;
      for (const copy of objects.store.byIndex(RELATED_INDEX, relatedReferenceOf(clusterOf(e.object), kind, namespace, name))) {
        const key = consumerKeyOf(copy);
        if (key) this.#enqueue(key);
      }
    };
    const removeHandlers = [
      objects.onEvent((e) => {
        count(e);
        const key = consumerKeyOf(e.object);
        if (key) this.#enqueue(key);
      }),
      secrets.onEvent(onRelated('Secret')),
      configMaps.onEvent(onRelated('ConfigMap')),
    ];
    const release = (): void => {
      for (const remove of removeHandlers) remove();
      for (const copy of objects.store.list()) forgetAll(references.remove(referencesOfCopy(copy)));
      settle(); // a cache released before it listed must not keep the view warm
    };
    return { objects, secrets, configMaps, scope, release };
  }

  /** Removes this resource's handlers (the sync controller stops; its scope ends the copies' watches). */
  close(): void {
    this.#stopFollowing();
    for (const { release } of this.#engaged.values()) release();
    this.#engaged.clear();
  }
}
