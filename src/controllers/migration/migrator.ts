// Over 350 lines on purpose: start, advance, cutover, failure and rollback are one state
// machine over the Migration's recorded state; apart, the order of their writes would be hidden.
import { isDeepStrictEqual } from 'node:util';
import { conditionTrue, setCondition } from '../../apis/conditions.ts';
import { migrationNameOf, MOVE_TO_ANNOTATION, MOVED_AT_ANNOTATION, stagingWorkspaceName } from '../../apis/names.ts';
import type { AcceptAPI, Assignment, GroupVersionKind, Migration, StagingWorkspace } from '../../apis/types.ts';
import type { Coordination } from '../../coordination/coordination.ts';
import { isConflict } from '../../kcp-client-ts/errors.ts';
import { clusterOf, gvrString, type GroupVersionResource, type KubeObject } from '../../kcp-client-ts/types.ts';
import type { Logger } from '../../logging.ts';
import type { EventSink } from '../../runtime/events.ts';
import { encodeKey, type ObjectKey } from '../../runtime/object-key.ts';
import type { ObjectStore } from '../../runtime/store.ts';
import type { ReconcileResult } from '../../runtime/workqueue.ts';
import { evaluateFilters } from '../acceptapi/filters.ts';
import type { Placer } from '../placement/assign.ts';
import { acceptAPIKey, describeCandidates, type PlacementDecision } from '../placement/placement.ts';
import type { RelatedSource } from '../related/mirror.ts';
import { RecentKeys } from '../../runtime/recent-keys.ts';
import type { MigrationBudget } from './budget.ts';
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
  /** Paces the moves the platform starts (drain, capacity, requested moves); unpaced when absent. */
  budget?: MigrationBudget;
  /** Opt-in: objects move from the most loaded providers to less loaded ones, paced by the budget. */
  rebalance?: RebalancePolicy;
  now?: () => number;
};

/**
 * When rebalancing moves objects: while a provider serves more than `tolerance` objects above
 * another provider that could take them (same priority, Ready, neither cordoned nor draining nor
 * full), counting moves in flight as done. An object moved less than `intervalMs` ago stays.
 */
export type RebalancePolicy = { tolerance: number; intervalMs: number };

/** Why an object should move, whether the move is paced by the budget, and where it may go. */
type MoveReason = {
  problem: string;
  paced: boolean;
  only?: { providerCluster?: string; acceptAPIName: string };
  /** A move request that names where the object already is: only the annotation goes. */
  done?: boolean;
  /** A move request that names no AcceptAPI: refused as it is. */
  malformed?: boolean;
  /** Rebalancing: only worth it if the destination placement picks is less loaded by more than the tolerance. */
  rebalance?: { providerLoad: number; priority: number };
};

type MoveEndpoint = { providerCluster: string; acceptAPIName: string };

/**
 * The Assignment repointed at a move's destination. The move request is done once the move
 * starts: removed in the same write, which also records when the object moved (rebalancing leaves
 * it alone for a while after). Written by startIfNeeded, or by advance after a crash in between.
 */
const movedTo = (assignment: Assignment, to: MoveEndpoint, movedAt: string | number): Assignment => {
  const { [MOVE_TO_ANNOTATION]: _done, ...annotations } = assignment.metadata.annotations ?? {};
  return {
    ...assignment,
    metadata: { ...assignment.metadata, annotations: { ...annotations, [MOVED_AT_ANNOTATION]: new Date(movedAt).toISOString() } },
    spec: { ...assignment.spec, providerCluster: to.providerCluster, acceptAPIName: to.acceptAPIName },
  };
};

