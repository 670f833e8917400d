import { join } from 'node:path';
import { Broker, type BrokerOptions } from '../../src/broker/broker.ts';
import { bootstrap } from '../../src/broker/bootstrap.ts';
import type { BrokerPaths } from '../../src/apis/paths.ts';
import { APIEXPORTS_DIR, loadManifests } from '../../src/broker/manifests.ts';
import {
  ACCEPTAPI_GVR,
  ASSIGNMENT_GVR,
  STAGINGWORKSPACE_GVR,
  type AcceptAPI,
  type Assignment,
  type StagingWorkspace,
} from '../../src/apis/types.ts';
import { Applier } from '../../src/kcp-client-ts/apply.ts';
import type { KcpEndpoint } from '../../src/kcp-client-ts/endpoint.ts';
import { ResourceClient } from '../../src/kcp-client-ts/resources.ts';
import { createKcpClient, unwrap, type APIBinding } from '../../src/kcp-client-ts/typed-client.ts';
import type { GroupVersionResource, KubeObject } from '../../src/kcp-client-ts/types.ts';
import { Workspaces, type ReadyWorkspace, type ShardSelector } from '../../src/kcp-client-ts/workspaces.ts';
import { createLogger, type Logger } from '../../src/logging.ts';
import { TestProvider, type TestProviderOptions } from '../../examples/test-provider/provider.ts';
import { eventually } from './eventually.ts';
import { uniqueName } from './names.ts';

/** `status.status` of a brokered object, as the example providers set it. */
export const statusOf = (obj: KubeObject | undefined): string | undefined => (obj?.['status'] as { status?: string } | undefined)?.status;

/** One key of a Secret's data, decoded. */
export const decodeSecret = (secret: KubeObject, key: string): string =>
  Buffer.from((secret['data'] as Record<string, string> | undefined)?.[key] ?? '', 'base64').toString();

export const GVR = {
  certificates: { group: 'example.platform-mesh.io', version: 'v1alpha1', resource: 'certificates' },
  vms: { group: 'example.platform-mesh.io', version: 'v1alpha1', resource: 'vms' },
  dnszones: { group: 'example.platform-mesh.io', version: 'v1alpha1', resource: 'dnszones' },
} as const satisfies Record<string, GroupVersionResource>;
export type ExampleApi = keyof typeof GVR;

const KIND: Record<ExampleApi, string> = { certificates: 'Certificate', vms: 'VM', dnszones: 'DNSZone' };

/** One permission claim of an APIExport (core types: group "" and no identity hash). */
export type PermissionClaim = { group: string; resource: string; verbs: string[] };

const APIEXPORTS_V1ALPHA2: GroupVersionResource = { group: 'apis.kcp.io', version: 'v1alpha2', resource: 'apiexports' };
const APIBINDINGS_V1ALPHA2: GroupVersionResource = { group: 'apis.kcp.io', version: 'v1alpha2', resource: 'apibindings' };

/** Accepts every claim of an export, with its verbs. */
const acceptAll = async (
  endpoint: KcpEndpoint,
  exportPath: string,
  exportName: string,
): Promise<NonNullable<APIBinding['spec']['permissionClaims']>> => {
  const apiExport = unwrap(
    await createKcpClient(endpoint, endpoint.workspaceUrl(exportPath)).GET('/apis/apis.kcp.io/v1alpha2/apiexports/{name}', {
      params: { path: { name: exportName } },
    }),
  );
  return (apiExport.spec.permissionClaims ?? []).map((c) => ({ ...c, state: 'Accepted' as const, selector: { matchAll: true } }));
};

