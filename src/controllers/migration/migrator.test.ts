import { beforeEach, describe, expect, it } from 'vitest';
import { formatWrite } from '../../../test/fakes/memory-api.ts';
import { COORD, CONSUMER, SyncWorld, WIDGETS, clusterOfStagingWorkspace } from '../../../test/fakes/sync-world.ts';
import { conditionTrue } from '../../apis/conditions.ts';
import { assignmentName, stagingWorkspaceName } from '../../apis/names.ts';
import { MIGRATIONCONFIGURATION_GVR, type MigrationConfiguration, type MigrationStage } from '../../apis/types.ts';
import { CONFIGMAPS, type KubeObject } from '../../kcp-client-ts/types.ts';
import type { ObjectKey } from '../../runtime/object-key.ts';

const ASSIGNMENT = assignmentName(CONSUMER, WIDGETS, 'default', 'w1');
const MIGRATION = ASSIGNMENT.replace('assignment-', 'migration-');
const ORIGIN = stagingWorkspaceName(CONSUMER, 'provider-a', 'export-a');
const DEST = stagingWorkspaceName(CONSUMER, 'provider-b', 'export-b');
const WS_A = clusterOfStagingWorkspace(ORIGIN);
const WS_B = clusterOfStagingWorkspace(DEST);
const GVK = { group: WIDGETS.group, version: WIDGETS.version, kind: 'Widget' };

/** Providers answer with who serves the copy; the destination reports `destination` (Provisioning at first). */
const providers = (world: SyncWorld, destination: { status: string }) => {
  world.provider = (_copy: KubeObject, cluster: string) =>
    cluster === WS_B ? { ...destination, servedBy: 'b' } : { status: 'Available', servedBy: 'a' };
};

/** Served by provider-a; then provider-b appears and provider-a's AcceptAPI stops being Ready. */
const servedThenMoved = async (world: SyncWorld, key: ObjectKey): Promise<number> => {
  world.acceptAPI('provider-a', 'widgets-a', 'export-a');
  await world.settle(key);
  world.acceptAPI('provider-b', 'widgets-b', 'export-b');
  world.acceptAPI('provider-a', 'widgets-a', 'export-a', { ready: false });
  return world.api.writes.length;
};

const configuration = (stages: MigrationStage[]): MigrationConfiguration => ({
  metadata: { name: 'widgets' },
  spec: { from: GVK, to: GVK, stages },
});

