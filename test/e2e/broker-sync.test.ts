import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReadyWorkspace } from '../../src/kcp-client-ts/workspaces.ts';
import type { KubeObject } from '../../src/kcp-client-ts/types.ts';
import { eventually } from '../harness/eventually.ts';
import { BrokerWorld } from '../harness/broker-world.ts';

const SECRETS = { group: '', version: 'v1', resource: 'secrets' };
const decode = (secret: KubeObject, key: string): string => Buffer.from((secret['data'] as Record<string, string>)[key] ?? '', 'base64').toString();

describe('broker core: a Certificate placed, mirrored down and reflected up', () => {
  let world: BrokerWorld;
  let consumer: ReadyWorkspace;
  let internal: ReadyWorkspace;

  beforeAll(async () => {
    world = await BrokerWorld.create('sync');
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
    const assignment = await eventually(async () => {
      const a = await world.assignmentOf(consumer, 'certificates', 'app');
      expect(a).toBeDefined();
      return a!;
    });
    expect(assignment.spec.providerCluster).toBe(internal.cluster);
    expect(assignment.status?.placement?.candidates.find((c) => c.acceptAPI === 'external-certs')?.reason).toContain('does not end with "corp.com"');
    const staging = await world.stagingClusterOf(consumer, 'certificates', 'app');
    const copy = await eventually(() => world.inCluster(staging, { group: 'example.platform-mesh.io', version: 'v1alpha1', resource: 'certificates' }).get({ namespace: 'default', name: 'app' }));
    expect(copy['spec']).toEqual({ fqdn: 'app.internal.corp' });
    expect(copy.metadata.annotations?.['broker.platform-mesh.io/consumer-cluster']).toBe(consumer.cluster);
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
    expect(decode(secret, 'issuer')).toBe(internal.path);
    expect(JSON.parse(decode(secret, 'spec'))).toEqual({ fqdn: 'app.internal.corp' });
    expect(secret.metadata.labels?.['broker.platform-mesh.io/owner']).toMatch(/^[0-9a-f]{20}$/);
  });

  it('forwards a spec update without migrating, removes a removed field, and the Secret follows', async () => {
    const certs = world.objects(consumer.path, 'certificates');
    const staging = await world.stagingClusterOf(consumer, 'certificates', 'app');
    const stagingCerts = world.inCluster(staging, { group: 'example.platform-mesh.io', version: 'v1alpha1', resource: 'certificates' });
    let obj = await certs.get({ namespace: 'default', name: 'app' });
    await certs.update({ ...obj, spec: { fqdn: 'app.internal.corp', duration: '24h' } });
    await eventually(async () => expect((await stagingCerts.get({ namespace: 'default', name: 'app' }))['spec']).toEqual({ fqdn: 'app.internal.corp', duration: '24h' }));
    await eventually(async () => {
      const secret = await world.inCluster(consumer.path, SECRETS).get({ namespace: 'default', name: 'app-credentials' });
      expect(JSON.parse(decode(secret, 'spec'))).toEqual({ fqdn: 'app.internal.corp', duration: '24h' });
    });
    obj = await certs.get({ namespace: 'default', name: 'app' });
    await certs.update({ ...obj, spec: { fqdn: 'app.internal.corp' } });
    await eventually(async () => expect((await stagingCerts.get({ namespace: 'default', name: 'app' }))['spec']).toEqual({ fqdn: 'app.internal.corp' }));
    expect((await world.assignmentOf(consumer, 'certificates', 'app'))?.spec.providerCluster).toBe(internal.cluster);
  });
});