export const bindExport = async (endpoint: KcpEndpoint, workspace: string, exportPath: string, exportName: string): Promise<void> => {
  const client = createKcpClient(endpoint, endpoint.workspaceUrl(workspace));
  const body: APIBinding = {
    apiVersion: 'apis.kcp.io/v1alpha2',
    kind: 'APIBinding',
    metadata: { name: exportName },
    spec: {
      reference: { export: { path: exportPath, name: exportName } },
      permissionClaims: await acceptAll(endpoint, exportPath, exportName),
    },
  };
  // kcp may answer 403 "no permission to bind" for a moment after the export was created.
  await eventually(
    async () => {
      const created = await client.POST('/apis/apis.kcp.io/v1alpha2/apibindings', { body });
      if (created.response.status !== 409) unwrap(created);
    },
    { timeoutMs: 30_000, intervalMs: 250 },
  );
  const bound = await eventually(async () => {
    const binding = unwrap(await client.GET('/apis/apis.kcp.io/v1alpha2/apibindings/{name}', { params: { path: { name: exportName } } }));
    if (binding.status?.phase !== 'Bound') throw new Error(`binding ${exportName} in ${workspace}: ${binding.status?.phase}`);
    return binding;
  });
  // Bound comes a moment before the workspace serves the resources (a create then gets 404 "page not found").
  for (const r of bound.status?.boundResources ?? []) {
    const version = r.storageVersions?.[0];
    if (!version) continue;
    const url = `${endpoint.workspaceUrl(workspace)}${r.group ? `/apis/${r.group}` : '/api'}/${version}/${r.resource}?limit=1`;
    await eventually(() => endpoint.json({ method: 'GET', url }), { timeoutMs: 30_000, intervalMs: 100 });
  }
};

/**
 * One brokered platform in the shared kcp, under its own top workspace: the broker's
 * workspaces bootstrapped, providers with their exports, AcceptAPIs and a TestProvider each,
 * consumers bound to the brokered exports, and the broker itself running in-process.
 */
export class BrokerWorld {
  readonly endpoint: KcpEndpoint;
  readonly workspaces: Workspaces;
  readonly top: string;
  readonly paths: BrokerPaths;
  readonly logger: Logger;
  broker: Broker | undefined;
  readonly providers = new Map<string, { workspace: ReadyWorkspace; runners: TestProvider[] }>();

  private constructor(endpoint: KcpEndpoint, workspaces: Workspaces, top: string) {
    this.endpoint = endpoint;
    this.workspaces = workspaces;
    this.top = top;
    this.paths = {
      home: `${top}:platform`,
      acceptAPIExport: 'acceptapis',
      coordination: `${top}:platform:broker`,
      stagingRoot: `${top}:platform:broker:staging`,
      verificationRoot: `${top}:platform:broker:verification`,
      compute: `${top}:platform:broker:compute`,
    };
    this.logger = createLogger({ level: process.env['BROKER_LOG_LEVEL'] ?? 'warn', format: 'json' });
  }

  static async create(prefix: string, endpoint: KcpEndpoint): Promise<BrokerWorld> {
    const workspaces = new Workspaces({ endpoint });
    const top = await workspaces.ensure('root', uniqueName(prefix));
    const world = new BrokerWorld(endpoint, workspaces, top.path);
    await bootstrap({ endpoint, paths: world.paths, logger: world.logger, examples: true });
    return world;
  }

  /** Starts the broker in-process; `logger` replaces the world's (a test reading what the broker logs). */
  async startBroker(options: { logger?: Logger; locations?: BrokerOptions['locations']; endpoint?: KcpEndpoint } = {}): Promise<Broker> {
    this.broker = new Broker({
      // Another identity than the world's admin (e.g. the least-privilege broker); the caller closes it.
      endpoint: options.endpoint ?? this.endpoint,
      paths: this.paths,
      logger: options.logger ?? this.logger,
      ...(options.locations ? { locations: options.locations } : {}),
    });
    await this.broker.start();
    return this.broker;
  }

  async stopBroker(): Promise<void> {
    await this.broker?.stop();
    this.broker = undefined;
  }

