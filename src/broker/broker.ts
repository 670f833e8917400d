import { InformerSet } from '../cache/informer-set.ts';
import type { Informer } from '../cache/informer.ts';
import { encodeKey, objectKeyOf } from '../cache/object-key.ts';
import { WorkQueue, type ReconcileResult } from '../cache/workqueue.ts';
import { conditionTrue } from '../apis/conditions.ts';
import {
  ACCEPTAPI_GVR,
  ASSIGNMENT_GVR,
  MIGRATION_GVR,
  MIGRATIONCONFIGURATION_GVR,
  STAGINGWORKSPACE_GVR,
  type AcceptAPI,
  type Assignment,
  type Migration,
  type MigrationConfiguration,
  type StagingWorkspace,
} from '../apis/types.ts';
import { MigrationStages } from '../controllers/migration/stage-runner.ts';
import { AcceptAPIController } from '../controllers/acceptapi/controller.ts';
import { StagingWorkspaceController } from '../controllers/stagingworkspace/controller.ts';
import { SyncController } from '../controllers/sync/controller.ts';
import type { KcpEndpoint } from '../kcp-client-ts/endpoint.ts';
import { ResourceClient } from '../kcp-client-ts/resources.ts';
import { createKcpClient, unwrap, type APIExportEndpointSlice } from '../kcp-client-ts/typed-client.ts';
import { clusterOf, gvrString, type KubeObject } from '../kcp-client-ts/types.ts';
import { Workspaces } from '../kcp-client-ts/workspaces.ts';
import type { Logger } from '../logging.ts';
import { splitPath, type BrokerPaths } from './config.ts';
import { ASSIGNMENT_BY_ACCEPTAPI, ASSIGNMENT_BY_STAGING, MIGRATION_BY_STAGING, type BrokerContext, type BrokeredApi } from './context.ts';

const SLICES = { group: 'apis.kcp.io', version: 'v1alpha1', resource: 'apiexportendpointslices' };

export type BrokerOptions = {
  endpoint: KcpEndpoint;
  paths: BrokerPaths;
  logger: Logger;
  onReconciled?: (queue: string, outcome: { ok: boolean; durationMs: number }) => void;
};

/**
 * The running broker: coordination caches, the AcceptAPI, staging-workspace and per-resource
 * sync controllers, and the discovery of brokered APIs from the home workspace's
 * APIExportEndpointSlices (resources come and go at runtime).
 */
export class Broker {
  readonly #options: BrokerOptions;
  readonly #logger: Logger;
  readonly #controller = new AbortController();
  readonly #informers = new InformerSet({ signal: this.#controller.signal });
  readonly #syncControllers = new Map<string, SyncController>();
  #ctx: BrokerContext | undefined;
  #stagingController: StagingWorkspaceController | undefined;
  #acceptController: AcceptAPIController | undefined;
  #acceptInformer: Informer<AcceptAPI> | undefined;
  #discovery: WorkQueue | undefined;
  #slices: Informer<APIExportEndpointSlice & KubeObject> | undefined;

  constructor(options: BrokerOptions) {
    this.#options = options;
    this.#logger = options.logger;
  }

