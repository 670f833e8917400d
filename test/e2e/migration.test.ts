import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Informer } from '../../src/runtime/informer.ts';
import { ResourceClient } from '../../src/kcp-client-ts/resources.ts';
import { SECRETS, type KubeObject } from '../../src/kcp-client-ts/types.ts';
import type { ReadyWorkspace } from '../../src/kcp-client-ts/workspaces.ts';
import { MIGRATION_GVR, type Migration } from '../../src/apis/types.ts';
import { eventually } from '../harness/eventually.ts';
import { BrokerWorld, decodeSecret, GVR, statusOf } from '../harness/broker-world.ts';
import { kcpEnv } from '../harness/kcp-env.ts';

describe('migration: make-before-break when the serving provider stops accepting an object', () => {
  let world: BrokerWorld;
  let consumer: ReadyWorkspace;
  let internal: ReadyWorkspace;
  let external: ReadyWorkspace;
  const watchers = new AbortController();
  /** Every status and Secret the consumer ever saw for "app", in order. */
  const seenStatuses: (string | undefined)[] = [];
  const secretEvents: string[] = [];

  beforeAll(async () => {
    world = await BrokerWorld.create('migrate', (await kcpEnv()).endpoint);
    [internal, external, consumer] = await Promise.all([
      world.provider('internalca', ['certificates']),
      world.provider('externalca', ['certificates']),
      world.consumer('consumer', ['certificates']),
    ]);
    await world.accept('internalca', 'internal-certs', { api: 'certificates', filters: [{ key: 'fqdn', suffix: 'internal.corp' }] });
    await world.accept('externalca', 'external-certs', { api: 'certificates', filters: [{ key: 'fqdn', suffix: 'corp.com' }] });
    await world.startBroker();
    await Promise.all([world.waitAcceptAPIReady('internalca', 'internal-certs'), world.waitAcceptAPIReady('externalca', 'external-certs')]);
    const certs = new Informer<KubeObject>({ name: 'test certs', source: world.objects(consumer.path, 'certificates') });
    certs.onEvent((e) => {
      if (e.object.metadata.name === 'app' && e.type !== 'deleted') seenStatuses.push(statusOf(e.object));
    });
    const secrets = new Informer<KubeObject>({
      name: 'test secrets',
      source: new ResourceClient({ endpoint: world.endpoint, baseUrl: world.endpoint.workspaceUrl(consumer.path), gvr: SECRETS }),
    });
    secrets.onEvent((e) => {
      if (e.object.metadata.name === 'app-credentials') secretEvents.push(e.type);
    });
    void certs.run(watchers.signal);
    void secrets.run(watchers.signal);
    await Promise.all([certs.waitForSync(), secrets.waitForSync()]);
  });

  afterAll(async () => {
    watchers.abort();
    await world?.cleanup();
  });

  const migrations = (): ResourceClient<Migration> =>
    new ResourceClient<Migration>({
      endpoint: world.endpoint,
      baseUrl: world.endpoint.workspaceUrl(world.paths.coordination),
      gvr: MIGRATION_GVR,
    });

  it('moves app.internal.corp -> app.corp.com to the external provider without the consumer ever losing Available or its Secret', async () => {
    const certs = world.objects(consumer.path, 'certificates');
    await certs.create(world.newObject('certificates', 'app', { fqdn: 'app.internal.corp' }));
    await eventually(async () => expect(statusOf(await certs.get({ namespace: 'default', name: 'app' }))).toBe('Available'));
    const secret = await eventually(() => world.inCluster(consumer.path, SECRETS).get({ namespace: 'default', name: 'app-credentials' }));
    expect(decodeSecret(secret, 'issuer')).toBe(internal.path);
    const originCluster = await world.stagingClusterOf(consumer, 'certificates', 'app');
    const originSw = (await world.assignmentOf(consumer, 'certificates', 'app'))!.status!.stagingWorkspace!;

    // Hold the destination provider in Provisioning to look at the state in between.
    world.runner('externalca', 'certificates').holdProvisioning = true;
    const current = await certs.get({ namespace: 'default', name: 'app' });
    await certs.update({ ...current, spec: { fqdn: 'app.corp.com' } });
    const migration = await eventually(async () => {
      const list = await migrations().list();
      expect(list.items).toHaveLength(1);
      expect(list.items[0]!.status?.state).toBe('CutoverInProgress');
      return list.items[0]!;
    });
    expect(migration.spec.from.providerCluster).toBe(internal.cluster);
    expect(migration.spec.to.providerCluster).toBe(external.cluster);
    const destCluster = await eventually(async () => {
      const sw = await world.stagingWorkspaces().get({ name: migration.spec.stagingWorkspace });
      expect(sw.status?.phase).toBe('Ready');
      return sw.status!.clusterName!;
    });
    const destCopy = await eventually(() => world.inCluster(destCluster, GVR.certificates).get({ namespace: 'default', name: 'app' }));
    expect(destCopy['spec']).toEqual({ fqdn: 'app.corp.com' });
    // both copies exist; the origin is frozen at the old spec; the consumer still sees the origin
    const originCopy = await world.inCluster(originCluster, GVR.certificates).get({ namespace: 'default', name: 'app' });
    expect(originCopy['spec']).toEqual({ fqdn: 'app.internal.corp' });
    expect(statusOf(await certs.get({ namespace: 'default', name: 'app' }))).toBe('Available');
    expect(
      decodeSecret(await world.inCluster(consumer.path, SECRETS).get({ namespace: 'default', name: 'app-credentials' }), 'issuer'),
    ).toBe(internal.path);
    // a spec change mid-migration reaches the destination only; the origin copy gets no write
    const mid = await certs.get({ namespace: 'default', name: 'app' });
    await certs.update({ ...mid, spec: { fqdn: 'app.corp.com', duration: '1h' } });
    await eventually(async () =>
      expect((await world.inCluster(destCluster, GVR.certificates).get({ namespace: 'default', name: 'app' }))['spec']).toEqual({
        fqdn: 'app.corp.com',
        duration: '1h',
      }),
    );
    const originAfter = await world.inCluster(originCluster, GVR.certificates).get({ namespace: 'default', name: 'app' });
    expect(originAfter.metadata.resourceVersion).toBe(originCopy.metadata.resourceVersion);

    world.runner('externalca', 'certificates').holdProvisioning = false;
    world.runner('externalca', 'certificates').resync();
    await eventually(async () => {
      const s = await world.inCluster(consumer.path, SECRETS).get({ namespace: 'default', name: 'app-credentials' });
      expect(decodeSecret(s, 'issuer')).toBe(external.path);
    });
    await eventually(async () => expect((await migrations().list()).items).toHaveLength(0));
    await eventually(async () => expect(await world.stagingWorkspaces().find({ name: originSw })).toBeUndefined());
    expect(await world.workspaces.get(world.paths.stagingRoot, originSw)).toBeUndefined();
    const assignment = await world.assignmentOf(consumer, 'certificates', 'app');
    expect(assignment?.status?.providerCluster).toBe(external.cluster);
    expect(assignment?.status?.stagingWorkspace).toBe(migration.spec.stagingWorkspace);
    // the placement record names the provider serving now, not the first winner
    expect(assignment?.status?.placement).toMatchObject({
      winner: `external-certs (${external.cluster})`,
      reason: `migrated from internal-certs (${internal.cluster}) by ${migration.metadata.name}`,
    });

    const firstAvailable = seenStatuses.indexOf('Available');
    expect(firstAvailable).toBeGreaterThanOrEqual(0);
    expect(seenStatuses.slice(firstAvailable).every((s) => s === 'Available')).toBe(true);
    expect(secretEvents).not.toContain('deleted');
    const events = await world.events(consumer.path);
    const reasons = events.filter((e) => (e['involvedObject'] as { name: string }).name === 'app').map((e) => e['reason']);
    expect(reasons).toEqual(expect.arrayContaining(['Assigned', 'MigrationStarted', 'MigrationCompleted']));
  });

  it('migrates when the serving AcceptAPI is deleted, and stays put with an Event when nothing else matches', async () => {
    await world.accept('internalca', 'corp-fallback', {
      api: 'certificates',
      priority: -10,
      filters: [{ key: 'fqdn', suffix: 'corp.com' }],
    });
    await world.waitAcceptAPIReady('internalca', 'corp-fallback');
    await world.acceptAPIs('externalca').delete({ name: 'external-certs' });
    await eventually(
      async () => {
        const a = await world.assignmentOf(consumer, 'certificates', 'app');
        expect(a?.status?.acceptAPIName).toBe('corp-fallback');
        expect(a?.status?.providerCluster).toBe(internal.cluster);
      },
      { timeoutMs: 90_000 },
    );
    await eventually(async () => expect((await migrations().list()).items).toHaveLength(0));

    await world.acceptAPIs('internalca').delete({ name: 'corp-fallback' });
    const event = await eventually(async () => {
      const found = (await world.events(consumer.path)).find(
        (e) => e['reason'] === 'NoMatchingProvider' && String(e['message']).includes('stays where it is'),
      );
      expect(found).toBeDefined();
      return found!;
    });
    expect(event['message']).toContain('corp-fallback');
    expect((await world.assignmentOf(consumer, 'certificates', 'app'))?.status?.providerCluster).toBe(internal.cluster);
    expect((await migrations().list()).items).toHaveLength(0);
    expect(statusOf(await world.objects(consumer.path, 'certificates').get({ namespace: 'default', name: 'app' }))).toBe('Available');
  });

  it('aborts when the consumer deletes the object mid-migration: both copies, the Migration and both staging workspaces go', async () => {
    const consumer2 = await world.consumer('consumer-2', ['certificates']);
    await world.accept('externalca', 'external-certs', { api: 'certificates', filters: [{ key: 'fqdn', suffix: 'corp.com' }] });
    await world.waitAcceptAPIReady('externalca', 'external-certs');
    const certs = world.objects(consumer2.path, 'certificates');
    await certs.create(world.newObject('certificates', 'gone', { fqdn: 'gone.internal.corp' }));
    await eventually(async () => expect(statusOf(await certs.get({ namespace: 'default', name: 'gone' }))).toBe('Available'));
    const originSw = (await world.assignmentOf(consumer2, 'certificates', 'gone'))!.status!.stagingWorkspace!;
    world.runner('externalca', 'certificates').holdProvisioning = true;
    try {
      await certs.update({ ...(await certs.get({ namespace: 'default', name: 'gone' })), spec: { fqdn: 'gone.corp.com' } });
      const migration = await eventually(async () => {
        const m = (await migrations().list()).items.find((i) => i.spec.name === 'gone');
        expect(m?.status?.state).toBe('CutoverInProgress');
        return m!;
      });
      const destCluster = (await world.stagingWorkspaces().get({ name: migration.spec.stagingWorkspace })).status!.clusterName!;
      await eventually(() => world.inCluster(destCluster, GVR.certificates).get({ namespace: 'default', name: 'gone' }));
      await certs.delete({ namespace: 'default', name: 'gone' });
      await eventually(async () => expect(await certs.find({ namespace: 'default', name: 'gone' })).toBeUndefined());
      expect((await migrations().list()).items.filter((m) => m.spec.name === 'gone')).toHaveLength(0);
      expect(await world.assignmentOf(consumer2, 'certificates', 'gone')).toBeUndefined();
      expect(await world.inCluster(consumer2.path, SECRETS).find({ namespace: 'default', name: 'gone-credentials' })).toBeUndefined();
      for (const sw of [originSw, migration.spec.stagingWorkspace]) {
        await eventually(async () => expect(await world.workspaces.get(world.paths.stagingRoot, sw)).toBeUndefined());
      }
    } finally {
      world.runner('externalca', 'certificates').holdProvisioning = false;
    }
  });

  it('migrates when the provider changes its filters so that they no longer match', async () => {
    await world.accept('externalca', 'external-internal', {
      api: 'certificates',
      priority: -5,
      filters: [{ key: 'fqdn', suffix: 'internal.corp' }],
    });
    await world.waitAcceptAPIReady('externalca', 'external-internal');
    const certs = world.objects(consumer.path, 'certificates');
    await certs.create(world.newObject('certificates', 'filt', { fqdn: 'filt.internal.corp' }));
    await eventually(async () =>
      expect((await world.assignmentOf(consumer, 'certificates', 'filt'))?.status?.acceptAPIName).toBe('internal-certs'),
    );
    await eventually(async () => expect(statusOf(await certs.get({ namespace: 'default', name: 'filt' }))).toBe('Available'));
    const internalCerts = await world.acceptAPIs('internalca').get({ name: 'internal-certs' });
    await world.acceptAPIs('internalca').update({
      ...internalCerts,
      spec: {
        ...internalCerts.spec,
        filters: [
          { key: 'fqdn', suffix: 'internal.corp' },
          { key: 'fqdn', prefix: 'app.' },
        ],
      },
    });
    await eventually(
      async () => {
        const a = await world.assignmentOf(consumer, 'certificates', 'filt');
        expect(a?.status?.acceptAPIName).toBe('external-internal');
        expect(a?.status?.providerCluster).toBe(external.cluster);
      },
      { timeoutMs: 90_000 },
    );
    await eventually(async () => {
      const secret = await world.inCluster(consumer.path, SECRETS).get({ namespace: 'default', name: 'filt-credentials' });
      expect(decodeSecret(secret, 'issuer')).toBe(external.path);
    });
    expect(statusOf(await certs.get({ namespace: 'default', name: 'filt' }))).toBe('Available');
  });

  it('migrates when the serving AcceptAPI stops being Ready (its APIExport cannot be bound)', async () => {
    const certs = world.objects(consumer.path, 'certificates');
    await certs.create(world.newObject('certificates', 'nr', { fqdn: 'app.nr.internal.corp' }));
    await eventually(async () =>
      expect((await world.assignmentOf(consumer, 'certificates', 'nr'))?.status?.acceptAPIName).toBe('internal-certs'),
    );
    await eventually(async () => expect(statusOf(await certs.get({ namespace: 'default', name: 'nr' }))).toBe('Available'));
    const internalCerts = await world.acceptAPIs('internalca').get({ name: 'internal-certs' });
    // Filters unchanged: only verification fails, so "not Ready" is the one trigger.
    await world.acceptAPIs('internalca').update({ ...internalCerts, spec: { ...internalCerts.spec, apiExportName: 'no-such-export' } });
    await eventually(async () => {
      const ready = (await world.acceptAPIs('internalca').get({ name: 'internal-certs' })).status?.conditions?.find(
        (c) => c.type === 'Ready',
      );
      expect(ready?.status).toBe('False');
    });
    await eventually(
      async () => {
        const a = await world.assignmentOf(consumer, 'certificates', 'nr');
        expect(a?.status?.acceptAPIName).toBe('external-internal');
        expect(a?.status?.providerCluster).toBe(external.cluster);
      },
      { timeoutMs: 90_000 },
    );
    const started = (await world.events(consumer.path)).find(
      (e) => e['reason'] === 'MigrationStarted' && (e['involvedObject'] as { name: string }).name === 'nr',
    );
    expect(started?.['message']).toContain('is not Ready');
    expect(statusOf(await certs.get({ namespace: 'default', name: 'nr' }))).toBe('Available');
  });
});