describe('Migrator', () => {
  let world: SyncWorld;
  let key: ObjectKey;
  beforeEach(() => {
    world = new SyncWorld();
    key = world.createWidget('default', 'w1', { size: 2 });
  });

  it('creates the Migration before repointing the Assignment spec', async () => {
    providers(world, { status: 'Provisioning' });
    const mark = await servedThenMoved(world, key);

    await world.reconcile(key);

    expect(world.api.log().slice(mark)).toEqual([`create ${COORD}/migrations /${MIGRATION}`, `update ${COORD}/assignments /${ASSIGNMENT}`]);
    expect(world.migrations()[0]?.spec).toMatchObject({
      assignment: ASSIGNMENT,
      fromStagingWorkspace: ORIGIN,
      stagingWorkspace: DEST,
      from: { providerCluster: 'provider-a', acceptAPIName: 'widgets-a', apiExportName: 'export-a' },
      to: { providerCluster: 'provider-b', acceptAPIName: 'widgets-b', apiExportName: 'export-b' },
    });
    const [assignment] = world.assignments();
    expect(assignment?.spec).toMatchObject({ providerCluster: 'provider-b', acceptAPIName: 'widgets-b' });
    expect(assignment?.status).toMatchObject({ providerCluster: 'provider-a', stagingWorkspace: ORIGIN }); // still served there
    expect(world.events.of('MigrationStarted')).toHaveLength(1);
  });

  it("keeps the origin's status until the destination is Available, cuts over, then removes the origin copy, then the Migration", async () => {
    const destination = { status: 'Provisioning' };
    providers(world, destination);
    await servedThenMoved(world, key);

    await world.settle(key);
    // Make before break: both copies exist, the consumer still sees the origin.
    expect(world.copyIn(DEST, key)?.['spec']).toEqual({ size: 2 });
    expect(world.copyIn(ORIGIN, key)).toBeDefined();
    expect(world.widget(key)?.['status']).toEqual({ status: 'Available', servedBy: 'a' });
    expect(world.assignments()[0]?.status?.stagingWorkspace).toBe(ORIGIN);
    expect(world.migrations()[0]?.status?.state).toBe('CutoverInProgress'); // no MigrationConfiguration: no stages
    expect(world.api.log({ cluster: CONSUMER, verb: 'updateStatus' }).length).toBe(1); // the first status, from provider-a
    // The origin still serves: its status changes reach the consumer, the destination's do not.
    const origin = world.copyIn(ORIGIN, key)!;
    world.api.put(WS_A, WIDGETS, { ...origin, status: { status: 'Available', servedBy: 'a', renewed: true } });
    const provisioning = world.copyIn(DEST, key)!;
    world.api.put(WS_B, WIDGETS, { ...provisioning, status: { status: 'Provisioning', servedBy: 'b', progress: 50 } });
    await world.settle(key);
    expect(world.widget(key)?.['status']).toEqual({ status: 'Available', servedBy: 'a', renewed: true });

    const copy = world.copyIn(DEST, key)!;
    world.api.put(WS_B, WIDGETS, { ...copy, status: { status: 'Available', servedBy: 'b' } });
    const available = world.api.writes.length;
    await world.settle(key);

    const log = world.api.log().slice(available);
    const cutover = log.indexOf(`updateStatus ${COORD}/assignments /${ASSIGNMENT}`);
    const statusFromB = log.indexOf(`updateStatus ${CONSUMER}/widgets default/w1`);
    const originGone = log.indexOf(`delete ${WS_A}/widgets default/w1`);
    const migrationGone = log.indexOf(`delete ${COORD}/migrations /${MIGRATION}`);
    expect([cutover, statusFromB, originGone, migrationGone].every((i) => i >= 0)).toBe(true);
    expect(cutover).toBeLessThan(statusFromB);
    expect(statusFromB).toBeLessThan(originGone);
    expect(originGone).toBeLessThan(migrationGone);
    expect(world.widget(key)?.['status']).toEqual({ status: 'Available', servedBy: 'b' });
    expect(world.assignments()[0]?.status).toMatchObject({ providerCluster: 'provider-b', stagingWorkspace: DEST, phase: 'Bound' });
    expect(world.copyIn(ORIGIN, key)).toBeUndefined();
    expect(world.migrations()).toEqual([]);
    expect(world.released).toContain(ORIGIN);
    expect(world.events.of('MigrationCompleted')).toHaveLength(1);
  });

  it("records the new placement in the Assignment's status at cutover, not the first winner", async () => {
    const destination = { status: 'Provisioning' };
    providers(world, destination);
    world.acceptAPI('provider-a', 'widgets-a', 'export-a');
    await world.settle(key);
    expect(world.assignments()[0]?.status?.placement).toMatchObject({ winner: 'widgets-a (provider-a)' });
    world.acceptAPI('provider-b', 'widgets-b', 'export-b');
    world.acceptAPI('provider-a', 'widgets-a', 'export-a', { ready: false });
    await world.settle(key);
    // Before cutover the record still names the origin: it serves the object.
    expect(world.assignments()[0]?.status?.placement).toMatchObject({ winner: 'widgets-a (provider-a)' });

    world.api.put(WS_B, WIDGETS, { ...world.copyIn(DEST, key)!, status: { status: 'Available', servedBy: 'b' } });
    await world.settle(key);

    expect(world.migrations()).toEqual([]);
    const status = world.assignments()[0]?.status;
    expect(status?.placement).toEqual({
      winner: 'widgets-b (provider-b)',
      reason: `migrated from widgets-a (provider-a) by ${MIGRATION}`,
      candidates: [],
    });
    expect(status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'True',
      reason: 'Migrated',
      message: `staging copy in ${WS_B}, migrated from provider-a`,
    });
  });

  it('records a failed stage as Failed before rolling back; the rollback removes the destination copy and points the Assignment back', async () => {
    world.api.put(COORD, MIGRATIONCONFIGURATION_GVR, configuration([{ name: 'check', failureConditions: ['to.spec.size > 1'] }]));
    providers(world, { status: 'Available' });
    await servedThenMoved(world, key);

    // Until the stage fails: Migration created, destination copy deployed, stage begun.
    for (let i = 0; i < 10 && world.migrations()[0]?.status?.state !== 'Failed'; i++) {
      await world.reconcile(key);
      world.stagingWorkspacesReady();
    }
    const failed = world.migrations()[0];
    expect(failed?.status?.state).toBe('Failed');
    expect(failed?.status?.conditions?.find((c) => c.type === 'StagesCompleted')).toMatchObject({
      status: 'False',
      reason: 'FailureConditionMet',
    });
    // Nothing rolled back yet: the record comes first.
    expect(world.copyIn(DEST, key)).toBeDefined();
    expect(world.assignments()[0]?.spec.providerCluster).toBe('provider-b');
    expect(world.events.of('MigrationFailed')).toHaveLength(1);
    const mark = world.api.writes.length;

    await world.settle(key);

    const log = world.api.log().slice(mark);
    const destGone = log.indexOf(`delete ${WS_B}/widgets default/w1`);
    const pointedBack = log.indexOf(`update ${COORD}/assignments /${ASSIGNMENT}`);
    expect(destGone).toBeGreaterThanOrEqual(0);
    expect(destGone).toBeLessThan(pointedBack);
    expect(world.copyIn(DEST, key)).toBeUndefined();
    expect(world.copyIn(ORIGIN, key)).toBeDefined();
    const [assignment] = world.assignments();
    expect(assignment?.spec).toMatchObject({ providerCluster: 'provider-a', acceptAPIName: 'widgets-a' });
    expect(assignment?.status).toMatchObject({ providerCluster: 'provider-a', stagingWorkspace: ORIGIN });
    expect(conditionTrue(world.migrations()[0]?.status?.conditions, 'RolledBack')).toBe(true);
    expect(world.widget(key)?.['status']).toEqual({ status: 'Available', servedBy: 'a' });
    expect(world.released).toContain(DEST);

    // A new spec drops the failed Migration, so the move is tried again.
    world.api.put(CONSUMER, WIDGETS, { ...world.widget(key)!, spec: { size: 1 } });
    await world.reconcile(key);
    expect(world.api.log().at(-1)).toBe(`delete ${COORD}/migrations /${MIGRATION}`);
  });
});

