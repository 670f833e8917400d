import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AcceptAPI } from '../../src/apis/types.ts';
import { SECRETS, type KubeObject } from '../../src/kcp-client-ts/types.ts';
import type { ReadyWorkspace } from '../../src/kcp-client-ts/workspaces.ts';
import { eventually } from '../harness/eventually.ts';
import { BrokerWorld, decodeSecret, GVR, statusOf } from '../harness/broker-world.ts';
import { goManifest } from '../harness/go-manifests.ts';
import { kcpEnv } from '../harness/kcp-env.ts';

/** The standalone generation's kcp-certs manifests (see test/harness/go-manifests.ts: ours, or the published ones). */
const INTERNALCA_ACCEPTAPI = [
  'standalone-internalca-acceptapi.yaml',
  'standalone__examples__kcp-certs__README.md__heredoc1_internalca-acceptapi.yaml',
] as const;
const EXTERNALCA_ACCEPTAPI = [
  'standalone-externalca-acceptapi.yaml',
  'standalone__examples__kcp-certs__README.md__heredoc2_externalca-acceptapi.yaml',
] as const;
const CERTIFICATE = ['standalone-cert.yaml', 'standalone__examples__kcp-certs__cert.yaml'] as const;
/** The name both standalone AcceptAPIs carry (each in its own provider workspace). */
const NAME = 'certificates.example.platform-mesh.io';

/** One manifest, applied unchanged. */
const published = <T extends KubeObject>([fixture, upstream]: readonly [string, string]): T => goManifest<T>(fixture, upstream);

const condition = (a: AcceptAPI, type: string) => a.status?.conditions?.find((c) => c.type === type);

describe("the standalone generation's kcp-certs AcceptAPIs (export named by annotation) apply unchanged and place objects", () => {
  let world: BrokerWorld;
  let consumer: ReadyWorkspace;
  let internal: ReadyWorkspace;

  beforeAll(async () => {
    world = await BrokerWorld.create('standalone', (await kcpEnv()).endpoint);
    [internal, , consumer] = await Promise.all([
      world.provider('internalca', ['certificates']),
      world.provider('externalca', ['certificates']),
      world.consumer('consumer', ['certificates']),
    ]);
    await world.acceptAPIs('internalca').create(published<AcceptAPI>(INTERNALCA_ACCEPTAPI));
    await world.acceptAPIs('externalca').create(published<AcceptAPI>(EXTERNALCA_ACCEPTAPI));
    await world.startBroker();
  });

  afterAll(async () => {
    await world?.cleanup();
  });

  it('verifies both through the annotated export and says the annotation is deprecated', async () => {
    for (const provider of ['internalca', 'externalca']) {
      const a = await world.waitAcceptAPIReady(provider, NAME);
      expect(a.spec.apiExportName).toBeUndefined();
      expect(a.metadata.annotations?.['broker.platform-mesh.io/kcp-apiexport-name']).toBe('certificates');
      expect(condition(a, 'BindingVerified')?.message).toContain('APIExport certificates');
      expect(condition(a, 'Deprecated')).toMatchObject({
        status: 'True',
        reason: 'APIExportNameAnnotation',
        message: expect.stringContaining('set spec.apiExportName: certificates'),
      });
      expect(a.status?.verificationWorkspace).toMatch(/^verify-[0-9a-f]+$/);
      expect(a.status?.verificationWorkspacePath).toBe(`${world.paths.verificationRoot}:${a.status?.verificationWorkspace}`);
    }
  });

  it("places the standalone Certificate (app.internal.corp) on internalca by its suffix filter, and brings back that provider's Secret", async () => {
    const certs = world.objects(consumer.path, 'certificates');
    const cert = published(CERTIFICATE);
    await certs.create({ ...cert, metadata: { ...cert.metadata, namespace: 'default' } }); // kubectl's default namespace
    const name = cert.metadata.name!;
    const assignment = await eventually(async () => {
      const a = await world.assignmentOf(consumer, 'certificates', name);
      expect(a?.status?.phase).toBe('Bound');
      return a!;
    });
    expect(assignment.spec).toMatchObject({ providerCluster: internal.cluster, acceptAPIName: NAME });
    expect(assignment.status?.apiExportName).toBe('certificates');
    await eventually(async () => expect(statusOf(await certs.get({ namespace: 'default', name }))).toBe('Available'));
    const secret = await eventually(() =>
      world.inCluster(consumer.path, SECRETS).get({ namespace: 'default', name: `${name}-credentials` }),
    );
    expect(decodeSecret(secret, 'issuer')).toBe(internal.path);
    const copy = await world.inCluster(await world.stagingClusterOf(consumer, 'certificates', name), GVR.certificates).get({
      namespace: 'default',
      name,
    });
    expect(copy.metadata.annotations).toMatchObject({
      'broker.platform-mesh.io/consumer-cluster': consumer.cluster,
      'broker.platform-mesh.io/consumer-name': name,
    });
  });

  it('is not Ready when neither spec.apiExportName nor the annotation names an export, and says which field to set', async () => {
    const { metadata: _published, ...rest } = published<AcceptAPI>(EXTERNALCA_ACCEPTAPI);
    await world.acceptAPIs('externalca').create({ ...rest, metadata: { name: 'nameless' } });
    await eventually(async () => {
      const ready = condition(await world.acceptAPIs('externalca').get({ name: 'nameless' }), 'Ready');
      expect(ready).toMatchObject({ status: 'False', reason: 'MissingAPIExportName' });
      expect(ready?.message).toContain('spec.apiExportName is required');
    });
  });

  it('drops the Deprecated condition once the provider sets spec.apiExportName, and stays Ready', async () => {
    const current = await world.acceptAPIs('internalca').get({ name: NAME });
    await world.acceptAPIs('internalca').update({ ...current, spec: { ...current.spec, apiExportName: 'certificates' } });
    await eventually(async () => {
      const a = await world.acceptAPIs('internalca').get({ name: NAME });
      expect(condition(a, 'Deprecated')).toBeUndefined();
      expect(condition(a, 'Ready')?.status).toBe('True');
    });
  });
});
