import { decodeKey, encodeKey, objectKeyOf, type ObjectKey } from '../../cache/object-key.ts';
import type { Informer } from '../../cache/informer.ts';
import { WorkQueue, type ReconcileResult } from '../../cache/workqueue.ts';
import { setCondition } from '../../apis/conditions.ts';
import { CONSUMER_CLUSTER_ANNOTATION, FINALIZER, MANAGED_BY_LABEL, MANAGER, OWNER_LABEL, nameHash } from '../../apis/names.ts';
import type { Assignment, StagingWorkspace } from '../../apis/types.ts';
import { EventRecorder } from '../../broker/events.ts';
import type { BrokerContext, BrokeredApi } from '../../broker/context.ts';
import { isAlreadyExists, isConflict, isNotFound } from '../../kcp-client-ts/errors.ts';
import { ResourceClient } from '../../kcp-client-ts/resources.ts';
import { clusterOf, gvrString, type GroupVersionResource, type KubeObject } from '../../kcp-client-ts/types.ts';
import type { Logger } from '../../logging.ts';
import { placeObject } from '../placement/placement.ts';
import {
  relatedCopyDiffers,
  relatedCopyOf,
  relatedRefs,
  stagingCopyDiffers,
  stagingCopyOf,
  statusDiffers,
  updatedStagingCopy,
} from './mapping.ts';

const SECRETS: GroupVersionResource = { group: '', version: 'v1', resource: 'secrets' };
const CONFIGMAPS: GroupVersionResource = { group: '', version: 'v1', resource: 'configmaps' };
const NAMESPACES: GroupVersionResource = { group: '', version: 'v1', resource: 'namespaces' };
const RELATED_INDEX = 'related';

export const assignmentName = (consumerCluster: string, gvr: GroupVersionResource, namespace: string, name: string): string =>
  `assignment-${nameHash(consumerCluster, gvrString(gvr), namespace, name)}`;

export const stagingWorkspaceName = (consumerCluster: string, providerCluster: string, apiExportName: string): string =>
  `staging-${nameHash(consumerCluster, providerCluster, apiExportName)}`;

/** Value of the owner label on related copies: unique per consumer object. */
const ownerOf = (key: ObjectKey, gvr: GroupVersionResource): string => nameHash(key.cluster, gvrString(gvr), key.namespace, key.name);

/**
 * Places, syncs and finalizes the consumer objects of one brokered resource: spec down to the
 * staging copy, status and related Secrets/ConfigMaps up, ordered clean-up on deletion.
 * Keys are `consumer cluster|namespace|name`.
 */
export class SyncController {
  readonly api: BrokeredApi;
  readonly gvr: GroupVersionResource;
  readonly gvrKey: string;
  readonly queue: WorkQueue;
  readonly #ctx: BrokerContext;
  readonly #logger: Logger;
  readonly #events: EventRecorder;
  readonly #consumers: Informer<KubeObject>;
  readonly #relatedSecrets: Informer<KubeObject>;
  readonly #relatedConfigMaps: Informer<KubeObject>;
  /** Owner label value -> consumer key, to route edits of related copies back. */
  readonly #owners = new Map<string, string>();
  readonly #knownNamespaces = new Set<string>();

