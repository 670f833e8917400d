import type { Clients } from '../../kcp-client-ts/clients.ts';
import type { ObjectClient } from '../../kcp-client-ts/resources.ts';
import { CONFIGMAPS, SECRETS, type GroupVersionResource, type KubeObject } from '../../kcp-client-ts/types.ts';
import type { Logger } from '../../logging.ts';
import type { Informer } from '../../runtime/informer.ts';
import type { ClusterScopes } from '../../runtime/informer-scope.ts';
import { encodeKey } from '../../runtime/object-key.ts';
import { RELATED_PAGE_SIZE, relatedDigestOf } from '../related/digest.ts';
import { relatedRefs } from '../related/refs.ts';

/**
 * What the sync controller sees of one staging workspace: its copies, and digests of the
 * Secrets/ConfigMaps next to them (no data: the provider decides how many and how large they are).
 */
export type StagingCache = {
  objects: Informer<KubeObject>;
  secrets: Informer<KubeObject>;
  configMaps: Informer<KubeObject>;
};

/** The staging side of the sync: per staging workspace, caches and clients. */
export type StagingSide = {
  cache(cluster: string): StagingCache;
  client(cluster: string, gvr?: GroupVersionResource): ObjectClient;
};

const RELATED_INDEX = 'related';

/** The related resources a staging copy names: index values `Kind/namespace/name`. */
const relatedIndexValues = (obj: KubeObject): string[] =>
  relatedRefs(obj, obj.metadata.namespace || 'default').refs.map((r) => `${r.kind}/${r.namespace}/${r.name}`);

/**
 * The watches of one brokered resource in the staging workspaces it uses, each in that
 * workspace's cluster scope (ended as a unit when the workspace is released). Events map to the
 * consumer object a copy stands for, from the copy's consumer annotation; a Secret or ConfigMap
 * event to every copy naming it.
 */
export class StagingCaches implements StagingSide {
  readonly #scopes: ClusterScopes;
  readonly #clients: Clients;
  readonly #gvr: GroupVersionResource;
  readonly #logger: Logger;
  readonly #enqueue: (consumerKey: string) => void;
  readonly #consumerClusterOf: (stagingCluster: string) => string | undefined;
  readonly #engaged = new Map<string, { cache: StagingCache; removeHandlers: (() => void)[] }>();
  readonly #stopListening: () => void;

  constructor(options: {
    scopes: ClusterScopes;
    clients: Clients;
    gvr: GroupVersionResource;
    logger: Logger;
    enqueue: (consumerKey: string) => void;
    /** The consumer workspace a staging workspace serves, as the broker recorded it. */
    consumerClusterOf: (stagingCluster: string) => string | undefined;
  }) {
    this.#scopes = options.scopes;
    this.#clients = options.clients;
    this.#gvr = options.gvr;
    this.#logger = options.logger;
    this.#enqueue = options.enqueue;
    this.#consumerClusterOf = options.consumerClusterOf;
    this.#stopListening = this.#scopes.onEnded((cluster) => this.#engaged.delete(cluster));
  }

  client(cluster: string, gvr: GroupVersionResource = this.#gvr): ObjectClient {
    return this.#clients.inWorkspace(cluster, gvr);
  }

  /** The caches of one staging workspace, started (and handlers added) on first use. */
  cache(cluster: string): StagingCache {
    const engaged = this.#engaged.get(cluster);
    if (engaged) return engaged.cache;
    const scope = this.#scopes.of(cluster);
    const objects = scope.informer(this.#clients.inWorkspace(cluster, this.#gvr), {
      name: `staging ${cluster} ${this.#gvr.resource}`,
      family: `staging ${this.#gvr.resource}`,
      logger: this.#logger,
    });
    objects.store.addIndex(RELATED_INDEX, relatedIndexValues);
    const secrets = scope.informer(this.#clients.inWorkspace(cluster, SECRETS), {
      name: `staging ${cluster} secrets`,
      family: 'staging secrets',
      logger: this.#logger,
      transform: relatedDigestOf,
      pageSize: RELATED_PAGE_SIZE,
    });
    const configMaps = scope.informer(this.#clients.inWorkspace(cluster, CONFIGMAPS), {
      name: `staging ${cluster} configmaps`,
      family: 'staging configmaps',
      logger: this.#logger,
      transform: relatedDigestOf,
      pageSize: RELATED_PAGE_SIZE,
    });
    // The consumer comes from the broker's record of this workspace, never from the copy's
    // annotations: a provider can edit those, and must not make the broker work on other tenants' keys.
    const consumerKeyOf = (copy: KubeObject): string | undefined => {
      const consumerCluster = this.#consumerClusterOf(cluster);
      return consumerCluster
        ? encodeKey({ cluster: consumerCluster, namespace: copy.metadata.namespace ?? '', name: copy.metadata.name ?? '' })
        : undefined;
    };
    const onRelated = (kind: string) => (e: { object: KubeObject }) => {
      for (const copy of objects.store.byIndex(RELATED_INDEX, `${kind}/${e.object.metadata.namespace}/${e.object.metadata.name}`)) {
        const key = consumerKeyOf(copy);
        if (key) this.#enqueue(key);
      }
    };
    const removeHandlers = [
      objects.onEvent((e) => {
        const key = consumerKeyOf(e.object);
        if (key) this.#enqueue(key);
      }),
      secrets.onEvent(onRelated('Secret')),
      configMaps.onEvent(onRelated('ConfigMap')),
    ];
    const cache = { objects, secrets, configMaps };
    this.#engaged.set(cluster, { cache, removeHandlers });
    return cache;
  }

  /** Removes this resource's handlers from every staging workspace (the sync controller stops). */
  close(): void {
    this.#stopListening();
    for (const { removeHandlers } of this.#engaged.values()) for (const remove of removeHandlers) remove();
    this.#engaged.clear();
  }
}
