// Over 350 lines on purpose: start, advance, cutover, failure and rollback are one state
// machine over the Migration's recorded state; apart, the order of their writes would be hidden.
import { isDeepStrictEqual } from 'node:util';
import { conditionTrue, setCondition } from '../../apis/conditions.ts';
import { migrationNameOf, stagingWorkspaceName } from '../../apis/names.ts';
import type { AcceptAPI, Assignment, GroupVersionKind, Migration, StagingWorkspace } from '../../apis/types.ts';
import type { Coordination } from '../../coordination/coordination.ts';
import { isConflict } from '../../kcp-client-ts/errors.ts';
import { gvrString, type GroupVersionResource, type KubeObject } from '../../kcp-client-ts/types.ts';
import type { Logger } from '../../logging.ts';
import type { EventSink } from '../../runtime/events.ts';
import { encodeKey, type ObjectKey } from '../../runtime/object-key.ts';
import type { ObjectStore } from '../../runtime/store.ts';
import type { ReconcileResult } from '../../runtime/workqueue.ts';
import { evaluateFilters } from '../acceptapi/filters.ts';
import type { Placer } from '../placement/assign.ts';
import { describeCandidates } from '../placement/placement.ts';
import type { RelatedSource } from '../related/mirror.ts';
import { RecentKeys } from '../../runtime/recent-keys.ts';
import type { MigrationStages } from './stage-runner.ts';
import { writeMigrationStatus } from './status.ts';

/**
 * The sync steps a migration drives on both copies. The sync controller implements them; the
 * migrator only decides when each runs.
 */
export type SyncSteps = {
  /** The logical cluster of a staging workspace and the object's copy there, as cached. */
  copyIn(stagingWorkspace: string, key: ObjectKey): { cluster?: string; copy?: KubeObject };
  /** Writes the consumer's spec to the copy in `cluster`; undefined while the cache catches up. */
  syncDown(key: ObjectKey, consumer: KubeObject, cluster: string, signal: AbortSignal): Promise<KubeObject | undefined>;
  /** Status and related resources from a copy to the consumer; false when a newer consumer version is on its way. */
  syncUp(key: ObjectKey, consumer: KubeObject, copy: KubeObject, cluster: string, signal: AbortSignal): Promise<boolean>;
  /** The Secrets and ConfigMaps a copy publishes, as cached. */
  relatedSources(copy: KubeObject, cluster: string): RelatedSource[];
  /** The StagingWorkspace by name, created when missing (then undefined: its events requeue the object). */
  ensureStagingWorkspace(name: string, spec: StagingWorkspace['spec'], signal: AbortSignal): Promise<StagingWorkspace | undefined>;
  /** Deletes the object's copy in `cluster` (waits for it through the cache); true while one is there. */
  removeCopy(key: ObjectKey, cluster: string, signal: AbortSignal): Promise<boolean>;
};

export type MigratorOptions = {
  gvr: GroupVersionResource;
  kind: string;
  coordination: Coordination;
  acceptAPIs: { synced: boolean; store: ObjectStore<AcceptAPI> };
  placer: Placer;
  stages: MigrationStages;
  events: EventSink;
  logger: Logger;
  /** Asks the staging-workspace controller to look at one (a migration released it). */
  releaseStagingWorkspace: (name: string) => void;
};

/**
 * Make-before-break moves of one brokered resource's objects: starts a Migration when the serving
 * AcceptAPI can no longer serve an object, runs its stages, cuts over when the destination
 * reports Available, rolls back on failure. Every step is recorded in the Migration or the
 * Assignment before the next one, so a restart resumes from the records.
 */
export class Migrator {
  readonly #o: MigratorOptions;
  readonly #gvrKey: string;
  readonly #gvk: GroupVersionKind;

  /**
   * Assignments whose spec this process repointed lately: a cached copy still showing the old
   * spec is the cache lagging behind that write, not a crash between two writes.
   */
  readonly #specWritten = new RecentKeys({ capacity: 4096, ttlMs: 60_000 });