/** `<name>` or `<provider cluster>/<name>`; undefined for anything else. */
export const parseMoveTarget = (value: string): { providerCluster?: string; acceptAPIName: string } | undefined => {
  const match = /^(?:([a-z0-9][a-z0-9-]{0,62})\/)?([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?)$/.exec(value);
  if (!match) return undefined;
  return match[1] ? { providerCluster: match[1], acceptAPIName: match[2]! } : { acceptAPIName: match[2]! };
};

/**
 * What `startIfNeeded` did: nothing to do, a Migration started, or a move the platform asked for
 * waits: for the budget (`waiting`, looked at again soon) or for somewhere to go (`stuck`:
 * refused or no provider; looked at again now and then, and on AcceptAPI changes).
 */
export type StartOutcome = 'none' | 'started' | 'waiting' | 'deferred' | 'stuck';

/**
 * How soon an object waiting for the migration budget (a drain, capacity or requested move:
 * `waiting`; a rebalancing move, in no hurry: `deferred`), or with nowhere to go, looks again.
 */
export const RETRY_AFTER_MS: Record<'waiting' | 'deferred' | 'stuck', number> = { waiting: 2_000, deferred: 15_000, stuck: 30_000 };

/** How long an AcceptAPI must have been Ready before rebalancing sends it objects: a minute, or the interval if shorter. */
export const rebalanceSettleMs = (policy: RebalancePolicy): number => Math.min(60_000, policy.intervalMs);

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
    // A tolerance of 0 would move objects back and forth between two providers one apart.
    if (options.rebalance && !(Number.isInteger(options.rebalance.tolerance) && options.rebalance.tolerance >= 1))
      throw new Error(`rebalance tolerance must be a whole number >= 1, not ${options.rebalance.tolerance}`);
    this.#o = options;
    this.#gvrKey = gvrString(options.gvr);
    this.#gvk = { group: options.gvr.group, version: options.gvr.version, kind: options.kind };
  }

  /** Rebalancing's settings, when it is on: then any AcceptAPI change may move objects served by others. */
  get rebalancePolicy(): RebalancePolicy | undefined {
    return this.#o.rebalance;
  }

  /** The object's Migration, as cached. */
  migrationOf(assignment: Assignment): Migration | undefined {
    return this.#o.coordination.migration(migrationNameOf(assignment));
  }

  /** Ends a migration whose object is being deleted: what its stages deployed, then the Migration. */
  async abandon(migration: Migration, signal: AbortSignal): Promise<void> {
    await this.#o.stages.cleanup(migration, signal);
    await this.#o.coordination.migrations.client.delete({ name: migration.metadata.name ?? '' }, signal);
    this.#ended(migration);
  }

  /** A Migration this process deleted no longer counts, even if the cache never showed it. */
  #ended(migration: Migration): void {
    const name = migration.metadata.name ?? '';
    this.#o.budget?.release(name);
    this.#o.placer.load.abandoned(name);
  }

  /**
   * Why an object should move; undefined while it stays. Its AcceptAPI can no longer serve it
   * (deleted, not Ready, another resource, no longer matching: not paced), or the platform moves
   * it (draining, over capacity, a requested move: paced by the budget).
   */
  #moveReason(consumer: KubeObject, assignment: Assignment, options: { ignoreRequest?: boolean } = {}): MoveReason | undefined {
    const { acceptAPIs } = this.#o;
    const provider = assignment.status?.providerCluster;
    const name = assignment.status?.acceptAPIName;
    if (!acceptAPIs.synced || !provider || !name) return undefined;
    const acceptAPI = acceptAPIs.store.get({ cluster: provider, namespace: '', name });
    const unpaced = (problem: string): MoveReason => ({ problem, paced: false });
    if (!acceptAPI || acceptAPI.metadata.deletionTimestamp) return unpaced(`AcceptAPI ${name} of ${provider} was deleted`);
    if (!conditionTrue(acceptAPI.status?.conditions, 'Ready')) return unpaced(`AcceptAPI ${name} of ${provider} is not Ready`);
    if (gvrString(acceptAPI.spec.gvr) !== this.#gvrKey)
      return unpaced(`AcceptAPI ${name} of ${provider} no longer accepts ${this.#gvrKey}`);
    const verdict = evaluateFilters(acceptAPI.spec.filters, consumer['spec']);
    if (!verdict.pass) return unpaced(`AcceptAPI ${name} of ${provider} no longer matches: ${verdict.reason}`);
    const requested = options.ignoreRequest ? undefined : assignment.metadata.annotations?.[MOVE_TO_ANNOTATION];
    if (requested) {
      const only = parseMoveTarget(requested);
      if (!only)
        return {
          problem: `${MOVE_TO_ANNOTATION} "${requested}" is not <AcceptAPI name> or <provider cluster>/<name>`,
          paced: true,
          only: { acceptAPIName: '' },
          malformed: true,
        };
      // Already there (the request was done, or named where the object is): nothing to move.
      if (only.acceptAPIName === name && (!only.providerCluster || only.providerCluster === provider))
        return { problem: 'the requested move is done', paced: false, done: true };
      return { problem: `a platform admin asked to move it to AcceptAPI ${requested} (${MOVE_TO_ANNOTATION})`, paced: true, only };
    }
    if (acceptAPI.spec.draining) return { problem: `AcceptAPI ${name} of ${provider} is draining`, paced: true };
    const { capacity } = acceptAPI.spec;
    if (typeof capacity === 'number') {
      const rank = this.#rankIn(assignment, provider, name);
      if (rank >= capacity)
        return {
          problem: `AcceptAPI ${name} of ${provider} is over its capacity of ${capacity}: its newest objects move`,
          paced: true,
        };
    }
    return this.#rebalanceReason(assignment, acceptAPI, provider);
  }

  /**
   * Rebalancing (opt-in): the object's provider serves more than the tolerance above the least
   * loaded provider that could take objects now. A cheap first test over the AcceptAPIs; whether
   * this object can go there is placement's answer (#rebalanceDecision).
   */
  #rebalanceReason(assignment: Assignment, acceptAPI: AcceptAPI, provider: string): MoveReason | undefined {
    const policy = this.#o.rebalance;
    if (!policy) return undefined;
    const movedAt = Date.parse(assignment.metadata.annotations?.[MOVED_AT_ANNOTATION] ?? '');
    if (Number.isFinite(movedAt) && this.#now() - movedAt < policy.intervalMs) return undefined;
    const priority = acceptAPI.spec.priority ?? 0;
    const load = this.#o.placer.load.projectedByProvider();
    const here = load.get(provider) ?? 0;
    const least = this.#leastLoadedTaker(load, provider, priority);
    if (least === undefined || here - least <= policy.tolerance) return undefined;
    return {
      problem: `rebalancing: provider ${provider} serves ${here} objects, another provider ${least} (tolerance ${policy.tolerance})`,
      paced: true,
      rebalance: { providerLoad: here, priority },
    };
  }

  /** The projected load of the least loaded other provider that may take objects by rebalancing now. */
  #leastLoadedTaker(load: ReadonlyMap<string, number>, provider: string, priority: number | undefined): number | undefined {
    let least: number | undefined;
    for (const other of this.#o.acceptAPIs.store.list()) {
      const cluster = clusterOf(other);
      if (cluster === provider || (priority !== undefined && (other.spec.priority ?? 0) !== priority)) continue;
      if (!this.#takesRebalancedLoad(other)) continue;
      const there = load.get(cluster) ?? 0;
      least = least === undefined ? there : Math.min(least, there);
    }
    return least;
  }

  /**
   * Whether an AcceptAPI may receive objects by rebalancing: this resource, not being deleted,
   * cordoned, draining or full, and Ready for a while. A provider whose Ready flaps would otherwise
   * pull a fresh share of other providers' objects each time it comes back.
   */
  #takesRebalancedLoad(acceptAPI: AcceptAPI): boolean {
    const policy = this.#o.rebalance;
    if (!policy || gvrString(acceptAPI.spec.gvr) !== this.#gvrKey) return false;
    if (acceptAPI.metadata.deletionTimestamp || acceptAPI.spec.cordoned || acceptAPI.spec.draining) return false;
    const ready = acceptAPI.status?.conditions?.find((c) => c.type === 'Ready');
    if (ready?.status !== 'True') return false;
    const since = Date.parse(ready.lastTransitionTime ?? '');
    if (Number.isFinite(since) && this.#now() - since < rebalanceSettleMs(policy)) return false;
    const { capacity } = acceptAPI.spec;
    if (typeof capacity !== 'number') return true;
    return (this.#o.placer.load.byAcceptAPI().get(acceptAPIKey(clusterOf(acceptAPI), acceptAPI.metadata.name ?? '')) ?? 0) < capacity;
  }

  /**
   * Where a rebalancing move would go: placement over the AcceptAPIs of the same priority that take
   * rebalanced load, ranked by the same projected loads the reason was judged by; undefined unless
   * that evens the load out (then the object stays, quietly: nothing is wrong where it is).
   */
  #rebalanceDecision(key: ObjectKey, spec: unknown, from: MoveEndpoint, reason: MoveReason): PlacementDecision | undefined {
    const policy = this.#o.rebalance;
    if (!policy || !reason.rebalance) return undefined;
    const { priority, providerLoad } = reason.rebalance;
    const loads = this.#o.placer.load.projectedByProvider();
    const decision = this.#o.placer.decide(key, spec, from, undefined, {
      loads,
      acceptable: (a) => (a.spec.priority ?? 0) === priority && this.#takesRebalancedLoad(a),
    });
    if (!decision.winner) return undefined;
    return providerLoad - (loads.get(decision.winner.providerCluster) ?? 0) > policy.tolerance ? decision : undefined;
  }

  /**
   * AcceptAPIs (`acceptAPIKey`) whose provider serves more than the tolerance above another of the
   * same priority that could take objects by rebalancing: the sweep's targets. (Whether each
   * object passes the taker's filters is its own reconcile's question.)
   */
  overloadedAcceptAPIs(): Set<string> {
    const policy = this.#o.rebalance;
    const overloaded = new Set<string>();
    if (!policy) return overloaded;
    const load = this.#o.placer.load.projectedByProvider();
    for (const acceptAPI of this.#o.acceptAPIs.store.list()) {
      if (gvrString(acceptAPI.spec.gvr) !== this.#gvrKey) continue;
      const provider = clusterOf(acceptAPI);
      const least = this.#leastLoadedTaker(load, provider, acceptAPI.spec.priority ?? 0);
      if (least !== undefined && (load.get(provider) ?? 0) - least > policy.tolerance)
        overloaded.add(acceptAPIKey(provider, acceptAPI.metadata.name ?? ''));
    }
    return overloaded;
  }

  #now(): number {
    return (this.#o.now ?? Date.now)();
  }

  /** Where an Assignment stands among its AcceptAPI's by age (0: the oldest): the newest beyond capacity move. */
  #rankIn(assignment: Assignment, provider: string, name: string): number {
    const age = (a: Assignment): string => `${a.metadata.creationTimestamp ?? ''}\u0000${a.metadata.name ?? ''}`;
    const mine = age(assignment);
    let older = 0;
    for (const a of this.#o.coordination.assignmentsServedBy(provider, name))
      if (gvrString(a.spec.gvr) === this.#gvrKey && age(a) < mine) older++;
    return older;
  }

  /**
   * Starts a migration when the object should move and can: 'started' once the Migration is
   * written; 'waiting' when a paced move waits for the budget or has nowhere to go (the caller
   * serves the object where it is and looks again later).
   */
  async startIfNeeded(key: ObjectKey, consumer: KubeObject, assignment: Assignment, signal: AbortSignal): Promise<StartOutcome> {
    let reason = this.#moveReason(consumer, assignment);
    if (reason?.done) {
      await this.#clearMoveRequest(assignment, signal);
      return 'none';
    }
    if (!reason) {
      // A refusal said earlier goes once no request is left.
      if (assignment.status?.conditions?.some((c) => c.type === 'MoveRequested'))
        await this.#setMoveCondition(assignment, undefined, signal);
      return 'none';
    }
    const { coordination, placer, events, budget } = this.#o;
    const from = { providerCluster: assignment.status!.providerCluster!, acceptAPIName: assignment.status!.acceptAPIName! };
    const name = migrationNameOf(assignment);
    // Rebalancing is no complaint about where the object is: with nowhere that evens the load out
    // it stays, quietly, and does not wait for the budget either.
    let decision = reason.rebalance ? this.#rebalanceDecision(key, consumer['spec'], from, reason) : undefined;
    if (reason.rebalance && !decision) {
      // As with no reason at all: a refusal said earlier goes once no request is left.
      if (assignment.status?.conditions?.some((c) => c.type === 'MoveRequested'))
        await this.#setMoveCondition(assignment, undefined, signal);
      return 'none';
    }
    // The budget next: an object waiting for it costs no placement scan. Rebalancing is in no
    // hurry: it looks again later than a drain does.
    const waiting: StartOutcome = reason.rebalance ? 'deferred' : 'waiting';
    if (reason.paced && budget) {
      const room = budget.room(from.providerCluster);
      if (!room.ok) return waiting;
    }
    if (!decision && !reason.malformed) decision = placer.decide(key, consumer['spec'], from, reason.only);
    if (reason.only && !decision?.winner) {
      const details = decision ? describeCandidates(decision) : '';
      const message = `${reason.problem}; refused: ${reason.malformed ? 'fix the annotation' : `the AcceptAPI named does not accept it${details ? `: ${details}` : ''}`}`;
      await events.record(consumer, 'Warning', 'MoveRefused', message);
      await this.#setMoveCondition(assignment, message, signal);
      // A refused request does not hold the object where the platform would otherwise move it.
      reason = this.#moveReason(consumer, assignment, { ignoreRequest: true });
      if (!reason) return 'stuck';
      decision = reason.rebalance
        ? this.#rebalanceDecision(key, consumer['spec'], from, reason)
        : placer.decide(key, consumer['spec'], from);
      if (!decision) return 'stuck';
    }
    decision ??= placer.decide(key, consumer['spec'], from);
    const { problem } = reason;
    if (!decision.winner) {
      const details = describeCandidates(decision);
      await events.record(
        consumer,
        'Warning',
        'NoMatchingProvider',
        `${problem}; the object stays where it is: no other provider matches${details ? `: ${details}` : ''}`,
      );
      return reason.paced ? 'stuck' : 'none';
    }
    if (reason.paced && budget) {
      const admission = budget.admit(name, from.providerCluster, decision.winner.providerCluster);
      if (!admission.admitted) return reason.rebalance ? 'deferred' : 'waiting';
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
    placer.load.placing(name, winner.providerCluster, winner.acceptAPIName, from.providerCluster);
    await coordination.migrations.client
      .createIfAbsent(
        {
          apiVersion: 'coord.broker.platform-mesh.io/v1alpha1',
          kind: 'Migration',
          metadata: { name },
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
      )
      .catch((err: unknown) => {
        // Not created: neither the budget nor the destination's load counts it.
        budget?.release(name);
        placer.load.abandoned(name);
        throw err;
      });
    const repointed = await coordination.assignments.client.update(movedTo(assignment, winner, this.#now()), signal);
    if (repointed.status?.conditions?.some((c) => c.type === 'MoveRequested')) await this.#setMoveCondition(repointed, undefined, signal);
    this.#specWritten.add(assignment.metadata.uid ?? assignment.metadata.name ?? '');
    await events.record(
      consumer,
      'Normal',
      'MigrationStarted',
      `${problem}; moving to provider ${winner.providerCluster} (AcceptAPI ${winner.acceptAPIName}), make-before-break`,
    );
    this.#o.logger.info({ consumer: encodeKey(key), from: from.providerCluster, to: winner.providerCluster, problem }, 'migration started');
    return 'started';
  }

  /** Sets (a refusal's message) or removes (undefined) the Assignment's MoveRequested condition. */
  async #setMoveCondition(assignment: Assignment, refusal: string | undefined, signal: AbortSignal): Promise<void> {
    const others = (assignment.status?.conditions ?? []).filter((c) => c.type !== 'MoveRequested');
    const conditions = refusal
      ? setCondition(assignment.status?.conditions, { type: 'MoveRequested', status: 'False', reason: 'Refused', message: refusal })
      : others;
    if (isDeepStrictEqual(conditions, assignment.status?.conditions)) return;
    try {
      await this.#o.coordination.assignments.client.updateStatus({ ...assignment, status: { ...assignment.status, conditions } }, signal);
    } catch (err) {
      if (!isConflict(err)) throw err; // a newer Assignment: the next reconcile says it again
    }
  }

  /** Removes a move request that is done (the object is where it asks), and its condition. */
  async #clearMoveRequest(assignment: Assignment, signal: AbortSignal): Promise<void> {
    const { [MOVE_TO_ANNOTATION]: _done, ...annotations } = assignment.metadata.annotations ?? {};
    try {
      const updated = await this.#o.coordination.assignments.client.update(
        { ...assignment, metadata: { ...assignment.metadata, annotations } },
        signal,
      );
      await this.#setMoveCondition(updated, undefined, signal);
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
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
        await coordination.assignments.client.update(movedTo(assignment, to, migration.metadata.creationTimestamp ?? this.#now()), signal);
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
    this.#ended(migration);
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
      this.#ended(migration);
      logger.info({ migration: migration.metadata.name, specChanged, configurationChanged }, 'failed migration dropped, starting over');
      return;
    }
    const { cluster: origin, copy: originCopy } = steps.copyIn(migration.spec.fromStagingWorkspace, key);
    if (origin && originCopy) await steps.syncUp(key, consumer, originCopy, origin, signal);
    return;
  }
}
