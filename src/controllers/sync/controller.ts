// Over 350 lines on purpose: the SyncController is one reconciler, and the SyncSteps the
// Migrator drives (copyIn, syncDown, syncUp, relatedSources, removeCopy) are its own steady-state
// steps; the finalizer, placement, related mirroring and the migration lifecycle are elsewhere.
import { onlyLoadChanged } from '../../apis/acceptapi-load.ts';
import { conditionTrue, setCondition } from '../../apis/conditions.ts';
import { assignmentName, FINALIZER, MANAGED_BY_LABEL, MANAGER, OWNER_LABEL, relatedOwnerOf } from '../../apis/names.ts';
import { isDeepStrictEqual } from 'node:util';
import type {
  AcceptAPI,
  Assignment,
  BrokeredApi,
  Condition,
  Migration,
  MigrationConfiguration,
  StagingWorkspace,
} from '../../apis/types.ts';
import type { Coordination } from '../../coordination/coordination.ts';
import { ApiError, isConflict, isNotFound, isRefusedObject } from '../../kcp-client-ts/errors.ts';
import type { ObjectClient } from '../../kcp-client-ts/resources.ts';
import { UnroutableClusterError } from '../../kcp-client-ts/virtual-workspace.ts';
import {
  apiVersionOf,
  CONFIGMAPS,
  clusterOf,
  gvrString,
  NAMESPACES,
  SECRETS,
  type GroupVersionResource,
  type KubeObject,
} from '../../kcp-client-ts/types.ts';
import type { Logger } from '../../logging.ts';
import { watchOf, type Controller, type Watch } from '../../runtime/controller.ts';
import type { EventSink } from '../../runtime/events.ts';
import type { Informer, InformerEvent } from '../../runtime/informer.ts';
import { decodeKey, encodeKey, objectKeyOf, type ObjectKey } from '../../runtime/object-key.ts';
import { WorkQueue, type ReconcileResult } from '../../runtime/workqueue.ts';
import { rebalanceSettleMs, RETRY_AFTER_MS, type Migrator, type SyncSteps } from '../migration/migrator.ts';
import type { Placer } from '../placement/assign.ts';
import { acceptAPIKey, describeCandidates } from '../placement/placement.ts';
import { RecentKeys } from '../../runtime/recent-keys.ts';
import { contentHashOf } from '../related/digest.ts';
import { mirrorRelated, type MirrorOwner, type MirrorTarget, type RelatedKind, type RelatedSource } from '../related/mirror.ts';
import { relatedRefs, type RelatedRef } from '../related/refs.ts';
import { ConsumerBindings, resourceOfKind } from './claims.ts';
import { finalizeObject } from './finalizer.ts';
import {
  consumerStatusOf,
  hasPendingCondition,
  stagingCopyDiffers,
  stagingCopyOf,
  statusDiffers,
  updatedStagingCopy,
  withPendingCondition,
} from './mapping.ts';
import type { StagingSide } from './staging.ts';

/** Longest one reconcile may take; then it is aborted and retried (a provider or cache that never answers). */
const RECONCILE_DEADLINE_MS = 60_000;

const CLUSTER_INDEX = 'cluster';
/**
 * The related copies in consumer workspaces by their owner label: finding one object's copies
 * must not scan every copy of every consumer (that made each status relay cost O(objects)).
 */
const OWNER_INDEX = 'owner';
const ownerOf = (o: KubeObject): string[] => {
  const owner = o.metadata.labels?.[OWNER_LABEL];
  return owner === undefined ? [] : [owner];
};

/** The consumer side: the brokered export's virtual workspace, all consumers at once. */
export type ConsumerSide = {
  objects: Informer<KubeObject>;
  /**
   * The related copies the broker made (label-selected), for each kind the export claims. A kind
   * it does not claim has no cache (kcp does not serve it there) and gets no copies.
   */
  secrets?: Informer<KubeObject> | undefined;
  configMaps?: Informer<KubeObject> | undefined;
  /** What each consumer workspace accepted of those claims; absent: everything the export claims. */
  bindings?: ConsumerBindings | undefined;
  client(cluster: string, gvr: GroupVersionResource): ObjectClient;
};

export type SyncControllerOptions = {
  api: BrokeredApi;
  consumers: ConsumerSide;
  staging: StagingSide;
  coordination: Coordination;
  /** The informers behind `coordination`, for the watches. */
  coordinationInformers: {
    assignments: Informer<Assignment>;
    stagingWorkspaces: Informer<StagingWorkspace>;
    migrations: Informer<Migration>;
    configurations: Informer<MigrationConfiguration>;
  };
  acceptAPIs: Informer<AcceptAPI>;
  placer: Placer;
  migrator: Migrator;
  events: EventSink;
  /** Asks the staging-workspace controller to look at one (this object may have released it). */
  releaseStagingWorkspace: (name: string) => void;
  logger: Logger;
  concurrency?: number;
};

