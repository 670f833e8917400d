import { writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { MIGRATION_GVR, type Migration } from '../../src/apis/types.ts';
import { KcpEndpoint } from '../../src/kcp-client-ts/endpoint.ts';
import { ApiError } from '../../src/kcp-client-ts/errors.ts';
import { ResourceClient } from '../../src/kcp-client-ts/resources.ts';
import { SECRETS } from '../../src/kcp-client-ts/types.ts';
import type { ReadyWorkspace } from '../../src/kcp-client-ts/workspaces.ts';
import { BrokerProcess } from '../harness/broker-process.ts';
import { BrokerWorld, decodeSecret, GVR, statusOf } from '../harness/broker-world.ts';
import { eventually } from '../harness/eventually.ts';
import { kcpEnv } from '../harness/kcp-env.ts';
import { brokerKubeconfigFrom, grantBrokerPermissions } from '../harness/least-privilege.ts';

describe('least privilege: the broker as a non-admin identity holding only deploy/kcp-permissions', () => {
  let world: BrokerWorld;
  let consumer: ReadyWorkspace;
  let internal: ReadyWorkspace;
  let external: ReadyWorkspace;
  let broker: BrokerProcess;
  let brokerKubeconfig: string;

  beforeAll(async () => {
    // The platform admin bootstraps and grants; providers grant bind on their exports.
    world = await BrokerWorld.create('leastpriv', (await kcpEnv()).endpoint);
    [internal, external, consumer] = await Promise.all([
      world.provider('internalca', ['certificates']),
      world.provider('externalca', ['certificates']),
      world.consumer('consumer', ['certificates']),
    ]);
    await grantBrokerPermissions(world, [internal, external]);
    await world.accept('internalca', 'internal-certs', { api: 'certificates', filters: [{ key: 'fqdn', suffix: 'internal.corp' }] });
    await world.accept('externalca', 'external-certs', { api: 'certificates', filters: [{ key: 'fqdn', suffix: 'corp.com' }] });

    brokerKubeconfig = await brokerKubeconfigFrom(inject('kcp').kubeconfig);
    broker = new BrokerProcess(brokerKubeconfig, world.paths, { RB_LEADER_ELECT: 'true' });
    await broker.start();
    await eventually(async () => expect(await broker.readyz()).toBe(200), { timeoutMs: 90_000 });
  });

  afterAll(async () => {
    await broker?.stop('SIGKILL');
    if (process.env['LEASTPRIV_LOGS']) await writeFile(process.env['LEASTPRIV_LOGS'], broker.logs.join('\n'));
    await world?.cleanup();
  });

  it('is not an admin: it cannot read a consumer workspace directly', async () => {
    const asBroker = await KcpEndpoint.fromKubeconfig({ path: brokerKubeconfig });
    try {
      const err = await new ResourceClient({ endpoint: asBroker, baseUrl: asBroker.workspaceUrl(consumer.path), gvr: SECRETS })
        .list()
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).status).toBe(403);
    } finally {
      await asBroker.close();
    }
  });

  it('verifies AcceptAPIs, places, syncs spec down and status and Secrets up, migrates and cleans up', async () => {
    await Promise.all([world.waitAcceptAPIReady('internalca', 'internal-certs'), world.waitAcceptAPIReady('externalca', 'external-certs')]);
    const certs = world.objects(consumer.path, 'certificates');
    await certs.create(world.newObject('certificates', 'app', { fqdn: 'app.internal.corp' }));
    await eventually(async () => expect(statusOf(await certs.get({ namespace: 'default', name: 'app' }))).toBe('Available'), {
      timeoutMs: 60_000,
    });
    const secret = await eventually(() => world.inCluster(consumer.path, SECRETS).get({ namespace: 'default', name: 'app-credentials' }));
    expect(decodeSecret(secret, 'issuer')).toBe(internal.path);
    const staging = await world.stagingClusterOf(consumer, 'certificates', 'app');
    expect((await world.inCluster(staging, GVR.certificates).get({ namespace: 'default', name: 'app' }))['spec']).toEqual({
      fqdn: 'app.internal.corp',
    });

    // migration (with a MigrationConfiguration stage deploying to compute)
    const configurations = new ResourceClient({
      endpoint: world.endpoint,
      baseUrl: world.endpoint.workspaceUrl(world.paths.coordination),
      gvr: { group: 'coord.broker.platform-mesh.io', version: 'v1alpha1', resource: 'migrationconfigurations' },
    });
    const CERT = { group: 'example.platform-mesh.io', version: 'v1alpha1', kind: 'Certificate' };
    await configurations.create({
      apiVersion: 'coord.broker.platform-mesh.io/v1alpha1',
      kind: 'MigrationConfiguration',
      metadata: { name: 'certs' },
      spec: {
        from: CERT,
        to: CERT,
        stages: [
          {
            name: 'note',
            templates: { note: { apiVersion: 'v1', kind: 'ConfigMap', data: { to: '${to.spec.fqdn}' } } },
            successConditions: ['note.data.to == "app.corp.com"'],
          },
        ],
      },
    });
    await certs.update({ ...(await certs.get({ namespace: 'default', name: 'app' })), spec: { fqdn: 'app.corp.com' } });
    await eventually(
      async () => {
        const s = await world.inCluster(consumer.path, SECRETS).get({ namespace: 'default', name: 'app-credentials' });
        expect(decodeSecret(s, 'issuer')).toBe(external.path);
      },
      { timeoutMs: 90_000 },
    );
    const migrations = new ResourceClient<Migration>({
      endpoint: world.endpoint,
      baseUrl: world.endpoint.workspaceUrl(world.paths.coordination),
      gvr: MIGRATION_GVR,
    });
    await eventually(async () => expect((await migrations.list()).items).toEqual([]), { timeoutMs: 60_000 });

    await certs.delete({ namespace: 'default', name: 'app' });
    await eventually(async () => expect(await certs.find({ namespace: 'default', name: 'app' })).toBeUndefined(), { timeoutMs: 60_000 });
    await eventually(async () => expect((await world.stagingWorkspaces().list()).items).toEqual([]), { timeoutMs: 60_000 });
    // Match the status as ApiError prints it (": 403 Forbidden ..."), not any "403": a port such as
    // 127.0.0.1:40345 in the "listening" line once made this fail.
    const forbidden = broker.logs.filter((l) => /: 403 |forbidden/i.test(l));
    expect(forbidden).toEqual([]);
  });
});
