/**
 * One brokered resource's SyncController (with its Placer, Migrator and MigrationStages) over a
 * MemoryApi, plus the other actors around it: users who create and delete consumer objects, the
 * staging-workspace controller that makes StagingWorkspaces Ready, and providers that write the
 * status of their copies (holding a finalizer on them). Reconciles run one by one, directly.
 */
import { MigrationBudget, type MigrationBudgetLimits } from '../../src/controllers/migration/budget.ts';
import {
  ACCEPTAPI_GVR,
  ASSIGNMENT_GVR,
  MIGRATION_GVR,
  STAGINGWORKSPACE_GVR,
  type AcceptAPI,
  type AcceptAPIFilter,
  type Assignment,
  type BrokeredApi,
  type Migration,
  type StagingWorkspace,
} from '../../src/apis/types.ts';
import { MigrationStages } from '../../src/controllers/migration/stage-runner.ts';
import { Migrator, type RebalancePolicy } from '../../src/controllers/migration/migrator.ts';
import { MOVED_AT_ANNOTATION } from '../../src/apis/names.ts';
import { Placer } from '../../src/controllers/placement/assign.ts';
import { RELATED_COPY_SELECTOR, SyncController, type ConsumerSide } from '../../src/controllers/sync/controller.ts';
import { relatedDigestOf } from '../../src/controllers/related/digest.ts';
import type { RelatedKind } from '../../src/controllers/related/mirror.ts';
import { bindingClaimsOf, ConsumerBindings } from '../../src/controllers/sync/claims.ts';
import type { StagingCache, StagingSide, StagingStore } from '../../src/controllers/sync/staging.ts';
import type { Coordination } from '../../src/coordination/coordination.ts';
import { CONFIGMAPS, SECRETS, type GroupVersionResource, type KubeObject } from '../../src/kcp-client-ts/types.ts';
import { silentLogger } from '../../src/logging.ts';
import type { Informer } from '../../src/runtime/informer.ts';
import { encodeKey, type ObjectKey } from '../../src/runtime/object-key.ts';
import type { ReconcileResult } from '../../src/runtime/workqueue.ts';
import { memoryCompute } from './compute.ts';
import { RecordingEvents } from './events.ts';
import { type CoordinationInformers, memoryCoordination } from './coordination.ts';
import { MemoryApi } from './memory-api.ts';

export const WIDGETS: GroupVersionResource = { group: 'example.platform-mesh.io', version: 'v1alpha1', resource: 'widgets' };
export const APIBINDINGS: GroupVersionResource = { group: 'apis.kcp.io', version: 'v1alpha2', resource: 'apibindings' };
export const WIDGET_API: BrokeredApi = {
  ...WIDGETS,
  kind: 'Widget',
  namespaced: true,
  exportName: 'widgets',
};
export const COORD = 'coord';
export const COMPUTE = 'compute';
export const CONSUMER = 'consumer-1';
export const PROVIDER_FINALIZER = 'provider.example/cleanup';

/** The logical cluster the simulated staging-workspace controller gives a StagingWorkspace. */
export const clusterOfStagingWorkspace = (name: string): string => `ws-${name}`;

/** What a simulated provider writes into its copy's status (default: Available). */
export type ProviderBehaviour = (copy: KubeObject, cluster: string, api: MemoryApi) => Record<string, unknown> | undefined;

/** An informer as the sync controller sees a staging cache. */
const storeOf = (informer: Informer<KubeObject>): StagingStore => ({
  get: (key) => informer.store.get(key),
  readThrough: async (read) => {
    const mark = informer.admissionMark();
    const obj = await read();
    if (obj) informer.admit(obj, mark);
    return obj;
  },
  waitForSync: (signal) => informer.waitForSync(signal),
});

export class SyncWorld {
  readonly api = new MemoryApi();
  readonly events = new RecordingEvents();
  readonly released: string[] = [];
  readonly errors: unknown[] = [];
  readonly signal = new AbortController().signal;
  readonly informers: CoordinationInformers;
  readonly acceptAPIs: Informer<AcceptAPI>;
  readonly coordination: Coordination;
  readonly consumers: ConsumerSide;
  readonly staging: StagingSide;
  readonly placer: Placer;
  readonly stages: MigrationStages;
  readonly migrator: Migrator;
  readonly sync: SyncController;
  /** How providers answer a copy without status; undefined leaves it without. */
  provider: ProviderBehaviour = () => ({ status: 'Available' });

