import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Informer } from '../../src/runtime/informer.ts';
import {
  MIGRATION_GVR,
  MIGRATIONCONFIGURATION_GVR,
  type Migration,
  type MigrationConfiguration,
  type MigrationStage,
} from '../../src/apis/types.ts';
import { ResourceClient } from '../../src/kcp-client-ts/resources.ts';
import { CONFIGMAPS, SECRETS, type KubeObject } from '../../src/kcp-client-ts/types.ts';
import type { ReadyWorkspace } from '../../src/kcp-client-ts/workspaces.ts';
import { inject } from 'vitest';
import { runCliFor } from '../harness/broker-process.ts';
import { BrokerWorld, decodeSecret, GVR, statusOf } from '../harness/broker-world.ts';
import { eventually } from '../harness/eventually.ts';
import { kcpEnv } from '../harness/kcp-env.ts';

const VM_GVK = { group: 'example.platform-mesh.io', version: 'v1alpha1', kind: 'VM' };
const condition = (m: Migration | undefined, type: string): { status: string; reason: string; message: string } | undefined =>
  m?.status?.conditions?.find((c) => c.type === type);

describe('migration stages from a MigrationConfiguration', () => {
  let world: BrokerWorld;
  let consumer: ReadyWorkspace;
  let x86: ReadyWorkspace;
  let arm: ReadyWorkspace;
  const watchers = new AbortController();
  /** Every status the consumer saw, per VM name, in order. */
  const seen = new Map<string, (string | undefined)[]>();

  const configurations = (): ResourceClient<MigrationConfiguration> =>
    new ResourceClient<MigrationConfiguration>({
      endpoint: world.endpoint,
      baseUrl: world.endpoint.workspaceUrl(world.paths.coordination),
      gvr: MIGRATIONCONFIGURATION_GVR,
    });
  const migrations = (): ResourceClient<Migration> =>
    new ResourceClient<Migration>({
      endpoint: world.endpoint,
      baseUrl: world.endpoint.workspaceUrl(world.paths.coordination),
      gvr: MIGRATION_GVR,
    });
  const compute = (gvr = CONFIGMAPS): ResourceClient<KubeObject> => world.inCluster(world.paths.compute, gvr);
  const vms = (workspace = consumer): ResourceClient<KubeObject> => world.objects(workspace.path, 'vms');
  /** The one MigrationConfiguration for VM -> VM, replaced per test. */
  const configure = async (stages: MigrationStage[]): Promise<void> => {
    for (const c of (await configurations().list()).items) await configurations().delete({ name: c.metadata.name ?? '' });
    await configurations().create({
      apiVersion: 'coord.broker.platform-mesh.io/v1alpha1',
      kind: 'MigrationConfiguration',
      metadata: { name: 'vm-move' },
      spec: { from: VM_GVK, to: VM_GVK, stages },
    });
  };
  /** Changes the stages of vm-move in place (same uid, next generation). */
  const edit = async (stages: MigrationStage[]): Promise<void> => {
    const current = await configurations().get({ name: 'vm-move' });
    await configurations().update({ ...current, spec: { ...current.spec, stages } });
  };
  const migrationOf = async (name: string): Promise<Migration | undefined> =>
    (await migrations().list()).items.find((m) => m.spec.name === name);
  /** Creates an x86_64 VM, waits until it is Available, then asks for arm64: a migration to the arm provider. */
  const createThenMove = async (name: string, memory = 512, workspace = consumer): Promise<{ originCluster: string; originSw: string }> => {
    await vms(workspace).create(world.newObject('vms', name, { arch: 'x86_64', memory }));
    await eventually(async () => expect(statusOf(await vms(workspace).get({ namespace: 'default', name }))).toBe('Available'));
    const originCluster = await world.stagingClusterOf(workspace, 'vms', name);
    const originSw = (await world.assignmentOf(workspace, 'vms', name))!.status!.stagingWorkspace!;
    await vms(workspace).update({ ...(await vms(workspace).get({ namespace: 'default', name })), spec: { arch: 'arm64', memory } });
    return { originCluster, originSw };
  };
  /** The object's Migration once it has Failed and rolled back. */
  const rolledBack = (name: string): Promise<Migration> =>
    eventually(
      async () => {
        const m = await migrationOf(name);
        expect(m?.status?.state).toBe('Failed');
        expect(condition(m, 'RolledBack')?.status).toBe('True');
        return m!;
      },
      { timeoutMs: 60_000 },
    );
  const neverDropped = (name: string): void => {
    const statuses = seen.get(name) ?? [];
    const first = statuses.indexOf('Available');
    expect(first).toBeGreaterThanOrEqual(0);
    expect(statuses.slice(first).every((s) => s === 'Available')).toBe(true);
  };

  beforeAll(async () => {
    world = await BrokerWorld.create('stages', (await kcpEnv()).endpoint);
    [x86, arm, consumer] = await Promise.all([
      world.provider('x86', ['vms']),
      world.provider('arm', ['vms']),
      world.consumer('consumer', ['vms']),
    ]);
    await world.accept('x86', 'x86-vms', { api: 'vms', filters: [{ key: 'arch', valueIn: ['x86_64'] }] });
    await world.accept('arm', 'arm-vms', { api: 'vms', filters: [{ key: 'arch', valueIn: ['arm64'] }] });
    await world.startBroker();
    await Promise.all([world.waitAcceptAPIReady('x86', 'x86-vms'), world.waitAcceptAPIReady('arm', 'arm-vms')]);
    const informer = new Informer<KubeObject>({ name: 'test vms', source: vms() });
    informer.onEvent((e) => {
      if (e.type === 'deleted') return;
      const name = e.object.metadata.name ?? '';
      seen.set(name, [...(seen.get(name) ?? []), statusOf(e.object)]);
    });
    void informer.run(watchers.signal);
    await informer.waitForSync();
  });

  afterAll(async () => {
    watchers.abort();
    await world?.cleanup();
  });

  it('runs several stages: preconditions hold a stage, templates are interpolated and removed after their stage, progress, related resources mirrored, custom namespace', async () => {
    await configure([
      {
        name: 'prepare',
        namespace: 'migrations',
        progress: true,
        preconditions: ['to.status.status == "Available"'],
        templates: { plan: { apiVersion: 'v1', kind: 'ConfigMap', data: { from: '${from.spec.arch}', to: 'pre-${to.spec.arch}' } } },
        successConditions: ['plan.data.approved == "yes"'],
      },
      {
        name: 'copy',
        templates: {
          job: { apiVersion: 'v1', kind: 'ConfigMap', data: { memory: '${string(from.spec.memory)}' } },
          sizing: { apiVersion: 'v1', kind: 'ConfigMap', immutable: '${from.spec.memory >= 128}', data: { note: 'sized' } },
        },
        successConditions: ['job.data.done == "true"', 'sizing.immutable'],
      },
    ]);
    world.runner('arm', 'vms').holdProvisioning = true;
    const { originCluster, originSw } = await createThenMove('web');
    const originCopy = await world.inCluster(originCluster, GVR.vms).get({ namespace: 'default', name: 'web' });

    // 1: the precondition holds the first stage: nothing deployed yet
    const waiting = await eventually(async () => {
      const m = await migrationOf('web');
      expect(m?.status?.state).toBe('InitialInProgress');
      expect(m?.status?.stage).toBe('prepare');
      expect(condition(m, 'StagesCompleted')).toMatchObject({ status: 'False', reason: 'PreconditionsNotMet' });
      return m!;
    });
    expect(condition(waiting, 'StagesCompleted')?.message).toContain('spec.stages[0].preconditions[0] `to.status.status == "Available"`');
    const planName = `${waiting.metadata.name}-plan`;
    expect(await compute().find({ namespace: 'migrations', name: planName })).toBeUndefined();

    // 2: the destination turns Available: the template is deployed, interpolated, labelled, in the stage namespace
    world.runner('arm', 'vms').holdProvisioning = false;
    world.runner('arm', 'vms').resync();
    const plan = await eventually(() => compute().get({ namespace: 'migrations', name: planName }));
    expect(plan['data']).toEqual({ from: 'x86_64', to: 'pre-arm64' });
    expect(plan.metadata.labels).toMatchObject({
      'broker.platform-mesh.io/migration-name': waiting.metadata.name,
      'broker.platform-mesh.io/migration-stage': 'prepare',
    });
    // related resources of both copies, mirrored with from-/to- prefixes
    const mirrored = await eventually(async () => {
      const from = await compute(SECRETS).get({ namespace: 'migrations', name: 'from-web-credentials' });
      const to = await compute(SECRETS).get({ namespace: 'migrations', name: 'to-web-credentials' });
      return { from, to };
    });
    expect(decodeSecret(mirrored.from, 'issuer')).toBe(x86.path);
    expect(decodeSecret(mirrored.to, 'issuer')).toBe(arm.path);
    await eventually(async () =>
      expect(condition(await migrationOf('web'), 'StagesCompleted')).toMatchObject({
        reason: 'StageInProgress',
        message: expect.stringContaining('successConditions[0]'),
      }),
    );
    // the consumer still sees the origin while the stages run
    expect((await world.assignmentOf(consumer, 'vms', 'web'))?.status?.providerCluster).toBe(x86.cluster);

    // 3: the success condition turns true: progress -> InitialCompleted, next stage, the plan is removed
    await compute().mergePatch({ namespace: 'migrations', name: planName }, { data: { approved: 'yes' } });
    await eventually(async () => {
      const m = await migrationOf('web');
      expect(m?.status?.state).toBe('InitialCompleted');
      expect(m?.status?.stage).toBe('copy');
    });
    await eventually(async () => expect(await compute().find({ namespace: 'migrations', name: planName })).toBeUndefined());
    const job = await eventually(() => compute().get({ namespace: 'default', name: `${waiting.metadata.name}-job` }));
    expect(job['data']).toEqual({ memory: '512' });
    const sizing = await eventually(() => compute().get({ namespace: 'default', name: `${waiting.metadata.name}-sizing` }));
    expect(sizing['immutable']).toBe(true); // a lone ${...} keeps its type
    // two stages in, the origin copy still has had no write since the move began
    expect((await world.inCluster(originCluster, GVR.vms).get({ namespace: 'default', name: 'web' })).metadata.resourceVersion).toBe(
      originCopy.metadata.resourceVersion,
    );

    // 4: the last stage succeeds: cutover, then everything the migration made is gone
    await compute().mergePatch({ namespace: 'default', name: `${waiting.metadata.name}-job` }, { data: { done: 'true' } });
    await eventually(async () => expect(await migrationOf('web')).toBeUndefined(), { timeoutMs: 60_000 });
    expect((await world.assignmentOf(consumer, 'vms', 'web'))?.status?.providerCluster).toBe(arm.cluster);
    const left = [
      ...(await compute().list({ labelSelector: `broker.platform-mesh.io/migration-name=${waiting.metadata.name}` })).items,
      ...(await compute(SECRETS).list({ labelSelector: `broker.platform-mesh.io/migration-name=${waiting.metadata.name}` })).items,
    ];
    expect(left.map((o) => o.metadata.name)).toEqual([]);
    await eventually(async () => expect(await world.workspaces.get(world.paths.stagingRoot, originSw)).toBeUndefined(), {
      timeoutMs: 60_000,
    });
    const secret = await world.inCluster(consumer.path, SECRETS).get({ namespace: 'default', name: 'web-credentials' });
    expect(decodeSecret(secret, 'issuer')).toBe(arm.path);
    neverDropped('web');
    expect(originCopy['spec']).toEqual({ arch: 'x86_64', memory: 512 });
    const events = (await world.events(consumer.path))
      .filter((e) => (e['involvedObject'] as { name: string }).name === 'web')
      .map((e) => e['reason']);
    expect(events).toEqual(expect.arrayContaining(['MigrationStarted', 'MigrationCompleted']));
  });

  it('says in the conditions when a stage is unknown, its CEL does not compile or is not boolean, and carries on once fixed', async () => {
    await configure([{ name: 'check', successConditions: ['to.spec.memory'] }]);
    await createThenMove('db');
    const notBool = await eventually(async () => {
      const c = condition(await migrationOf('db'), 'StagesCompleted');
      expect(c?.reason).toBe('InvalidStage');
      return c!;
    });
    expect(notBool.message).toBe('spec.stages[0].successConditions[0] `to.spec.memory` evaluates to number 512, not a bool');
    // `resource-broker explain` tells the same story
    const explained = await runCliFor(
      inject('kcp').kubeconfig,
      world.paths,
      'explain',
      '--workspace',
      consumer.path,
      '--resource',
      'vms.example.platform-mesh.io',
      '--namespace',
      'default',
      '--name',
      'db',
    );
    expect(explained.code).toBe(0);
    expect(explained.stdout).toContain(`-> ${arm.cluster}, InitialInProgress (stage check): ${notBool.message}`);

    await edit([{ name: 'check', successConditions: ['to.spec.('] }]);
    await eventually(async () => {
      const c = condition(await migrationOf('db'), 'StagesCompleted');
      expect(c?.reason).toBe('InvalidStage');
      expect(c?.message).toMatch(
        /^MigrationConfiguration vm-move: spec\.stages\[0\]\.successConditions\[0\]: CEL does not compile: .+ \(in `to\.spec\.\(`\)$/,
      );
    });
    await edit([{ name: 'verify', successConditions: ['true'] }]);
    await eventually(async () => {
      const c = condition(await migrationOf('db'), 'StagesCompleted');
      expect(c).toMatchObject({
        reason: 'UnknownStage',
        message: 'stage "check" is not in MigrationConfiguration vm-move (its stages: verify)',
      });
    });
    await edit([{ name: 'check', successConditions: ['to.spec.memory == 512'] }]);
    await eventually(async () => expect(await migrationOf('db')).toBeUndefined(), { timeoutMs: 60_000 });
    expect((await world.assignmentOf(consumer, 'vms', 'db'))?.status?.providerCluster).toBe(arm.cluster);
    neverDropped('db');
  });

  it('fails and rolls back when a stage times out or a failure condition turns true; the object stays served by the origin; a fixed configuration or a new spec starts over', async () => {
    await configure([
      {
        name: 'wait',
        timeoutSeconds: 3,
        templates: { probe: { apiVersion: 'v1', kind: 'ConfigMap', data: { a: 'b' } } },
        successConditions: ['probe.data.a == "never"'],
      },
    ]);
    const { originCluster } = await createThenMove('slow');
    const failed = await rolledBack('slow');
    expect(condition(failed, 'StagesCompleted')).toMatchObject({
      reason: 'StageTimedOut',
      message: expect.stringContaining('did not succeed within 3s (spec.stages[0].timeoutSeconds)'),
    });
    // rolled back: stage objects and the destination copy gone (its staging workspace also serves web and db), Assignment back on the origin, consumer still served by it
    expect(await compute().find({ namespace: 'default', name: `${failed.metadata.name}-probe` })).toBeUndefined();
    const destCluster = (await world.stagingWorkspaces().get({ name: failed.spec.stagingWorkspace })).status!.clusterName!;
    expect(await world.inCluster(destCluster, GVR.vms).find({ namespace: 'default', name: 'slow' })).toBeUndefined();
    const assignment = await world.assignmentOf(consumer, 'vms', 'slow');
    expect(assignment?.spec.providerCluster).toBe(x86.cluster);
    expect(assignment?.status?.providerCluster).toBe(x86.cluster);
    expect((await world.inCluster(originCluster, GVR.vms).get({ namespace: 'default', name: 'slow' }))['spec']).toEqual({
      arch: 'x86_64',
      memory: 512,
    });
    expect(statusOf(await vms().get({ namespace: 'default', name: 'slow' }))).toBe('Available');
    const event = await eventually(async () => {
      const e = (await world.events(consumer.path)).find(
        (ev) => ev['reason'] === 'MigrationFailed' && (ev['involvedObject'] as { name: string }).name === 'slow',
      );
      expect(e).toBeDefined();
      return e!;
    });
    expect(event['type']).toBe('Warning');
    expect(event['message']).toContain(`stays with provider ${x86.cluster}`);
    // the platform fixes the configuration: the failed attempt is dropped and a new one succeeds
    const config = await configurations().get({ name: 'vm-move' });
    expect(failed.status?.failedConfiguration).toEqual({ uid: config.metadata.uid, generation: config.metadata.generation });
    await edit([
      {
        name: 'wait',
        timeoutSeconds: 30,
        templates: { probe: { apiVersion: 'v1', kind: 'ConfigMap', data: { a: 'b' } } },
        successConditions: ['probe.data.a == "b"'],
      },
    ]);
    await eventually(
      async () => {
        expect((await world.assignmentOf(consumer, 'vms', 'slow'))?.status?.providerCluster).toBe(arm.cluster);
        expect(await migrationOf('slow')).toBeUndefined();
      },
      { timeoutMs: 60_000 },
    );
    expect(statusOf(await vms().get({ namespace: 'default', name: 'slow' }))).toBe('Available');
    neverDropped('slow');

    // a failure condition: memory of the destination too large
    await configure([{ name: 'guard', failureConditions: ['to.spec.memory > 1000'], successConditions: ['true'] }]);
    await createThenMove('big', 2048);
    const guarded = await rolledBack('big');
    expect(condition(guarded, 'StagesCompleted')).toMatchObject({
      reason: 'FailureConditionMet',
      message: 'stage guard: spec.stages[0].failureConditions[0] `to.spec.memory > 1000` is true',
    });
    expect((await world.assignmentOf(consumer, 'vms', 'big'))?.status?.providerCluster).toBe(x86.cluster);
    neverDropped('big');
    // the consumer changes the spec: the failed attempt is dropped and a new one succeeds
    await vms().update({ ...(await vms().get({ namespace: 'default', name: 'big' })), spec: { arch: 'arm64', memory: 768 } });
    await eventually(
      async () => {
        expect((await world.assignmentOf(consumer, 'vms', 'big'))?.status?.providerCluster).toBe(arm.cluster);
        expect(await migrationOf('big')).toBeUndefined();
      },
      { timeoutMs: 60_000 },
    );
    neverDropped('big');
  });

  it("two consumers moving same-named VMs through a stage at once: the second waits while the first holds the mirror names, and each stage sees only its own object's Secrets", async () => {
    await configure([
      {
        name: 'hold',
        namespace: 'migrations',
        templates: { gate: { apiVersion: 'v1', kind: 'ConfigMap', data: { arch: '${to.spec.arch}' } } },
        successConditions: ['gate.data.open == "yes"'],
      },
    ]);
    const other = await world.consumer('consumer-twin', ['vms']);
    const memoryOf = new Map([
      [consumer.path, 512],
      [other.path, 1024],
    ]);
    await createThenMove('twin', 512, consumer);
    await createThenMove('twin', 1024, other);
    const migrationIn = async (workspace: ReadyWorkspace): Promise<Migration | undefined> => {
      const assignment = await world.assignmentOf(workspace, 'vms', 'twin');
      return (await migrations().list()).items.find((m) => m.spec.assignment === assignment?.metadata.name);
    };
    const mirrorOf = async (): Promise<KubeObject | undefined> =>
      compute(SECRETS).find({ namespace: 'migrations', name: 'from-twin-credentials' });
    /** Which consumer's migration holds the names, and what its mirror carries: only that object's Secret. */
    const holder = async (): Promise<{ holds: ReadyWorkspace; waits: ReadyWorkspace }> =>
      eventually(
        async () => {
          const mirror = await mirrorOf();
          const owner = mirror?.metadata.labels?.['broker.platform-mesh.io/migration-name'];
          const mine = await migrationIn(consumer);
          const theirs = await migrationIn(other);
          expect(owner).toBeDefined();
          expect([mine?.metadata.name, theirs?.metadata.name]).toContain(owner);
          const [holds, waits] = owner === mine?.metadata.name ? [consumer, other] : [other, consumer];
          expect(JSON.parse(decodeSecret(mirror!, 'spec'))).toMatchObject({ memory: memoryOf.get(holds.path) });
          const waiting = await migrationIn(waits);
          expect(condition(waiting, 'StagesCompleted')).toMatchObject({
            reason: 'MirrorNameTaken',
            message: expect.stringContaining('held by another owner'),
          });
          return { holds, waits };
        },
        { timeoutMs: 60_000 },
      );
    const open = async (workspace: ReadyWorkspace): Promise<void> => {
      const m = (await migrationIn(workspace))!;
      await eventually(() => compute().get({ namespace: 'migrations', name: `${m.metadata.name}-gate` }));
      await compute().mergePatch({ namespace: 'migrations', name: `${m.metadata.name}-gate` }, { data: { open: 'yes' } });
    };
    const { holds, waits } = await holder();
    // The first finishes; its mirrors go, and the second mirrors its own object's Secret under the same names.
    await open(holds);
    await eventually(async () => expect(await migrationIn(holds)).toBeUndefined(), { timeoutMs: 60_000 });
    await eventually(
      async () => {
        const mirror = await mirrorOf();
        expect(mirror?.metadata.labels?.['broker.platform-mesh.io/migration-name']).toBe((await migrationIn(waits))?.metadata.name);
        expect(JSON.parse(decodeSecret(mirror!, 'spec'))).toMatchObject({ memory: memoryOf.get(waits.path) });
      },
      { timeoutMs: 60_000 },
    );
    await open(waits);
    await eventually(async () => expect(await migrationIn(waits)).toBeUndefined(), { timeoutMs: 60_000 });
    for (const workspace of [consumer, other]) {
      expect((await world.assignmentOf(workspace, 'vms', 'twin'))?.status?.providerCluster).toBe(arm.cluster);
      const secret = await world.inCluster(workspace.path, SECRETS).get({ namespace: 'default', name: 'twin-credentials' });
      expect(decodeSecret(secret, 'issuer')).toBe(arm.path);
      expect(JSON.parse(decodeSecret(secret, 'spec'))).toMatchObject({ memory: memoryOf.get(workspace.path) });
    }
    expect(await mirrorOf()).toBeUndefined();
  });

  it('removes stage objects, mirrored resources, both copies, the Migration and both staging workspaces when the consumer deletes the object mid-stage', async () => {
    await configure([
      {
        name: 'hold',
        templates: { marker: { apiVersion: 'v1', kind: 'ConfigMap', data: { vm: '${from.metadata.name}' } } },
        successConditions: ['false'],
      },
    ]);
    // its own consumer workspace, so that no other object shares its staging workspaces
    const other = await world.consumer('consumer-2', ['vms']);
    const { originSw } = await createThenMove('tmp', 512, other);
    const migration = await eventually(async () => {
      const m = await migrationOf('tmp');
      expect(m?.status?.stage).toBe('hold');
      return m!;
    });
    await eventually(() => compute().get({ namespace: 'default', name: `${migration.metadata.name}-marker` }));
    await eventually(() => compute(SECRETS).get({ namespace: 'default', name: 'to-tmp-credentials' }));
    await vms(other).delete({ namespace: 'default', name: 'tmp' });
    await eventually(async () => expect(await vms(other).find({ namespace: 'default', name: 'tmp' })).toBeUndefined(), {
      timeoutMs: 60_000,
    });
    expect(await migrationOf('tmp')).toBeUndefined();
    const selector = `broker.platform-mesh.io/migration-name=${migration.metadata.name}`;
    expect((await compute().list({ labelSelector: selector })).items).toEqual([]);
    expect((await compute(SECRETS).list({ labelSelector: selector })).items).toEqual([]);
    for (const sw of [originSw, migration.spec.stagingWorkspace]) {
      await eventually(async () => expect(await world.workspaces.get(world.paths.stagingRoot, sw)).toBeUndefined(), { timeoutMs: 60_000 });
    }
  });

  it('removes what a stage deployed even after its MigrationConfiguration was edited or deleted', async () => {
    const SERVICEACCOUNTS = { group: '', version: 'v1', resource: 'serviceaccounts' };
    const holdWithAccount: MigrationStage[] = [
      { name: 'hold', templates: { sa: { apiVersion: 'v1', kind: 'ServiceAccount' } }, successConditions: ['false'] },
    ];
    const deployedAccount = async (vm: string): Promise<Migration> => {
      const m = await eventually(async () => {
        const found = await migrationOf(vm);
        expect(found?.status?.stageObjects).toEqual([
          { stage: 'hold', apiVersion: 'v1', kind: 'ServiceAccount', namespace: 'default', name: `${found?.metadata.name}-sa` },
        ]);
        return found!;
      });
      await eventually(() => compute(SERVICEACCOUNTS).get({ namespace: 'default', name: `${m.metadata.name}-sa` }));
      return m;
    };

    // edited: the stage now deploys a ConfigMap instead and succeeds; the ServiceAccount still goes
    await configure(holdWithAccount);
    await createThenMove('edited');
    const edited = await deployedAccount('edited');
    await edit([
      {
        name: 'hold',
        templates: { note: { apiVersion: 'v1', kind: 'ConfigMap', data: { a: 'b' } } },
        successConditions: ['note.data.a == "b"'],
      },
    ]);
    await eventually(async () => expect(await migrationOf('edited')).toBeUndefined(), { timeoutMs: 60_000 });
    expect((await world.assignmentOf(consumer, 'vms', 'edited'))?.status?.providerCluster).toBe(arm.cluster);
    expect(await compute(SERVICEACCOUNTS).find({ namespace: 'default', name: `${edited.metadata.name}-sa` })).toBeUndefined();
    expect(await compute().find({ namespace: 'default', name: `${edited.metadata.name}-note` })).toBeUndefined();

    // deleted: the migration says its configuration is gone; the consumer gives up on the object
    await configure(holdWithAccount);
    await createThenMove('orphaned');
    const orphaned = await deployedAccount('orphaned');
    await configurations().delete({ name: 'vm-move' });
    await eventually(async () => expect(condition(await migrationOf('orphaned'), 'StagesCompleted')?.reason).toBe('ConfigurationNotFound'));
    await vms().delete({ namespace: 'default', name: 'orphaned' });
    await eventually(async () => expect(await vms().find({ namespace: 'default', name: 'orphaned' })).toBeUndefined(), {
      timeoutMs: 60_000,
    });
    expect(await migrationOf('orphaned')).toBeUndefined();
    expect(await compute(SERVICEACCOUNTS).find({ namespace: 'default', name: `${orphaned.metadata.name}-sa` })).toBeUndefined();
  });
});
