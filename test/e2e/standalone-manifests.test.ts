import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { AcceptAPI } from '../../src/apis/types.ts';
import { SECRETS, type KubeObject } from '../../src/kcp-client-ts/types.ts';
import type { ReadyWorkspace } from '../../src/kcp-client-ts/workspaces.ts';
import { eventually } from '../harness/eventually.ts';
import { BrokerWorld, decodeSecret, GVR, statusOf } from '../harness/broker-world.ts';
import { kcpEnv } from '../harness/kcp-env.ts';

/**
 * The Go project's published example manifests (reference data outside this repository, see its
 * README.md there); RB_UPSTREAM_EXAMPLES points elsewhere.
 */
const EXAMPLES = process.env['RB_UPSTREAM_EXAMPLES'] ?? '/work/shared/upstream-examples';
const INTERNALCA_ACCEPTAPI = 'standalone__examples__kcp-certs__README.md__heredoc1_internalca-acceptapi.yaml';
const EXTERNALCA_ACCEPTAPI = 'standalone__examples__kcp-certs__README.md__heredoc2_externalca-acceptapi.yaml';
const CERTIFICATE = 'standalone__examples__kcp-certs__cert.yaml';
/** The name both standalone AcceptAPIs carry (each in its own provider workspace). */
const NAME = 'certificates.example.platform-mesh.io';

/** One manifest, as published: read at test time, applied unchanged. */
const published = <T extends KubeObject>(file: string): T => {
  const path = join(EXAMPLES, file);
  if (!existsSync(path)) throw new Error(`${path} is missing: set RB_UPSTREAM_EXAMPLES to the directory of the Go project's examples`);
  return parse(readFileSync(path, 'utf8')) as T;
};

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