/**
 * Steady-state sync of one brokered resource: places each consumer object (through the Placer),
 * keeps its staging copy equal to the consumer's spec, and brings the copy's status and related
 * Secrets/ConfigMaps up. Migrations are the Migrator's, deletion the finalizer's. Keys are
 * `consumer cluster|namespace|name`.
 */
/** An AcceptAPI event after which it may take objects it did not before: new, Ready again, or its spec changed (room, cordon, priority). */
const mayTakeLoad = (e: InformerEvent<AcceptAPI>): boolean =>
  e.type === 'added' ||
  (e.type === 'updated' &&
    (e.old.metadata.generation !== e.object.metadata.generation ||
      (!conditionTrue(e.old.status?.conditions, 'Ready') && conditionTrue(e.object.status?.conditions, 'Ready'))));

/** How often rebalancing looks for overloaded providers (it also looks soon after an AcceptAPI may take load). */
const REBALANCE_SWEEP_MS = 30_000;

export class SyncController implements Controller, SyncSteps {
  readonly name: string;
  readonly api: BrokeredApi;
  readonly gvr: GroupVersionResource;
  readonly queue: WorkQueue;
  readonly #o: SyncControllerOptions;
  readonly #logger: Logger;
  #rebalanceTimer: ReturnType<typeof setInterval> | undefined;
  #sweepSoon: ReturnType<typeof setTimeout> | undefined;
  /** Owner label value -> consumer key, to route edits of related copies back. */
  /** Staging namespaces known to exist (forgetting one costs one create that finds it). */
  readonly #knownNamespaces = new RecentKeys({ capacity: 10_000 });
  /** apiVersion and kind of this resource: list items may lack them. */
  readonly #type: { apiVersion: string; kind: string };

  constructor(options: SyncControllerOptions) {
    this.#o = options;
    const policy = options.migrator.rebalancePolicy;
    if (policy) {
      // At least a second apart, whatever the interval: each sweep may wake thousands of objects.
      const every = Math.max(1_000, Math.min(REBALANCE_SWEEP_MS, rebalanceSettleMs(policy) / 2));
      this.#rebalanceTimer = setInterval(() => this.rebalanceSweep(), every);
      this.#rebalanceTimer.unref?.();
    }
    this.api = options.api;
    this.gvr = { group: options.api.group, version: options.api.version, resource: options.api.resource };
    this.name = `sync-${gvrString(this.gvr)}`;
    this.#type = { apiVersion: apiVersionOf(this.gvr), kind: options.api.kind };
    this.#logger = options.logger;
    // A consumer accepting a claim re-syncs that workspace's objects.
    options.consumers.objects.store.addIndex(CLUSTER_INDEX, (o) => [clusterOf(o)]);
    for (const cache of [options.consumers.secrets, options.consumers.configMaps]) cache?.store.addIndex(OWNER_INDEX, ownerOf);
    const concurrency = options.concurrency ?? 32;
    this.queue = new WorkQueue({
      name: this.name,
      reconcile: (key, signal) => this.reconcile(key, signal),
      concurrency,
      deadlineMs: RECONCILE_DEADLINE_MS,
      // No consumer workspace and no provider can hold more than three quarters of the workers.
      fairness: {
        groupsOf: (key) => {
          const parsed = decodeKey(key);
          const provider = this.#assignmentFor(parsed)?.status?.providerCluster;
          return [`consumer:${parsed.cluster}`, ...(provider ? [`provider:${provider}`] : [])];
        },
        maxPerGroup: Math.max(1, Math.floor((concurrency * 3) / 4)),
      },
      logger: this.#logger,
    });
  }

