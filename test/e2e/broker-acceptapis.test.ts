import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SECRETS } from '../../src/kcp-client-ts/types.ts';
import type { AcceptAPI } from '../../src/apis/types.ts';
import type { ReadyWorkspace } from '../../src/kcp-client-ts/workspaces.ts';
import { eventually } from '../harness/eventually.ts';
import { BrokerWorld } from '../harness/broker-world.ts';
import { kcpEnv } from '../harness/kcp-env.ts';

const condition = (a: AcceptAPI, type: string) => a.status?.conditions?.find((c) => c.type === type);

describe('AcceptAPIs: filters, priority, spread, verification and invalid input', () => {
  let world: BrokerWorld;
  let consumer: ReadyWorkspace;
  let p1: ReadyWorkspace;
  let p2: ReadyWorkspace;

  beforeAll(async () => {
    world = await BrokerWorld.create('accept', (await kcpEnv()).endpoint);
    [p1, p2, , consumer] = await Promise.all([
      world.provider('p1', ['vms', 'dnszones', 'certificates']),
      world.provider('p2', ['vms', 'dnszones', 'certificates']),
      world.provider('p3', ['certificates']),
      world.consumer('consumer', ['vms', 'dnszones', 'certificates']),
    ]);
    await Promise.all([
      world.accept('p1', 'arm-vms', { api: 'vms', filters: [{ key: 'arch', valueIn: ['arm64'] }] }),
      world.accept('p2', 'big-vms', { api: 'vms', filters: [{ key: 'memory', boundary: { min: 1024 } }] }),
      world.accept('p1', 'dns-low', { api: 'dnszones', priority: 0 }),
      world.accept('p2', 'dns-high', { api: 'dnszones', priority: 10 }),
      world.accept('p1', 'certs-1', { api: 'certificates' }),
      world.accept('p2', 'certs-2', { api: 'certificates' }),
      world.accept('p1', 'ghost', { api: 'certificates', apiExportName: 'does-not-exist', priority: 100 }),
    ]);
    await world.startBroker();
    await Promise.all(
      [
        ['p1', 'arm-vms'],
        ['p2', 'big-vms'],
        ['p1', 'dns-low'],
        ['p2', 'dns-high'],
        ['p1', 'certs-1'],
        ['p2', 'certs-2'],
      ].map(([p, n]) => world.waitAcceptAPIReady(p!, n!)),
    );
  });

  afterAll(async () => {
    await world?.cleanup();
  });

  it('routes VMs by valueIn and boundary filters', async () => {
    const vms = world.objects(consumer.path, 'vms');
    await vms.create(world.newObject('vms', 'arm', { arch: 'arm64', memory: 512 }));
    await vms.create(world.newObject('vms', 'big', { arch: 'x86_64', memory: 2048 }));
    await eventually(async () => expect((await world.assignmentOf(consumer, 'vms', 'arm'))?.spec.providerCluster).toBe(p1.cluster));
    await eventually(async () => expect((await world.assignmentOf(consumer, 'vms', 'big'))?.spec.providerCluster).toBe(p2.cluster));
    await eventually(async () =>
      expect((await vms.get({ namespace: 'default', name: 'big' }))['status']).toMatchObject({ status: 'Available' }),
    );
  });

  it('gives a cluster-scoped DNSZone to the higher priority, reflects it and cleans it up', async () => {
    const zones = world.objects(consumer.path, 'dnszones');
    await zones.create(world.newObject('dnszones', 'example-org', { domain: 'example.org', ttl: 300 }));
    await eventually(async () => {
      const a = await world.assignmentOf(consumer, 'dnszones', 'example-org');
      expect(a?.spec.providerCluster).toBe(p2.cluster);
      // The decision is recorded in spec first and its reasons in status by the next write.
      expect(a?.status?.placement?.reason).toContain('highest priority');
    });
    const staging = await world.stagingClusterOf(consumer, 'dnszones', 'example-org');
    const copy = await eventually(() =>
      world
        .inCluster(staging, { group: 'example.platform-mesh.io', version: 'v1alpha1', resource: 'dnszones' })
        .get({ name: 'example-org' }),
    );
    expect(copy.metadata.namespace).toBeUndefined();
    expect(copy['spec']).toEqual({ domain: 'example.org', ttl: 300 });
    await eventually(async () => expect((await zones.get({ name: 'example-org' }))['status']).toMatchObject({ status: 'Available' }));
    await eventually(() => world.inCluster(consumer.path, SECRETS).get({ namespace: 'default', name: 'example-org-credentials' }));

    await zones.delete({ name: 'example-org' });
    await eventually(async () => expect(await zones.find({ name: 'example-org' })).toBeUndefined());
    expect(
      await world
        .inCluster(staging, { group: 'example.platform-mesh.io', version: 'v1alpha1', resource: 'dnszones' })
        .find({ name: 'example-org' }),
    ).toBeUndefined();
    expect(await world.inCluster(consumer.path, SECRETS).find({ namespace: 'default', name: 'example-org-credentials' })).toBeUndefined();
    expect(await world.assignmentOf(consumer, 'dnszones', 'example-org')).toBeUndefined();
  });

  it('never makes an AcceptAPI for a missing export Ready, and never places on it', async () => {
    const ghost = await eventually(async () => {
      const a = await world.acceptAPIs('p1').get({ name: 'ghost' });
      expect(condition(a, 'BindingVerified')?.status).toBe('False');
      return a;
    });
    expect(condition(ghost, 'Ready')?.status).toBe('False');
    expect(condition(ghost, 'BindingVerified')?.message).toContain('does-not-exist');
    const certs = world.objects(consumer.path, 'certificates');
    for (let i = 0; i < 4; i++) await certs.create(world.newObject('certificates', `c${i}`, { fqdn: `c${i}.example.org` }));
    const providers = await eventually(async () => {
      const found = await Promise.all([0, 1, 2, 3].map((i) => world.assignmentOf(consumer, 'certificates', `c${i}`)));
      expect(found.every((a) => a !== undefined)).toBe(true);
      return found.map((a) => a!.spec.acceptAPIName);
    });
    expect(providers).not.toContain('ghost');
    // equal priority: spread over both providers
    expect(new Set(providers)).toEqual(new Set(['certs-1', 'certs-2']));
  });

  it('reports bad filters with Ready=False naming the filter, and keeps working', async () => {
    await world.accept('p1', 'bad-key', { api: 'certificates', filters: [{ key: 'spec.fqdn', suffix: '.corp' }] });
    // (boundary.min > boundary.max is refused by the schema: adversarial-bounds.test.ts)
    await world.accept('p1', 'bad-cel', { api: 'vms', filters: [{ key: 'memory', expression: 'self.memory >>> 1' }] });
    const expectations = { 'bad-key': 'spec.filters[0] (key "spec.fqdn")', 'bad-cel': 'expression does not compile' };
    for (const [name, text] of Object.entries(expectations)) {
      await eventually(async () => {
        const ready = condition(await world.acceptAPIs('p1').get({ name }), 'Ready');
        expect(ready?.status).toBe('False');
        expect(ready?.reason).toBe('InvalidFilter');
        expect(ready?.message).toContain(text);
      });
    }
    await world.objects(consumer.path, 'vms').create(world.newObject('vms', 'after-bad', { arch: 'arm64', memory: 256 }));
    await eventually(async () => expect((await world.assignmentOf(consumer, 'vms', 'after-bad'))?.spec.acceptAPIName).toBe('arm-vms'));
  });

  it('shares one verification workspace per provider export and releases it with the last AcceptAPI or on a spec change', async () => {
    const never = [{ key: 'fqdn', prefix: 'never-' }];
    await world.accept('p3', 'share-a', { api: 'certificates', filters: never });
    await world.accept('p3', 'share-b', { api: 'certificates', filters: never });
    const [a, b] = await Promise.all([world.waitAcceptAPIReady('p3', 'share-a'), world.waitAcceptAPIReady('p3', 'share-b')]);
    expect(a.status?.verificationWorkspace).toBe(b.status?.verificationWorkspace);
    // as in the Go project: the workspace's name; beyond it, the path
    const shared = a.status!.verificationWorkspace!;
    expect(shared).toMatch(/^verify-[0-9a-f]+$/);
    expect(a.status?.verificationWorkspacePath).toBe(`${world.paths.verificationRoot}:${shared}`);
    await world.acceptAPIs('p3').delete({ name: 'share-a' });
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(await world.workspaces.get(world.paths.verificationRoot, shared)).toBeDefined();

    const current = await world.acceptAPIs('p3').get({ name: 'share-b' });
    await world.acceptAPIs('p3').update({ ...current, spec: { ...current.spec, apiExportName: 'does-not-exist-either' } });
    await eventually(async () => expect(await world.workspaces.get(world.paths.verificationRoot, shared)).toBeUndefined(), {
      timeoutMs: 60_000,
    });
    const changed = await eventually(async () => {
      const now = await world.acceptAPIs('p3').get({ name: 'share-b' });
      expect(now.status?.verificationWorkspace).not.toBe(a.status?.verificationWorkspace);
      return now;
    });
    const replacement = changed.status!.verificationWorkspace!;
    await world.acceptAPIs('p3').delete({ name: 'share-b' });
    await eventually(async () => expect(await world.workspaces.get(world.paths.verificationRoot, replacement)).toBeUndefined(), {
      timeoutMs: 60_000,
    });
  });
});
