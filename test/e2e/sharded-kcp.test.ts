/**
 * The sharded topology (hack/kcp/sharded-kcp.ts: a cache server, shards `root` and `shard-1`,
 * and a kcp-front-proxy), and the broker on it, as the least-privilege identity, with consumers, providers, staging and
 * verification workspaces pinned to different shards. This file starts and stops its own topology; the run's
 * single kcp from global-setup.ts is not used (KCP_KUBECONFIG=<any file> skips starting it when
 * this file runs alone).
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ShardInfo } from '../../hack/kcp/sharded-kcp.ts';
import { KcpEndpoint } from '../../src/kcp-client-ts/endpoint.ts';
import { ApiError } from '../../src/kcp-client-ts/errors.ts';
import { ResourceClient } from '../../src/kcp-client-ts/resources.ts';
import {
  type APIExport,
  type APIExportEndpointSlice,
  type APIResourceSchema,
  createKcpClient,
  unwrap,
} from '../../src/kcp-client-ts/typed-client.ts';
import type { KubeList, KubeObject } from '../../src/kcp-client-ts/types.ts';
import type { ReadyWorkspace } from '../../src/kcp-client-ts/workspaces.ts';
import { MIGRATION_GVR, MIGRATIONCONFIGURATION_GVR } from '../../src/apis/types.ts';
import { SECRETS } from '../../src/kcp-client-ts/types.ts';
import { bindExport, BrokerWorld, decodeSecret, GVR, statusOf } from '../harness/broker-world.ts';
import { eventually } from '../harness/eventually.ts';
import { brokerKubeconfigFrom, grantBrokerPermissions } from '../harness/least-privilege.ts';
import { uniqueName } from '../harness/names.ts';
import {
  ensureWorkspaceOnShard,
  type ShardedEnv,
  shardNameHash,
  shardOfWorkspace,
  shardSelector,
  startShardedKcpForFile,
} from '../harness/sharded-env.ts';

const GADGETS = { group: 'shards.example.test', version: 'v1', resource: 'gadgets' };

const gadgetSchema: APIResourceSchema = {
  apiVersion: 'apis.kcp.io/v1alpha1',
  kind: 'APIResourceSchema',
  metadata: { name: 'v1.gadgets.shards.example.test' },
  spec: {
    group: GADGETS.group,
    names: { kind: 'Gadget', listKind: 'GadgetList', plural: 'gadgets', singular: 'gadget' },
    scope: 'Namespaced',
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        schema: { type: 'object', properties: { spec: { type: 'object', properties: { shard: { type: 'string' } } } } },
      },
    ],
  },
};

const gadgetExport: APIExport = {
  apiVersion: 'apis.kcp.io/v1alpha2',
  kind: 'APIExport',
  metadata: { name: 'gadgets' },
  spec: { resources: [{ group: GADGETS.group, name: 'gadgets', schema: gadgetSchema.metadata!.name!, storage: { crd: {} } }] },
};

// One topology for the whole file: starting it takes about 40 s and 1 GiB.
let env: ShardedEnv;

beforeAll(async () => {
  env = await startShardedKcpForFile();
}, 240_000);

afterAll(async () => {
  await env?.stop();
});

describe('sharded kcp: cache server, shards root and shard-1, front-proxy', () => {
  let top: ReadyWorkspace;
  const onShard: Record<string, ReadyWorkspace> = {};

  beforeAll(async () => {
    top = await ensureWorkspaceOnShard(env.endpoint, 'root', uniqueName('sharded'), 'root');
  });

  const shard = (name: string): ShardInfo => env.shards.find((s) => s.name === name)!;

  it('registers one Shard per shard, labelled name=<shard>, with its own base URL and the front-proxy as external URL', async () => {
    const list = await env.endpoint.json<KubeList<KubeObject>>({
      method: 'GET',
      url: `${env.endpoint.workspaceUrl('root')}/apis/core.kcp.io/v1alpha1/shards`,
    });
    const seen = list.items.map((s) => ({
      name: s.metadata.name,
      label: s.metadata.labels?.['name'],
      spec: s['spec'] as { baseURL: string; externalURL: string; virtualWorkspaceURL: string },
    }));
    process.stderr.write(`Shards: ${JSON.stringify(seen)}\n`);
    expect(seen.map((s) => s.name).sort()).toEqual(['root', 'shard-1']);
    for (const s of seen) {
      expect(s.label).toBe(s.name);
      expect(s.spec.baseURL).toBe(shard(s.name!).origin);
      expect(s.spec.virtualWorkspaceURL).toBe(shard(s.name!).origin);
      expect(s.spec.externalURL).toBe(env.kcp.serverOrigin);
    }
  });

  it('schedules a workspace on the shard its spec.location selects', async () => {
    for (const name of ['root', 'shard-1']) {
      onShard[name] = await ensureWorkspaceOnShard(env.endpoint, top.path, `on-${name}`, name);
    }
    for (const [name, ws] of Object.entries(onShard)) {
      const leaf = ws.path.split(':').at(-1)!;
      // The parent's Workspace records the shard (as kcp's hash of its name) ...
      expect(await shardOfWorkspace(env.endpoint, top.path, leaf, env.kcp.shardNames)).toBe(name);
      const workspace = await env.workspaces.get(top.path, leaf);
      expect(workspace?.metadata?.annotations?.['internal.tenancy.kcp.io/shard']).toBe(shardNameHash(name));
      expect(workspace?.spec.URL).toBe(`${env.kcp.serverOrigin}/clusters/${ws.path}`);
      // ... and only that shard serves the logical cluster when asked directly.
      for (const other of env.kcp.shardNames) {
        const direct = env.shardEndpoint(other);
        const res = await direct.fetch(new Request(`${direct.workspaceUrl(ws.cluster)}/apis/core.kcp.io/v1alpha1/logicalclusters/cluster`));
        await res.arrayBuffer();
        if (other === name) expect(res.status, `${other} serves ${ws.cluster}`).toBe(200);
        else expect(res.status, `${other} does not serve ${ws.cluster}`).not.toBe(200);
      }
    }
  });

  it('routes /clusters/<path> through the front-proxy to the workspace of either shard', async () => {
    for (const [name, ws] of Object.entries(onShard)) {
      const client = createKcpClient(env.endpoint, env.endpoint.workspaceUrl(ws.path));
      const lc = unwrap(await client.GET('/apis/core.kcp.io/v1alpha1/logicalclusters/{name}', { params: { path: { name: 'cluster' } } }));
      expect(lc.metadata?.annotations?.['kcp.io/path'], `via front-proxy to ${name}`).toBe(ws.path);
      const configMaps = new ResourceClient({
        endpoint: env.endpoint,
        baseUrl: env.endpoint.workspaceUrl(ws.path),
        gvr: { group: '', version: 'v1', resource: 'configmaps' },
      });
      await configMaps.create({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'hello', namespace: 'default' },
        data: { shard: name },
      });
      const read = await configMaps.get({ namespace: 'default', name: 'hello' });
      expect((read['data'] as Record<string, string>)['shard']).toBe(name);
    }
  });

  it('lists in the APIExportEndpointSlice one virtual-workspace URL per shard that has a binding', async () => {
    // Provider on root, consumers on both shards.
    const provider = await ensureWorkspaceOnShard(env.endpoint, top.path, 'provider', 'root');
    const providerClient = createKcpClient(env.endpoint, env.endpoint.workspaceUrl(provider.path));
    unwrap(await providerClient.POST('/apis/apis.kcp.io/v1alpha1/apiresourceschemas', { body: gadgetSchema }));
    unwrap(await providerClient.POST('/apis/apis.kcp.io/v1alpha2/apiexports', { body: gadgetExport }));
    const readSlice = async (): Promise<APIExportEndpointSlice> =>
      unwrap(
        await providerClient.GET('/apis/apis.kcp.io/v1alpha1/apiexportendpointslices/{name}', { params: { path: { name: 'gadgets' } } }),
      );
    const urlOf = (s: ShardInfo): string => `${s.origin}/services/apiexport/${provider.cluster}/gadgets`;
    const endpoints = async (): Promise<string[]> => ((await readSlice()).status?.endpoints ?? []).map((e) => e.url).sort();

    // kcp creates the slice with the export; no binding yet, no endpoint.
    const initial = await eventually(readSlice, { timeoutMs: 30_000, intervalMs: 250 });
    process.stderr.write(`APIExportEndpointSlice before any binding: ${JSON.stringify(initial.status?.endpoints ?? [])}\n`);

    // A consumer on shard-1 only: shard-1's URL, although the export and its slice live on root.
    const consumerOnShard1 = await ensureWorkspaceOnShard(env.endpoint, top.path, 'consumer-shard-1', 'shard-1');
    await bindExport(env.endpoint, consumerOnShard1.path, provider.path, 'gadgets');
    const afterShard1 = await eventually(
      async () => {
        const urls = await endpoints();
        expect(urls).toEqual([urlOf(shard('shard-1'))]);
        return urls;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    process.stderr.write(`APIExportEndpointSlice endpoints with a binding on shard-1: ${JSON.stringify(afterShard1)}\n`);

    // A second consumer on root: one URL per shard.
    const consumerOnRoot = await ensureWorkspaceOnShard(env.endpoint, top.path, 'consumer-root', 'root');
    await bindExport(env.endpoint, consumerOnRoot.path, provider.path, 'gadgets');
    const both = await eventually(
      async () => {
        const urls = await endpoints();
        expect(urls).toEqual([urlOf(shard('root')), urlOf(shard('shard-1'))].sort());
        return urls;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    process.stderr.write(`APIExportEndpointSlice endpoints with bindings on root and shard-1: ${JSON.stringify(both)}\n`);

    // Each endpoint serves its own shard's consumers only: a wildcard list on one URL misses the other shard.
    for (const [consumer, name] of [
      [consumerOnRoot, 'root'],
      [consumerOnShard1, 'shard-1'],
    ] as const) {
      const gadgets = new ResourceClient({ endpoint: env.endpoint, baseUrl: env.endpoint.workspaceUrl(consumer.path), gvr: GADGETS });
      await gadgets.create({
        apiVersion: `${GADGETS.group}/${GADGETS.version}`,
        kind: 'Gadget',
        metadata: { name: `from-${name}`, namespace: 'default' },
        spec: { shard: name },
      });
    }
    for (const s of env.shards) {
      const wildcard = new ResourceClient({
        endpoint: env.endpoint,
        baseUrl: env.endpoint.virtualWorkspaceUrl(urlOf(s), '*'),
        gvr: GADGETS,
      });
      const names = await eventually(async () => {
        const list = await wildcard.list();
        const seen = list.items.map((o) => o.metadata.name).sort();
        expect(seen).toEqual([`from-${s.name}`]);
        return seen;
      });
      process.stderr.write(`wildcard list of gadgets at ${urlOf(s)}: ${JSON.stringify(names)}\n`);
    }
  });
});

describe('the broker on a sharded kcp: every shard served, slice endpoints followed live', () => {
  let world: BrokerWorld;
  let consumerOnRoot: ReadyWorkspace;
  let internal: ReadyWorkspace;
  let external: ReadyWorkspace;
  let brokerEndpoint: KcpEndpoint;
  /** What the broker logs (JSON lines, info and above). */
  const logs: Record<string, unknown>[] = [];
  const endpointChanges = (exportName: string): string[][] =>
    logs
      .filter((l) => l['msg'] === 'virtual workspace endpoints changed' && l['export'] === exportName)
      .map((l) => (l['endpoints'] as string[]).slice().sort());
  const certSecretIssuer = async (consumer: ReadyWorkspace, name: string): Promise<string> =>
    decodeSecret(await world.inCluster(consumer.path, SECRETS).get({ namespace: 'default', name: `${name}-credentials` }), 'issuer');

  beforeAll(async () => {
    world = await BrokerWorld.create('shardbroker', env.endpoint);
    // Providers and consumers pinned to different shards; the broker's staging workspaces on
    // shard-1 and its verification workspaces on root (flags --staging/--verification-shard-selector).
    [internal, external, consumerOnRoot] = await Promise.all([
      world.provider('internalca', ['certificates'], { location: shardSelector('shard-1') }),
      world.provider('externalca', ['certificates'], { location: shardSelector('root') }),
      world.consumer('consumer-root', ['certificates'], { location: shardSelector('root') }),
    ]);
    await world.accept('internalca', 'internal-certs', { api: 'certificates', filters: [{ key: 'fqdn', suffix: 'internal.corp' }] });
    await world.accept('externalca', 'external-certs', { api: 'certificates', filters: [{ key: 'fqdn', suffix: 'corp.com' }] });
    // The broker runs as the least-privilege identity (deploy/kcp-permissions), not as admin: its
    // grants live on whichever shard holds each workspace, and kcp must honour them across shards.
    await grantBrokerPermissions(world, [internal, external]);
    brokerEndpoint = await KcpEndpoint.fromKubeconfig({ path: await brokerKubeconfigFrom(env.kubeconfig) });
    const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
    await world.startBroker({
      logger,
      endpoint: brokerEndpoint,
      locations: { staging: shardSelector('shard-1'), verification: shardSelector('root') },
    });
    await Promise.all([world.waitAcceptAPIReady('internalca', 'internal-certs'), world.waitAcceptAPIReady('externalca', 'external-certs')]);
  }, 240_000);

  afterAll(async () => {
    await world?.cleanup();
    await brokerEndpoint?.close();
  });

  it('runs as an identity that is not an admin: it cannot read a consumer workspace directly', async () => {
    const err = await new ResourceClient({
      endpoint: brokerEndpoint,
      baseUrl: brokerEndpoint.workspaceUrl(consumerOnRoot.path),
      gvr: SECRETS,
    })
      .list()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(403);
  });

  it('places, syncs spec down and status and Secret up for a consumer on root, with staging on shard-1', async () => {
    const certs = world.objects(consumerOnRoot.path, 'certificates');
    await certs.create(world.newObject('certificates', 'app', { fqdn: 'app.internal.corp' }));
    await eventually(async () => expect(statusOf(await certs.get({ namespace: 'default', name: 'app' }))).toBe('Available'), {
      timeoutMs: 90_000,
    });
    expect(await eventually(() => certSecretIssuer(consumerOnRoot, 'app'))).toBe(internal.path);
    // The staging workspace is where the broker was told to put it.
    const sw = (await world.assignmentOf(consumerOnRoot, 'certificates', 'app'))!.status!.stagingWorkspace!;
    const [stagingParent, stagingLeaf] = [world.paths.stagingRoot, sw];
    expect(await shardOfWorkspace(env.endpoint, stagingParent, stagingLeaf, env.kcp.shardNames)).toBe('shard-1');
    const verification = (await world.acceptAPIs('internalca').get({ name: 'internal-certs' })).status?.verificationWorkspace;
    expect(verification).toBeTruthy();
    expect(await shardOfWorkspace(env.endpoint, world.paths.verificationRoot, verification!, env.kcp.shardNames)).toBe('root');
    // Spec down.
    await certs.update({
      ...(await certs.get({ namespace: 'default', name: 'app' })),
      spec: { fqdn: 'app.internal.corp', duration: '24h' },
    });
    const staging = await world.stagingClusterOf(consumerOnRoot, 'certificates', 'app');
    await eventually(async () =>
      expect((await world.inCluster(staging, GVR.certificates).get({ namespace: 'default', name: 'app' }))['spec']).toEqual({
        fqdn: 'app.internal.corp',
        duration: '24h',
      }),
    );
  });

  it('serves a consumer on the other shard as soon as its binding adds that shard to the slice, without a restart', async () => {
    // Until now every certificates binding was on root (consumer) or shard-1 (staging of the
    // provider export, not this one): the brokered export's slice lists root only.
    expect(endpointChanges('certificates').at(-1)).toHaveLength(1);
    const consumerOnShard1 = await world.consumer('consumer-shard-1', ['certificates'], { location: shardSelector('shard-1') });
    await eventually(async () => expect(endpointChanges('certificates').at(-1)).toHaveLength(2), { timeoutMs: 60_000 });
    const certs = world.objects(consumerOnShard1.path, 'certificates');
    await certs.create(world.newObject('certificates', 'far', { fqdn: 'far.internal.corp' }));
    await eventually(async () => expect(statusOf(await certs.get({ namespace: 'default', name: 'far' }))).toBe('Available'), {
      timeoutMs: 90_000,
    });
    expect(await eventually(() => certSecretIssuer(consumerOnShard1, 'far'))).toBe(internal.path);

    // The last binding on shard-1 goes (its object first, so nothing is left behind): shard-1
    // leaves the slice, the broker drops that watch, and root's consumers are still served.
    await certs.delete({ namespace: 'default', name: 'far' });
    await eventually(async () => expect(await certs.find({ namespace: 'default', name: 'far' })).toBeUndefined(), { timeoutMs: 60_000 });
    await world
      .inCluster(consumerOnShard1.path, { group: 'apis.kcp.io', version: 'v1alpha2', resource: 'apibindings' })
      .delete({ name: 'certificates' });
    await eventually(async () => expect(endpointChanges('certificates').at(-1)).toHaveLength(1), { timeoutMs: 60_000 });
    const rootCerts = world.objects(consumerOnRoot.path, 'certificates');
    await rootCerts.create(world.newObject('certificates', 'after', { fqdn: 'after.internal.corp' }));
    await eventually(async () => expect(statusOf(await rootCerts.get({ namespace: 'default', name: 'after' }))).toBe('Available'), {
      timeoutMs: 90_000,
    });
  });

  it('migrates make-before-break across shards with a stage, and deletes cleanly', async () => {
    const configurations = world.inCluster(world.paths.coordination, MIGRATIONCONFIGURATION_GVR);
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
    const certs = world.objects(consumerOnRoot.path, 'certificates');
    const statuses: (string | undefined)[] = [];
    const watching = setInterval(() => {
      void certs.get({ namespace: 'default', name: 'app' }).then(
        (o) => statuses.push(statusOf(o)),
        (err: unknown) => statuses.push(`unreadable: ${(err as Error).message}`),
      );
    }, 200);
    try {
      await certs.update({ ...(await certs.get({ namespace: 'default', name: 'app' })), spec: { fqdn: 'app.corp.com' } });
      await eventually(async () => expect(await certSecretIssuer(consumerOnRoot, 'app')).toBe(external.path), { timeoutMs: 120_000 });
      const migrations = world.inCluster(world.paths.coordination, MIGRATION_GVR);
      await eventually(async () => expect((await migrations.list()).items).toEqual([]), { timeoutMs: 60_000 });
    } finally {
      clearInterval(watching);
    }
    // Make-before-break: the consumer never saw its object other than Available.
    expect(statuses.length).toBeGreaterThan(0);
    // Listed, not counted, so that a failure says what was seen instead of Available.
    expect(statuses.filter((s) => s !== 'Available')).toEqual([]);

    for (const name of ['app', 'after']) await certs.delete({ namespace: 'default', name });
    await eventually(async () => expect((await certs.list()).items).toEqual([]), { timeoutMs: 60_000 });
    await eventually(async () => expect((await world.stagingWorkspaces().list()).items).toEqual([]), { timeoutMs: 90_000 });
    // Nothing the least-privilege broker did in this file was refused (a missing grant shows as a 403 first).
    expect(logs.filter((l) => /: 403 |forbidden/i.test(JSON.stringify(l)))).toEqual([]);
  });
});