  constructor(options: MigratorOptions) {
    this.#o = options;
    this.#gvrKey = gvrString(options.gvr);
    this.#gvk = { group: options.gvr.group, version: options.gvr.version, kind: options.kind };
  }

  /** The object's Migration, as cached. */
  migrationOf(assignment: Assignment): Migration | undefined {
    return this.#o.coordination.migration(migrationNameOf(assignment));
  }

  /** Ends a migration whose object is being deleted: what its stages deployed, then the Migration. */
  async abandon(migration: Migration, signal: AbortSignal): Promise<void> {
    await this.#o.stages.cleanup(migration, signal);
    await this.#o.coordination.migrations.client.delete({ name: migration.metadata.name ?? '' }, signal);
  }

  /** Why the AcceptAPI serving an object can no longer serve it; undefined while it can. */
  servingProblem(consumer: KubeObject, assignment: Assignment): string | undefined {
    const { acceptAPIs } = this.#o;
    const provider = assignment.status?.providerCluster;
    const name = assignment.status?.acceptAPIName;
    if (!acceptAPIs.synced || !provider || !name) return undefined;
    const acceptAPI = acceptAPIs.store.get({ cluster: provider, namespace: '', name });
    if (!acceptAPI || acceptAPI.metadata.deletionTimestamp) return `AcceptAPI ${name} of ${provider} was deleted`;
    if (!conditionTrue(acceptAPI.status?.conditions, 'Ready')) return `AcceptAPI ${name} of ${provider} is not Ready`;
    if (gvrString(acceptAPI.spec.gvr) !== this.#gvrKey) return `AcceptAPI ${name} of ${provider} no longer accepts ${this.#gvrKey}`;
    const verdict = evaluateFilters(acceptAPI.spec.filters, consumer['spec']);
    return verdict.pass ? undefined : `AcceptAPI ${name} of ${provider} no longer matches: ${verdict.reason}`;
  }

  /** Starts a migration when the serving AcceptAPI cannot serve the object any more; true if one started. */
  async startIfNeeded(key: ObjectKey, consumer: KubeObject, assignment: Assignment, signal: AbortSignal): Promise<boolean> {
    const problem = this.servingProblem(consumer, assignment);
    if (!problem) return false;
    const { coordination, placer, events } = this.#o;
    const from = { providerCluster: assignment.status!.providerCluster!, acceptAPIName: assignment.status!.acceptAPIName! };
    const decision = placer.decide(key, consumer['spec'], from);
    if (!decision.winner) {
      const details = describeCandidates(decision);
      await events.record(
        consumer,
        'Warning',
        'NoMatchingProvider',
        `${problem}; the object stays where it is: no other provider matches${details ? `: ${details}` : ''}`,
      );
      return false;
    }
    const { winner } = decision;
    const gvk = this.#gvk;
    const to = {
      gvk,
      providerCluster: winner.providerCluster,
      acceptAPIName: winner.acceptAPIName,
      apiExportName: winner.apiExportName,
    };
    // The Migration is written first: it references both staging workspaces, so neither is collected midway.
    await coordination.migrations.client.createIfAbsent(
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
    await coordination.assignments.client.update(
      { ...assignment, spec: { ...assignment.spec, providerCluster: winner.providerCluster, acceptAPIName: winner.acceptAPIName } },
      signal,
    );
    this.#specWritten.add(assignment.metadata.uid ?? assignment.metadata.name ?? '');
    await events.record(
      consumer,
      'Normal',
      'MigrationStarted',
      `${problem}; moving to provider ${winner.providerCluster} (AcceptAPI ${winner.acceptAPIName}), make-before-break`,
    );
    this.#o.logger.info({ consumer: encodeKey(key), from: from.providerCluster, to: winner.providerCluster, problem }, 'migration started');
    return true;
  }

  /**
   * Make-before-break: the destination copy gets the spec while the consumer keeps the origin's
   * status and related resources (the origin copy gets no writes); the MigrationConfiguration's
   * stages run; once the destination reports Available the Assignment is repointed, then the
   * origin copy, the stage objects and the Migration go.
   */
  async advance(
    key: ObjectKey,
    consumer: KubeObject,
    assignment: Assignment,
    migration: Migration,
    steps: SyncSteps,
    signal: AbortSignal,
  ): Promise<ReconcileResult> {
    if (migration.status?.state === 'Failed') return this.#afterFailure(key, consumer, assignment, migration, steps, signal);
    const { coordination, stages, events, logger } = this.#o;
    const { to } = migration.spec;
    const repointed = assignment.spec.providerCluster === to.providerCluster && assignment.spec.acceptAPIName === to.acceptAPIName;
    if (!repointed && !this.#specWritten.has(assignment.metadata.uid ?? assignment.metadata.name ?? '')) {
      // startIfNeeded writes the Migration, then this: a crash or lost reply in between leaves it
      // to here. The spec names where the object is going; the status where it is served.
      try {
        await coordination.assignments.client.update(
          { ...assignment, spec: { ...assignment.spec, providerCluster: to.providerCluster, acceptAPIName: to.acceptAPIName } },
          signal,
        );
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
      return; // the Assignment's event brings the next step
    }
    const destName = migration.spec.stagingWorkspace;
    const cutOver = assignment.status?.stagingWorkspace === destName;
    const { cluster: origin, copy: originCopy } = steps.copyIn(migration.spec.fromStagingWorkspace, key);
    if (!cutOver && origin && originCopy && !(await steps.syncUp(key, consumer, originCopy, origin, signal))) return;
    const dest = await steps.ensureStagingWorkspace(
      destName,
      { consumerCluster: key.cluster, providerCluster: migration.spec.to.providerCluster, apiExportName: migration.spec.to.apiExportName },
      signal,
    );
    const destCluster = dest?.status?.phase === 'Ready' ? dest.status.clusterName : undefined;
    if (!destCluster) return; // its Ready event requeues us
    const destCopy = await steps.syncDown(key, consumer, destCluster, signal);
    if (!destCopy) return;
    if (!cutOver) {
      const step = await stages.advance(
        {
          migration,
          from: originCopy ?? { metadata: {} },
          to: destCopy,
          related: {
            from: origin && originCopy ? steps.relatedSources(originCopy, origin) : [],
            to: steps.relatedSources(destCopy, destCluster),
          },
        },
        signal,
      );
      if (step.next === 'wait') return step.requeueAfterMs === undefined ? undefined : { requeueAfterMs: step.requeueAfterMs };
      if (step.next === 'fail') return this.#fail(consumer, migration, step, signal);
      if ((destCopy['status'] as { status?: string } | undefined)?.status !== 'Available') return; // its status event requeues us
      const { from } = migration.spec;
      await coordination.assignments.client.updateStatus(
        {
          ...assignment,
          status: {
            ...assignment.status,
            providerCluster: to.providerCluster,
            acceptAPIName: to.acceptAPIName,
            apiExportName: to.apiExportName,
            stagingWorkspace: destName,
            phase: 'Bound',
            // The placement record says who serves the object now, and why: the first placement's candidates are history.
            placement: {
              winner: `${to.acceptAPIName} (${to.providerCluster})`,
              reason: `migrated from ${from.acceptAPIName} (${from.providerCluster}) by ${migration.metadata.name ?? ''}`,
              candidates: [],
            },
            conditions: setCondition(assignment.status?.conditions, {
              type: 'Ready',
              status: 'True',
              reason: 'Migrated',
              message: `staging copy in ${destCluster}, migrated from ${from.providerCluster}`,
            }),
          },
        },
        signal,
      );
      return; // the Assignment's event brings the rest
    }
    if (!(await steps.syncUp(key, consumer, destCopy, destCluster, signal))) return;
    if (migration.status?.state !== 'CutoverCompleted') {
      await writeMigrationStatus(
        coordination.migrations.client,
        migration,
        {
          state: 'CutoverCompleted',
          conditions: [{ type: 'CutoverCompleted', status: 'True', reason: 'Served', message: `served from ${destCluster}` }],
        },
        signal,
      );
      return;
    }
    if (origin && originCopy) {
      await steps.removeCopy(key, origin, signal);
      return { requeueAfterMs: 5_000 }; // its DELETED event requeues us sooner
    }
    await stages.cleanup(migration, signal);
    await coordination.migrations.client.delete({ name: migration.metadata.name ?? '' }, signal);
    this.#o.releaseStagingWorkspace(migration.spec.fromStagingWorkspace);
    await events.record(
      consumer,
      'Normal',
      'MigrationCompleted',
      `now served by provider ${migration.spec.to.providerCluster} (AcceptAPI ${migration.spec.to.acceptAPIName})`,
    );
    logger.info({ consumer: encodeKey(key), to: migration.spec.to.providerCluster }, 'migration completed');
    return;
  }

  /** Records the failure first (so a restart carries on rolling back), then says so on the consumer object. */
  async #fail(
    consumer: KubeObject,
    migration: Migration,
    failure: { reason: string; message: string },
    signal: AbortSignal,
  ): Promise<ReconcileResult> {
    const { coordination, stages, events, logger } = this.#o;
    const configuration = stages.configurationVersion(migration);
    const written = await writeMigrationStatus(
      coordination.migrations.client,
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
    await events.record(
      consumer,
      'Warning',
      'MigrationFailed',
      `${failure.message}; rolled back: the object stays with provider ${migration.spec.from.providerCluster} (AcceptAPI ${migration.spec.from.acceptAPIName})`,
    );
    logger.warn({ migration: migration.metadata.name, reason: failure.reason, message: failure.message }, 'migration failed, rolling back');
    return;
  }

  /**
   * A Failed migration: roll back (stage objects, destination copy, Assignment spec), then keep the
   * object at the origin with its spec frozen there, until the consumer changes the spec or the
   * platform edits (or deletes) the MigrationConfiguration; either starts over.
   */
  async #afterFailure(
    key: ObjectKey,
    consumer: KubeObject,
    assignment: Assignment,
    migration: Migration,
    steps: SyncSteps,
    signal: AbortSignal,
  ): Promise<ReconcileResult> {
    const { coordination, stages, logger } = this.#o;
    const { from } = migration.spec;
    if (!conditionTrue(migration.status?.conditions, 'RolledBack')) {
      await stages.cleanup(migration, signal);
      const dest = coordination.stagingWorkspace(migration.spec.stagingWorkspace)?.status?.clusterName;
      if (dest && (await steps.removeCopy(key, dest, signal))) return { requeueAfterMs: 2_000 }; // its DELETED event requeues us sooner
      if (assignment.spec.providerCluster !== from.providerCluster || assignment.spec.acceptAPIName !== from.acceptAPIName) {
        await coordination.assignments.client.update(
          { ...assignment, spec: { ...assignment.spec, providerCluster: from.providerCluster, acceptAPIName: from.acceptAPIName } },
          signal,
        );
      }
      await writeMigrationStatus(
        coordination.migrations.client,
        migration,
        {
          stageObjects: null,
          conditions: [
            {
              type: 'RolledBack',
              status: 'True',
              reason: 'RolledBack',
              message: `destination copy and stage objects removed; served by ${from.providerCluster}`,
            },
          ],
        },
        signal,
      );
      this.#o.releaseStagingWorkspace(migration.spec.stagingWorkspace);
      return;
    }
    const failedWith = migration.status?.failedConfiguration;
    const configuration = stages.configurationVersion(migration);
    const specChanged = (consumer.metadata.generation ?? 0) !== migration.status?.failedGeneration;
    const configurationChanged = failedWith !== undefined && !isDeepStrictEqual(failedWith, configuration);
    if (specChanged || configurationChanged) {
      await coordination.migrations.client.delete({ name: migration.metadata.name ?? '' }, signal);
      logger.info({ migration: migration.metadata.name, specChanged, configurationChanged }, 'failed migration dropped, starting over');
      return;
    }
    const { cluster: origin, copy: originCopy } = steps.copyIn(migration.spec.fromStagingWorkspace, key);
    if (origin && originCopy) await steps.syncUp(key, consumer, originCopy, origin, signal);
    return;
  }
}
