import { ACCEPTAPI_GVR, type AcceptAPI, type Assignment, type BrokeredApi, type Migration } from '../apis/types.ts';
import { MANAGED_BY_LABEL, MANAGER, STAGING_VIEW_ANNOTATION } from '../apis/names.ts';
import { splitPath, type BrokerPaths } from '../apis/paths.ts';
import { AcceptAPIController } from '../controllers/acceptapi/controller.ts';
import { celEngine } from '../controllers/acceptapi/filters.ts';
import { MigrationBudget, type MigrationBudgetLimits } from '../controllers/migration/budget.ts';
import { Migrator, type RebalancePolicy } from '../controllers/migration/migrator.ts';
import { MigrationStages } from '../controllers/migration/stage-runner.ts';
import { Placer } from '../controllers/placement/assign.ts';
import { RELATED_PAGE_SIZE, relatedDigestOf } from '../controllers/related/digest.ts';
import {
  bindingClaimsOf,
  ConsumerBindings,
  consumerClaimsOf,
  sameClaims,
  unclaimedOf,
  type ConsumerResource,
} from '../controllers/sync/claims.ts';
import { RELATED_COPY_SELECTOR, SyncController } from '../controllers/sync/controller.ts';
import { StagingCaches } from '../controllers/sync/staging.ts';
import { StagingViews } from '../controllers/sync/staging-views.ts';
import { StagingWorkspaceController, workspaceStateOf } from '../controllers/stagingworkspace/controller.ts';
import { watchCoordination, type Coordination } from '../coordination/coordination.ts';
import { APIBINDINGS, APIEXPORTS, type APIExportObject } from '../kcp-client-ts/bindings.ts';
import { Clients } from '../kcp-client-ts/clients.ts';
import type { KcpEndpoint } from '../kcp-client-ts/endpoint.ts';
import { createKcpClient, unwrap, type APIExportEndpointSlice } from '../kcp-client-ts/typed-client.ts';
import {
  apiVersionOf,
  CONFIGMAPS,
  clusterOf,
  gvrString,
  SECRETS,
  type GroupVersionResource,
  type KubeObject,
} from '../kcp-client-ts/types.ts';
import { workspaceAccess, type WorkspaceAccess } from '../kcp-client-ts/workspace-access.ts';
import { VirtualWorkspace } from '../kcp-client-ts/virtual-workspace.ts';
import { type ShardSelector, WORKSPACES, type WorkspaceObject, Workspaces } from '../kcp-client-ts/workspaces.ts';
import type { Logger } from '../logging.ts';
import { ControllerManager, watchOf, type Controller, type Watch } from '../runtime/controller.ts';
import { EventRecorder } from '../runtime/events.ts';
import type { Informer } from '../runtime/informer.ts';
import { ClusterScopes, InformerScope } from '../runtime/informer-scope.ts';
import { WorkQueue, type QueueEvent, type ReconcileResult } from '../runtime/workqueue.ts';

/** How often AcceptAPI statuses are brought up to date with their load: the most it lags (and one write per AcceptAPI per period). */
const ACCEPTAPI_LOAD_REPORT_MS = 15_000;
const SLICES = { group: 'apis.kcp.io', version: 'v1alpha1', resource: 'apiexportendpointslices' };

/** The virtual-workspace URLs an endpoint slice event lists (none once it is deleted). */
const endpointUrlsOf = (e: { type: string; object: APIExportEndpointSlice }): string[] =>
  e.type === 'deleted' ? [] : (e.object.status?.endpoints ?? []).map((ep) => ep.url);

export type BrokerOptions = {
  endpoint: KcpEndpoint;
  paths: BrokerPaths;
  /** Where migration stages deploy: by default the compute workspace of `paths`; any API server given a kubeconfig. */
  compute?: WorkspaceAccess;
  /** The shards the broker's own staging and verification workspaces are scheduled to (default: any). */
  locations?: { staging?: ShardSelector | undefined; verification?: ShardSelector | undefined };
  logger: Logger;
  /** What each controller's queue does, by controller name (for metrics). */
  onQueueEvent?: (controller: string, event: QueueEvent) => void;
  /** The pace of the moves the platform starts (drain, capacity, requested moves). */
  migrationBudget?: MigrationBudgetLimits;
  /** Opt-in rebalancing of load between providers (paced by the migration budget). */
  rebalance?: RebalancePolicy;
};

/** What the running broker shares between the controllers it wires. */
type Wiring = {
  clients: Clients;
  coordination: Coordination;
  coordinationInformers: ReturnType<typeof watchCoordination>['informers'];
  acceptAPIs: Informer<AcceptAPI>;
  stagingViews: StagingViews;
  stages: MigrationStages;
  stagingController: StagingWorkspaceController;
  budget: MigrationBudget;
};