  /** A provider workspace serving the given example APIs, bound to acceptapis, with a TestProvider per API. */
  async provider(
    name: string,
    apis: ExampleApi[],
    options: Pick<TestProviderOptions, 'extraRelated' | 'extraStatus'> & { location?: ShardSelector } = {},
  ): Promise<ReadyWorkspace> {
    const { location, ...providerOptions } = options;
    const workspace = await this.workspaces.ensure(this.top, name, { location });
    const applier = new Applier({ endpoint: this.endpoint });
    for (const api of apis) {
      for (const obj of await loadManifests(join(APIEXPORTS_DIR, 'examples'))) {
        if (obj.metadata.name === api || obj.metadata.name?.endsWith(`.${api}.example.platform-mesh.io`))
          await applier.apply(workspace.path, obj);
      }
    }
    await bindExport(this.endpoint, workspace.path, this.paths.home, 'acceptapis');
    const runners = apis.map(
      (api) =>
        new TestProvider({
          ...providerOptions,
          endpoint: this.endpoint,
          workspace: workspace.path,
          exportName: api,
          gvr: GVR[api],
          logger: this.logger,
        }),
    );
    for (const r of runners) r.start();
    this.providers.set(name, { workspace, runners });
    return workspace;
  }

  runner(provider: string, api: ExampleApi): TestProvider {
    return this.providers.get(provider)!.runners.find((r) => r.exportName === api)!;
  }

  acceptAPIs(provider: string): ResourceClient<AcceptAPI> {
    return new ResourceClient<AcceptAPI>({
      endpoint: this.endpoint,
      baseUrl: this.endpoint.workspaceUrl(this.providers.get(provider)!.workspace.path),
      gvr: ACCEPTAPI_GVR,
    });
  }

  async accept(
    provider: string,
    name: string,
    spec: Omit<AcceptAPI['spec'], 'gvr' | 'apiExportName'> & { api: ExampleApi; apiExportName?: string },
  ): Promise<AcceptAPI> {
    const { api, apiExportName, ...rest } = spec;
    return this.acceptAPIs(provider).create({
      apiVersion: 'broker.platform-mesh.io/v1alpha1',
      kind: 'AcceptAPI',
      metadata: { name },
      spec: { gvr: GVR[api], apiExportName: apiExportName ?? api, ...rest },
    });
  }

