import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Informer, type InformerEvent } from '../../src/runtime/informer.ts';
import { encodeKey, objectKeyOf } from '../../src/runtime/object-key.ts';
import type { KcpEndpoint } from '../../src/kcp-client-ts/endpoint.ts';
import { ResourceClient } from '../../src/kcp-client-ts/resources.ts';
import { createKcpClient, unwrap, type APIBinding, type APIExport, type APIResourceSchema } from '../../src/kcp-client-ts/typed-client.ts';
import { clusterOf, SECRETS, type KubeObject } from '../../src/kcp-client-ts/types.ts';
import type { ReadyWorkspace, Workspaces } from '../../src/kcp-client-ts/workspaces.ts';
import { eventually } from '../harness/eventually.ts';
import { kcpEnv, uniqueName } from '../harness/kcp-env.ts';

const WIDGETS = { group: 'example.test', version: 'v1', resource: 'widgets' };

const widgetSchema: APIResourceSchema = {
  apiVersion: 'apis.kcp.io/v1alpha1',
  kind: 'APIResourceSchema',
  metadata: { name: 'v1.widgets.example.test' },
  spec: {
    group: 'example.test',
    names: { kind: 'Widget', listKind: 'WidgetList', plural: 'widgets', singular: 'widget' },
    scope: 'Namespaced',
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: {
          type: 'object',
          properties: {
            spec: { type: 'object', properties: { size: { type: 'integer' } } },
            status: { type: 'object', properties: { phase: { type: 'string' } } },
          },
        },
      },
    ],
  },
};

const widgetExport: APIExport = {
  apiVersion: 'apis.kcp.io/v1alpha2',
  kind: 'APIExport',
  metadata: { name: 'widgets' },
  spec: {
    resources: [{ group: 'example.test', name: 'widgets', schema: 'v1.widgets.example.test', storage: { crd: {} } }],
    permissionClaims: [{ group: '', resource: 'secrets', verbs: ['get', 'list', 'watch'] }],
  },
};

const bindingTo = (exportPath: string): APIBinding => ({
  apiVersion: 'apis.kcp.io/v1alpha2',
  kind: 'APIBinding',
  metadata: { name: 'widgets' },
  spec: {
    reference: { export: { path: exportPath, name: 'widgets' } },
    permissionClaims: [
      { group: '', resource: 'secrets', verbs: ['get', 'list', 'watch'], state: 'Accepted', selector: { matchAll: true } },
    ],
  },
});