  watches(): Watch[] {
    const { consumers, coordinationInformers: c, coordination, acceptAPIs } = this.#o;
    const mine = (a: Assignment): boolean => gvrString(a.spec.gvr) === gvrString(this.gvr);
    const keyOf = (a: Assignment): string =>
      encodeKey({ cluster: a.spec.consumerCluster, namespace: a.spec.namespace ?? '', name: a.spec.name });
    const ofMigration = (m: Migration): string[] => {
      const a = coordination.assignment(m.spec.assignment);
      return a && mine(a) ? [keyOf(a)] : [];
    };
    // From the broker's own record (the Assignment), so nothing in the consumer's copy decides which key is worked on.
    const relatedCopy = (e: { object: KubeObject }): string[] => {
      const a = coordination.assignmentOfRelatedCopies(e.object.metadata.labels?.[OWNER_LABEL] ?? '');
      // Only a copy in the object's own workspace: another consumer cannot make us work on (and charge) this one.
      return a && mine(a) && clusterOf(e.object) === a.spec.consumerCluster ? [keyOf(a)] : [];
    };
    const related = [consumers.secrets, consumers.configMaps].flatMap((cache) => (cache ? [watchOf(cache, relatedCopy)] : []));
    // What a workspace accepted decides what is copied there and whether Events can be written.
    const bindings = consumers.bindings
      ? [
          watchOf(consumers.bindings.informer, (e) =>
            ConsumerBindings.changed(e)
              ? consumers.objects.store.byIndex(CLUSTER_INDEX, clusterOf(e.object)).map((o) => encodeKey(objectKeyOf(o)))
              : [],
          ),
        ]
      : [];
    return [
      watchOf(consumers.objects, (e) => [encodeKey(objectKeyOf(e.object))]),
      ...related,
      ...bindings,
      // Room freed under a capacity (an object deleted or moved out) lets a waiting object in.
      watchOf(c.assignments, (e) =>
        mine(e.object) ? [keyOf(e.object), ...(e.type === 'deleted' && this.#capacityLimited() ? this.#unassigned() : [])] : [],
      ),
      // A staging workspace's phase gates its objects; a migration's destination is referenced by the Migration only, until cutover.
      watchOf(c.stagingWorkspaces, (e) => {
        const name = e.object.metadata.name ?? '';
        return [...coordination.assignmentsIn(name).filter(mine).map(keyOf), ...coordination.migrationsIn(name).flatMap(ofMigration)];
      }),
      watchOf(c.migrations, (e) => [
        ...ofMigration(e.object),
        ...(e.type === 'deleted' && this.#capacityLimited() ? this.#unassigned() : []),
      ]),
      // A fixed configuration lets waiting migrations carry on at once.
      watchOf(c.configurations, () => coordination.migrations.store.list().flatMap(ofMigration)),
      // An AcceptAPI that changed may now take unplaced objects, or no longer serve the ones it has;
      // with rebalancing on, it may also take load off the others (a new provider, or more room).
      watchOf(acceptAPIs, (e) => {
        if (gvrString(e.object.spec.gvr) !== gvrString(this.gvr)) return [];
        // The broker's own load report: nothing placement reads changed.
        if (e.type === 'updated' && onlyLoadChanged(e.old, e.object)) return [];
        if (this.#o.migrator.rebalancePolicy && mayTakeLoad(e)) this.#requestRebalanceSweep();
        const served = coordination.assignmentsServedBy(clusterOf(e.object), e.object.metadata.name ?? '');
        return [...this.#unassigned(), ...served.map(keyOf)];
      }),
    ];
  }

  /** How many consumer objects have no Assignment: no provider accepts them, or not yet placed (metrics). */
  get pendingObjects(): number {
    return this.#unassigned().length;
  }

  /** Whether an AcceptAPI for this resource has a capacity: only then can room appear without an AcceptAPI event. */
  #capacityLimited(): boolean {
    return this.#o.acceptAPIs.store
      .list()
      .some((a) => typeof a.spec.capacity === 'number' && gvrString(a.spec.gvr) === gvrString(this.gvr));
  }

  /** Consumer objects without an Assignment. */
  #unassigned(): string[] {
    return this.#o.consumers.objects.store
      .list()
      .map(objectKeyOf)
      .filter((key) => !this.#assignmentFor(key))
      .map(encodeKey);
  }

  /** Stops the queue and removes the handlers this resource added in staging workspaces. */
  /** Ends the rebalancing sweeps (the broker stopping; stop() does it too). */
  stopSweeps(): void {
    clearInterval(this.#rebalanceTimer);
    clearTimeout(this.#sweepSoon);
    this.#rebalanceTimer = undefined;
    this.#sweepSoon = undefined;
  }

  async stop(): Promise<void> {
    this.stopSweeps();
    await this.queue.shutdown();
    this.#o.staging.close?.();
  }

  /**
   * Rebalancing: the objects of the providers serving more than the tolerance above one that could
   * take objects. Each reconcile then decides for its object; nothing else would look again once a
   * move completes, an object's interval ends, or a new provider has been Ready long enough.
   */
  rebalanceSweep(): string[] {
    const overloaded = this.#o.migrator.overloadedAcceptAPIs();
    if (overloaded.size === 0) return [];
    const keys = this.#o.coordination.assignments.store
      .list(
        (a) =>
          gvrString(a.spec.gvr) === gvrString(this.gvr) &&
          overloaded.has(acceptAPIKey(a.status?.providerCluster ?? '', a.status?.acceptAPIName ?? '')),
      )
      .map((a) => encodeKey({ cluster: a.spec.consumerCluster, namespace: a.spec.namespace ?? '', name: a.spec.name }));
    for (const key of keys) this.queue.add(key);
    return keys;
  }

  /** A sweep soon, once however many AcceptAPI events come together. */
  #requestRebalanceSweep(): void {
    if (this.#sweepSoon || !this.#rebalanceTimer) return;
    this.#sweepSoon = setTimeout(() => {
      this.#sweepSoon = undefined;
      this.rebalanceSweep();
    }, 1_000);
    this.#sweepSoon.unref?.();
  }

  #assignmentFor(key: ObjectKey): Assignment | undefined {
    return this.#o.coordination.assignment(assignmentName(key.cluster, this.gvr, key.namespace, key.name));
  }

  #consumerClient(cluster: string, gvr: GroupVersionResource = this.gvr): ObjectClient {
    return this.#o.consumers.client(cluster, gvr);
  }

  /** Whether the consumer object is gone on the server; false while it exists or no shard is known to hold its workspace. */
  async #confirmedGone(key: ObjectKey, signal: AbortSignal): Promise<boolean> {
    try {
      const live = await this.#consumerClient(key.cluster).find({ namespace: key.namespace || undefined, name: key.name }, signal);
      return live === undefined; // present: its watch event brings the next reconcile
    } catch (err) {
      if (!(err instanceof UnroutableClusterError)) throw err;
      this.#logger.info(
        { consumer: encodeKey(key) },
        'consumer object out of reach (its shard is not in the export slice): its provider copy is kept',
      );
      return false;
    }
  }

