import { beforeEach, describe, expect, it } from 'vitest';
import { memoryCompute } from '../../../test/fakes/compute.ts';
import { MemoryApi } from '../../../test/fakes/memory-api.ts';
import {
  MIGRATION_GVR,
  MIGRATIONCONFIGURATION_GVR,
  type Migration,
  type MigrationConfiguration,
  type MigrationStage,
} from '../../apis/types.ts';
import { CONFIGMAPS, SECRETS, type KubeObject } from '../../kcp-client-ts/types.ts';
import { silentLogger } from '../../logging.ts';
import { TerminalError } from '../../runtime/errors.ts';
import { MigrationStages, type StageInput } from './stage-runner.ts';
import { relatedSource } from '../../../test/fakes/related.ts';

const signal = new AbortController().signal;
const COORD = 'coord';
const COMPUTE = 'compute';
const GVK = { group: 'example.platform-mesh.io', version: 'v1alpha1', kind: 'Widget' };
const endpoint = (provider: string) => ({
  gvk: GVK,
  providerCluster: provider,
  acceptAPIName: `widgets-${provider}`,
  apiExportName: 'widgets',
});
const from: KubeObject = { metadata: { name: 'w1' }, spec: { size: 1 }, status: { status: 'Available' } };
const to: KubeObject = { metadata: { name: 'w1' }, spec: { size: 2 }, status: { status: 'Available' } };
/** A stage deploying one ConfigMap (`cm`) whose data carries the destination's size. */
const deploying = (extra: Partial<MigrationStage> = {}): MigrationStage => ({
  name: 'copy-data',
  templates: { cm: { apiVersion: 'v1', kind: 'ConfigMap', metadata: {}, data: { size: '${string(to.spec.size)}' } } },
  ...extra,
});

