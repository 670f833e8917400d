import { execFile as execFileCb } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ReadyWorkspace } from '../../src/kcp-client-ts/workspaces.ts';
import { SECRETS } from '../../src/kcp-client-ts/types.ts';
import { eventually } from '../harness/eventually.ts';
import { BrokerWorld, decodeSecret } from '../harness/broker-world.ts';
import { kcpEnv } from '../harness/kcp-env.ts';

const execFile = promisify(execFileCb);

describe('broker core: a Certificate placed, mirrored down and reflected up', () => {
  let world: BrokerWorld;
  let consumer: ReadyWorkspace;
  let internal: ReadyWorkspace;

  beforeAll(async () => {
    world = await BrokerWorld.create('sync', (await kcpEnv()).endpoint);
    internal = await world.provider('internalca', ['certificates']);
    await world.provider('externalca', ['certificates']);
    await world.accept('internalca', 'internal-certs', { api: 'certificates', filters: [{ key: 'fqdn', suffix: 'internal.corp' }] });
    await world.accept('externalca', 'external-certs', { api: 'certificates', filters: [{ key: 'fqdn', suffix: 'corp.com' }] });
    consumer = await world.consumer('consumer-a', ['certificates']);
    await world.startBroker();
    await world.waitAcceptAPIReady('internalca', 'internal-certs');
    await world.waitAcceptAPIReady('externalca', 'external-certs');
  });

  afterAll(async () => {
    await world?.cleanup();
  });

  it('copies the object into the matching provider staging workspace with the same namespace/name and spec', async () => {
    await world.objects(consumer.path, 'certificates').create(world.newObject('certificates', 'app', { fqdn: 'app.internal.corp' }));
    // The Assignment is created first (intent), its placement recorded by the next write.
    const assignment = await eventually(async () => {
      const a = await world.assignmentOf(consumer, 'certificates', 'app');
      expect(a?.status?.placement).toBeDefined();
      return a!;
    });
    expect(assignment.spec.providerCluster).toBe(internal.cluster);
    expect(assignment.status?.placement?.candidates.find((c) => c.acceptAPI === 'external-certs')?.reason).toContain(
      'does not end with "corp.com"',
    );
    const staging = await world.stagingClusterOf(consumer, 'certificates', 'app');
    const copy = await eventually(() =>
      world
        .inCluster(staging, { group: 'example.platform-mesh.io', version: 'v1alpha1', resource: 'certificates' })
        .get({ namespace: 'default', name: 'app' }),
    );
    expect(copy['spec']).toEqual({ fqdn: 'app.internal.corp' });
    expect(copy.metadata.annotations?.['broker.platform-mesh.io/consumer-cluster']).toBe(consumer.cluster);
    // the name alone, as the Go project writes it: the namespace is the copy's own
    expect(copy.metadata.annotations?.['broker.platform-mesh.io/consumer-name']).toBe('app');
    expect(copy.metadata.finalizers ?? []).toEqual([]);
  });

  it('reflects the provider status and its Secret into the consumer workspace', async () => {
    const consumerObj = await eventually(async () => {
      const obj = await world.objects(consumer.path, 'certificates').get({ namespace: 'default', name: 'app' });
      expect((obj['status'] as { status?: string } | undefined)?.status).toBe('Available');
      return obj;
    });
    expect(consumerObj.metadata.finalizers).toContain('broker.platform-mesh.io/finalizer');
    const secret = await eventually(() => world.inCluster(consumer.path, SECRETS).get({ namespace: 'default', name: 'app-credentials' }));
    expect(decodeSecret(secret, 'issuer')).toBe(internal.path);
    expect(JSON.parse(decodeSecret(secret, 'spec'))).toEqual({ fqdn: 'app.internal.corp' });
    expect(secret.metadata.labels?.['broker.platform-mesh.io/owner']).toMatch(/^[0-9a-f]{20}$/);
  });

  it('forwards a spec update without migrating, removes a removed field, and the Secret follows', async () => {
    const certs = world.objects(consumer.path, 'certificates');
    const staging = await world.stagingClusterOf(consumer, 'certificates', 'app');
    const stagingCerts = world.inCluster(staging, { group: 'example.platform-mesh.io', version: 'v1alpha1', resource: 'certificates' });
    let obj = await certs.get({ namespace: 'default', name: 'app' });
    await certs.update({ ...obj, spec: { fqdn: 'app.internal.corp', duration: '24h' } });
    await eventually(async () =>
      expect((await stagingCerts.get({ namespace: 'default', name: 'app' }))['spec']).toEqual({
        fqdn: 'app.internal.corp',
        duration: '24h',
      }),
    );
    await eventually(async () => {
      const secret = await world.inCluster(consumer.path, SECRETS).get({ namespace: 'default', name: 'app-credentials' });
      expect(JSON.parse(decodeSecret(secret, 'spec'))).toEqual({ fqdn: 'app.internal.corp', duration: '24h' });
    });
    obj = await certs.get({ namespace: 'default', name: 'app' });
    await certs.update({ ...obj, spec: { fqdn: 'app.internal.corp' } });
    await eventually(async () =>
      expect((await stagingCerts.get({ namespace: 'default', name: 'app' }))['spec']).toEqual({ fqdn: 'app.internal.corp' }),
    );
    expect((await world.assignmentOf(consumer, 'certificates', 'app'))?.spec.providerCluster).toBe(internal.cluster);
  });
});