  async reconcile(keyText: string, signal: AbortSignal): Promise<ReconcileResult> {
    const key = decodeKey(keyText);
    const consumer = this.#o.consumers.objects.store.get(key);
    const assignment = this.#assignmentFor(key);
    if (!consumer) {
      if (!assignment) return;
      // Absent from the cache is not proof of deletion (its shard may have left the export's
      // slice, or the slice was deleted): the provider's copy goes only once the server says the
      // object is gone without our finalizer having run (forced).
      const gone = await this.#confirmedGone(key, signal);
      if (gone) return this.#finalize(key, undefined, assignment, signal);
      return;
    }
    if (consumer.metadata.deletionTimestamp) return this.#finalize(key, consumer, assignment, signal);
    let current = consumer;
    if (!consumer.metadata.finalizers?.includes(FINALIZER)) {
      // Carry on with the patched object rather than waiting for its watch event.
      try {
        current = await this.#consumerClient(key.cluster).mergePatch(
          { namespace: key.namespace || undefined, name: key.name },
          {
            metadata: {
              finalizers: [...(consumer.metadata.finalizers ?? []), FINALIZER],
              resourceVersion: consumer.metadata.resourceVersion,
            },
          },
          signal,
        );
      } catch (err) {
        // Our cached copy was stale, or the object is gone: its watch event brings the next reconcile.
        if (isConflict(err) || isNotFound(err)) return;
        throw err;
      }
      current.metadata.annotations = { ...current.metadata.annotations, 'kcp.io/cluster': key.cluster };
    }
    const placed = await this.#placed(key, current, assignment, signal);
    if (!placed) return;
    // Placed: no longer pending, whether or not its staging workspace is ready yet. A consumer
    // refusing that write must not hold the object back: then it goes on.
    if (hasPendingCondition(current) && (await this.#writeConsumerStatus(key, current, withPendingCondition(current, undefined), signal)))
      return; // its watch event brings the next step
    const staging = await this.#stagingWorkspaceOf(placed, signal);
    if (!staging?.status?.clusterName || staging.status.phase !== 'Ready') return; // its Ready event requeues us
    const { migrator } = this.#o;
    const migration = migrator.migrationOf(placed);
    if (migration) return migrator.advance(key, current, placed, migration, this, signal);
    const move = await migrator.startIfNeeded(key, current, placed, signal);
    if (move === 'started') return;
    // A move that waits leaves the object served where it is, and is looked at again.
    const later = move === 'none' ? undefined : { requeueAfterMs: RETRY_AFTER_MS[move] };
    const copy = await this.syncDown(key, current, staging.status.clusterName, signal);
    if (!copy) return later;
    if (!(await this.syncUp(key, current, copy, staging.status.clusterName, signal))) return later;
    await this.#markBound(placed, staging.status.clusterName, signal);
    return later;
  }

  /** The object's Assignment: the cached one (completed if a crash left it without status), or a new placement. */
  async #placed(
    key: ObjectKey,
    consumer: KubeObject,
    assignment: Assignment | undefined,
    signal: AbortSignal,
  ): Promise<Assignment | undefined> {
    const { placer, events, coordination } = this.#o;
    if (assignment?.status?.stagingWorkspace) return assignment;
    if (assignment) {
      if (placer.wroteStatusOf(assignment)) return undefined; // the cache lags behind our write; its event requeues us
      const completed = await placer.complete(assignment, signal);
      if (completed) return completed;
      // The AcceptAPI it names is gone: nothing was staged yet, so place afresh.
      await coordination.assignments.client.delete({ name: assignment.metadata.name ?? '' }, signal, { uid: assignment.metadata.uid });
      return undefined; // its DELETED event requeues us
    }
    const result = await placer.assign(key, consumer['spec'], signal);
    if (result.outcome === 'raced') return undefined;
    if (result.outcome === 'noProvider') {
      const details = describeCandidates(result.decision);
      await events.record(consumer, 'Warning', 'NoMatchingProvider', `${result.decision.reason}${details ? `: ${details}` : ''}`);
      // The condition says only what stays the same while nothing changes for this object: the
      // per-AcceptAPI details (other providers' names and filters, messages a provider's edits
      // change) stay in the Event and in `explain`, so provider edits do not rewrite every
      // pending consumer object.
      const considered = result.decision.candidates.length;
      const message = `${result.decision.reason}${considered > 0 ? ` (${considered} considered)` : ''}: the NoMatchingProvider Event and \`resource-broker explain\` say why each was refused`;
      await this.#writeConsumerStatus(key, consumer, withPendingCondition(consumer, { reason: 'NoMatchingProvider', message }), signal);
      return undefined;
    }
    const { winner, reason } = result.decision;
    // Events are best effort and not on the path to the staging copy.
    void events.record(
      consumer,
      'Normal',
      'Assigned',
      `assigned to provider ${winner!.providerCluster} (AcceptAPI ${winner!.acceptAPIName}): ${reason}`,
    );
    this.#logger.info({ consumer: encodeKey(key), provider: winner!.providerCluster, reason }, 'object placed');
    return result.assignment;
  }