/**
 * Wires and starts the broker: the coordination caches, the AcceptAPI and staging-workspace
 * controllers, and one sync controller per brokered resource, discovered at runtime from the
 * home workspace's APIExportEndpointSlices (resources come and go).
 */
export class Broker {
  readonly #options: BrokerOptions;
  readonly #logger: Logger;
  readonly #scope = new InformerScope({ name: 'broker' });
  readonly #manager: ControllerManager;
  /** Per brokered resource: its controller, its consumer-side informers, and the export's claims it was started with. */
  readonly #syncControllers = new Map<string, { controller: SyncController; scope: InformerScope; claims: ConsumerResource[] }>();
  /** Per home-workspace endpoint slice (named after its export): the virtual workspace, one URL per shard, kept current. */
  readonly #virtualWorkspaces = new Map<string, VirtualWorkspace>();
  /** What each APIResourceSchema (by export workspace path, export and schema name) serves; schemas never change. */
  readonly #schemas = new Map<string, Omit<BrokeredApi, 'exportName'>>();
  #wiring: Wiring | undefined;
  #acceptController: AcceptAPIController | undefined;
  /** The broker's own watches (coordination, endpoint slices, exports): while they cannot reach kcp, it is not ready. */
  #core: { readonly connected: boolean }[] = [];

  constructor(options: BrokerOptions) {
    this.#options = options;
    this.#logger = options.logger;
    this.#manager = new ControllerManager({ logger: options.logger });
  }