describe('broker core: routing, sharing, isolation and deletion', () => {
  let world: BrokerWorld;
  let consumerA: ReadyWorkspace;
  let consumerB: ReadyWorkspace;
  let internal: ReadyWorkspace;
  let external: ReadyWorkspace;
  const CERTS = { group: 'example.platform-mesh.io', version: 'v1alpha1', resource: 'certificates' };

  beforeAll(async () => {
    world = await BrokerWorld.create('routing', (await kcpEnv()).endpoint);
    [internal, external, consumerA, consumerB] = await Promise.all([
      world.provider('internalca', ['certificates']),
      world.provider('externalca', ['certificates']),
      world.consumer('consumer-a', ['certificates']),
      world.consumer('consumer-b', ['certificates']),
    ]);
    await world.accept('internalca', 'internal-certs', { api: 'certificates', filters: [{ key: 'fqdn', suffix: 'internal.corp' }] });
    await world.accept('externalca', 'external-certs', { api: 'certificates', filters: [{ key: 'fqdn', suffix: 'corp.com' }] });
    await world.startBroker();
    await Promise.all([world.waitAcceptAPIReady('internalca', 'internal-certs'), world.waitAcceptAPIReady('externalca', 'external-certs')]);
  });

  afterAll(async () => {
    await world?.cleanup();
  });

  it('routes *.corp.com to the external provider, in a non-default namespace created in staging', async () => {
    const namespaces = world.inCluster(consumerA.path, { group: '', version: 'v1', resource: 'namespaces' });
    await namespaces.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-x' } });
    await world.objects(consumerA.path, 'certificates').create(world.newObject('certificates', 'web', { fqdn: 'web.corp.com' }, 'team-x'));
    const staging = await world.stagingClusterOf(consumerA, 'certificates', 'web', 'team-x');
    expect((await world.assignmentOf(consumerA, 'certificates', 'web', 'team-x'))?.spec.providerCluster).toBe(external.cluster);
    await eventually(() => world.inCluster(staging, { group: '', version: 'v1', resource: 'namespaces' }).get({ name: 'team-x' }));
    const copy = await eventually(() => world.inCluster(staging, CERTS).get({ namespace: 'team-x', name: 'web' }));
    expect(copy['spec']).toEqual({ fqdn: 'web.corp.com' });
    const secret = await eventually(() => world.inCluster(consumerA.path, SECRETS).get({ namespace: 'team-x', name: 'web-credentials' }));
    expect(decodeSecret(secret, 'issuer')).toBe(external.path);
  });

  it('binds the provider export in staging accepting only its Secret and ConfigMap claims, rejecting the rest', async () => {
    const staging = await world.stagingClusterOf(consumerA, 'certificates', 'web', 'team-x');
    const bindings = await world.inCluster(staging, { group: 'apis.kcp.io', version: 'v1alpha2', resource: 'apibindings' }).list();
    const binding = bindings.items.find((b) => b.metadata.name === 'certificates');
    const claims = (binding!['spec'] as { permissionClaims: { resource: string; verbs: string[]; state: string }[] }).permissionClaims;
    expect(claims.map((c) => `${c.resource}:${c.verbs.join(',')}:${c.state}`).sort()).toEqual([
      'configmaps:*:Accepted',
      'events:*:Rejected',
      'namespaces:get,list,watch,create:Rejected',
      'secrets:*:Accepted',
    ]);
    expect((binding!['status'] as { phase: string }).phase).toBe('Bound');
  });

  it('creates nothing when no AcceptAPI matches, and says why in an Event', async () => {
    await world.objects(consumerA.path, 'certificates').create(world.newObject('certificates', 'nomatch', { fqdn: 'app.example.org' }));
    const event = await eventually(async () => {
      const found = (await world.events(consumerA.path)).find(
        (e) => e['reason'] === 'NoMatchingProvider' && (e['involvedObject'] as { name: string }).name === 'nomatch',
      );
      expect(found).toBeDefined();
      return found!;
    });
    expect(event['message']).toContain('internal-certs');
    expect(event['message']).toContain('does not end with "internal.corp"');
    expect(event['message']).toContain('does not end with "corp.com"');
    expect(await world.assignmentOf(consumerA, 'certificates', 'nomatch')).toBeUndefined();
    const staging = await world.stagingWorkspaces().list();
    expect(
      staging.items.filter((s) => s.spec.consumerCluster === consumerA.cluster && s.spec.providerCluster === internal.cluster),
    ).toHaveLength(0);
    await world.objects(consumerA.path, 'certificates').delete({ namespace: 'default', name: 'nomatch' });
  });

  it('keeps the same namespace/name in two consumers independent, each with only its own Secret', async () => {
    for (const consumer of [consumerA, consumerB]) {
      await world
        .objects(consumer.path, 'certificates')
        .create(world.newObject('certificates', 'same', { fqdn: `${consumer === consumerA ? 'a' : 'b'}.internal.corp` }));
    }
    const [stagingA, stagingB] = await Promise.all([
      world.stagingClusterOf(consumerA, 'certificates', 'same'),
      world.stagingClusterOf(consumerB, 'certificates', 'same'),
    ]);
    expect(stagingA).not.toBe(stagingB);
    for (const [consumer, fqdn] of [
      [consumerA, 'a.internal.corp'],
      [consumerB, 'b.internal.corp'],
    ] as const) {
      const secret = await eventually(() =>
        world.inCluster(consumer.path, SECRETS).get({ namespace: 'default', name: 'same-credentials' }),
      );
      expect(JSON.parse(decodeSecret(secret, 'spec'))).toEqual({ fqdn });
    }
    expect((await world.inCluster(stagingA, CERTS).get({ namespace: 'default', name: 'same' }))['spec']).toEqual({
      fqdn: 'a.internal.corp',
    });
    // consumer-b never got consumer-a's "web" Secret
    expect(await world.inCluster(consumerB.path, SECRETS).find({ namespace: 'team-x', name: 'web-credentials' })).toBeUndefined();
  });

  it('watches every staging workspace of a provider export through one staging view: more staging workspaces, no more watches', async () => {
    const stagingWatches = (): { informers: string[]; watches: number } => {
      const staging = world
        .broker!.informers.stats()
        .filter((s) => ['staging certificates', 'staging secrets', 'staging configmaps'].includes(s.family));
      return { informers: staging.map((s) => s.name).sort(), watches: staging.reduce((n, s) => n + s.watches, 0) };
    };
    const before = stagingWatches();
    // Two views so far (one per provider export), each watching copies, Secrets and ConfigMaps on the one shard.
    expect(before.informers).toHaveLength(6);
    expect(before.watches).toBe(6);
    const workspacesBefore = (await world.stagingWorkspaces().list()).items.length;
    const more = await Promise.all([world.consumer('consumer-c', ['certificates']), world.consumer('consumer-d', ['certificates'])]);
    for (const consumer of more) {
      await world.objects(consumer.path, 'certificates').create(world.newObject('certificates', 'extra', { fqdn: 'extra.internal.corp' }));
    }
    for (const consumer of more) {
      const secret = await eventually(
        () => world.inCluster(consumer.path, SECRETS).get({ namespace: 'default', name: 'extra-credentials' }),
        {
          timeoutMs: 90_000,
        },
      );
      expect(decodeSecret(secret, 'issuer')).toBe(internal.path);
    }
    expect((await world.stagingWorkspaces().list()).items.length).toBe(workspacesBefore + 2);
    expect(stagingWatches()).toEqual(before);
    // The view is the broker's APIExport in the staging root, bound in each staging workspace.
    const staging = await world.stagingClusterOf(more[0]!, 'certificates', 'extra');
    const bindings = await world.inCluster(staging, { group: 'apis.kcp.io', version: 'v1alpha2', resource: 'apibindings' }).list();
    const view = bindings.items.find((b) => b.metadata.name?.startsWith('view-'));
    expect((view!['spec'] as { reference: { export: unknown } }).reference.export).toEqual({
      path: world.paths.stagingRoot,
      name: view!.metadata.name,
    });
  }, 180_000);

  it('shares one staging workspace between two objects; it survives the first deletion and goes with the last', async () => {
    const certs = world.objects(consumerA.path, 'certificates');
    await certs.create(world.newObject('certificates', 'second', { fqdn: 'second.internal.corp' }));
    const [first, second] = await Promise.all([
      world.stagingClusterOf(consumerA, 'certificates', 'same'),
      world.stagingClusterOf(consumerA, 'certificates', 'second'),
    ]);
    expect(second).toBe(first);
    await eventually(() => world.inCluster(consumerA.path, SECRETS).get({ namespace: 'default', name: 'second-credentials' }));

    await certs.delete({ namespace: 'default', name: 'second' });
    await eventually(async () => expect(await certs.find({ namespace: 'default', name: 'second' })).toBeUndefined());
    expect(await world.inCluster(first, CERTS).find({ namespace: 'default', name: 'second' })).toBeUndefined();
    expect(await world.inCluster(consumerA.path, SECRETS).find({ namespace: 'default', name: 'second-credentials' })).toBeUndefined();
    expect(await world.assignmentOf(consumerA, 'certificates', 'second')).toBeUndefined();
    expect(await world.inCluster(first, CERTS).find({ namespace: 'default', name: 'same' })).toBeDefined();

    const swName = (await world.assignmentOf(consumerA, 'certificates', 'same'))?.status?.stagingWorkspace;
    await certs.delete({ namespace: 'default', name: 'same' });
    await eventually(async () => expect(await certs.find({ namespace: 'default', name: 'same' })).toBeUndefined());
    await eventually(async () => expect(await world.stagingWorkspaces().find({ name: swName! })).toBeUndefined());
    expect(await world.workspaces.get(world.paths.stagingRoot, swName!)).toBeUndefined();
    // consumer-b's object of the same name is untouched
    expect((await world.objects(consumerB.path, 'certificates').get({ namespace: 'default', name: 'same' }))['status']).toMatchObject({
      status: 'Available',
    });
  });

  it('shows a pending object and why in kubectl get, and clears it once a provider takes the object', async () => {
    const certs = world.objects(consumerA.path, 'certificates');
    await certs.create(world.newObject('certificates', 'waiting', { fqdn: 'shop.example.org' }));
    const get = async (): Promise<string> =>
      (
        await execFile(
          'kubectl',
          ['get', 'certificates', 'waiting', '-n', 'default', '--server', `${world.endpoint.serverOrigin}/clusters/${consumerA.path}`],
          {
            env: { ...process.env, KUBECONFIG: inject('kcp').kubeconfig },
            encoding: 'utf8',
          },
        )
      ).stdout;
    const table = await eventually(async () => {
      const out = await get();
      expect(out).toContain('NoMatchingProvider');
      return out;
    });
    expect(table.split('\n')[0]).toMatch(/^NAME\s+FQDN\s+STATUS\s+PENDING\s+AGE/);
    const pending = ((await certs.get({ namespace: 'default', name: 'waiting' }))['status'] as { conditions: Record<string, string>[] })
      .conditions[0]!;
    expect(pending).toMatchObject({ type: 'BrokerPlaced', status: 'False', reason: 'NoMatchingProvider' });
    expect(pending['message']).toContain('no AcceptAPI matches (2 considered)');

    // The consumer asks for a name a provider accepts: placed, served, and nothing pending any more.
    const waiting = await certs.get({ namespace: 'default', name: 'waiting' });
    await certs.update({ ...waiting, spec: { fqdn: 'shop.internal.corp' } });
    await eventually(async () => {
      const out = (await get()).split('\n')[1] ?? '';
      expect(out).toMatch(/^waiting\s+shop\.internal\.corp\s+Available\s+\d/);
      expect(out).not.toContain('NoMatchingProvider');
    });
    await certs.delete({ namespace: 'default', name: 'waiting' });
    await eventually(async () => expect(await world.assignmentOf(consumerA, 'certificates', 'waiting')).toBeUndefined());
  });
});
