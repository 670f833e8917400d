import { isDeepStrictEqual } from 'node:util';
import { setCondition } from '../../apis/conditions.ts';
import type { Condition, ConfigurationVersion, Migration, MigrationState, StageObjectRef } from '../../apis/types.ts';
import { isConflict } from '../../kcp-client-ts/errors.ts';
import type { ObjectClient } from '../../kcp-client-ts/resources.ts';

export type MigrationStatusChange = {
  state?: MigrationState;
  /** null clears the field. */
  stage?: string | null;
  stageStartTime?: string | null;
  configuration?: string | null;
  stageObjects?: StageObjectRef[] | null;
  failedGeneration?: number;
  failedConfiguration?: ConfigurationVersion;
  conditions?: Omit<Condition, 'lastTransitionTime'>[];
};

const withChange = (status: NonNullable<Migration['status']>, change: MigrationStatusChange): NonNullable<Migration['status']> => {
  const next: NonNullable<Migration['status']> = { ...status };
  for (const field of ['stage', 'stageStartTime', 'configuration'] as const) {
    const value = change[field];
    if (value === null) delete next[field];
    else if (value !== undefined) next[field] = value;
  }
  if (change.stageObjects === null) delete next.stageObjects;
  else if (change.stageObjects !== undefined) next.stageObjects = change.stageObjects;
  if (change.state) next.state = change.state;
  if (change.failedGeneration !== undefined) next.failedGeneration = change.failedGeneration;
  if (change.failedConfiguration !== undefined) next.failedConfiguration = change.failedConfiguration;
  let conditions = status.conditions;
  for (const c of change.conditions ?? []) conditions = setCondition(conditions, c);
  const state = next.state ?? 'Pending';
  conditions = setCondition(conditions, {
    type: 'Ready',
    status: state === 'CutoverCompleted' ? 'True' : 'False',
    reason: state,
    message:
      state === 'Failed'
        ? 'rolled back: the object stays at the origin'
        : state === 'CutoverCompleted'
          ? 'served by the destination'
          : 'in progress',
  });
  next.conditions = conditions;
  return next;
};

/**
 * Writes a Migration's status when the change alters it (a waiting stage re-evaluated every few
 * seconds writes nothing). Returns the Migration as it now is, or undefined after a conflict, which
 * is left to the next reconcile (the update event brings it).
 */
export const writeMigrationStatus = async (
  client: Pick<ObjectClient<Migration>, 'updateStatus'>,
  migration: Migration,
  change: MigrationStatusChange,
  signal: AbortSignal,
): Promise<Migration | undefined> => {
  const current = migration.status ?? {};
  const next = withChange(current, change);
  if (isDeepStrictEqual(next, current)) return migration;
  try {
    return await client.updateStatus({ ...migration, status: next }, signal);
  } catch (err) {
    if (isConflict(err)) return undefined;
    throw err;
  }
};
