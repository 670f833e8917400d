import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { MIGRATION_GVR, MIGRATIONCONFIGURATION_GVR, type Migration, type MigrationConfiguration } from '../../src/apis/types.ts';
import { ResourceClient } from '../../src/kcp-client-ts/resources.ts';
import { SECRETS } from '../../src/kcp-client-ts/types.ts';
import type { ReadyWorkspace } from '../../src/kcp-client-ts/workspaces.ts';
import { BrokerProcess } from '../harness/broker-process.ts';
import { BrokerWorld, decodeSecret, GVR, statusOf } from '../harness/broker-world.ts';
import { eventually } from '../harness/eventually.ts';
import { kcpEnv } from '../harness/kcp-env.ts';

describe('migration survives the broker being killed (SIGKILL) mid-way', () => {
  let world: BrokerWorld;
  let consumer: ReadyWorkspace;
  let external: ReadyWorkspace;
  const processes: BrokerProcess[] = [];
  const broker = async (): Promise<BrokerProcess> => {
    const p = new BrokerProcess(inject('kcp').kubeconfig, world.paths, {
      RB_LEADER_ELECT_LEASE_DURATION: '3',
      RB_LEADER_ELECT_RENEW_DEADLINE: '2',
      RB_LEADER_ELECT_RETRY_PERIOD: '1',
    });
    processes.push(p);
    await p.start();
    await eventually(async () => expect(await p.readyz()).toBe(200), { timeoutMs: 60_000 });
    return p;
  };

  beforeAll(async () => {
    world = await BrokerWorld.create('crash', (await kcpEnv()).endpoint);
    [, external, consumer] = await Promise.all([
      world.provider('internalca', ['certificates']),
      world.provider('externalca', ['certificates']),
      world.consumer('consumer', ['certificates']),
    ]);
    await world.accept('internalca', 'internal-certs', { api: 'certificates', filters: [{ key: 'fqdn', suffix: 'internal.corp' }] });
    await world.accept('externalca', 'external-certs', { api: 'certificates', filters: [{ key: 'fqdn', suffix: 'corp.com' }] });
  });

  afterAll(async () => {
    for (const p of processes) await p.stop('SIGKILL');
    if (process.env['CRASH_LOGS']) {
      const { writeFile } = await import('node:fs/promises');
      await writeFile(process.env['CRASH_LOGS'], processes.map((p, i) => `=== broker ${i}\n${p.logs.join('\n')}`).join('\n'));
    }
    await world?.cleanup();
  });

  it('is killed right after the move starts and again while waiting for the destination, and completes after restart with nothing duplicated or orphaned', async () => {
    let running = await broker();
    await Promise.all([world.waitAcceptAPIReady('internalca', 'internal-certs'), world.waitAcceptAPIReady('externalca', 'external-certs')]);
    const certs = world.objects(consumer.path, 'certificates');
    await certs.create(world.newObject('certificates', 'app', { fqdn: 'app.internal.corp' }));
    await eventually(async () => expect(statusOf(await certs.get({ namespace: 'default', name: 'app' }))).toBe('Available'));
    const originSw = (await world.assignmentOf(consumer, 'certificates', 'app'))!.status!.stagingWorkspace!;
    const migrations = new ResourceClient<Migration>({
      endpoint: world.endpoint,
      baseUrl: world.endpoint.workspaceUrl(world.paths.coordination),
      gvr: MIGRATION_GVR,
    });

    world.runner('externalca', 'certificates').holdProvisioning = true;
    await certs.update({ ...(await certs.get({ namespace: 'default', name: 'app' })), spec: { fqdn: 'app.corp.com' } });
    // 1: killed as soon as the Migration exists: Pending, while the destination staging workspace is created
    const pending = await eventually(
      async () => {
        const items = (await migrations.list()).items;
        expect(items).toHaveLength(1);
        return items[0]!;
      },
      { intervalMs: 20 },
    );
    await running.stop('SIGKILL');
    expect(pending.status?.state ?? 'Pending').toBe('Pending');
    running = await broker();
    // 2: killed while the destination is still Provisioning
    const migration = await eventually(async () => {
      const m = (await migrations.list()).items[0];
      expect(m?.status?.state).toBe('CutoverInProgress');
      return m!;
    });
    await running.stop('SIGKILL');
    world.runner('externalca', 'certificates').holdProvisioning = false;
    world.runner('externalca', 'certificates').resync();
    running = await broker();

    await eventually(
      async () => {
        const secret = await world.inCluster(consumer.path, SECRETS).get({ namespace: 'default', name: 'app-credentials' });
        expect(decodeSecret(secret, 'issuer')).toBe(external.path);
        expect((await migrations.list()).items).toHaveLength(0);
      },
      { timeoutMs: 90_000 },
    );
    await eventually(
      async () => {
        expect(await world.workspaces.get(world.paths.stagingRoot, originSw)).toBeUndefined();
        expect(await world.stagingWorkspaces().find({ name: originSw })).toBeUndefined();
      },
      { timeoutMs: 60_000 },
    );
    // exactly one Assignment, one StagingWorkspace, one staging copy, one consumer Secret
    expect((await world.assignments().list()).items).toHaveLength(1);
    const staging = (await world.stagingWorkspaces().list()).items;
    expect(staging.map((s) => s.metadata.name)).toEqual([migration.spec.stagingWorkspace]);
    const copies = await world.inCluster(staging[0]!.status!.clusterName!, GVR.certificates).list();
    expect(copies.items.map((c) => c.metadata.name)).toEqual(['app']);
    const secrets = (await world.inCluster(consumer.path, SECRETS).list({ namespace: 'default' })).items.filter(
      (s) => s.metadata.labels?.['broker.platform-mesh.io/owner'],
    );
    expect(secrets.map((s) => s.metadata.name)).toEqual(['app-credentials']);
    expect(statusOf(await certs.get({ namespace: 'default', name: 'app' }))).toBe('Available');
  });

  it('with stages: killed in InitialInProgress, InitialCompleted, CutoverInProgress and CutoverCompleted, it resumes each time and leaves no duplicate or orphan', async () => {
    const CERT = { group: 'example.platform-mesh.io', version: 'v1alpha1', kind: 'Certificate' };
    const configurations = new ResourceClient<MigrationConfiguration>({
      endpoint: world.endpoint,
      baseUrl: world.endpoint.workspaceUrl(world.paths.coordination),
      gvr: MIGRATIONCONFIGURATION_GVR,
    });
    await configurations.create({
      apiVersion: 'coord.broker.platform-mesh.io/v1alpha1',
      kind: 'MigrationConfiguration',
      metadata: { name: 'certs' },
      spec: {
        from: CERT,
        to: CERT,
        stages: [
          {
            name: 'first',
            progress: true,
            templates: { gate: { apiVersion: 'v1', kind: 'ConfigMap', data: { fqdn: '${from.spec.fqdn}' } } },
            successConditions: ['gate.data.go == "yes"'],
          },
          {
            name: 'second',
            templates: { gate2: { apiVersion: 'v1', kind: 'ConfigMap', data: { fqdn: '${to.spec.fqdn}' } } },
            successConditions: ['gate2.data.go == "yes"'],
          },
        ],
      },
    });
    const migrations = new ResourceClient<Migration>({
      endpoint: world.endpoint,
      baseUrl: world.endpoint.workspaceUrl(world.paths.coordination),
      gvr: MIGRATION_GVR,
    });
    const compute = world.inCluster(world.paths.compute, { group: '', version: 'v1', resource: 'configmaps' });
    const migrationOf = async (): Promise<Migration | undefined> => (await migrations.list()).items.find((m) => m.spec.name === 'staged');
    const inState = (state: string, stage?: string): Promise<Migration> =>
      eventually(
        async () => {
          const m = await migrationOf();
          expect(m?.status?.state).toBe(state);
          if (stage) expect(m?.status?.stage).toBe(stage);
          return m!;
        },
        { timeoutMs: 60_000 },
      );

    let running = processes.find((p) => p.child?.exitCode === null && p.child.signalCode === null) ?? (await broker());
    const certs = world.objects(consumer.path, 'certificates');
    await certs.create(world.newObject('certificates', 'staged', { fqdn: 'staged.internal.corp' }));
    await eventually(async () => expect(statusOf(await certs.get({ namespace: 'default', name: 'staged' }))).toBe('Available'));
    const originCluster = await world.stagingClusterOf(consumer, 'certificates', 'staged');
    world.runner('externalca', 'certificates').holdProvisioning = true;
    await certs.update({ ...(await certs.get({ namespace: 'default', name: 'staged' })), spec: { fqdn: 'staged.corp.com' } });

    // InitialInProgress: killed while the first stage waits; its gate is opened while the broker is down
    const first = await inState('InitialInProgress', 'first');
    const gate = await eventually(() => compute.get({ namespace: 'default', name: `${first.metadata.name}-gate` }));
    expect(gate['data']).toEqual({ fqdn: 'staged.internal.corp' });
    await running.stop('SIGKILL');
    await compute.mergePatch({ namespace: 'default', name: `${first.metadata.name}-gate` }, { data: { go: 'yes' } });
    running = await broker();

    // InitialCompleted: the first stage's object is gone, the second waits
    await inState('InitialCompleted', 'second');
    await eventually(async () => expect(await compute.find({ namespace: 'default', name: `${first.metadata.name}-gate` })).toBeUndefined());
    const gate2 = await eventually(() => compute.get({ namespace: 'default', name: `${first.metadata.name}-gate2` }));
    expect(gate2['data']).toEqual({ fqdn: 'staged.corp.com' });
    await running.stop('SIGKILL');
    await compute.mergePatch({ namespace: 'default', name: `${first.metadata.name}-gate2` }, { data: { go: 'yes' } });
    running = await broker();

    // CutoverInProgress: the destination is still Provisioning
    await inState('CutoverInProgress');
    expect(statusOf(await certs.get({ namespace: 'default', name: 'staged' }))).toBe('Available');
    await running.stop('SIGKILL');
    // A finalizer on the origin copy holds the migration in CutoverCompleted for the next kill.
    const originCopies = world.inCluster(originCluster, GVR.certificates);
    await originCopies.mergePatch({ namespace: 'default', name: 'staged' }, { metadata: { finalizers: ['test.platform-mesh.io/hold'] } });
    world.runner('externalca', 'certificates').holdProvisioning = false;
    world.runner('externalca', 'certificates').resync();
    running = await broker();

    // CutoverCompleted: the consumer is served by the destination; the origin copy is being deleted
    await inState('CutoverCompleted');
    await eventually(async () =>
      expect((await originCopies.get({ namespace: 'default', name: 'staged' })).metadata.deletionTimestamp).toBeDefined(),
    );
    await running.stop('SIGKILL');
    await originCopies.mergePatch({ namespace: 'default', name: 'staged' }, { metadata: { finalizers: null } });
    running = await broker();

    await eventually(async () => expect(await migrationOf()).toBeUndefined(), { timeoutMs: 90_000 });
    const assignments = (await world.assignments().list()).items.filter((a) => a.spec.name === 'staged');
    expect(assignments).toHaveLength(1);
    expect(assignments[0]!.status?.providerCluster).toBe(external.cluster);
    const destCluster = await world.stagingClusterOf(consumer, 'certificates', 'staged');
    expect((await world.inCluster(destCluster, GVR.certificates).list()).items.filter((c) => c.metadata.name === 'staged')).toHaveLength(1);
    expect(await originCopies.find({ namespace: 'default', name: 'staged' })).toBeUndefined();
    expect((await compute.list({ labelSelector: `broker.platform-mesh.io/migration-name=${first.metadata.name}` })).items).toEqual([]);
    const secret = await world.inCluster(consumer.path, SECRETS).get({ namespace: 'default', name: 'staged-credentials' });
    expect(decodeSecret(secret, 'issuer')).toBe(external.path);
    expect(statusOf(await certs.get({ namespace: 'default', name: 'staged' }))).toBe('Available');
  });
});