  constructor(options: { ctx: BrokerContext; api: BrokeredApi }) {
    this.#ctx = options.ctx;
    this.api = options.api;
    this.gvr = { group: options.api.group, version: options.api.version, resource: options.api.resource };
    this.gvrKey = gvrString(this.gvr);
    this.#logger = options.ctx.logger.child({ controller: 'sync', resource: this.gvrKey });
    this.#events = new EventRecorder({ endpoint: options.ctx.endpoint, virtualWorkspaceUrl: options.api.virtualWorkspaceUrl, logger: this.#logger });
    this.queue = new WorkQueue({ name: `sync-${this.gvrKey}`, reconcile: (key, signal) => this.reconcile(key, signal), onReconciled: (o) => options.ctx.onReconciled(`sync-${this.gvrKey}`, o), concurrency: 8, logger: this.#logger });
    const { informers, endpoint } = options.ctx;
    const wildcard = endpoint.virtualWorkspaceUrl(options.api.virtualWorkspaceUrl, '*');
    this.#consumers = informers.ensure(
      `consumer|${this.gvrKey}`,
      { name: `consumer ${this.gvrKey}`, source: new ResourceClient({ endpoint, baseUrl: wildcard, gvr: this.gvr }), logger: this.#logger },
      (informer) => informer.onEvent((e) => this.queue.add(encodeKey(objectKeyOf(e.object)))),
    );
    const related = (gvr: GroupVersionResource): Informer<KubeObject> =>
      informers.ensure(
        `consumer-related|${this.gvrKey}|${gvr.resource}`,
        {
          name: `consumer ${gvr.resource} for ${this.gvrKey}`,
          source: new ResourceClient({ endpoint, baseUrl: wildcard, gvr }),
          labelSelector: `${MANAGED_BY_LABEL}=${MANAGER},${OWNER_LABEL}`,
          logger: this.#logger,
        },
        (informer) =>
          informer.onEvent((e) => {
            const owner = this.#owners.get(e.object.metadata.labels?.[OWNER_LABEL] ?? '');
            if (owner) this.queue.add(owner);
          }),
      );
    this.#relatedSecrets = related(SECRETS);
    this.#relatedConfigMaps = related(CONFIGMAPS);
  }

  start(): void {
    this.queue.start();
  }

  async waitForSync(signal?: AbortSignal): Promise<void> {
    await Promise.all([this.#consumers.waitForSync(signal), this.#relatedSecrets.waitForSync(signal), this.#relatedConfigMaps.waitForSync(signal)]);
  }

  async stop(): Promise<void> {
    await this.queue.shutdown();
    const { informers } = this.#ctx;
    for (const key of informers.keys()) if (key.includes(`|${this.gvrKey}`)) await informers.stop(key);
  }

  /** Every consumer object without an Assignment (after an AcceptAPI became usable). */
  enqueueUnassigned(): void {
    for (const obj of this.#consumers.store.list()) {
      const key = objectKeyOf(obj);
      if (!this.#assignmentFor(key)) this.queue.add(encodeKey(key));
    }
  }

  #assignmentFor(key: ObjectKey): Assignment | undefined {
    return this.#ctx.assignments.store.get({
      cluster: this.#ctx.coordinationCluster,
      namespace: '',
      name: assignmentName(key.cluster, this.gvr, key.namespace, key.name),
    });
  }

  #consumerClient(cluster: string): ResourceClient<KubeObject> {
    const { endpoint } = this.#ctx;
    return new ResourceClient({ endpoint, baseUrl: endpoint.virtualWorkspaceUrl(this.api.virtualWorkspaceUrl, cluster), gvr: this.gvr });
  }

  #stagingClient(cluster: string, gvr: GroupVersionResource = this.gvr): ResourceClient<KubeObject> {
    const { endpoint } = this.#ctx;
    return new ResourceClient({ endpoint, baseUrl: endpoint.workspaceUrl(cluster), gvr });
  }

  async reconcile(keyText: string, signal: AbortSignal): Promise<ReconcileResult> {
    const key = decodeKey(keyText);
    const consumer = this.#consumers.store.get(key);
    const assignment = this.#assignmentFor(key);
    if (!consumer) {
      // Gone without our finalizer having run (forced): still clean up behind it.
      if (assignment) return this.#finalize(key, undefined, assignment, signal);
      return;
    }
    if (consumer.metadata.deletionTimestamp) return this.#finalize(key, consumer, assignment, signal);
    if (!consumer.metadata.finalizers?.includes(FINALIZER)) {
      await this.#consumerClient(key.cluster).mergePatch(
        { namespace: key.namespace || undefined, name: key.name },
        { metadata: { finalizers: [...(consumer.metadata.finalizers ?? []), FINALIZER], resourceVersion: consumer.metadata.resourceVersion } },
        signal,
      );
      return; // the update event brings us back with the finalizer in place
    }
    const placed = assignment ?? (await this.#place(key, consumer, signal));
    if (!placed) return;
    const staging = await this.#stagingWorkspaceFor(placed, signal);
    if (!staging?.status?.clusterName || staging.status.phase !== 'Ready') return; // its Ready event requeues us
    return this.#sync(key, consumer, placed, staging.status.clusterName, signal);
  }