  async #stagingWorkspaceOf(assignment: Assignment, signal: AbortSignal): Promise<StagingWorkspace | undefined> {
    const name = assignment.status?.stagingWorkspace;
    const apiExportName = assignment.status?.apiExportName;
    if (!name || !apiExportName) return undefined;
    const providerCluster = assignment.status?.providerCluster ?? assignment.spec.providerCluster;
    return this.ensureStagingWorkspace(name, { consumerCluster: assignment.spec.consumerCluster, providerCluster, apiExportName }, signal);
  }

  async ensureStagingWorkspace(name: string, spec: StagingWorkspace['spec'], signal: AbortSignal): Promise<StagingWorkspace | undefined> {
    const { coordination } = this.#o;
    const existing = coordination.stagingWorkspace(name);
    if (existing) return existing;
    await coordination.stagingWorkspaces.client.createIfAbsent(
      { apiVersion: 'coord.broker.platform-mesh.io/v1alpha1', kind: 'StagingWorkspace', metadata: { name }, spec },
      signal,
    );
    return undefined;
  }

  copyIn(stagingWorkspace: string, key: ObjectKey): { cluster?: string; copy?: KubeObject } {
    const cluster = this.#o.coordination.stagingWorkspace(stagingWorkspace)?.status?.clusterName;
    if (!cluster) return {};
    const copy = this.#o.staging.cache(cluster).objects.get({ cluster, namespace: key.namespace, name: key.name });
    return copy ? { cluster, copy } : { cluster };
  }

  relatedSources(copy: KubeObject, cluster: string): RelatedSource[] {
    const cache = this.#o.staging.cache(cluster);
    return relatedRefs(copy, copy.metadata.namespace || 'default').refs.flatMap((ref) => {
      const at = { cluster, namespace: ref.namespace, name: ref.name };
      const store = ref.kind === 'Secret' ? cache.secrets : cache.configMaps;
      const digest = store.get(at);
      const client = this.#o.staging.client(cluster, ref.kind === 'Secret' ? SECRETS : CONFIGMAPS);
      // Not in the cache is not "gone": the view may show the copy before its Secret, and the
      // cache keeps only Secrets some copy names, so one named after it arrived is not there. The
      // mirror then reads it (no hash matches ''), and the cache keeps what was read from then on,
      // unless a relist or a change of that object seen meanwhile makes the read possibly stale.
      const read = (s: AbortSignal): Promise<KubeObject | undefined> => store.readThrough(() => client.find(ref, s));
      return [{ ...ref, contentHash: digest ? contentHashOf(digest) : '', read }];
    });
  }

  async removeCopy(key: ObjectKey, cluster: string, signal: AbortSignal): Promise<boolean> {
    const { objects } = this.#o.staging.cache(cluster);
    await objects.waitForSync(signal);
    signal.throwIfAborted(); // an unsynced cache would say the copy is gone
    const client = this.#o.staging.client(cluster);
    const at = { namespace: key.namespace || undefined, name: key.name };
    // The view shows a new staging workspace only once kcp has its binding: absent from the cache
    // is confirmed by a read before the copy counts as gone (once per removal).
    const copy = objects.get({ cluster, namespace: key.namespace, name: key.name }) ?? (await this.#readCopy(cluster, at, signal));
    if (!copy) return false;
    if (!copy.metadata.deletionTimestamp) await client.delete(at, signal, { uid: copy.metadata.uid }); // the copy checked, not a successor
    return true;
  }

  /** A copy read from its staging workspace; a workspace being torn down (kcp may refuse reads there) has none. */
  async #readCopy(
    cluster: string,
    at: { namespace: string | undefined; name: string },
    signal: AbortSignal,
  ): Promise<KubeObject | undefined> {
    try {
      return await this.#o.staging.client(cluster).find(at, signal);
    } catch (err) {
      const sw = this.#o.coordination.stagingWorkspaceInCluster(cluster);
      if (sw === undefined || sw.status?.phase === 'Terminating' || sw.metadata.deletionTimestamp) return undefined;
      throw err;
    }
  }

  async #ensureNamespace(cluster: string, namespace: string, signal: AbortSignal): Promise<void> {
    if (!namespace || this.#knownNamespaces.has(`${cluster}/${namespace}`)) return;
    await this.#o.staging
      .client(cluster, NAMESPACES)
      .createIfAbsent({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } }, signal);
    this.#knownNamespaces.add(`${cluster}/${namespace}`);
  }

  async syncDown(key: ObjectKey, consumer: KubeObject, cluster: string, signal: AbortSignal): Promise<KubeObject | undefined> {
    const staging = this.#o.staging.cache(cluster);
    await Promise.all([staging.objects.waitForSync(signal), staging.secrets.waitForSync(signal), staging.configMaps.waitForSync(signal)]);
    signal.throwIfAborted(); // an unsynced cache would say the copy is missing
    const desired = stagingCopyOf(consumer, this.#type);
    const current = staging.objects.get({ cluster, namespace: key.namespace, name: key.name });
    const client = this.#o.staging.client(cluster);
    if (current) return stagingCopyDiffers(current, desired) ? client.update(updatedStagingCopy(current, desired), signal) : current;
    await this.#ensureNamespace(cluster, key.namespace, signal);
    return client.createIfAbsent(desired, signal); // undefined: the cache lags behind; its event requeues us
  }

  async syncUp(key: ObjectKey, consumer: KubeObject, copy: KubeObject, cluster: string, signal: AbortSignal): Promise<boolean> {
    const mapped = consumerStatusOf(copy, consumer);
    const { dropped } = mapped;
    // The broker's pending condition is the broker's to set: a provider's is dropped (ours went
    // when the object was placed).
    const status =
      mapped.status !== undefined && hasPendingCondition({ ...copy, status: mapped.status })
        ? withPendingCondition({ ...copy, status: mapped.status }, undefined)
        : mapped.status;
    if (dropped.length > 0) {
      void this.#o.events.record(
        consumer,
        'Warning',
        'ProviderStatusTooLarge',
        // No sizes here: a provider changing them must not make a new Event each time.
        `the provider's status is too large to copy whole; left out: ${dropped.map((d) => d.field).join(', ')}`,
      );
    }
    if (statusDiffers(consumer, status)) {
      try {
        await this.#consumerClient(key.cluster).updateStatus({ ...consumer, status }, signal);
      } catch (err) {
        if (isConflict(err)) return false;
        if (!isRefusedObject(err)) throw err;
        // The consumer's API refuses what the provider wrote (its schema, or the size): the
        // consumer keeps its last status and hears why; the next provider change is tried again.
        this.#logger.warn({ consumer: encodeKey(key), err }, 'consumer refused the provider status');
        void this.#o.events.record(
          consumer,
          'Warning',
          'StatusRefused',
          `the provider's status was not copied: ${err instanceof ApiError ? err.serverMessage : String(err)}`,
        );
      }
    }
    await this.#syncRelated(key, consumer, copy, cluster, signal);
    return true;
  }

  /**
   * Writes the consumer's status when it differs; whether a write was sent (its watch event, or
   * a conflict's, brings the next reconcile). A refusal (no status subresource, a schema without
   * conditions) is logged, not retried.
   */
  async #writeConsumerStatus(key: ObjectKey, consumer: KubeObject, status: unknown, signal: AbortSignal): Promise<boolean> {
    if (!statusDiffers(consumer, status)) return false;
    try {
      await this.#consumerClient(key.cluster).updateStatus({ ...consumer, status }, signal);
      return true;
    } catch (err) {
      if (isConflict(err) || isNotFound(err)) return true; // its watch event brings the next reconcile
      // Refused (no status subresource, a schema without conditions, an admission policy): the
      // condition is a courtesy, not worth a retry.
      if (!isRefusedObject(err) && !(err instanceof ApiError && err.status === 403)) throw err;
      this.#logger.debug({ consumer: encodeKey(key), err }, 'consumer refused the pending condition');
      return false;
    }
  }

  /** The owner of this object's related copies in the consumer workspace. */
  #relatedOwner(key: ObjectKey, uid: string | undefined): MirrorOwner {
    return { labels: { [OWNER_LABEL]: relatedOwnerOf(key.cluster, this.gvr, key.namespace, key.name) }, uid };
  }

  /** The consumer-side cache of a related kind; undefined when the export does not claim it. */
  #consumerCache(kind: RelatedKind): Informer<KubeObject> | undefined {
    const { consumers } = this.#o;
    return kind === 'Secret' ? consumers.secrets : consumers.configMaps;
  }

  /**
   * Whether copies of `kind` are kept in a consumer workspace: the export claims the kind and the
   * workspace accepted the claim. Unknown (its binding not cached yet) counts as accepted: a write
   * kcp refuses is retried.
   */
  #copiesKind(kind: RelatedKind, cluster: string): boolean {
    if (!this.#consumerCache(kind)) return false;
    return this.#o.consumers.bindings?.accepted(cluster)?.includes(resourceOfKind(kind)) ?? true;
  }

  /**
   * The consumer workspace as the related mirror sees it: label-selected caches, writes through
   * the virtual workspace. A kind the broker may not use there shows nothing and is never offered
   * as a source, so nothing is written to it.
   */
  #consumerTarget(cluster: string): MirrorTarget {
    const cacheIn = (kind: RelatedKind): Informer<KubeObject> | undefined =>
      this.#copiesKind(kind, cluster) ? this.#consumerCache(kind) : undefined;
    return {
      client: (kind) => this.#consumerClient(cluster, kind === 'Secret' ? SECRETS : CONFIGMAPS),
      find: async (kind, namespace, name) => cacheIn(kind)?.store.get({ cluster, namespace, name }),
      labelled: async (kind, labels) => {
        const store = cacheIn(kind)?.store;
        if (!store) return [];
        const owner = labels[OWNER_LABEL];
        // The owner label is a hash anyone can copy: the cluster and every label are still checked.
        const candidates = owner === undefined ? store.list() : store.byIndex(OWNER_INDEX, owner);
        return candidates.filter((o) => clusterOf(o) === cluster && Object.entries(labels).every(([k, v]) => o.metadata.labels?.[k] === v));
      },
    };
  }

  async #syncRelated(key: ObjectKey, consumer: KubeObject, copy: KubeObject, cluster: string, signal: AbortSignal): Promise<void> {
    const owner = this.#relatedOwner(key, consumer.metadata.uid);
    const { refs, refused } = relatedRefs(copy, key.namespace || 'default');
    const unclaimed = refs.filter((ref) => !this.#consumerCache(ref.kind));
    const unaccepted = refs.filter((ref) => this.#consumerCache(ref.kind) && !this.#copiesKind(ref.kind, key.cluster));
    const result = await mirrorRelated({
      sources: this.relatedSources(copy, cluster).filter((source) => this.#copiesKind(source.kind, key.cluster)),
      owner,
      target: this.#consumerTarget(key.cluster),
      placeOf: (source) => ({ namespace: source.namespace, name: source.name }),
      signal,
    });
    const { events } = this.#o;
    if (refused.length > 0) {
      await events.record(
        consumer,
        'Warning',
        'RelatedResourceRefused',
        `status.relatedResources of the provider's copy: ${refused.map((r) => `${r.key}: ${r.reason}`).join('; ')}`,
      );
    }
    if (unclaimed.length > 0 || unaccepted.length > 0) {
      const exportName = this.api.exportName;
      const resources = (of: RelatedRef[]): string => [...new Set(of.map((ref) => resourceOfKind(ref.kind)))].join(' or ');
      const names = (of: RelatedRef[]): string => of.map((r) => `${r.kind} ${r.namespace}/${r.name} (${r.key})`).join(', ');
      const reasons = [
        ...(unclaimed.length > 0 ? [`the APIExport ${exportName} does not claim ${resources(unclaimed)}: ${names(unclaimed)}`] : []),
        ...(unaccepted.length > 0
          ? [`this workspace has not accepted the ${resources(unaccepted)} claim of the APIExport ${exportName}: ${names(unaccepted)}`]
          : []),
      ];
      await events.record(consumer, 'Warning', 'RelatedResourceNotClaimed', `not copied, ${reasons.join('; ')}`);
    }
    if (result.conflicts.length > 0) {
      await events.record(
        consumer,
        'Warning',
        'RelatedResourceConflict',
        `not copied, the name is taken by an object the broker did not make for this one: ${result.conflicts.map((c) => `${c.kind} ${c.namespace}/${c.name}`).join(', ')}`,
      );
    }
  }

  async #markBound(assignment: Assignment, stagingCluster: string, signal: AbortSignal): Promise<void> {
    if (assignment.status?.phase === 'Bound') return;
    const status = {
      ...assignment.status,
      phase: 'Bound' as const,
      conditions: setCondition(assignment.status?.conditions, {
        type: 'Ready',
        status: 'True',
        reason: 'Synced',
        message: `staging copy in ${stagingCluster}`,
      }),
    };
    try {
      await this.#o.coordination.assignments.client.updateStatus({ ...assignment, status }, signal);
    } catch (err) {
      // Our cached Assignment was stale; its update event brings the next reconcile.
      if (!isConflict(err)) throw err;
    }
  }

  #finalize(
    key: ObjectKey,
    consumer: KubeObject | undefined,
    assignment: Assignment | undefined,
    signal: AbortSignal,
  ): Promise<ReconcileResult> {
    const { coordination, migrator, events, releaseStagingWorkspace } = this.#o;
    return finalizeObject(
      {
        coordination,
        migrator,
        steps: this,
        removeRelatedCopies: async (s) =>
          (
            await mirrorRelated({
              sources: [],
              owner: this.#relatedOwner(key, consumer?.metadata.uid),
              target: this.#consumerTarget(key.cluster),
              placeOf: () => ({ namespace: '', name: '' }),
              signal: s,
            })
          ).deleted,
        releaseCopy: async (k, cluster, s) => {
          this.#logger.warn(
            { consumer: encodeKey(k), stagingCluster: cluster },
            "removing the finalizers of a provider copy, as the Assignment's orphan annotation asks",
          );
          await this.#o.staging
            .client(cluster)
            .mergePatch({ namespace: k.namespace || undefined, name: k.name }, { metadata: { finalizers: null } }, s);
        },
        reportBlocked: async (obj, message, s) => {
          await events.record(obj, 'Warning', 'DeletionBlocked', message);
          const status = (obj['status'] ?? {}) as { conditions?: Condition[] };
          const conditions = setCondition(status.conditions, {
            type: 'DeletionBlocked',
            status: 'True',
            reason: 'ProviderFinalizer',
            message,
          });
          if (isDeepStrictEqual(conditions, status.conditions)) return;
          try {
            await this.#consumerClient(key.cluster).updateStatus({ ...obj, status: { ...status, conditions } }, s);
          } catch (err) {
            if (!isConflict(err) && !isNotFound(err)) throw err;
          }
        },
        removeFinalizer: async (obj, s) => {
          if (!obj.metadata.finalizers?.includes(FINALIZER)) return;
          try {
            await this.#consumerClient(key.cluster).mergePatch(
              { namespace: key.namespace || undefined, name: key.name },
              {
                metadata: {
                  finalizers: obj.metadata.finalizers.filter((f) => f !== FINALIZER),
                  resourceVersion: obj.metadata.resourceVersion,
                },
              },
              s,
            );
          } catch (err) {
            // Gone already (a stale cache): done. A conflict: the next event brings the current object.
            if (!isNotFound(err)) throw err;
          }
          events.forget(obj);
        },
        releaseStagingWorkspace,
      },
      { key, consumer, assignment },
      signal,
    );
  }
}

/** Labels of the related copies the consumer-side caches hold (everything the broker made there). */
export const RELATED_COPY_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGER},${OWNER_LABEL}`;