  async waitAcceptAPIReady(provider: string, name: string): Promise<AcceptAPI> {
    return eventually(
      async () => {
        const a = await this.acceptAPIs(provider).get({ name });
        if (!a.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
          throw new Error(`AcceptAPI ${name} not Ready: ${JSON.stringify(a.status)}`);
        return a;
      },
      { timeoutMs: 90_000 },
    );
  }

  /** A consumer workspace bound to the given brokered exports with every claim accepted. */
  async consumer(name: string, apis: ExampleApi[], options: { location?: ShardSelector } = {}): Promise<ReadyWorkspace> {
    const workspace = await this.workspaces.ensure(this.top, name, { location: options.location });
    for (const api of apis) await bindExport(this.endpoint, workspace.path, this.paths.home, api);
    return workspace;
  }

  /**
   * Publishes a brokered export in the home workspace with exactly these permission claims (the
   * platform team editing it; e.g. the Go project's exports, which claim no ConfigMaps).
   */
  async setExportClaims(api: ExampleApi, claims: PermissionClaim[]): Promise<void> {
    await this.inCluster(this.paths.home, APIEXPORTS_V1ALPHA2).mergePatch({ name: api }, { spec: { permissionClaims: claims } });
  }

  /** A consumer accepts every claim the brokered export makes now (after the platform added one), and kcp applies them. */
  async acceptClaims(workspace: string, api: ExampleApi): Promise<void> {
    const bindings = new ResourceClient<APIBinding & KubeObject>({
      endpoint: this.endpoint,
      baseUrl: this.endpoint.workspaceUrl(workspace),
      gvr: APIBINDINGS_V1ALPHA2,
    });
    const accepted = await acceptAll(this.endpoint, this.paths.home, api);
    await eventually(async () => {
      const binding = await bindings.get({ name: api });
      await bindings.update({ ...binding, spec: { ...binding.spec, permissionClaims: accepted } });
    });
    await eventually(async () => {
      const binding = await bindings.get({ name: api });
      const applied = binding.status?.appliedPermissionClaims ?? [];
      const missing = accepted.filter((c) => !applied.some((a) => a.resource === c.resource && (a.group ?? '') === (c.group ?? '')));
      if (missing.length > 0)
        throw new Error(`binding ${api} in ${workspace}: not applied yet: ${missing.map((c) => c.resource).join(', ')}`);
    });
  }

  objects(workspace: string, api: ExampleApi): ResourceClient<KubeObject> {
    return new ResourceClient({ endpoint: this.endpoint, baseUrl: this.endpoint.workspaceUrl(workspace), gvr: GVR[api] });
  }

  inCluster(cluster: string, gvr: GroupVersionResource): ResourceClient<KubeObject> {
    return new ResourceClient({ endpoint: this.endpoint, baseUrl: this.endpoint.workspaceUrl(cluster), gvr });
  }

  newObject(api: ExampleApi, name: string, spec: Record<string, unknown>, namespace = 'default'): KubeObject {
    return {
      apiVersion: 'example.platform-mesh.io/v1alpha1',
      kind: KIND[api],
      metadata: api === 'dnszones' ? { name } : { name, namespace },
      spec,
    };
  }

  assignments(): ResourceClient<Assignment> {
    return new ResourceClient<Assignment>({
      endpoint: this.endpoint,
      baseUrl: this.endpoint.workspaceUrl(this.paths.coordination),
      gvr: ASSIGNMENT_GVR,
    });
  }

  stagingWorkspaces(): ResourceClient<StagingWorkspace> {
    return new ResourceClient<StagingWorkspace>({
      endpoint: this.endpoint,
      baseUrl: this.endpoint.workspaceUrl(this.paths.coordination),
      gvr: STAGINGWORKSPACE_GVR,
    });
  }

  /** The Assignment of one consumer object, found by its spec. */
  async assignmentOf(consumer: ReadyWorkspace, api: ExampleApi, name: string, namespace = 'default'): Promise<Assignment | undefined> {
    const list = await this.assignments().list();
    return list.items.find(
      (a) =>
        a.spec.consumerCluster === consumer.cluster &&
        a.spec.gvr.resource === GVR[api].resource &&
        a.spec.name === name &&
        (a.spec.namespace ?? '') === (api === 'dnszones' ? '' : namespace),
    );
  }

  /** The staging workspace's logical cluster serving one consumer object (waits for it). */
  async stagingClusterOf(consumer: ReadyWorkspace, api: ExampleApi, name: string, namespace = 'default'): Promise<string> {
    return eventually(
      async () => {
        const a = await this.assignmentOf(consumer, api, name, namespace);
        if (!a?.status?.stagingWorkspace) throw new Error('no assignment yet');
        const sw = await this.stagingWorkspaces().get({ name: a.status.stagingWorkspace });
        if (!sw.status?.clusterName) throw new Error('staging workspace not ready');
        return sw.status.clusterName;
      },
      { timeoutMs: 90_000 },
    );
  }

  async events(workspace: string, namespace = 'default'): Promise<KubeObject[]> {
    return (await this.inCluster(workspace, { group: '', version: 'v1', resource: 'events' }).list({ namespace })).items;
  }

  async cleanup(): Promise<void> {
    await this.stopBroker();
    for (const { runners } of this.providers.values()) for (const r of runners) await r.stop();
    await this.workspaces.delete('root', this.top.split(':')[1]!);
    await this.endpoint.close();
  }
}
