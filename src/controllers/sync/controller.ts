import { isDeepStrictEqual } from 'node:util';
import { decodeKey, encodeKey, objectKeyOf, type ObjectKey } from '../../cache/object-key.ts';
import type { Informer } from '../../cache/informer.ts';
import { WorkQueue, type ReconcileResult } from '../../cache/workqueue.ts';
import { conditionTrue, setCondition } from '../../apis/conditions.ts';
import { CONSUMER_CLUSTER_ANNOTATION, FINALIZER, MANAGED_BY_LABEL, MANAGER, OWNER_LABEL, nameHash } from '../../apis/names.ts';
import type { Assignment, Migration, StagingWorkspace } from '../../apis/types.ts';
import { EventRecorder } from '../../broker/events.ts';
import type { BrokerContext, BrokeredApi } from '../../broker/context.ts';
import { isAlreadyExists, isConflict, isNotFound } from '../../kcp-client-ts/errors.ts';
import { ResourceClient } from '../../kcp-client-ts/resources.ts';
import { apiVersionOf, clusterOf, CONFIGMAPS, gvrString, NAMESPACES, SECRETS, type GroupVersionResource, type KubeObject } from '../../kcp-client-ts/types.ts';
import type { Logger } from '../../logging.ts';
import { evaluateFilters } from '../acceptapi/filters.ts';
import type { RelatedSource } from '../migration/stage-runner.ts';
import { writeMigrationStatus } from '../migration/status.ts';
import { assignmentsByProvider, describeCandidates, placeObject } from '../placement/placement.ts';
import {
  relatedCopyDiffers,
  relatedCopyOf,
  relatedRefs,
  stagingCopyDiffers,
  stagingCopyOf,
  statusDiffers,
  updatedStagingCopy,
} from './mapping.ts';

const RELATED_INDEX = 'related';
/** How long an Assignment this controller created counts as load before the cache shows it. */
const PLACING_TTL_MS = 30_000;

export const assignmentName = (consumerCluster: string, gvr: GroupVersionResource, namespace: string, name: string): string =>
  `assignment-${nameHash(consumerCluster, gvrString(gvr), namespace, name)}`;

