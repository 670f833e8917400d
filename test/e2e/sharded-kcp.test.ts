/**
 * Smoke test of the sharded topology (hack/kcp/sharded-kcp.ts): a cache server, shards `root`
 * and `shard-1`, and a kcp-front-proxy. This file starts and stops its own topology; the run's
 * single kcp from global-setup.ts is not used (KCP_KUBECONFIG=<any file> skips starting it when
 * this file runs alone).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ShardInfo } from '../../hack/kcp/sharded-kcp.ts';
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
import { bindExport } from '../harness/broker-world.ts';
import { eventually } from '../harness/eventually.ts';
import { uniqueName } from '../harness/names.ts';
import {
  ensureWorkspaceOnShard,
  type ShardedEnv,
  shardNameHash,
  shardOfWorkspace,
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

describe('sharded kcp: cache server, shards root and shard-1, front-proxy', () => {
  let env: ShardedEnv;
  let top: ReadyWorkspace;
  const onShard: Record<string, ReadyWorkspace> = {};

  beforeAll(async () => {
    env = await startShardedKcpForFile();
    top = await ensureWorkspaceOnShard(env.endpoint, 'root', uniqueName('sharded'), 'root');
  }, 240_000);

  afterAll(async () => {
    await env?.stop();
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
