import { CLUSTER_ANNOTATION, clusterOf, type KubeObject } from '../../kcp-client-ts/types.ts';
import type { Informer, InformerEvent } from '../../runtime/informer.ts';
import type { RelatedKind } from '../related/mirror.ts';

/** One `spec.permissionClaims` entry of an APIExport, as kcp stores it. */
export type PermissionClaim = { group?: string; resource: string; verbs: string[]; identityHash?: string };

/** The core resources the broker reads or writes in consumer workspaces, through a brokered export's claims. */
const CONSUMER_RESOURCES = ['secrets', 'configmaps', 'events'] as const;
export type ConsumerResource = (typeof CONSUMER_RESOURCES)[number];

/** What the broker does with each (informers, the related mirror, the EventRecorder), hence what a claim must grant. */
const NEEDED_VERBS: Record<ConsumerResource, readonly string[]> = {
  secrets: ['get', 'list', 'watch', 'create', 'update', 'delete'],
  configmaps: ['get', 'list', 'watch', 'create', 'update', 'delete'],
  events: ['create'],
};

/**
 * The consumer-side resources a brokered export lets the broker use: a core-group claim of that
 * resource granting every verb the broker needs. The Go project's exports claim Secrets, Events
 * and Namespaces (what its consumer bindings accept) but not ConfigMaps; a kind left out is
 * neither watched nor written.
 * Sorted as CONSUMER_RESOURCES, so two sets compare as arrays.
 */
export const consumerClaimsOf = (claims: readonly PermissionClaim[] | undefined): ConsumerResource[] =>
  CONSUMER_RESOURCES.filter((resource) =>
    (claims ?? []).some(
      (c) =>
        (c.group ?? '') === '' &&
        !c.identityHash &&
        c.resource === resource &&
        (c.verbs.includes('*') || NEEDED_VERBS[resource].every((v) => c.verbs.includes(v))),
    ),
  );

/** The consumer-side resources the broker would use that `claimed` leaves out. */
export const unclaimedOf = (claimed: readonly ConsumerResource[]): ConsumerResource[] =>
  CONSUMER_RESOURCES.filter((r) => !claimed.includes(r));

export const sameClaims = (a: readonly ConsumerResource[], b: readonly ConsumerResource[]): boolean =>
  a.length === b.length && a.every((r, i) => r === b[i]);

/** The resource a related kind is claimed as. */
export const resourceOfKind = (kind: RelatedKind): ConsumerResource => (kind === 'Secret' ? 'secrets' : 'configmaps');

const CLUSTER_INDEX = 'cluster';

/** The claims kcp applied to a binding (read from untyped JSON). */
const appliedClaimsOf = (binding: KubeObject): PermissionClaim[] =>
  (binding['status'] as { appliedPermissionClaims?: PermissionClaim[] } | undefined)?.appliedPermissionClaims ?? [];

/** An informer transform: a consumer's APIBinding reduced to its identity and the claims kcp applied. */
export const bindingClaimsOf = (binding: KubeObject): KubeObject => {
  const { name, uid, resourceVersion, deletionTimestamp } = binding.metadata;
  return {
    apiVersion: binding.apiVersion,
    kind: binding.kind,
    metadata: {
      name,
      uid,
      resourceVersion,
      ...(deletionTimestamp ? { deletionTimestamp } : {}),
      annotations: { [CLUSTER_ANNOTATION]: clusterOf(binding) },
    },
    status: {
      appliedPermissionClaims: appliedClaimsOf(binding).map((c) => ({
        group: c.group ?? '',
        resource: c.resource,
        verbs: c.verbs ?? [],
        identityHash: c.identityHash ?? '',
      })),
    },
  };
};

const acceptedBy = (binding: KubeObject): ConsumerResource[] => consumerClaimsOf(appliedClaimsOf(binding));

/**
 * What each consumer workspace accepted of the export's claims: its APIBinding's
 * `status.appliedPermissionClaims`, as the export's virtual workspace shows it. kcp accepts no
 * claim on a consumer's behalf, so a claim the platform adds reaches a workspace only once its
 * owner accepts it; until then the broker can neither see nor write that kind there.
 */
export class ConsumerBindings {
  readonly informer: Informer<KubeObject>;

  constructor(informer: Informer<KubeObject>) {
    this.informer = informer;
    informer.store.addIndex(CLUSTER_INDEX, (b) => [clusterOf(b)]);
  }

  /** The claims a workspace accepted; undefined while its binding is not in the cache (then nothing is held back). */
  accepted(cluster: string): ConsumerResource[] | undefined {
    const bindings = this.informer.store.byIndex(CLUSTER_INDEX, cluster);
    if (bindings.length === 0) return undefined;
    const accepted = new Set(bindings.flatMap(acceptedBy));
    return CONSUMER_RESOURCES.filter((r) => accepted.has(r));
  }

  /** Whether a binding event changed what its workspace accepted (a new binding counts as a change). */
  static changed(event: InformerEvent<KubeObject>): boolean {
    if (event.type === 'added') return true;
    if (event.type === 'deleted') return false;
    return !sameClaims(acceptedBy(event.old), acceptedBy(event.object));
  }
}