export const migrationNameOf = (assignment: Assignment): string => (assignment.metadata.name ?? '').replace(/^assignment-/, 'migration-');

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
  /**
   * Assignments this controller created (or is creating) that the cache does not show yet, by
   * name, with their provider. Placement counts them as load: otherwise a burst of objects,
   * placed before any of their Assignments come back through the watch, would all see the same
   * load and land wherever the tie-break sends each, instead of spreading. An entry the cache never
   * shows (the Assignment deleted at once) stops counting after PLACING_TTL_MS.
   */
  readonly #placing = new Map<string, { provider: string; since: number }>();
  /** apiVersion and kind of this resource: list items may lack them. */
  readonly #type: { apiVersion: string; kind: string };

  constructor(options: { ctx: BrokerContext; api: BrokeredApi }) {
    this.#ctx = options.ctx;
    this.api = options.api;
    this.gvr = { group: options.api.group, version: options.api.version, resource: options.api.resource };
    this.gvrKey = gvrString(this.gvr);
    this.#type = { apiVersion: apiVersionOf(this.gvr), kind: options.api.kind };
    this.#logger = options.ctx.logger.child({ controller: 'sync', resource: this.gvrKey });
    this.#events = new EventRecorder({ endpoint: options.ctx.endpoint, virtualWorkspaceUrl: options.api.virtualWorkspaceUrl, logger: this.#logger, involvedType: { apiVersion: apiVersionOf(this.gvr), kind: options.api.kind } });
    this.queue = new WorkQueue({ name: `sync-${this.gvrKey}`, reconcile: (key, signal) => this.reconcile(key, signal), onReconciled: (o) => options.ctx.onReconciled(`sync-${this.gvrKey}`, o), concurrency: 32, logger: this.#logger });
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
    let current = consumer;
    if (!consumer.metadata.finalizers?.includes(FINALIZER)) {
      // Carry on with the patched object rather than waiting for its watch event.
      current = await this.#consumerClient(key.cluster).mergePatch(
        { namespace: key.namespace || undefined, name: key.name },
        { metadata: { finalizers: [...(consumer.metadata.finalizers ?? []), FINALIZER], resourceVersion: consumer.metadata.resourceVersion } },
        signal,
      );
      current.metadata.annotations = { ...current.metadata.annotations, 'kcp.io/cluster': key.cluster };
    }
    return this.#reconcileLive(key, current, assignment, signal);
  }

  async #reconcileLive(key: ObjectKey, consumer: KubeObject, assignment: Assignment | undefined, signal: AbortSignal): Promise<ReconcileResult> {
    const placed = assignment ?? (await this.#place(key, consumer, signal));
    if (!placed) return;
    const staging = await this.#stagingWorkspaceFor(placed, signal);
    if (!staging?.status?.clusterName || staging.status.phase !== 'Ready') return; // its Ready event requeues us
    const migration = this.#ctx.migrations.store.get({ cluster: this.#ctx.coordinationCluster, namespace: '', name: migrationNameOf(placed) });
    if (migration) return this.#migrate(key, consumer, placed, migration, signal);
    const moved = await this.#startMigrationIfNeeded(key, consumer, placed, signal);
    if (moved) return;
    return this.#sync(key, consumer, placed, staging.status.clusterName, signal);
  }

  async #place(key: ObjectKey, consumer: KubeObject, signal: AbortSignal): Promise<Assignment | undefined> {
    const acceptAPIs = this.#ctx.acceptAPIs()?.store.list() ?? [];
    const decision = placeObject({ gvr: this.gvr, spec: consumer['spec'], objectId: encodeKey(key), acceptAPIs, assignmentsByProvider: this.#loadByProvider() });
    if (!decision.winner) {
      const details = describeCandidates(decision);
      await this.#events.record(consumer, 'Warning', 'NoMatchingProvider', `${decision.reason}${details ? `: ${details}` : ''}`);
      return undefined;
    }
    const { winner } = decision;
    const apiExportName = winner.acceptAPI.spec.apiExportName;
    const name = assignmentName(key.cluster, this.gvr, key.namespace, key.name);
    const stagingWorkspace = stagingWorkspaceName(key.cluster, winner.providerCluster, apiExportName);
    // Same tick as the load was read in: the next placement already counts this one.
    this.#placing.set(name, { provider: winner.providerCluster, since: Date.now() });
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
      this.#placing.delete(name);
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
    // Events are best effort and not on the path to the staging copy.
    void this.#events.record(consumer, 'Normal', 'Assigned', `assigned to provider ${winner.providerCluster} (AcceptAPI ${winner.acceptAPIName}): ${decision.reason}`);
    this.#logger.info({ consumer: encodeKey(key), provider: winner.providerCluster, reason: decision.reason }, 'object placed');
    return withStatus;
  }

  async #stagingWorkspaceFor(assignment: Assignment, signal: AbortSignal): Promise<StagingWorkspace | undefined> {
    const name = assignment.status?.stagingWorkspace;
    const apiExportName = assignment.status?.apiExportName;
    if (!name || !apiExportName) return undefined;
    return this.#ensureStagingWorkspace(name, { consumerCluster: assignment.spec.consumerCluster, providerCluster: assignment.status?.providerCluster ?? assignment.spec.providerCluster, apiExportName }, signal);
  }

  /** The StagingWorkspace by name, created when missing (then undefined: its events requeue us). */
  async #ensureStagingWorkspace(name: string, spec: StagingWorkspace['spec'], signal: AbortSignal): Promise<StagingWorkspace | undefined> {
    const existing = this.#ctx.stagingWorkspaces.store.get({ cluster: this.#ctx.coordinationCluster, namespace: '', name });
    if (existing) return existing;
    try {
      await this.#ctx.stagingWorkspaceClient.create({ apiVersion: 'coord.broker.platform-mesh.io/v1alpha1', kind: 'StagingWorkspace', metadata: { name }, spec }, signal);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
    return undefined;
  }

  #stagingWorkspace(name: string | undefined): StagingWorkspace | undefined {
    return name ? this.#ctx.stagingWorkspaces.store.get({ cluster: this.#ctx.coordinationCluster, namespace: '', name }) : undefined;
  }

  /** Why the AcceptAPI serving an object can no longer serve it; undefined while it can. */
  #servingProblem(consumer: KubeObject, assignment: Assignment): string | undefined {
    const informer = this.#ctx.acceptAPIs();
    const provider = assignment.status?.providerCluster;
    const name = assignment.status?.acceptAPIName;
    if (!informer?.synced || !provider || !name) return undefined;
    const acceptAPI = informer.store.get({ cluster: provider, namespace: '', name });
    if (!acceptAPI || acceptAPI.metadata.deletionTimestamp) return `AcceptAPI ${name} of ${provider} was deleted`;
    if (!conditionTrue(acceptAPI.status?.conditions, 'Ready')) return `AcceptAPI ${name} of ${provider} is not Ready`;
    if (gvrString(acceptAPI.spec.gvr) !== this.gvrKey) return `AcceptAPI ${name} of ${provider} no longer accepts ${this.gvrKey}`;
    const verdict = evaluateFilters(acceptAPI.spec.filters, consumer['spec']);
    return verdict.pass ? undefined : `AcceptAPI ${name} of ${provider} no longer matches: ${verdict.reason}`;
  }

  /** Starts a migration when the serving AcceptAPI cannot serve the object any more; true if one started. */
  async #startMigrationIfNeeded(key: ObjectKey, consumer: KubeObject, assignment: Assignment, signal: AbortSignal): Promise<boolean> {
    const problem = this.#servingProblem(consumer, assignment);
    if (!problem) return false;
    const from = { providerCluster: assignment.status!.providerCluster!, acceptAPIName: assignment.status!.acceptAPIName! };
    const decision = placeObject({
      gvr: this.gvr,
      spec: consumer['spec'],
      objectId: encodeKey(key),
      acceptAPIs: this.#ctx.acceptAPIs()?.store.list() ?? [],
      assignmentsByProvider: this.#loadByProvider(),
      exclude: from,
    });
    if (!decision.winner) {
      const details = describeCandidates(decision);
      await this.#events.record(consumer, 'Warning', 'NoMatchingProvider', `${problem}; the object stays where it is: no other provider matches${details ? `: ${details}` : ''}`);
      return false;
    }
    const { winner } = decision;
    const gvk = { group: this.gvr.group, version: this.gvr.version, kind: this.api.kind };
    const to = { gvk, providerCluster: winner.providerCluster, acceptAPIName: winner.acceptAPIName, apiExportName: winner.acceptAPI.spec.apiExportName };
    // The Migration is written first: it references both staging workspaces, so neither is collected midway.
    try {
      await this.#ctx.migrationClient.create(
        {
          apiVersion: 'coord.broker.platform-mesh.io/v1alpha1',
          kind: 'Migration',
          metadata: { name: migrationNameOf(assignment) },
          spec: {
            assignment: assignment.metadata.name ?? '',
            name: key.name,
            ...(key.namespace ? { namespace: key.namespace } : {}),
            fromStagingWorkspace: assignment.status!.stagingWorkspace!,
            stagingWorkspace: stagingWorkspaceName(key.cluster, winner.providerCluster, to.apiExportName),
            from: { gvk, ...from, apiExportName: assignment.status!.apiExportName! },
            to,
          },
        },
        signal,
      );
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
    await this.#ctx.assignmentClient.update({ ...assignment, spec: { ...assignment.spec, providerCluster: winner.providerCluster, acceptAPIName: winner.acceptAPIName } }, signal);
    await this.#events.record(consumer, 'Normal', 'MigrationStarted', `${problem}; moving to provider ${winner.providerCluster} (AcceptAPI ${winner.acceptAPIName}), make-before-break`);
    this.#logger.info({ consumer: encodeKey(key), from: from.providerCluster, to: winner.providerCluster, problem }, 'migration started');
    return true;
  }

  /**
   * Make-before-break: the destination copy gets the spec while the consumer keeps the origin's
   * status and related resources (the origin copy gets no writes); the MigrationConfiguration's
   * stages run; once the destination reports Available the Assignment is repointed, then the
   * origin copy, the stage objects and the Migration go.
   */
  async #migrate(key: ObjectKey, consumer: KubeObject, assignment: Assignment, migration: Migration, signal: AbortSignal): Promise<ReconcileResult> {
    if (migration.status?.state === 'Failed') return this.#afterFailedMigration(key, consumer, assignment, migration, signal);
    const destName = migration.spec.stagingWorkspace;
    const cutOver = assignment.status?.stagingWorkspace === destName;
    const { cluster: origin, copy: originCopy } = this.#copyIn(migration.spec.fromStagingWorkspace, key);
    if (!cutOver && origin && originCopy && !(await this.#syncUp(key, consumer, originCopy, origin, signal))) return;
    const dest = await this.#ensureStagingWorkspace(destName, { consumerCluster: key.cluster, providerCluster: migration.spec.to.providerCluster, apiExportName: migration.spec.to.apiExportName }, signal);
    const destCluster = dest?.status?.phase === 'Ready' ? dest.status.clusterName : undefined;
    if (!destCluster) return; // its Ready event requeues us
    const destCopy = await this.#syncDown(key, consumer, destCluster, signal);
    if (!destCopy) return;
    if (!cutOver) {
      const step = await this.#ctx.migrationStages.advance(
        {
          migration,
          from: originCopy ?? { metadata: {} },
          to: destCopy,
          related: { from: origin && originCopy ? this.#relatedSources(originCopy, origin) : [], to: this.#relatedSources(destCopy, destCluster) },
        },
        signal,
      );
      if (step.next === 'wait') return step.requeueAfterMs === undefined ? undefined : { requeueAfterMs: step.requeueAfterMs };
      if (step.next === 'fail') return this.#failMigration(consumer, migration, step, signal);
      if ((destCopy['status'] as { status?: string } | undefined)?.status !== 'Available') return; // its status event requeues us
      await this.#ctx.assignmentClient.updateStatus(
        {
          ...assignment,
          status: {
            ...assignment.status,
            providerCluster: migration.spec.to.providerCluster,
            acceptAPIName: migration.spec.to.acceptAPIName,
            apiExportName: migration.spec.to.apiExportName,
            stagingWorkspace: destName,
            phase: 'Bound',
          },
        },
        signal,
      );
      return; // the Assignment's event brings the rest
    }
    if (!(await this.#syncUp(key, consumer, destCopy, destCluster, signal))) return;
    if (migration.status?.state !== 'CutoverCompleted') {
      await writeMigrationStatus(this.#ctx.migrationClient, migration, { state: 'CutoverCompleted', conditions: [{ type: 'CutoverCompleted', status: 'True', reason: 'Served', message: `served from ${destCluster}` }] }, signal);
      return;
    }
    if (origin && originCopy) {
      if (!originCopy.metadata.deletionTimestamp) await this.#stagingClient(origin).delete({ namespace: key.namespace || undefined, name: key.name }, signal);
      return { requeueAfterMs: 5_000 }; // its DELETED event requeues us sooner
    }
    await this.#ctx.migrationStages.cleanup(migration, signal);
    await this.#ctx.migrationClient.delete({ name: migration.metadata.name ?? '' }, signal);
    this.#ctx.enqueueStagingWorkspace(migration.spec.fromStagingWorkspace);
    await this.#events.record(consumer, 'Normal', 'MigrationCompleted', `now served by provider ${migration.spec.to.providerCluster} (AcceptAPI ${migration.spec.to.acceptAPIName})`);
    this.#logger.info({ consumer: encodeKey(key), to: migration.spec.to.providerCluster }, 'migration completed');
    return;
  }

  /** Records the failure first (so a restart carries on rolling back), then says so on the consumer object. */
  async #failMigration(consumer: KubeObject, migration: Migration, failure: { reason: string; message: string }, signal: AbortSignal): Promise<ReconcileResult> {
    const configuration = this.#ctx.migrationStages.configurationVersion(migration);
    const written = await writeMigrationStatus(
      this.#ctx.migrationClient,
      migration,
      {
        state: 'Failed',
        failedGeneration: consumer.metadata.generation ?? 0,
        ...(configuration ? { failedConfiguration: configuration } : {}),
        conditions: [
          { type: 'StagesCompleted', status: 'False', reason: failure.reason, message: failure.message },
          { type: 'RolledBack', status: 'False', reason: 'RollingBack', message: 'removing the destination copy and the stage objects' },
        ],
      },
      signal,
    );
    if (!written) return; // a conflict: the next reconcile decides again, with the current Migration
    await this.#events.record(consumer, 'Warning', 'MigrationFailed', `${failure.message}; rolled back: the object stays with provider ${migration.spec.from.providerCluster} (AcceptAPI ${migration.spec.from.acceptAPIName})`);
    this.#logger.warn({ migration: migration.metadata.name, reason: failure.reason, message: failure.message }, 'migration failed, rolling back');
    return;
  }

  /**
   * A Failed migration: roll back (stage objects, destination copy, Assignment spec), then keep the
   * object at the origin with its spec frozen there, until the consumer changes the spec or the
   * platform edits (or deletes) the MigrationConfiguration; either starts over.
   */
  async #afterFailedMigration(key: ObjectKey, consumer: KubeObject, assignment: Assignment, migration: Migration, signal: AbortSignal): Promise<ReconcileResult> {
    const { from } = migration.spec;
    if (!conditionTrue(migration.status?.conditions, 'RolledBack')) {
      await this.#ctx.migrationStages.cleanup(migration, signal);
      const dest = this.#stagingWorkspace(migration.spec.stagingWorkspace)?.status?.clusterName;
      if (dest) {
        const informers = this.#stagingInformers(dest);
        await informers.objects.waitForSync(signal);
        const destCopy = informers.objects.store.get({ cluster: dest, namespace: key.namespace, name: key.name });
        if (destCopy) {
          if (!destCopy.metadata.deletionTimestamp) await this.#stagingClient(dest).delete({ namespace: key.namespace || undefined, name: key.name }, signal);
          return { requeueAfterMs: 2_000 }; // its DELETED event requeues us sooner
        }
      }
      if (assignment.spec.providerCluster !== from.providerCluster || assignment.spec.acceptAPIName !== from.acceptAPIName) {
        await this.#ctx.assignmentClient.update({ ...assignment, spec: { ...assignment.spec, providerCluster: from.providerCluster, acceptAPIName: from.acceptAPIName } }, signal);
      }
      await writeMigrationStatus(
        this.#ctx.migrationClient,
        migration,
        { stageObjects: null, conditions: [{ type: 'RolledBack', status: 'True', reason: 'RolledBack', message: `destination copy and stage objects removed; served by ${from.providerCluster}` }] },
        signal,
      );
      this.#ctx.enqueueStagingWorkspace(migration.spec.stagingWorkspace);
      return;
    }
    const failedWith = migration.status?.failedConfiguration;
    const configuration = this.#ctx.migrationStages.configurationVersion(migration);
    const specChanged = (consumer.metadata.generation ?? 0) !== migration.status?.failedGeneration;
    const configurationChanged = failedWith !== undefined && !isDeepStrictEqual(failedWith, configuration);
    if (specChanged || configurationChanged) {
      await this.#ctx.migrationClient.delete({ name: migration.metadata.name ?? '' }, signal);
      this.#logger.info({ migration: migration.metadata.name, specChanged, configurationChanged }, 'failed migration dropped, starting over');
      return;
    }
    const { cluster: origin, copy: originCopy } = this.#copyIn(migration.spec.fromStagingWorkspace, key);
    if (origin && originCopy) await this.#syncUp(key, consumer, originCopy, origin, signal);
    return;
  }

  /** The logical cluster of a staging workspace and this object's copy there, as cached. */
  #copyIn(stagingWorkspace: string, key: ObjectKey): { cluster?: string; copy?: KubeObject } {
    const cluster = this.#stagingWorkspace(stagingWorkspace)?.status?.clusterName;
    if (!cluster) return {};
    const copy = this.#stagingInformers(cluster).objects.store.get({ cluster, namespace: key.namespace, name: key.name });
    return copy ? { cluster, copy } : { cluster };
  }

  /** The Secrets and ConfigMaps a staging copy publishes, as cached. */
  #relatedSources(copy: KubeObject, stagingCluster: string): RelatedSource[] {
    const staging = this.#stagingInformers(stagingCluster);
    return relatedRefs(copy, copy.metadata.namespace || 'default').refs.flatMap((ref) => {
      const object = (ref.kind === 'Secret' ? staging.secrets : staging.configMaps).store.get({ cluster: stagingCluster, namespace: ref.namespace, name: ref.name });
      return object ? [{ kind: ref.kind, object }] : [];
    });
  }

  /** Assignments per provider as cached, plus the ones being placed that the cache does not show yet. */
  #loadByProvider(): Map<string, number> {
    const load = assignmentsByProvider(this.#ctx.assignments.store.list(), this.gvr);
    for (const [name, { provider, since }] of this.#placing) {
      const settled = Date.now() - since > PLACING_TTL_MS || this.#ctx.assignments.store.get({ cluster: this.#ctx.coordinationCluster, namespace: '', name });
      if (settled) this.#placing.delete(name);
      else load.set(provider, (load.get(provider) ?? 0) + 1);
    }
    return load;
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
    const copy = await this.#syncDown(key, consumer, stagingCluster, signal);
    if (!copy) return;
    if (!(await this.#syncUp(key, consumer, copy, stagingCluster, signal))) return;
    await this.#markBound(assignment, stagingCluster, signal);
    return;
  }

  /** Creates or rewrites the staging copy from the consumer object; undefined while the cache catches up. */
  async #syncDown(key: ObjectKey, consumer: KubeObject, stagingCluster: string, signal: AbortSignal): Promise<KubeObject | undefined> {
    const staging = this.#stagingInformers(stagingCluster);
    await Promise.all([staging.objects.waitForSync(signal), staging.secrets.waitForSync(signal), staging.configMaps.waitForSync(signal)]);
    const desired = stagingCopyOf(consumer, this.#type);
    const current = staging.objects.store.get({ cluster: stagingCluster, namespace: key.namespace, name: key.name });
    if (current) return stagingCopyDiffers(current, desired) ? this.#stagingClient(stagingCluster).update(updatedStagingCopy(current, desired), signal) : current;
    await this.#ensureNamespace(stagingCluster, key.namespace, signal);
    try {
      return await this.#stagingClient(stagingCluster).create(desired, signal);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      return undefined; // the cache lags behind; its event requeues us
    }
  }

  /** Status and related resources from a staging copy to the consumer; false when a newer consumer version is on its way. */
  async #syncUp(key: ObjectKey, consumer: KubeObject, copy: KubeObject, stagingCluster: string, signal: AbortSignal): Promise<boolean> {
    if (statusDiffers(consumer, copy)) {
      try {
        await this.#consumerClient(key.cluster).updateStatus({ ...consumer, status: copy['status'] }, signal);
      } catch (err) {
        if (!isConflict(err)) throw err;
        return false;
      }
    }
    await this.#syncRelated(key, copy, stagingCluster, this.#stagingInformers(stagingCluster), signal);
    return true;
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
      const desired = relatedCopyOf(source, ref.kind, owner);
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

  /** Ordered deletion: related copies, staging copies (until gone), Migration, Assignment, then the finalizer. */
  async #finalize(key: ObjectKey, consumer: KubeObject | undefined, assignment: Assignment | undefined, signal: AbortSignal): Promise<ReconcileResult> {
    if (assignment) {
      const owner = ownerOf(key, this.gvr);
      if ((await this.#deleteRelatedCopies(key, owner, new Set(), signal)) > 0) return { requeueAfterMs: 2_000 };
      const migration = this.#ctx.migrations.store.get({ cluster: this.#ctx.coordinationCluster, namespace: '', name: migrationNameOf(assignment) });
      const stagingNames = new Set([assignment.status?.stagingWorkspace, migration?.spec.fromStagingWorkspace, migration?.spec.stagingWorkspace].filter((n): n is string => !!n));
      let waiting = false;
      for (const name of stagingNames) {
        const stagingCluster = this.#stagingWorkspace(name)?.status?.clusterName;
        if (!stagingCluster) continue;
        const informers = this.#stagingInformers(stagingCluster);
        await informers.objects.waitForSync(signal);
        const copy = informers.objects.store.get({ cluster: stagingCluster, namespace: key.namespace, name: key.name });
        if (!copy) continue;
        waiting = true;
        if (!copy.metadata.deletionTimestamp) await this.#stagingClient(stagingCluster).delete({ namespace: key.namespace || undefined, name: key.name }, signal);
      }
      if (waiting) return { requeueAfterMs: 5_000 }; // DELETED events requeue us sooner
      if (migration) {
        await this.#ctx.migrationStages.cleanup(migration, signal);
        await this.#ctx.migrationClient.delete({ name: migration.metadata.name ?? '' }, signal);
      }
      try {
        await this.#ctx.assignmentClient.delete({ name: assignment.metadata.name ?? '' }, signal);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      for (const name of stagingNames) this.#ctx.enqueueStagingWorkspace(name);
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