describe('Migrator after a failure at any write of a migration', () => {
  /** Served by provider-a, moved to provider-b (or not, when `stages` fail): the state when the move is done. */
  const migration = async (fault?: { n: number; applied: boolean }, stages?: MigrationStage[]) => {
    const world = new SyncWorld();
    if (stages) world.api.put(COORD, MIGRATIONCONFIGURATION_GVR, configuration(stages));
    const key = world.createWidget('default', 'w1', { size: 2 });
    providers(world, { status: 'Available' });
    await servedThenMoved(world, key);
    const start = world.api.attempts;
    if (fault) world.api.failWriteNumber(fault.n, undefined, { applied: fault.applied });
    await world.settle(key);
    return { world, key, writes: world.api.attempts - start, end: world.snapshot() };
  };

  it.each([
    ['fails before it takes effect', false],
    ['takes effect but its reply is lost', true],
  ])('ends served by the destination, spec and status alike, when the write %s', async (_, applied) => {
    const clean = await migration();
    expect(clean.world.migrations()).toEqual([]);
    expect(clean.writes).toBeGreaterThan(8);
    const diverged: string[] = [];
    for (let n = 1; n <= clean.writes; n++) {
      const run = await migration({ n, applied });
      const [assignment] = run.world.assignments();
      const problems = [
        assignment?.spec.providerCluster !== 'provider-b' && `Assignment spec.providerCluster ${assignment?.spec.providerCluster}`,
        assignment?.status?.providerCluster !== 'provider-b' && `Assignment status.providerCluster ${assignment?.status?.providerCluster}`,
        run.world.copyIn(ORIGIN, run.key) && 'origin copy left',
        JSON.stringify(run.end) !== JSON.stringify(clean.end) && 'end state differs',
      ].filter(Boolean);
      const hit = run.world.api.failed.map(formatWrite).join('');
      if (problems.length > 0) diverged.push(`write ${n} (${hit}): ${problems.join(', ')}`);
    }
    expect(diverged).toEqual([]);
  });

  it.each([
    ['fails before it takes effect', false],
    ['takes effect but its reply is lost', true],
  ])('ends rolled back, without stage objects, when a write of a failing migration %s', async (_, applied) => {
    const failing: MigrationStage[] = [
      {
        name: 'check',
        templates: { probe: { apiVersion: 'v1', kind: 'ConfigMap', data: { size: '${string(to.spec.size)}' } } },
        failureConditions: ['probe.data.size == "2"'],
      },
    ];
    const clean = await migration(undefined, failing);
    expect(clean.world.migrations()[0]?.status?.state).toBe('Failed');
    expect(clean.world.api.log({ cluster: 'compute', verb: 'create', resource: 'configmaps' })).toHaveLength(1);
    const diverged: string[] = [];
    for (let n = 1; n <= clean.writes; n++) {
      const run = await migration({ n, applied }, failing);
      const [assignment] = run.world.assignments();
      const problems = [
        (assignment?.spec.providerCluster !== 'provider-a' || assignment?.status?.providerCluster !== 'provider-a') &&
          'not back at provider-a',
        run.world.copyIn(DEST, run.key) && 'destination copy left',
        run.world.api.list('compute', CONFIGMAPS).length > 0 && 'stage object left',
        JSON.stringify(run.end) !== JSON.stringify(clean.end) && 'end state differs',
      ].filter(Boolean);
      if (problems.length > 0) diverged.push(`write ${n} (${run.world.api.failed.map(formatWrite).join('')}): ${problems.join(', ')}`);
    }
    expect(diverged).toEqual([]);
  });
});