describe('MigrationStages', () => {
  let api: MemoryApi;
  let stages: MigrationStages;

  beforeEach(() => {
    api = new MemoryApi();
    stages = new MigrationStages({
      compute: memoryCompute(api, COMPUTE),
      migrationClient: api.client<Migration>(COORD, MIGRATION_GVR),
      configurations: api.informer<MigrationConfiguration>(MIGRATIONCONFIGURATION_GVR, { clusters: [COORD] }).store,
      logger: silentLogger(),
    });
    api.put(COORD, MIGRATION_GVR, {
      metadata: { name: 'm1' },
      spec: {
        assignment: 'a1',
        name: 'w1',
        namespace: 'default',
        fromStagingWorkspace: 's-a',
        stagingWorkspace: 's-b',
        from: endpoint('a'),
        to: endpoint('b'),
      },
    });
  });

  const configure = (...list: MigrationStage[]): void =>
    void api.put<MigrationConfiguration>(COORD, MIGRATIONCONFIGURATION_GVR, {
      metadata: { name: 'widgets' },
      spec: { from: GVK, to: GVK, stages: list },
    });
  const migration = (): Migration => api.get<Migration>(COORD, MIGRATION_GVR, '', 'm1')!;
  const input = (): StageInput => ({ migration: migration(), from, to, related: { from: [], to: [] } });
  /** Runs the first step (Pending -> the first stage recorded) and returns the log position after it. */
  const begin = async (): Promise<number> => {
    expect(await stages.advance(input(), signal)).toEqual({ next: 'wait' });
    expect(migration().status).toMatchObject({ state: 'InitialInProgress', configuration: 'widgets', stage: 'copy-data' });
    return api.writes.length;
  };
  /** Another tenant's migration (m2) holds this mirror name: same name, other owner. */
  const heldByAnotherMigration = (name: string): KubeObject =>
    api.put(COMPUTE, SECRETS, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name,
        namespace: 'default',
        labels: { 'broker.platform-mesh.io/migration-name': 'm2' },
        annotations: { 'broker.platform-mesh.io/owner-uid': 'uid-of-m2' },
      },
      data: { password: 'dGhlaXJz' },
    });

  it('records the stage objects in status.stageObjects before applying any', async () => {
    configure(deploying({ successConditions: ['cm.data.ready == "yes"'] }));
    const mark = await begin();

    expect(await stages.advance(input(), signal)).toMatchObject({ next: 'wait' });

    expect(api.log().slice(mark)).toEqual([
      `create ${COMPUTE}/namespaces /default`,
      `updateStatus ${COORD}/migrations /m1`,
      `create ${COMPUTE}/configmaps default/m1-cm`,
      `updateStatus ${COORD}/migrations /m1`,
    ]);
    expect(migration().status?.stageObjects).toEqual([
      { stage: 'copy-data', apiVersion: 'v1', kind: 'ConfigMap', namespace: 'default', name: 'm1-cm' },
    ]);
    expect(api.get(COMPUTE, CONFIGMAPS, 'default', 'm1-cm')?.['data']).toEqual({ size: '2' });
    expect(migration().status?.conditions?.find((c) => c.type === 'StagesCompleted')).toMatchObject({
      status: 'False',
      reason: 'StageInProgress',
    });
  });

  it('deploys a stage object once and reads it back: an edit by whoever completes the stage stands, and succeeds the stage', async () => {
    configure(deploying({ successConditions: ['cm.data.ready == "yes"'] }));
    await begin();
    expect(await stages.advance(input(), signal)).toMatchObject({ next: 'wait' });
    const deployed = api.get(COMPUTE, CONFIGMAPS, 'default', 'm1-cm')!;
    expect(deployed.metadata.annotations?.['broker.platform-mesh.io/owner-uid']).toBe(migration().metadata.uid);

    // An operator (or a person) completes the stage the Go broker's way: by editing the object.
    api.put(COMPUTE, CONFIGMAPS, { ...deployed, data: { ready: 'yes' } });
    const mark = api.writes.length;
    expect(await stages.advance(input(), signal)).toEqual({ next: 'cutover' });
    expect(
      api
        .log()
        .slice(mark)
        .filter((w) => w.includes('compute/configmaps')),
    ).toEqual([`delete ${COMPUTE}/configmaps default/m1-cm`]);
  });

  it('never lets a later stage succeed on what is left of an earlier stage object of the same key', async () => {
    const approvedCm = (name: string): MigrationStage => ({
      name,
      templates: { cm: { apiVersion: 'v1', kind: 'ConfigMap', data: { stage: name } } },
      successConditions: ['cm.data.approved == "yes"'],
    });
    configure(approvedCm('copy-data'), approvedCm('verify'));
    await begin();
    await stages.advance(input(), signal);
    const first = api.get(COMPUTE, CONFIGMAPS, 'default', 'm1-cm')!;
    // Someone approves it; a finalizer keeps it a while after its deletion (a Job's orphan finalizer, say).
    api.put(COMPUTE, CONFIGMAPS, { ...first, metadata: { ...first.metadata, finalizers: ['example/hold'] }, data: { approved: 'yes' } });
    expect(await stages.advance(input(), signal)).toMatchObject({ next: 'wait' }); // copy-data succeeds
    expect(migration().status?.stage).toBe('verify');
    expect(api.get(COMPUTE, CONFIGMAPS, 'default', 'm1-cm')?.metadata.deletionTimestamp).toBeDefined();

    expect(await stages.advance(input(), signal)).toMatchObject({ next: 'wait' }); // not on copy-data's object
    const held = api.get(COMPUTE, CONFIGMAPS, 'default', 'm1-cm')!;
    api.put(COMPUTE, CONFIGMAPS, { ...held, metadata: { ...held.metadata, finalizers: [] } });
    expect(await stages.advance(input(), signal)).toMatchObject({ next: 'wait' });
    expect(api.get(COMPUTE, CONFIGMAPS, 'default', 'm1-cm')?.['data']).toEqual({ stage: 'verify' });
  });

  it("keeps the broker's own keys out of a rendered template, so no template can pass its object off as a mirror", async () => {
    configure({
      name: 'copy-data',
      templates: {
        cm: {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { labels: { 'broker.platform-mesh.io/related-mirror': 'true', team: 'db' } },
          data: { size: '1' },
        },
      },
      successConditions: ['cm.data.approved == "yes"'],
    });
    await begin();
    await stages.advance(input(), signal);
    const deployed = api.get(COMPUTE, CONFIGMAPS, 'default', 'm1-cm')!;
    expect(deployed.metadata.labels?.['broker.platform-mesh.io/related-mirror']).toBeUndefined();
    expect(deployed.metadata.labels?.['team']).toBe('db');
    api.put(COMPUTE, CONFIGMAPS, { ...deployed, data: { approved: 'yes' } });
    expect(await stages.advance(input(), signal)).toEqual({ next: 'cutover' });
  });

  it('waits, without touching it, while a stage object name is held by an object this migration did not deploy', async () => {
    configure(deploying({ successConditions: ['true'] }));
    await begin();
    const theirs = api.put(COMPUTE, CONFIGMAPS, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'm1-cm', namespace: 'default', labels: { team: 'other' } },
      data: { mine: 'yes' },
    });
    expect(await stages.advance(input(), signal)).toMatchObject({ next: 'wait' });
    expect(migration().status?.conditions?.find((c) => c.type === 'StagesCompleted')).toMatchObject({ reason: 'StageObjectNameTaken' });
    await stages.cleanup(migration(), signal);
    expect(api.get(COMPUTE, CONFIGMAPS, 'default', 'm1-cm')).toEqual(theirs);
  });

  it("never runs a stage on another migration's mirror: it waits while the name is held, and never touches that copy", async () => {
    configure(deploying({ successConditions: ['true'] }));
    await begin();
    const theirs = heldByAnotherMigration('from-db');
    const ours = relatedSource('Secret', { metadata: { name: 'db', namespace: 'default' }, data: { password: 'b3Vycw==' } });
    const step = await stages.advance({ ...input(), related: { from: [ours], to: [] } }, signal);
    expect(step).toMatchObject({ next: 'wait' });
    expect(migration().status?.conditions?.find((c) => c.type === 'StagesCompleted')).toMatchObject({ reason: 'MirrorNameTaken' });
    expect(migration().status?.state).toBe('InitialInProgress'); // the stage did not succeed on their copy
    expect(api.get(COMPUTE, SECRETS, 'default', 'from-db')).toEqual(theirs);
    await stages.cleanup(migration(), signal);
    expect(api.get(COMPUTE, SECRETS, 'default', 'from-db')).toEqual(theirs);

    // Once theirs is gone, the stage mirrors its own copy and carries on.
    api.remove(COMPUTE, SECRETS, 'default', 'from-db');
    expect(await stages.advance({ ...input(), related: { from: [ours], to: [] } }, signal)).toEqual({ next: 'cutover' });
  });

  it('takes mirror names in one order and none past a held one, so two migrations never hold one name each', async () => {
    configure(deploying({ successConditions: ['true'] }));
    await begin();
    // Another migration holds from-db, the first name in order: this one must not take to-db meanwhile.
    heldByAnotherMigration('from-db');
    const from = relatedSource('Secret', { metadata: { name: 'db', namespace: 'default' }, data: { password: 'ZnJvbQ==' } });
    const to = relatedSource('Secret', { metadata: { name: 'db', namespace: 'default' }, data: { password: 'dG8=' } });
    const related = { from: [from], to: [to] };
    expect(await stages.advance({ ...input(), related }, signal)).toMatchObject({ next: 'wait' });
    expect(migration().status?.conditions?.find((c) => c.type === 'StagesCompleted')).toMatchObject({ reason: 'MirrorNameTaken' });
    expect(api.get(COMPUTE, SECRETS, 'default', 'to-db')).toBeUndefined();

    // Once the other is done, this one takes both.
    api.remove(COMPUTE, SECRETS, 'default', 'from-db');
    expect(await stages.advance({ ...input(), related }, signal)).toEqual({ next: 'cutover' });
    expect(api.get(COMPUTE, SECRETS, 'default', 'from-db')?.['data']).toEqual({ password: 'ZnJvbQ==' });
    expect(api.get(COMPUTE, SECRETS, 'default', 'to-db')?.['data']).toEqual({ password: 'dG8=' });
  });

  it('leaves a record cleanup finds when the apply of a stage object is cut short', async () => {
    configure(deploying({ successConditions: ['cm.data.ready == "yes"'] }));
    await begin();
    api.failNextWrite({ verb: 'create', resource: 'configmaps' }, undefined, { applied: true });

    await expect(stages.advance(input(), signal)).rejects.toThrow('injected failure');
    expect(migration().status?.stageObjects?.map((r) => r.name)).toEqual(['m1-cm']);

    await stages.cleanup(migration(), signal);
    expect(api.get(COMPUTE, CONFIGMAPS, 'default', 'm1-cm')).toBeUndefined();
  });

  it("records a stage's success before deleting its objects", async () => {
    configure(deploying({ successConditions: ['cm.data.size == "2"'] }));
    const mark = await begin();

    expect(await stages.advance(input(), signal)).toEqual({ next: 'cutover' });

    expect(api.log().slice(mark)).toEqual([
      `create ${COMPUTE}/namespaces /default`,
      `updateStatus ${COORD}/migrations /m1`, // stageObjects
      `create ${COMPUTE}/configmaps default/m1-cm`,
      `updateStatus ${COORD}/migrations /m1`, // success: CutoverInProgress
      `delete ${COMPUTE}/configmaps default/m1-cm`,
      `updateStatus ${COORD}/migrations /m1`, // stageObjects cleared
    ]);
    expect(migration().status?.state).toBe('CutoverInProgress');
    expect(migration().status?.stageObjects).toBeUndefined();
    expect(migration().status?.conditions?.find((c) => c.type === 'StagesCompleted')).toMatchObject({
      status: 'True',
      reason: 'AllStagesSucceeded',
    });
  });

  it('keeps a recorded success when the deletion of the stage objects is cut short', async () => {
    configure(deploying({ successConditions: ['cm.data.size == "2"'] }), { name: 'second', successConditions: ['true'] });
    await begin();
    api.failNextWrite({ verb: 'delete', resource: 'configmaps' });

    await expect(stages.advance(input(), signal)).rejects.toThrow('injected failure');
    expect(migration().status).toMatchObject({ stage: 'second', stageObjects: [{ stage: 'copy-data', name: 'm1-cm' }] });

    // The next stage first removes what the earlier one left, then runs.
    expect(await stages.advance(input(), signal)).toEqual({ next: 'cutover' });
    expect(api.get(COMPUTE, CONFIGMAPS, 'default', 'm1-cm')).toBeUndefined();
    expect(migration().status?.state).toBe('CutoverInProgress');
    expect(migration().status?.stageObjects).toBeUndefined();
  });

  it.each([
    [
      'a condition that does not compile',
      [deploying({ successConditions: ['to.spec.size >'] })],
      'InvalidStage',
      'spec.stages[0].successConditions[0]',
    ],
    [
      'a template of a kind compute does not serve',
      [deploying({ templates: { job: { apiVersion: 'batch/v1', kind: 'Job' } } })],
      'InvalidStage',
      'has no kind Job',
    ],
    ['a recorded stage the configuration no longer has', [{ name: 'renamed' }], 'UnknownStage', 'stage "copy-data" is not in'],
  ])('writes a StagesCompleted condition and throws TerminalError for %s', async (_, list, reason, message) => {
    configure(deploying());
    await begin();
    configure(...(list as MigrationStage[]));
    const mark = api.writes.length;

    const error = await stages.advance(input(), signal).catch((err: unknown) => err);

    expect(error).toBeInstanceOf(TerminalError);
    expect(
      api
        .log()
        .slice(mark)
        .filter((line) => line.includes(`${COORD}/migrations`)),
    ).toEqual([`updateStatus ${COORD}/migrations /m1`]);
    expect(api.log({ cluster: COMPUTE, resource: 'configmaps' })).toEqual([]);
    const condition = migration().status?.conditions?.find((c) => c.type === 'StagesCompleted');
    expect(condition).toMatchObject({ status: 'False', reason });
    expect(condition?.message).toContain(message);
  });
});
