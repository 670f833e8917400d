import { RecentKeys } from '../../runtime/recent-keys.ts';
import { setCondition } from '../../apis/conditions.ts';
import { apiExportNameOf, assignmentName, stagingWorkspaceName } from '../../apis/names.ts';
import type { AcceptAPI, Assignment } from '../../apis/types.ts';
import { clusterOf, type GroupVersionResource } from '../../kcp-client-ts/types.ts';
import type { Coordination } from '../../coordination/coordination.ts';
import type { ObjectKey } from '../../runtime/object-key.ts';
import { encodeKey } from '../../runtime/object-key.ts';
import { PlacementLoad } from './load.ts';
import { placeObject, type PlacementDecision } from './placement.ts';

const STATUS_WRITE_MEMORY_MS = 60_000;

/** What placing one object did. */
export type Assigned =
  | { outcome: 'assigned'; assignment: Assignment; decision: PlacementDecision }
  | { outcome: 'noProvider'; decision: PlacementDecision }
  /** Someone else created the Assignment first; its watch event brings the next reconcile. */
  | { outcome: 'raced' };

/**
 * Places the objects of one brokered resource and records each decision as an Assignment. The
 * decision goes into the Assignment's spec when it is created, so a crash before its status is
 * written loses nothing: `complete` finishes such an Assignment from its spec.
 */
export class Placer {
  readonly gvr: GroupVersionResource;
  readonly load: PlacementLoad;
  readonly #coordination: Coordination;
  readonly #acceptAPIs: () => AcceptAPI[];
  /** Assignments whose status this process wrote lately, by uid: their cache entry may predate that write. */
  readonly #statusWritten = new RecentKeys({ capacity: 4096, ttlMs: STATUS_WRITE_MEMORY_MS });

  constructor(options: { gvr: GroupVersionResource; coordination: Coordination; acceptAPIs: () => AcceptAPI[]; load?: PlacementLoad }) {
    this.gvr = options.gvr;
    this.#coordination = options.coordination;
    this.#acceptAPIs = options.acceptAPIs;
    this.load =
      options.load ??
      new PlacementLoad({
        assignments: options.coordination.assignments.store,
        migrations: options.coordination.migrations.store,
        coordinationCluster: options.coordination.cluster,
        gvr: options.gvr,
      });
  }

  /**
   * The best provider for the object now, optionally leaving one out (a migration's origin) or
   * allowing only one (a platform admin's move). AcceptAPIs that are cordoned, draining or full
   * do not qualify.
   */
  decide(
    key: ObjectKey,
    spec: unknown,
    exclude?: { providerCluster: string; acceptAPIName: string },
    only?: { providerCluster?: string; acceptAPIName: string },
    /** Rebalancing: the loads to rank by (projected), and which AcceptAPIs may take part at all. */
    options: { loads?: ReadonlyMap<string, number>; acceptable?: (acceptAPI: AcceptAPI) => boolean } = {},
  ): PlacementDecision {
    const all = this.#acceptAPIs();
    return placeObject({
      gvr: this.gvr,
      spec,
      objectId: encodeKey(key),
      acceptAPIs: options.acceptable ? all.filter(options.acceptable) : all,
      assignmentsByProvider: options.loads ?? this.load.byProvider(),
      loadByAcceptAPI: this.load.byAcceptAPI(),
      exclude,
      only,
    });
  }

  /** Decides and writes the Assignment: created with the decision in spec, then its status. */
  async assign(key: ObjectKey, spec: unknown, signal: AbortSignal): Promise<Assigned> {
    const decision = this.decide(key, spec);
    const { winner } = decision;
    if (!winner) return { outcome: 'noProvider', decision };
    const name = assignmentName(key.cluster, this.gvr, key.namespace, key.name);
    // Same tick as the load was read in: the next placement already counts this one.
    this.load.placing(name, winner.providerCluster, winner.acceptAPIName);
    let created: Assignment | undefined;
    try {
      created = await this.#coordination.assignments.client.createIfAbsent(
        {
          apiVersion: 'coord.broker.platform-mesh.io/v1alpha1',
          kind: 'Assignment',
          metadata: { name },
          spec: {
            consumerCluster: key.cluster,
            gvr: this.gvr,
            ...(key.namespace ? { namespace: key.namespace } : {}),
            name: key.name,
            providerCluster: winner.providerCluster,
            acceptAPIName: winner.acceptAPIName,
          },
        },
        signal,
      );
    } catch (err) {
      this.load.abandoned(name);
      throw err;
    }
    if (!created) {
      this.load.abandoned(name);
      return { outcome: 'raced' };
    }
    const assignment = await this.#writeStatus(
      created,
      winner.apiExportName,
      { reason: decision.reason, winner: `${winner.acceptAPIName} (${winner.providerCluster})`, candidates: decision.candidates },
      signal,
    );
    // Written: a cached copy without status seen from now on is the cache lagging (one reconcile per key at a time, so none runs meanwhile).
    this.#statusWritten.add(created.metadata.uid ?? name);
    return { outcome: 'assigned', assignment, decision };
  }

  /**
   * Whether this process wrote (or is writing) the status of that Assignment within the last
   * minute: a cached copy without status is then the cache lagging, not a crash's leftover, and
   * completing it would only conflict.
   */
  wroteStatusOf(assignment: Assignment): boolean {
    return this.#statusWritten.has(assignment.metadata.uid ?? assignment.metadata.name ?? '');
  }

  /**
   * An Assignment without status (the broker stopped between creating it and writing its
   * status): completes it from its spec, when the AcceptAPI it names still exists (its export
   * gives the staging workspace). Undefined when it cannot be completed: the caller deletes it and
   * places the object afresh.
   */
  async complete(assignment: Assignment, signal: AbortSignal): Promise<Assignment | undefined> {
    const { providerCluster, acceptAPIName } = assignment.spec;
    const acceptAPI = this.#acceptAPIs().find((a) => a.metadata.name === acceptAPIName && clusterOf(a) === providerCluster);
    const apiExportName = acceptAPI && apiExportNameOf(acceptAPI);
    if (!apiExportName) return undefined;
    return this.#writeStatus(
      assignment,
      apiExportName,
      { reason: 'recorded placement completed after a restart', winner: `${acceptAPIName} (${providerCluster})`, candidates: [] },
      signal,
    );
  }

  /** Status records the staging workspace before that exists, so its garbage collection never sees a workspace without the Assignment that wants it. */
  #writeStatus(
    assignment: Assignment,
    apiExportName: string,
    placement: NonNullable<Assignment['status']>['placement'] & {},
    signal: AbortSignal,
  ): Promise<Assignment> {
    const { consumerCluster, providerCluster, acceptAPIName } = assignment.spec;
    return this.#coordination.assignments.client.updateStatus(
      {
        ...assignment,
        status: {
          phase: 'Pending',
          providerCluster,
          acceptAPIName,
          apiExportName,
          stagingWorkspace: stagingWorkspaceName(consumerCluster, providerCluster, apiExportName),
          placement,
          conditions: setCondition(undefined, {
            type: 'Ready',
            status: 'False',
            reason: 'Placed',
            message: `placed on ${providerCluster}: ${placement.reason}`,
          }),
        },
      },
      signal,
    );
  }
}