  /** Starts everything; resolves once the coordination and discovery caches are synced and the brokered resources are running. */
  async start(): Promise<void> {
    const { endpoint, paths } = this.#options;
    const signal = this.#scope.signal;
    const clients = new Clients(endpoint);
    const workspaces = new Workspaces({ endpoint });
    const { parent, name } = splitPath(paths.coordination);
    const coordinationWs = await workspaces.get(parent, name, signal);
    if (!coordinationWs?.spec.cluster)
      throw new Error(`coordination workspace ${paths.coordination} does not exist: run \`resource-broker bootstrap\` first`);
    const logger = this.#logger;
    const { coordination, informers: coordinationInformers } = watchCoordination({
      endpoint,
      workspace: paths.coordination,
      cluster: coordinationWs.spec.cluster,
      scope: this.#scope,
      logger,
    });
    const slices = this.#scope.informer(clients.inWorkspace<APIExportEndpointSlice & KubeObject>(paths.home, SLICES), {
      name: 'apiexportendpointslices',
      logger,
    });
    // Every informer on a virtual workspace follows its slice: a watch per shard endpoint, added
    // and dropped as the slice changes (registered before any controller's handlers).
    slices.onEvent((e) => {
      const name = e.object.metadata.name ?? '';
      const urls = endpointUrlsOf(e);
      if (this.#virtualWorkspaceOf(name).update(urls))
        logger.info({ export: name, endpoints: urls }, 'virtual workspace endpoints changed');
    });
    // AcceptAPIs come through the acceptapis export's virtual workspace, which has no endpoint
    // until a provider binds the export: until then there are none, and the broker runs anyway.
    const acceptAPIsVw = this.#virtualWorkspaceOf(paths.acceptAPIExport);
    const acceptAPIs = this.#scope.informer(acceptAPIsVw.wildcard<AcceptAPI>(ACCEPTAPI_GVR), { name: 'acceptapis', logger });
    // The staging views (the broker's exports in the staging root, see stagingViewName) and
    // their endpoint slices: what every sync controller watches staging workspaces through.
    const viewExports = this.#scope.informer(clients.inWorkspace<APIExportObject>(paths.stagingRoot, APIEXPORTS), {
      name: 'staging views',
      labelSelector: `${MANAGED_BY_LABEL}=${MANAGER}`,
      logger,
    });
    const viewSlices = this.#scope.informer(clients.inWorkspace<APIExportEndpointSlice & KubeObject>(paths.stagingRoot, SLICES), {
      name: 'staging view endpoint slices',
      logger,
    });
    const stagingViews = new StagingViews({ exports: viewExports, endpoint, scope: this.#scope.child('staging views') });
    viewSlices.onEvent((e) => {
      const name = e.object.metadata.name ?? '';
      const urls = endpointUrlsOf(e);
      if (stagingViews.updateEndpoints(name, urls)) logger.info({ view: name, endpoints: urls }, 'staging view endpoints changed');
    });
    const stages = new MigrationStages({
      compute: this.#options.compute ?? workspaceAccess(endpoint, paths.compute),
      migrationClient: coordination.migrations.client,
      configurations: coordination.configurations.store,
      logger: logger.child({ controller: 'migration-stages' }),
    });
    // The staging workspaces themselves, as their parent lists them: their progress as events.
    const stagingTree = this.#scope.informer(clients.inWorkspace<WorkspaceObject>(paths.stagingRoot, WORKSPACES), {
      name: 'staging tree',
      labelSelector: `${MANAGED_BY_LABEL}=${MANAGER}`,
      transform: workspaceStateOf,
      logger,
    });
    const stagingController = new StagingWorkspaceController({
      coordination,
      informers: coordinationInformers,
      stagingViews: viewExports,
      stagingTree,
      workspaces,
      clients,
      stagingRoot: paths.stagingRoot,
      location: this.#options.locations?.staging,
      logger: logger.child({ controller: 'stagingworkspace' }),
    });
    // A brokered export's claims (or resources) change without its endpoint slice changing.
    const apiExports = this.#scope.informer(clients.inWorkspace<APIExportObject>(paths.home, APIEXPORTS), {
      name: 'apiexports',
      logger,
    });
    this.#core = [...Object.values(coordinationInformers), slices, apiExports, viewExports, viewSlices, stagingTree];
    // One budget for every brokered resource: it paces the platform's moves overall and per provider.
    const budget = new MigrationBudget({
      migrations: coordination.migrations.store,
      coordinationCluster: coordination.cluster,
      ...(this.#options.migrationBudget ? { limits: this.#options.migrationBudget } : {}),
    });
    this.#wiring = {
      clients,
      coordination,
      coordinationInformers,
      acceptAPIs,
      stagingViews,
      stages,
      stagingController,
      budget,
    };
    const acceptController = new AcceptAPIController({
      acceptAPIs,
      acceptAPIClient: (cluster) => acceptAPIsVw.client<AcceptAPI>(cluster, ACCEPTAPI_GVR),
      workspaces,
      clients,
      verificationRoot: paths.verificationRoot,
      location: this.#options.locations?.verification,
      verificationScopes: new ClusterScopes(this.#scope.child('verification')),
      load: {
        of: (a) => coordination.acceptAPILoad(clusterOf(a), a.metadata.name ?? ''),
        known: () => Object.values(coordinationInformers).every((i) => i.synced),
        everyMs: ACCEPTAPI_LOAD_REPORT_MS,
      },
      logger: logger.child({ controller: 'acceptapi' }),
    });
    this.#acceptController = acceptController;
    const discovery: Controller = {
      name: 'discovery',
      queue: new WorkQueue({ name: 'discovery', reconcile: (key, s) => this.#discover(slices, key, s), concurrency: 1, logger }),
      watches: (): Watch[] => {
        // Keyed by export name: kcp names an export's endpoint slice after it.
        const brokered = (e: { object: KubeObject }): string[] =>
          e.object.metadata.name === paths.acceptAPIExport ? [] : [e.object.metadata.name ?? ''];
        return [watchOf(slices, brokered), watchOf(apiExports, brokered)];
      },
    };
    await Promise.all([stagingController, acceptController, discovery].map((c) => this.#add(c, signal)));
    // Ready means every brokered resource discovered at start is being served.
    await discovery.queue.idle();
    this.#logger.info({ coordination: paths.coordination, brokered: [...this.#syncControllers.keys()] }, 'broker started');
  }

  #virtualWorkspaceOf(sliceName: string): VirtualWorkspace {
    let vw = this.#virtualWorkspaces.get(sliceName);
    if (!vw) {
      vw = new VirtualWorkspace(this.#options.endpoint, sliceName);
      this.#virtualWorkspaces.set(sliceName, vw);
    }
    return vw;
  }

  #add(controller: Controller, signal: AbortSignal): Promise<void> {
    const { onQueueEvent } = this.#options;
    if (onQueueEvent) controller.queue.observe((event) => onQueueEvent(controller.name, event));
    return this.#manager.add(controller, signal);
  }

  /**
   * Caches synced, kcp answering the broker's own watches, every controller running, and the CEL
   * engine not failed to load (it loads on first use; one that cannot leaves every object an
   * expression filters waiting, so the pod must not look fine): what /readyz reports.
   */
  get ready(): boolean {
    return (
      this.#wiring !== undefined &&
      celEngine.failure === undefined &&
      this.#scope.stats().every((s) => s.synced) &&
      this.#core.every((i) => i.connected) &&
      this.#manager.queues.every((q) => q.running)
    );
  }

  /** The cached Assignments and Migrations (for metrics). */
  coordination(): { assignments: Assignment[]; migrations: Migration[] } {
    const c = this.#wiring?.coordination;
    return { assignments: c?.assignments.store.list() ?? [], migrations: c?.migrations.store.list() ?? [] };
  }

  /** Every informer the broker runs (for metrics). */
  get informers(): InformerScope {
    return this.#scope;
  }

  /** Consumer objects with no Assignment, by brokered resource (metrics). */
  pendingObjects(): { resource: string; count: number }[] {
    return [...this.#syncControllers].map(([resource, running]) => ({ resource, count: running.controller.pendingObjects }));
  }

  get queues(): WorkQueue[] {
    return this.#manager.queues;
  }

  /** Stops taking work, lets in-flight reconciles finish, closes every watch. */
  async stop(): Promise<void> {
    for (const { controller } of this.#syncControllers.values()) controller.stopSweeps();
    this.#acceptController?.stopLoadReports();
    await this.#manager.stop();
    await this.#scope.end();
  }

  /** Reconciles one APIExportEndpointSlice of the home workspace: starts, restarts or stops the sync controllers of its export's resources. */
  async #discover(slices: Informer<APIExportEndpointSlice & KubeObject>, sliceName: string, signal: AbortSignal): Promise<ReconcileResult> {
    const slice = slices.store.list((s) => s.metadata.name === sliceName)[0];
    // Served once the slice lists a usable URL (the virtual workspace took it: https, one spelling).
    const served = this.#virtualWorkspaceOf(sliceName).urls.length > 0;
    // The slice names its export, possibly in another workspace (spec.export.path).
    const exportRef = { path: slice?.spec?.export?.path || this.#options.paths.home, name: slice?.spec?.export?.name || sliceName };
    const { apis: wanted, claims } = slice && served ? await this.#brokeredApis(sliceName, exportRef, signal) : { apis: [], claims: [] };
    const wantedKeys = new Set(wanted.map((api) => gvrString(api)));
    for (const [key, running] of this.#syncControllers) {
      if (running.controller.api.exportName === sliceName && !wantedKeys.has(key)) {
        await this.#stopSync(key);
        this.#logger.info({ resource: key, export: sliceName }, 'stopped brokering');
      }
    }
    let started = false;
    for (const api of wanted) {
      const key = gvrString(api);
      const existing = this.#syncControllers.get(key);
      // A new claim set means other consumer-side caches: the controller starts again with them.
      // New or removed shard endpoints do not: its informers follow the virtual workspace.
      if (existing && existing.controller.api.exportName === api.exportName && sameClaims(existing.claims, claims)) continue;
      if (existing) await this.#stopSync(key);
      await this.#startSync(api, claims, signal);
      started = true;
      this.#logger.info({ resource: key, export: sliceName, claims }, 'brokering');
    }
    const unclaimed = unclaimedOf(claims);
    if (started && unclaimed.length > 0) {
      this.#logger.warn(
        { export: sliceName, unclaimed },
        'the brokered export lacks claims the broker uses in consumer workspaces: related resources of an unclaimed kind are not copied; without an events claim, Events are logged instead',
      );
    }
    return;
  }

  async #startSync(api: BrokeredApi, claims: ConsumerResource[], signal: AbortSignal): Promise<void> {
    const w = this.#wiring!;
    const { clients } = w;
    const gvr = { group: api.group, version: api.version, resource: api.resource };
    const key = gvrString(gvr);
    const logger = this.#logger.child({ controller: 'sync', resource: key });
    const scope = this.#scope.child(`consumer ${key}`);
    const vw = this.#virtualWorkspaceOf(api.exportName);
    // The virtual workspace serves only what the export claims: an unclaimed kind would answer 404 for ever.
    const related = (resource: ConsumerResource, what: GroupVersionResource): Informer<KubeObject> | undefined =>
      claims.includes(resource)
        ? scope.informer(vw.wildcard(what), {
            name: `consumer ${resource} for ${key}`,
            labelSelector: RELATED_COPY_SELECTOR,
            transform: relatedDigestOf,
            pageSize: RELATED_PAGE_SIZE,
            logger,
          })
        : undefined;
    // The consumers' bindings to this export (the virtual workspace serves them): which claims each accepted.
    const bindings = new ConsumerBindings(
      scope.informer(vw.wildcard(APIBINDINGS), {
        name: `consumer apibindings for ${key}`,
        transform: bindingClaimsOf,
        logger,
      }),
    );
    const consumers = {
      objects: scope.informer(vw.wildcard(gvr), { name: `consumer ${key}`, logger }),
      secrets: related('secrets', SECRETS),
      configMaps: related('configmaps', CONFIGMAPS),
      bindings,
      client: (cluster: string, g: typeof gvr) => vw.client(cluster, g),
    };
    const events = new EventRecorder({
      virtualWorkspace: vw,
      logger,
      involvedType: { apiVersion: apiVersionOf(gvr), kind: api.kind },
      // kcp refuses an Event unless the export claims events and the workspace accepted the claim.
      delivery: (cluster) => (claims.includes('events') && (bindings.accepted(cluster)?.includes('events') ?? true) ? 'events' : 'log'),
    });
    const placer = new Placer({ gvr, coordination: w.coordination, acceptAPIs: () => w.acceptAPIs.store.list() });
    const release = (name: string): void => w.stagingController.queue.add(name);
    const migrator = new Migrator({
      gvr,
      kind: api.kind,
      coordination: w.coordination,
      acceptAPIs: w.acceptAPIs,
      placer,
      stages: w.stages,
      events,
      logger,
      releaseStagingWorkspace: release,
      budget: w.budget,
      ...(this.#options.rebalance ? { rebalance: this.#options.rebalance } : {}),
    });
    let controller: SyncController | undefined;
    const staging = new StagingCaches({
      views: w.stagingViews,
      scope,
      clients,
      gvr,
      logger,
      enqueue: (k) => controller?.queue.add(k),
      consumerClusterOf: (cluster) => w.coordination.stagingWorkspaceInCluster(cluster)?.spec.consumerCluster,
      viewOf: (cluster) => w.coordination.stagingWorkspaceInCluster(cluster)?.metadata.annotations?.[STAGING_VIEW_ANNOTATION],
    });
    controller = new SyncController({
      api,
      consumers,
      staging,
      coordination: w.coordination,
      coordinationInformers: w.coordinationInformers,
      acceptAPIs: w.acceptAPIs,
      placer,
      migrator,
      events,
      releaseStagingWorkspace: release,
      logger,
    });
    this.#syncControllers.set(key, { controller, scope, claims });
    await this.#add(controller, signal);
  }

  async #stopSync(key: string): Promise<void> {
    const running = this.#syncControllers.get(key);
    if (!running) return;
    this.#syncControllers.delete(key);
    await this.#manager.remove(running.controller.name);
    await running.controller.stop();
    await running.scope.end();
  }

  /** The resources the export a home-workspace slice names serves, from its APIResourceSchemas, and the consumer resources it claims. */
  async #brokeredApis(
    exportName: string,
    exportRef: { path: string; name: string },
    signal: AbortSignal,
  ): Promise<{ apis: BrokeredApi[]; claims: ConsumerResource[] }> {
    const { endpoint } = this.#options;
    const client = createKcpClient(endpoint, endpoint.workspaceUrl(exportRef.path));
    const found = await client.GET('/apis/apis.kcp.io/v1alpha2/apiexports/{name}', { params: { path: { name: exportRef.name } }, signal });
    if (found.response.status === 404) {
      for (const key of this.#schemas.keys()) if (key.startsWith(`${exportRef.path}|${exportRef.name}|`)) this.#schemas.delete(key);
      return { apis: [], claims: [] };
    }
    const apiExport = unwrap(found);
    const apis: BrokeredApi[] = [];
    const referenced = new Set<string>();
    for (const resource of apiExport.spec.resources ?? []) {
      // APIResourceSchemas are immutable: each is read once, not on every export event.
      const cacheKey = `${exportRef.path}|${exportRef.name}|${resource.schema}`;
      referenced.add(cacheKey);
      let served = this.#schemas.get(cacheKey);
      if (!served) {
        const schema = unwrap(
          await client.GET('/apis/apis.kcp.io/v1alpha1/apiresourceschemas/{name}', { params: { path: { name: resource.schema } }, signal }),
        );
        const version = schema.spec.versions.find((v) => v.storage) ?? schema.spec.versions[0];
        if (!version) continue;
        served = {
          group: schema.spec.group ?? '',
          version: version.name,
          resource: schema.spec.names.plural,
          kind: schema.spec.names.kind,
          namespaced: schema.spec.scope === 'Namespaced',
        };
        this.#schemas.set(cacheKey, served);
      }
      apis.push({ ...served, exportName });
    }
    for (const key of this.#schemas.keys())
      if (key.startsWith(`${exportRef.path}|${exportRef.name}|`) && !referenced.has(key)) this.#schemas.delete(key);
    return { apis, claims: consumerClaimsOf(apiExport.spec.permissionClaims) };
  }
}