describe('kcp foundation: workspaces, export, bindings and a wildcard virtual-workspace informer', () => {
  let endpoint: KcpEndpoint;
  let workspaces: Workspaces;
  let parent: string;
  let platform: ReadyWorkspace;
  let consumerA: ReadyWorkspace;
  let consumerB: ReadyWorkspace;
  let virtualWorkspaceUrl: string;
  const controller = new AbortController();

  beforeAll(async () => {
    ({ endpoint, workspaces } = await kcpEnv());
    const top = await workspaces.ensure('root', uniqueName('foundation'));
    parent = top.path;
    [platform, consumerA, consumerB] = await Promise.all([
      workspaces.ensure(parent, 'platform'),
      workspaces.ensure(parent, 'consumer-a'),
      workspaces.ensure(parent, 'consumer-b'),
    ]);
    const platformClient = createKcpClient(endpoint, endpoint.workspaceUrl(platform.path));
    unwrap(await platformClient.POST('/apis/apis.kcp.io/v1alpha1/apiresourceschemas', { body: widgetSchema }));
    unwrap(await platformClient.POST('/apis/apis.kcp.io/v1alpha2/apiexports', { body: widgetExport }));
  });

  afterAll(async () => {
    controller.abort();
    await workspaces?.delete('root', parent.split(':')[1]!);
    await endpoint?.close();
  });

  it('binds the export in two consumers with the secrets claim accepted', async () => {
    for (const consumer of [consumerA, consumerB]) {
      const client = createKcpClient(endpoint, endpoint.workspaceUrl(consumer.path));
      // kcp may answer 403 "no permission to bind" for a moment after the export was created.
      await eventually(
        async () => {
          const created = await client.POST('/apis/apis.kcp.io/v1alpha2/apibindings', { body: bindingTo(platform.path) });
          if (created.response.status !== 409) unwrap(created);
        },
        { timeoutMs: 30_000, intervalMs: 250 },
      );
      const bound = await eventually(async () => {
        const binding = unwrap(
          await client.GET('/apis/apis.kcp.io/v1alpha2/apibindings/{name}', { params: { path: { name: 'widgets' } } }),
        );
        expect(binding.status?.phase).toBe('Bound');
        return binding;
      });
      expect(bound.status?.boundResources?.map((r) => r.resource)).toEqual(['widgets']);
    }
  });

  it('reads a loopback virtual-workspace URL from the APIExportEndpointSlice', async () => {
    const client = createKcpClient(endpoint, endpoint.workspaceUrl(platform.path));
    virtualWorkspaceUrl = await eventually(async () => {
      const slice = unwrap(
        await client.GET('/apis/apis.kcp.io/v1alpha1/apiexportendpointslices/{name}', { params: { path: { name: 'widgets' } } }),
      );
      const url = slice.status?.endpoints?.[0]?.url;
      expect(url).toBeTruthy();
      return url!;
    });
    expect(new URL(virtualWorkspaceUrl).hostname).toBe('127.0.0.1');
    expect(virtualWorkspaceUrl).toMatch(new RegExp(`/services/apiexport/${platform.cluster}/widgets$`));
  });

  it('keeps the same namespace/name from two consumers as two cache entries, and sees exactly one update', async () => {
    const wildcard = new ResourceClient({ endpoint, baseUrl: endpoint.virtualWorkspaceUrl(virtualWorkspaceUrl, '*'), gvr: WIDGETS });
    const informer = new Informer({ name: 'widgets', source: wildcard });
    const events: InformerEvent<KubeObject>[] = [];
    informer.onEvent((e) => events.push(e));
    void informer.run(controller.signal);
    await informer.waitForSync();

    for (const consumer of [consumerA, consumerB]) {
      const widgets = new ResourceClient({ endpoint, baseUrl: endpoint.workspaceUrl(consumer.path), gvr: WIDGETS });
      await widgets.create({
        apiVersion: 'example.test/v1',
        kind: 'Widget',
        metadata: { name: 'same-name', namespace: 'default' },
        spec: { size: 1 },
      });
    }
    await eventually(() => expect(informer.store.size).toBe(2));
    const clusters = informer.store.list().map(clusterOf).sort();
    expect(clusters).toEqual([consumerA.cluster, consumerB.cluster].sort());
    expect(new Set(informer.store.keys()).size).toBe(2);

    events.length = 0;
    const inA = new ResourceClient({ endpoint, baseUrl: endpoint.workspaceUrl(consumerA.path), gvr: WIDGETS });
    const current = await inA.get({ namespace: 'default', name: 'same-name' });
    await inA.update({ ...current, spec: { size: 2 } });
    await eventually(() => expect(events).toHaveLength(1));
    const [event] = events;
    expect(event?.type).toBe('updated');
    expect(clusterOf(event!.object)).toBe(consumerA.cluster);
    expect((event!.object['spec'] as { size: number }).size).toBe(2);
    const inB = informer.store.get({ cluster: consumerB.cluster, namespace: 'default', name: 'same-name' });
    expect((inB!['spec'] as { size: number }).size).toBe(1);
    expect(encodeKey(objectKeyOf(event!.object))).toBe(`${consumerA.cluster}|default|same-name`);
  });

  it('writes /status through the virtual workspace, visible in the consumer workspace', async () => {
    const inVw = new ResourceClient({
      endpoint,
      baseUrl: endpoint.virtualWorkspaceUrl(virtualWorkspaceUrl, consumerB.cluster),
      gvr: WIDGETS,
    });
    await inVw.mergePatch({ namespace: 'default', name: 'same-name', subresource: 'status' }, { status: { phase: 'Ready' } });
    const inB = new ResourceClient({ endpoint, baseUrl: endpoint.workspaceUrl(consumerB.path), gvr: WIDGETS });
    const seen = await inB.get({ namespace: 'default', name: 'same-name' });
    expect(seen['status']).toEqual({ phase: 'Ready' });
    const inA = new ResourceClient({ endpoint, baseUrl: endpoint.workspaceUrl(consumerA.path), gvr: WIDGETS });
    expect((await inA.get({ namespace: 'default', name: 'same-name' }))['status']).toBeUndefined();
  });

  it('reads a claimed Secret of one consumer through the virtual workspace', async () => {
    const secretsA = new ResourceClient({ endpoint, baseUrl: endpoint.workspaceUrl(consumerA.path), gvr: SECRETS });
    await secretsA.create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'creds', namespace: 'default' },
      stringData: { password: 'hunter2' },
    });
    const claimed = new ResourceClient({
      endpoint,
      baseUrl: endpoint.virtualWorkspaceUrl(virtualWorkspaceUrl, consumerA.cluster),
      gvr: SECRETS,
    });
    const secret = await eventually(() => claimed.get({ namespace: 'default', name: 'creds' }));
    expect(Buffer.from((secret['data'] as Record<string, string>)['password']!, 'base64').toString()).toBe('hunter2');
    const inB = claimed.at(endpoint.virtualWorkspaceUrl(virtualWorkspaceUrl, consumerB.cluster));
    expect(await inB.find({ namespace: 'default', name: 'creds' })).toBeUndefined();
  });
});
