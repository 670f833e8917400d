import type { Assignment } from '../../apis/types.ts';
import type { Coordination } from '../../coordination/coordination.ts';
import { isConflict } from '../../kcp-client-ts/errors.ts';
import type { KubeObject } from '../../kcp-client-ts/types.ts';
import type { ObjectKey } from '../../runtime/object-key.ts';
import type { ReconcileResult } from '../../runtime/workqueue.ts';
import type { Migrator, SyncSteps } from '../migration/migrator.ts';

export type FinalizeDependencies = {
  coordination: Coordination;
  migrator: Pick<Migrator, 'migrationOf' | 'abandon'>;
  steps: Pick<SyncSteps, 'removeCopy'>;
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
    for (const name of stagingNames) {
      const cluster = deps.coordination.stagingWorkspace(name)?.status?.clusterName;
      if (cluster && (await deps.steps.removeCopy(key, cluster, signal))) waiting = true;
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