  async #place(key: ObjectKey, consumer: KubeObject, signal: AbortSignal): Promise<Assignment | undefined> {
    const acceptAPIs = this.#ctx.acceptAPIs()?.store.list() ?? [];
    const load = new Map<string, number>();
    for (const a of this.#ctx.assignments.store.list((a) => gvrString(a.spec.gvr) === this.gvrKey)) {
      const provider = a.status?.providerCluster ?? a.spec.providerCluster;
      load.set(provider, (load.get(provider) ?? 0) + 1);
    }
    const decision = placeObject({ gvr: this.gvr, spec: consumer['spec'], objectId: encodeKey(key), acceptAPIs, assignmentsByProvider: load });
    if (!decision.winner) {
      const details = decision.candidates.map((c) => `${c.acceptAPI} (${c.providerCluster}): ${c.reason}`).join('; ');
      await this.#events.record(consumer, 'Warning', 'NoMatchingProvider', `${decision.reason}${details ? `: ${details}` : ''}`);
      return undefined;
    }
    const { winner } = decision;
    const apiExportName = winner.acceptAPI.spec.apiExportName;
    const name = assignmentName(key.cluster, this.gvr, key.namespace, key.name);
    const stagingWorkspace = stagingWorkspaceName(key.cluster, winner.providerCluster, apiExportName);
    let created: Assignment;
    try {
      created = await this.#ctx.assignmentClient.create(
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
      if (isAlreadyExists(err)) return undefined; // another worker placed it; its event requeues us
      throw err;
    }
    // Status records the staging workspace before that exists, so its garbage collection never
    // sees a workspace without the Assignment that wants it.
    const withStatus = await this.#ctx.assignmentClient.updateStatus(
      {
        ...created,
        status: {
          phase: 'Pending',
          providerCluster: winner.providerCluster,
          acceptAPIName: winner.acceptAPIName,
          apiExportName,
          stagingWorkspace,
          placement: { winner: `${winner.acceptAPIName} (${winner.providerCluster})`, reason: decision.reason, candidates: decision.candidates },
          conditions: setCondition(undefined, { type: 'Ready', status: 'False', reason: 'Placed', message: `placed on ${winner.providerCluster}: ${decision.reason}` }),
        },
      },
      signal,
    );
    await this.#events.record(consumer, 'Normal', 'Assigned', `assigned to provider ${winner.providerCluster} (AcceptAPI ${winner.acceptAPIName}): ${decision.reason}`);
    this.#logger.info({ consumer: encodeKey(key), provider: winner.providerCluster, reason: decision.reason }, 'object placed');
    return withStatus;
  }

  async #stagingWorkspaceFor(assignment: Assignment, signal: AbortSignal): Promise<StagingWorkspace | undefined> {
    const name = assignment.status?.stagingWorkspace;
    const apiExportName = assignment.status?.apiExportName;
    if (!name || !apiExportName) return undefined;
    const existing = this.#ctx.stagingWorkspaces.store.get({ cluster: this.#ctx.coordinationCluster, namespace: '', name });
    if (existing) return existing;
    try {
      await this.#ctx.stagingWorkspaceClient.create(
        {
          apiVersion: 'coord.broker.platform-mesh.io/v1alpha1',
          kind: 'StagingWorkspace',
          metadata: { name },
          spec: { consumerCluster: assignment.spec.consumerCluster, providerCluster: assignment.status?.providerCluster ?? assignment.spec.providerCluster, apiExportName },
        },
        signal,
      );
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
    return undefined;
  }

  /** Starts (once) the watches of one staging workspace this controller needs. */
  #stagingInformers(cluster: string): { objects: Informer<KubeObject>; secrets: Informer<KubeObject>; configMaps: Informer<KubeObject> } {
    const { informers } = this.#ctx;
    const objects = informers.ensure(
      `staging|${cluster}|${this.gvrKey}`,
      { name: `staging ${cluster} ${this.gvrKey}`, source: this.#stagingClient(cluster), logger: this.#logger },
      (informer) => {
        informer.store.addIndex(RELATED_INDEX, (obj) => relatedRefs(obj, obj.metadata.namespace ?? '').refs.map((r) => `${r.kind}/${r.namespace}/${r.name}`));
        informer.onEvent((e) => {
          const consumerCluster = e.object.metadata.annotations?.[CONSUMER_CLUSTER_ANNOTATION];
          if (!consumerCluster) return;
          this.queue.add(encodeKey({ cluster: consumerCluster, namespace: e.object.metadata.namespace ?? '', name: e.object.metadata.name ?? '' }));
        });
      },
    );
    const related = (gvr: GroupVersionResource, kind: string): Informer<KubeObject> =>
      informers.ensure(
        `staging|${cluster}|${gvr.resource}|${this.gvrKey}`,
        { name: `staging ${cluster} ${gvr.resource}`, source: this.#stagingClient(cluster, gvr), logger: this.#logger },
        (informer) =>
          informer.onEvent((e) => {
            for (const owner of objects.store.byIndex(RELATED_INDEX, `${kind}/${e.object.metadata.namespace}/${e.object.metadata.name}`)) {
              const consumerCluster = owner.metadata.annotations?.[CONSUMER_CLUSTER_ANNOTATION];
              if (consumerCluster) this.queue.add(encodeKey({ cluster: consumerCluster, namespace: owner.metadata.namespace ?? '', name: owner.metadata.name ?? '' }));
            }
          }),
      );
    return { objects, secrets: related(SECRETS, 'Secret'), configMaps: related(CONFIGMAPS, 'ConfigMap') };
  }

  async #ensureNamespace(cluster: string, namespace: string, signal: AbortSignal): Promise<void> {
    if (!namespace || this.#knownNamespaces.has(`${cluster}/${namespace}`)) return;
    try {
      await this.#stagingClient(cluster, NAMESPACES).create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } }, signal);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
    this.#knownNamespaces.add(`${cluster}/${namespace}`);
  }

  async #sync(key: ObjectKey, consumer: KubeObject, assignment: Assignment, stagingCluster: string, signal: AbortSignal): Promise<ReconcileResult> {
    const staging = this.#stagingInformers(stagingCluster);
    await Promise.all([staging.objects.waitForSync(signal), staging.secrets.waitForSync(signal), staging.configMaps.waitForSync(signal)]);
    const stagingKey = { cluster: stagingCluster, namespace: key.namespace, name: key.name };
    const desired = stagingCopyOf(consumer);
    let current = staging.objects.store.get(stagingKey);
    if (!current) {
      await this.#ensureNamespace(stagingCluster, key.namespace, signal);
      try {
        current = await this.#stagingClient(stagingCluster).create(desired, signal);
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
        return; // the cache lags behind; its event requeues us
      }
    } else if (stagingCopyDiffers(current, desired)) {
      current = await this.#stagingClient(stagingCluster).update(updatedStagingCopy(current, desired), signal);
    }

    if (statusDiffers(consumer, current)) {
      try {
        await this.#consumerClient(key.cluster).updateStatus({ ...consumer, status: current['status'] }, signal);
      } catch (err) {
        if (!isConflict(err)) throw err;
        return; // a newer consumer version is on its way; its event requeues us
      }
    }
    await this.#syncRelated(key, current, stagingCluster, staging, signal);
    await this.#markBound(assignment, stagingCluster, signal);
    return;
  }

  async #syncRelated(
    key: ObjectKey,
    stagingCopy: KubeObject,
    stagingCluster: string,
    staging: { secrets: Informer<KubeObject>; configMaps: Informer<KubeObject> },
    signal: AbortSignal,
  ): Promise<void> {
    const owner = ownerOf(key, this.gvr);
    this.#owners.set(owner, encodeKey(key));
    const { refs } = relatedRefs(stagingCopy, key.namespace || 'default');
    const wanted = new Set<string>();
    for (const ref of refs) {
      const sourceStore = ref.kind === 'Secret' ? staging.secrets.store : staging.configMaps.store;
      const source = sourceStore.get({ cluster: stagingCluster, namespace: ref.namespace, name: ref.name });
      if (!source) continue; // not there yet; its creation event requeues us
      wanted.add(`${ref.kind}/${ref.namespace}/${ref.name}`);
      const desired = relatedCopyOf(source, owner);
      const consumerStore = ref.kind === 'Secret' ? this.#relatedSecrets.store : this.#relatedConfigMaps.store;
      const client = this.#consumerRelatedClient(key.cluster, ref.kind);
      const existing = consumerStore.get({ cluster: key.cluster, namespace: ref.namespace, name: ref.name });
      if (!existing) {
        try {
          await client.create(desired, signal);
        } catch (err) {
          if (!isAlreadyExists(err)) throw err;
          // A copy without our labels (or not yet cached): take it over.
          const found = await client.get({ namespace: ref.namespace, name: ref.name }, signal);
          await client.update({ ...desired, metadata: { ...desired.metadata, resourceVersion: found.metadata.resourceVersion } }, signal);
        }
      } else if (relatedCopyDiffers(existing, desired)) {
        await client.update({ ...desired, metadata: { ...desired.metadata, resourceVersion: existing.metadata.resourceVersion } }, signal);
      }
    }
    await this.#deleteRelatedCopies(key, owner, wanted, signal);
  }

  #consumerRelatedClient(cluster: string, kind: 'Secret' | 'ConfigMap'): ResourceClient<KubeObject> {
    const { endpoint } = this.#ctx;
    return new ResourceClient({ endpoint, baseUrl: endpoint.virtualWorkspaceUrl(this.api.virtualWorkspaceUrl, cluster), gvr: kind === 'Secret' ? SECRETS : CONFIGMAPS });
  }

  /** Deletes this object's related copies in the consumer workspace except `keep`. */
  async #deleteRelatedCopies(key: ObjectKey, owner: string, keep: Set<string>, signal: AbortSignal): Promise<number> {
    let remaining = 0;
    for (const [kind, informer] of [['Secret', this.#relatedSecrets], ['ConfigMap', this.#relatedConfigMaps]] as const) {
      const copies = informer.store.list((o) => clusterOf(o) === key.cluster && o.metadata.labels?.[OWNER_LABEL] === owner);
      for (const copy of copies) {
        if (keep.has(`${kind}/${copy.metadata.namespace}/${copy.metadata.name}`)) continue;
        remaining++;
        await this.#consumerRelatedClient(key.cluster, kind).delete({ namespace: copy.metadata.namespace, name: copy.metadata.name ?? '' }, signal);
      }
    }
    return remaining;
  }

  async #markBound(assignment: Assignment, stagingCluster: string, signal: AbortSignal): Promise<void> {
    if (assignment.status?.phase === 'Bound') return;
    await this.#ctx.assignmentClient
      .updateStatus(
      {
        ...assignment,
        status: {
          ...assignment.status,
          phase: 'Bound',
          conditions: setCondition(assignment.status?.conditions, { type: 'Ready', status: 'True', reason: 'Synced', message: `staging copy in ${stagingCluster}` }),
        },
      },
      signal,
    )
      .catch((err: unknown) => {
        // Our cached Assignment was stale; its update event brings the next reconcile.
        if (!isConflict(err)) throw err;
      });
  }

  /** Ordered deletion: related copies, staging copy (until gone), Assignment, then the finalizer. */
  async #finalize(key: ObjectKey, consumer: KubeObject | undefined, assignment: Assignment | undefined, signal: AbortSignal): Promise<ReconcileResult> {
    if (assignment) {
      const owner = ownerOf(key, this.gvr);
      if ((await this.#deleteRelatedCopies(key, owner, new Set(), signal)) > 0) return { requeueAfterMs: 2_000 };
      const stagingName = assignment.status?.stagingWorkspace;
      const staging = stagingName ? this.#ctx.stagingWorkspaces.store.get({ cluster: this.#ctx.coordinationCluster, namespace: '', name: stagingName }) : undefined;
      const stagingCluster = staging?.status?.clusterName;
      if (stagingCluster) {
        const informers = this.#stagingInformers(stagingCluster);
        await informers.objects.waitForSync(signal);
        const copy = informers.objects.store.get({ cluster: stagingCluster, namespace: key.namespace, name: key.name });
        if (copy) {
          if (!copy.metadata.deletionTimestamp) await this.#stagingClient(stagingCluster).delete({ namespace: key.namespace || undefined, name: key.name }, signal);
          return { requeueAfterMs: 5_000 }; // its DELETED event requeues us sooner
        }
      }
      try {
        await this.#ctx.assignmentClient.delete({ name: assignment.metadata.name ?? '' }, signal);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      if (stagingName) this.#ctx.enqueueStagingWorkspace(stagingName);
    }
    this.#owners.delete(ownerOf(key, this.gvr));
    if (consumer?.metadata.finalizers?.includes(FINALIZER)) {
      await this.#consumerClient(key.cluster).mergePatch(
        { namespace: key.namespace || undefined, name: key.name },
        { metadata: { finalizers: consumer.metadata.finalizers.filter((f) => f !== FINALIZER), resourceVersion: consumer.metadata.resourceVersion } },
        signal,
      );
      this.#events.forget(consumer);
    }
    return;
  }
}