  /** Starts everything; resolves once the coordination and discovery caches are synced. */
  async start(): Promise<void> {
    const { endpoint, paths } = this.#options;
    const signal = this.#controller.signal;
    const workspaces = new Workspaces({ endpoint });
    const { parent, name } = splitPath(paths.coordination);
    const coordination = await workspaces.get(parent, name, signal);
    if (!coordination?.spec.cluster) throw new Error(`coordination workspace ${paths.coordination} does not exist: run \`resource-broker bootstrap\` first`);
    const coordinationUrl = endpoint.workspaceUrl(paths.coordination);
    const assignmentClient = new ResourceClient<Assignment>({ endpoint, baseUrl: coordinationUrl, gvr: ASSIGNMENT_GVR });
    const stagingWorkspaceClient = new ResourceClient<StagingWorkspace>({ endpoint, baseUrl: coordinationUrl, gvr: STAGINGWORKSPACE_GVR });
    const assignments = this.#informers.ensure<Assignment>('coordination|assignments', { name: 'assignments', source: assignmentClient, logger: this.#logger }, (informer) => {
      informer.store.addIndex(ASSIGNMENT_BY_STAGING, (a) => (a.status?.stagingWorkspace ? [a.status.stagingWorkspace] : []));
      informer.store.addIndex(ASSIGNMENT_BY_ACCEPTAPI, (a) => (a.status?.acceptAPIName ? [`${a.status.providerCluster}/${a.status.acceptAPIName}`] : []));
      informer.onEvent((e) => {
        const a = e.object;
        this.#enqueueConsumer(gvrString(a.spec.gvr), encodeKey({ cluster: a.spec.consumerCluster, namespace: a.spec.namespace ?? '', name: a.spec.name }));
        if (a.status?.stagingWorkspace) this.#stagingController?.queue.add(a.status.stagingWorkspace);
        if (e.type === 'updated' && e.old.status?.stagingWorkspace && e.old.status.stagingWorkspace !== a.status?.stagingWorkspace) {
          this.#stagingController?.queue.add(e.old.status.stagingWorkspace);
        }
      });
    });
    const stagingWorkspaces = this.#informers.ensure<StagingWorkspace>(
      'coordination|stagingworkspaces',
      { name: 'stagingworkspaces', source: stagingWorkspaceClient, logger: this.#logger },
      (informer) =>
        informer.onEvent((e) => {
          const swName = e.object.metadata.name ?? '';
          this.#stagingController?.queue.add(swName);
          for (const a of assignments.store.byIndex(ASSIGNMENT_BY_STAGING, swName)) this.#enqueueAssignment(a);
          // A migration's destination is referenced by the Migration only, until cutover.
          for (const m of this.#ctx?.migrations.store.byIndex(MIGRATION_BY_STAGING, swName) ?? []) {
            const a = assignments.store.get({ cluster: coordination.spec.cluster!, namespace: '', name: m.spec.assignment });
            if (a) this.#enqueueAssignment(a);
          }
        }),
    );
    const migrationClient = new ResourceClient<Migration>({ endpoint, baseUrl: coordinationUrl, gvr: MIGRATION_GVR });
    const migrations = this.#informers.ensure<Migration>('coordination|migrations', { name: 'migrations', source: migrationClient, logger: this.#logger }, (informer) => {
      // A rolled-back migration no longer holds its destination.
      informer.store.addIndex(MIGRATION_BY_STAGING, (m) =>
        m.status?.state === 'Failed' && conditionTrue(m.status.conditions, 'RolledBack') ? [m.spec.fromStagingWorkspace] : [m.spec.fromStagingWorkspace, m.spec.stagingWorkspace],
      );
      informer.onEvent((e) => {
        const a = assignments.store.get({ cluster: coordination.spec.cluster!, namespace: '', name: e.object.spec.assignment });
        if (a) this.#enqueueAssignment(a);
        for (const sw of [e.object.spec.fromStagingWorkspace, e.object.spec.stagingWorkspace]) this.#stagingController?.queue.add(sw);
      });
    });
    const configurations = this.#informers.ensure<MigrationConfiguration>(
      'coordination|migrationconfigurations',
      { name: 'migrationconfigurations', source: new ResourceClient({ endpoint, baseUrl: coordinationUrl, gvr: MIGRATIONCONFIGURATION_GVR }), logger: this.#logger },
      // A fixed configuration lets waiting migrations carry on at once.
      (informer) =>
        informer.onEvent(() => {
          for (const m of migrations.store.list()) {
            const a = assignments.store.get({ cluster: coordination.spec.cluster!, namespace: '', name: m.spec.assignment });
            if (a) this.#enqueueAssignment(a);
          }
        }),
    );
    const migrationStages = new MigrationStages({ endpoint, computeWorkspace: paths.compute, migrationClient, configurations, logger: this.#logger.child({ controller: 'migration-stages' }) });
    this.#ctx = {
      endpoint,
      paths,
      logger: this.#logger,
      workspaces,
      informers: this.#informers,
      coordinationCluster: coordination.spec.cluster,
      assignments,
      assignmentClient,
      stagingWorkspaces,
      stagingWorkspaceClient,
      migrations,
      migrationClient,
      migrationStages,
      acceptAPIs: () => this.#acceptInformer,
      enqueueConsumer: (gvrKey, key) => this.#enqueueConsumer(gvrKey, key),
      enqueueStagingWorkspace: (swName) => this.#stagingController?.queue.add(swName),
      onReconciled: this.#options.onReconciled ?? (() => undefined),
    };
    this.#stagingController = new StagingWorkspaceController({ ctx: this.#ctx });
    this.#discovery = new WorkQueue({
      name: 'discovery',
      reconcile: (key, s) => this.#discover(key, s),
      concurrency: 1,
      logger: this.#logger,
      onReconciled: (o) => this.#ctx?.onReconciled('discovery', o),
    });
    this.#slices = this.#informers.ensure<APIExportEndpointSlice & KubeObject>(
      'home|apiexportendpointslices',
      { name: 'apiexportendpointslices', source: new ResourceClient({ endpoint, baseUrl: endpoint.workspaceUrl(paths.home), gvr: SLICES }), logger: this.#logger },
      (informer) => informer.onEvent((e) => this.#discovery?.add(e.object.metadata.name ?? '')),
    );
    await Promise.all([assignments.waitForSync(signal), stagingWorkspaces.waitForSync(signal), migrations.waitForSync(signal), configurations.waitForSync(signal), this.#slices.waitForSync(signal)]);
    this.#stagingController.start();
    this.#discovery.start();
    await this.#discovery.idle();
    this.#logger.info({ coordination: paths.coordination, brokered: [...this.#syncControllers.keys()] }, 'broker started');
  }

  /** Caches synced and every controller running: what /readyz reports. */
  get ready(): boolean {
    return (
      this.#ctx !== undefined &&
      this.#informers.stats().every((s) => s.synced) &&
      [...this.#syncControllers.values()].every((c) => c.queue.running)
    );
  }

  /** The cached Assignments and Migrations (for metrics). */
  coordination(): { assignments: Assignment[]; migrations: Migration[] } {
    return { assignments: this.#ctx?.assignments.store.list() ?? [], migrations: this.#ctx?.migrations.store.list() ?? [] };
  }

  get informers(): InformerSet {
    return this.#informers;
  }

  get queues(): WorkQueue[] {
    return [this.#discovery, this.#stagingController?.queue, this.#acceptController?.queue, ...[...this.#syncControllers.values()].map((c) => c.queue)].filter((q): q is WorkQueue => q !== undefined);
  }

  /** Stops taking work, lets in-flight reconciles finish, closes every watch. */
  async stop(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.shutdown()));
    this.#controller.abort();
    await this.#informers.stopAll();
  }

  #enqueueAssignment(a: Assignment): void {
    this.#enqueueConsumer(gvrString(a.spec.gvr), encodeKey({ cluster: a.spec.consumerCluster, namespace: a.spec.namespace ?? '', name: a.spec.name }));
  }

  #enqueueConsumer(gvrKey: string, key: string): void {
    this.#syncControllers.get(gvrKey)?.queue.add(key);
  }

  /** Reconciles one APIExportEndpointSlice of the home workspace. */
  async #discover(sliceName: string, signal: AbortSignal): Promise<ReconcileResult> {
    const ctx = this.#ctx!;
    const slice = this.#slices?.store.list((s) => s.metadata.name === sliceName)[0];
    const url = slice?.status?.endpoints?.[0]?.url;
    if (sliceName === ctx.paths.acceptAPIExport) {
      if (url) this.#startAcceptAPIs(url);
      return;
    }
    const wanted = slice && url ? await this.#brokeredApis(sliceName, url, signal) : [];
    const wantedKeys = new Set(wanted.map((api) => gvrString(api)));
    for (const [key, controller] of this.#syncControllers) {
      if (controller.api.exportName === sliceName && !wantedKeys.has(key)) {
        this.#syncControllers.delete(key);
        await controller.stop();
        this.#logger.info({ resource: key, export: sliceName }, 'stopped brokering');
      }
    }
    for (const api of wanted) {
      const key = gvrString(api);
      const existing = this.#syncControllers.get(key);
      if (existing && existing.api.virtualWorkspaceUrl === api.virtualWorkspaceUrl) continue;
      if (existing) await existing.stop();
      const controller = new SyncController({ ctx, api });
      this.#syncControllers.set(key, controller);
      await controller.waitForSync(signal);
      controller.start();
      controller.enqueueUnassigned();
      this.#logger.info({ resource: key, export: sliceName }, 'brokering');
    }
    return;
  }

  /** The resources an export in the home workspace serves, from its APIResourceSchemas. */
  async #brokeredApis(exportName: string, virtualWorkspaceUrl: string, signal: AbortSignal): Promise<BrokeredApi[]> {
    const { endpoint, paths } = this.#ctx!;
    const client = createKcpClient(endpoint, endpoint.workspaceUrl(paths.home));
    const found = await client.GET('/apis/apis.kcp.io/v1alpha2/apiexports/{name}', { params: { path: { name: exportName } }, signal });
    if (found.response.status === 404) return [];
    const apiExport = unwrap(found);
    const apis: BrokeredApi[] = [];
    for (const resource of apiExport.spec.resources ?? []) {
      const schema = unwrap(await client.GET('/apis/apis.kcp.io/v1alpha1/apiresourceschemas/{name}', { params: { path: { name: resource.schema } }, signal }));
      const version = schema.spec.versions.find((v) => v.storage) ?? schema.spec.versions[0];
      if (!version) continue;
      apis.push({
        group: schema.spec.group ?? '',
        version: version.name,
        resource: schema.spec.names.plural,
        kind: schema.spec.names.kind,
        namespaced: schema.spec.scope === 'Namespaced',
        exportName,
        virtualWorkspaceUrl,
      });
    }
    return apis;
  }

  #startAcceptAPIs(virtualWorkspaceUrl: string): void {
    if (this.#acceptInformer) return;
    const ctx = this.#ctx!;
    const { endpoint } = ctx;
    const client = (cluster: string): ResourceClient<AcceptAPI> =>
      new ResourceClient<AcceptAPI>({ endpoint, baseUrl: endpoint.virtualWorkspaceUrl(virtualWorkspaceUrl, cluster), gvr: ACCEPTAPI_GVR });
    this.#acceptInformer = this.#informers.ensure<AcceptAPI>('acceptapis', { name: 'acceptapis', source: client('*'), logger: this.#logger }, (informer) =>
      informer.onEvent((e) => {
        this.#acceptController?.queue.add(encodeKey(objectKeyOf(e.object)));
        this.#syncControllers.get(gvrString(e.object.spec.gvr))?.enqueueUnassigned();
        // Objects it serves: it may have stopped being Ready, matching, or existing.
        for (const a of this.#ctx?.assignments.store.byIndex(ASSIGNMENT_BY_ACCEPTAPI, `${clusterOf(e.object)}/${e.object.metadata.name}`) ?? []) {
          this.#enqueueConsumer(gvrString(a.spec.gvr), encodeKey({ cluster: a.spec.consumerCluster, namespace: a.spec.namespace ?? '', name: a.spec.name }));
        }
      }),
    );
    this.#acceptController = new AcceptAPIController({ ctx, informer: this.#acceptInformer, client });
    this.#acceptController.start();
    this.#logger.info({ virtualWorkspaceUrl }, 'watching AcceptAPIs');
  }
}
