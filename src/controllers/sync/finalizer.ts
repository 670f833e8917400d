import type { Assignment } from '../../apis/types.ts';
import type { Coordination } from '../../coordination/coordination.ts';
import { isConflict } from '../../kcp-client-ts/errors.ts';
import type { KubeObject } from '../../kcp-client-ts/types.ts';
import type { ObjectKey } from '../../runtime/object-key.ts';
import type { ReconcileResult } from '../../runtime/workqueue.ts';
import type { Migrator, SyncSteps } from '../migration/migrator.ts';

/**
 * The annotation on an Assignment (coordination workspace: only the platform writes there) that
 * lets the broker remove the finalizers of a provider copy that holds up a deletion. Not on the
 * consumer object: a consumer must not be able to skip a provider's clean-up.
 */
export const ORPHAN_ANNOTATION = 'broker.platform-mesh.io/orphan-provider-copy';

/** How long a provider copy may stay Terminating before the consumer is told who holds it. */
const BLOCKED_AFTER_MS = 10_000;

export type FinalizeDependencies = {
  coordination: Coordination;
  migrator: Pick<Migrator, 'migrationOf' | 'abandon'>;
  steps: Pick<SyncSteps, 'removeCopy' | 'copyIn'>;
  /** Removes the finalizers from a staging copy being deleted (the platform let go of it). */
  releaseCopy(key: ObjectKey, cluster: string, signal: AbortSignal): Promise<void>;
  /** Tells the consumer (an Event and a condition on its object) what holds the deletion up. */
  reportBlocked(consumer: KubeObject, message: string, signal: AbortSignal): Promise<void>;
  now?: () => number;
  /** Deletes the object's related copies in the consumer workspace; how many were still there. */
  removeRelatedCopies(signal: AbortSignal): Promise<number>;
  /** Removes the broker's finalizer from the consumer object. */
  removeFinalizer(consumer: KubeObject, signal: AbortSignal): Promise<void>;
  releaseStagingWorkspace(name: string): void;
};

/**
 * Ordered deletion of one consumer object: its related copies, its staging copies (waiting
 * until they are gone: the provider finalizes them), its Migration and what that deployed, its
 * Assignment, and last the finalizer. Each step is idempotent and the order means a crash after
 * any of them leaves a record that brings the rest: the finalizer (or, when the consumer object
 * was forced away, the Assignment) stays until everything before it is gone.
 */
export const finalizeObject = async (
  deps: FinalizeDependencies,
  target: { key: ObjectKey; consumer: KubeObject | undefined; assignment: Assignment | undefined },
  signal: AbortSignal,
): Promise<ReconcileResult> => {
  const { key, consumer, assignment } = target;
  if (assignment) {
    if ((await deps.removeRelatedCopies(signal)) > 0) return { requeueAfterMs: 2_000 };
    const migration = deps.migrator.migrationOf(assignment);
    const stagingNames = new Set(
      [assignment.status?.stagingWorkspace, migration?.spec.fromStagingWorkspace, migration?.spec.stagingWorkspace].filter(
        (n): n is string => !!n,
      ),
    );
    let waiting = false;
    const held: string[] = [];
    const letGo = assignment.metadata.annotations?.[ORPHAN_ANNOTATION] === 'true';
    for (const name of stagingNames) {
      const sw = deps.coordination.stagingWorkspace(name);
      const cluster = sw?.status?.clusterName;
      if (!cluster || !(await deps.steps.removeCopy(key, cluster, signal))) continue;
      waiting = true;
      const { copy } = deps.steps.copyIn(name, key);
      const since = Date.parse(copy?.metadata.deletionTimestamp ?? '');
      const finalizers = copy?.metadata.finalizers ?? [];
      if (Number.isNaN(since) || finalizers.length === 0) continue;
      if ((deps.now ?? Date.now)() - since <= BLOCKED_AFTER_MS) continue;
      if (letGo) await deps.releaseCopy(key, cluster, signal);
      else
        held.push(
          `the copy at provider ${sw.spec.providerCluster} (staging workspace ${name}) is held by finalizers ${finalizers.join(', ')}`,
        );
    }
    if (consumer && held.length > 0) {
      await deps.reportBlocked(
        consumer,
        `deletion waits for the provider: ${held.join('; ')}; a platform admin can let go by annotating Assignment ${assignment.metadata.name} (coordination workspace) with ${ORPHAN_ANNOTATION}=true`,
        signal,
      );
    }
    if (waiting) return { requeueAfterMs: 5_000 }; // DELETED events requeue us sooner
    if (migration) await deps.migrator.abandon(migration, signal);
    try {
      await deps.coordination.assignments.client.delete({ name: assignment.metadata.name ?? '' }, signal, { uid: assignment.metadata.uid });
    } catch (err) {
      // Replaced by a newer Assignment meanwhile: that one is the next reconcile's.
      if (!isConflict(err)) throw err;
    }
    for (const name of stagingNames) deps.releaseStagingWorkspace(name);
  }
  if (consumer) {
    await deps.removeFinalizer(consumer, signal);
  }
  return;
};