  /**
   * `claimed`: the related kinds the brokered export claims (default both); the others get no
   * consumer-side cache. `bindings`: the consumers' APIBindings (APIBINDINGS, put by the test)
   * tell what each workspace accepted; without, everything claimed counts as accepted.
   */
  constructor(
    options: {
      consumerClusters?: string[];
      claimed?: RelatedKind[];
      bindings?: boolean;
      budget?: MigrationBudgetLimits;
      rebalance?: RebalancePolicy;
      now?: () => number;
    } = {},
  ) {
    const { api } = this;
    const consumerClusters = options.consumerClusters ?? [CONSUMER];
    const claimed = options.claimed ?? ['Secret', 'ConfigMap'];
    const logger = silentLogger();
    ({ informers: this.informers, coordination: this.coordination } = memoryCoordination(api, COORD));
    this.acceptAPIs = api.informer<AcceptAPI>(ACCEPTAPI_GVR);
    const related = { clusters: consumerClusters, labelSelector: RELATED_COPY_SELECTOR, transform: relatedDigestOf };
    this.consumers = {
      objects: api.informer(WIDGETS, { clusters: consumerClusters }),
      secrets: claimed.includes('Secret') ? api.informer(SECRETS, related) : undefined,
      configMaps: claimed.includes('ConfigMap') ? api.informer(CONFIGMAPS, related) : undefined,
      bindings: options.bindings
        ? new ConsumerBindings(api.informer(APIBINDINGS, { clusters: consumerClusters, transform: bindingClaimsOf }))
        : undefined,
      client: (cluster, gvr) => api.client(cluster, gvr),
    };
    const caches = new Map<string, StagingCache>();
    this.staging = {
      cache: (cluster) => {
        const cache = caches.get(cluster) ?? {
          objects: storeOf(api.informer(WIDGETS, { clusters: [cluster] })),
          secrets: storeOf(api.informer(SECRETS, { clusters: [cluster], transform: relatedDigestOf })),
          configMaps: storeOf(api.informer(CONFIGMAPS, { clusters: [cluster], transform: relatedDigestOf })),
        };
        caches.set(cluster, cache);
        return cache;
      },
      client: (cluster, gvr = WIDGETS) => api.client(cluster, gvr),
    };
    this.placer = new Placer({ gvr: WIDGETS, coordination: this.coordination, acceptAPIs: () => this.acceptAPIs.store.list() });
    this.stages = new MigrationStages({
      compute: memoryCompute(api, COMPUTE),
      migrationClient: this.coordination.migrations.client,
      configurations: this.informers.configurations.store,
      logger,
    });
    const releaseStagingWorkspace = (name: string): void => void this.released.push(name);
    this.migrator = new Migrator({
      gvr: WIDGETS,
      kind: 'Widget',
      coordination: this.coordination,
      acceptAPIs: this.acceptAPIs,
      placer: this.placer,
      stages: this.stages,
      events: this.events,
      logger,
      releaseStagingWorkspace,
      budget: new MigrationBudget({
        migrations: this.coordination.migrations.store,
        coordinationCluster: COORD,
        ...(options.budget ? { limits: options.budget } : {}),
      }),
      ...(options.rebalance ? { rebalance: options.rebalance } : {}),
      ...(options.now ? { now: options.now } : {}),
    });
    this.sync = new SyncController({
      api: WIDGET_API,
      consumers: this.consumers,
      staging: this.staging,
      coordination: this.coordination,
      coordinationInformers: this.informers,
      acceptAPIs: this.acceptAPIs,
      placer: this.placer,
      migrator: this.migrator,
      events: this.events,
      releaseStagingWorkspace,
      logger,
    });
  }

  /** A provider publishes an AcceptAPI for widgets (Ready unless told otherwise). */
  acceptAPI(
    provider: string,
    name: string,
    apiExportName: string,
    options: {
      ready?: boolean;
      filters?: AcceptAPIFilter[];
      capacity?: number;
      cordoned?: boolean;
      draining?: boolean;
      priority?: number;
    } = {},
  ): AcceptAPI {
    const { ready: _ready, ...spec } = options;
    return this.api.put<AcceptAPI>(provider, ACCEPTAPI_GVR, {
      metadata: { name },
      spec: { gvr: WIDGETS, apiExportName, ...spec },
      status: {
        conditions: [
          { type: 'Ready', status: options.ready === false ? 'False' : 'True', reason: 'Verified', message: '', lastTransitionTime: '' },
        ],
      },
    });
  }

  /** A user creates a widget. */
  createWidget(
    namespace: string,
    name: string,
    spec: Record<string, unknown>,
    cluster = CONSUMER,
    extra: Partial<KubeObject> = {},
  ): ObjectKey {
    this.api.put(cluster, WIDGETS, {
      apiVersion: 'example.platform-mesh.io/v1alpha1',
      kind: 'Widget',
      ...extra,
      metadata: { name, namespace, ...extra.metadata },
      spec,
    });
    return { cluster, namespace, name };
  }

  /** A user deletes a widget: marked while it has finalizers, else gone. */
  deleteWidget(key: ObjectKey): void {
    const obj = this.widget(key);
    if (obj?.metadata.finalizers?.length)
      this.api.put(key.cluster, WIDGETS, { ...obj, metadata: { ...obj.metadata, deletionTimestamp: new Date().toISOString() } });
    else this.api.remove(key.cluster, WIDGETS, key.namespace, key.name);
  }

  widget(key: ObjectKey): KubeObject | undefined {
    return this.api.get(key.cluster, WIDGETS, key.namespace, key.name);
  }

  /** The copy of `key` in a StagingWorkspace's cluster. */
  copyIn(stagingWorkspace: string, key: ObjectKey): KubeObject | undefined {
    return this.api.get(clusterOfStagingWorkspace(stagingWorkspace), WIDGETS, key.namespace, key.name);
  }

  assignments(): Assignment[] {
    return this.api.list<Assignment>(COORD, ASSIGNMENT_GVR);
  }

  migrations(): Migration[] {
    return this.api.list<Migration>(COORD, MIGRATION_GVR);
  }

  /** The staging-workspace controller: each StagingWorkspace not yet Ready becomes Ready. Whether anything changed. */
  stagingWorkspacesReady(): boolean {
    const pending = this.api.list<StagingWorkspace>(COORD, STAGINGWORKSPACE_GVR).filter((sw) => sw.status?.phase !== 'Ready');
    for (const sw of pending)
      this.api.put(COORD, STAGINGWORKSPACE_GVR, {
        ...sw,
        status: { phase: 'Ready', clusterName: clusterOfStagingWorkspace(sw.metadata.name ?? '') },
      });
    return pending.length > 0;
  }

  /** The providers: a copy without status gets one (and their finalizer); a deleting copy loses the finalizer. Whether anything changed. */
  providersAct(): boolean {
    let changed = false;
    for (const { cluster, resource, object: copy } of this.api.dump()) {
      if (!cluster.startsWith('ws-') || !resource.startsWith('widgets.')) continue;
      const finalizers = copy.metadata.finalizers ?? [];
      if (copy.metadata.deletionTimestamp) {
        this.api.put(cluster, WIDGETS, {
          ...copy,
          metadata: { ...copy.metadata, finalizers: finalizers.filter((f) => f !== PROVIDER_FINALIZER) },
        });
        changed = true;
      } else if (copy['status'] === undefined) {
        const status = this.provider(copy, cluster, this.api);
        if (!status) continue;
        this.api.put(cluster, WIDGETS, {
          ...copy,
          metadata: { ...copy.metadata, finalizers: [...finalizers, PROVIDER_FINALIZER] },
          status,
        });
        changed = true;
      }
    }
    return changed;
  }

  reconcile(key: ObjectKey): Promise<ReconcileResult> {
    return this.sync.reconcile(encodeKey(key), this.signal);
  }

  /**
   * Reconciles `key` and lets the other actors act (`others`, default: staging workspaces and
   * providers) until a round where the reconcile writes nothing, does not throw, and nobody else
   * changes anything. Errors are kept in `errors` (the work queue would retry). Returns the rounds.
   */
  async settle(
    key: ObjectKey,
    others: () => boolean = () => this.stagingWorkspacesReady() || this.providersAct(),
    max = 40,
  ): Promise<number> {
    for (let round = 1; round <= max; round++) {
      const before = this.api.writes.length;
      let failed = false;
      try {
        await this.reconcile(key);
      } catch (err) {
        failed = true;
        this.errors.push(err);
      }
      const changed = others();
      if (!failed && !changed && this.api.writes.length === before) return round;
    }
    throw new Error(`not settled after ${max} rounds: ${this.api.log().slice(-8).join('; ')}`);
  }

  /** Every stored object without what differs from run to run (uids, versions, times, placement reasons), sorted. */
  snapshot(): string[] {
    const volatile = new Set([
      'uid',
      'resourceVersion',
      'creationTimestamp',
      'deletionTimestamp',
      'generation',
      'lastTransitionTime',
      'stageStartTime',
      'placement',
      MOVED_AT_ANNOTATION,
    ]);
    return this.api
      .dump()
      .map(({ cluster, resource, object }) => {
        const text = JSON.stringify(object, (k, v) => {
          if (volatile.has(k) || (k === 'message' && typeof v === 'string')) return undefined;
          if (typeof v === 'string' && /^uid-\d+$/.test(v)) return 'uid';
          return v;
        });
        return `${cluster} ${resource} ${text}`;
      })
      .sort();
  }
}
