import { isDeepStrictEqual } from 'node:util';
import { onlyLoadChanged, reportedLoad } from '../../apis/acceptapi-load.ts';
import { setCondition } from '../../apis/conditions.ts';
import { APIEXPORT_NAME_ANNOTATION, apiExportNameOf, MANAGED_BY_LABEL, MANAGER, verificationWorkspaceName } from '../../apis/names.ts';
import type { AcceptAPI, AcceptAPILoad, Condition } from '../../apis/types.ts';
import { APIBINDINGS, apiBindingTo, type APIBindingObject } from '../../kcp-client-ts/bindings.ts';
import type { Clients } from '../../kcp-client-ts/clients.ts';
import { isAlreadyExists, isConflict, isNotFound } from '../../kcp-client-ts/errors.ts';
import type { ObjectClient } from '../../kcp-client-ts/resources.ts';
import { clusterOf, type GroupVersionResource, type KubeObject } from '../../kcp-client-ts/types.ts';
import type { ShardSelector, Workspaces } from '../../kcp-client-ts/workspaces.ts';
import type { Logger } from '../../logging.ts';
import { watchOf, type Controller, type Watch } from '../../runtime/controller.ts';
import type { Informer } from '../../runtime/informer.ts';
import type { ClusterScopes } from '../../runtime/informer-scope.ts';
import { decodeKey, encodeKey, objectKeyOf } from '../../runtime/object-key.ts';
import { WorkQueue, type ReconcileResult } from '../../runtime/workqueue.ts';
import { validateFilters } from './filters.ts';
import { WorkspaceHolds } from './workspace-holds.ts';

export const WORKSPACES: GroupVersionResource = { group: 'tenancy.kcp.io', version: 'v1alpha1', resource: 'workspaces' };

/** The key of the garbage collection of verification workspaces, on the same queue. */
export const VERIFICATION_GC_KEY = '__verification-gc__';

/**
 * The queue key of an AcceptAPI's load report: its object key and a fourth part (no object key has
 * one, whatever the AcceptAPI's name; decodeKey reads the first three, so fairness still groups it
 * by the provider's cluster).
 */
const loadKeyOf = (acceptAPI: AcceptAPI): string => `${encodeKey(objectKeyOf(acceptAPI))}|load`;
const isLoadKey = (keyText: string): boolean => keyText.split('|').length === 4;

/** When a verdict whose write met a conflict is written again. */
const CONFLICT_RETRY_MS = 1_000;

/** Condition on an AcceptAPI that names its export only by the standalone generation's annotation. */
const DEPRECATED = 'Deprecated';

/** Whether an AcceptAPI's export binds in its verification workspace, and if not why. */
type Verdict = { bound: true } | { bound: false; reason: string; message: string };

/** What the controller reads of a Workspace (tenancy.kcp.io/v1alpha1). */
type WorkspaceView = {
  metadata?: { deletionTimestamp?: string };
  spec: { cluster?: string };
  status?: { phase?: string };
};

export type AcceptAPIControllerOptions = {
  acceptAPIs: Informer<AcceptAPI>;
  /** Writes an AcceptAPI's status, in its provider's cluster (through the acceptapis virtual workspace). */
  acceptAPIClient: (cluster: string) => ObjectClient<AcceptAPI>;
  workspaces: {
    get(parent: string, name: string, signal?: AbortSignal): Promise<WorkspaceView | undefined>;
    create: Workspaces['create'];
    delete: Workspaces['delete'];
  };
  clients: Pick<Clients, 'inWorkspace'>;
  /** Workspace path under which verification workspaces are created. */
  verificationRoot: string;
  /** The shards verification workspaces are scheduled to (default: any). */
  location?: ShardSelector | undefined;
  /** What is watched inside each verification workspace: ended when the workspace is released. */
  verificationScopes: ClusterScopes;
  /**
   * The load each AcceptAPI reports in its status (beyond the Go project), and how often it is
   * compared: one status write per AcceptAPI per period at most, none while nothing changes.
   */
  load?: {
    of: (acceptAPI: AcceptAPI) => AcceptAPILoad;
    /** Whether the counts are known (the coordination caches have synced): none is reported before. */
    known: () => boolean;
    everyMs: number;
  };
  logger: Logger;
};

/**
 * Verifies AcceptAPIs: filters must be valid, and a binding to the named export (in a shared
 * workspace per provider and export under the verification tree) must become Bound. Writes
 * `BindingVerified` and `Ready`, and deletes verification workspaces nobody names any more.
 */
export class AcceptAPIController implements Controller {
  readonly name = 'acceptapi';
  readonly queue: WorkQueue;
  readonly #o: AcceptAPIControllerOptions;
  readonly #informer: Informer<AcceptAPI>;
  readonly #logger: Logger;
  readonly #attempts = new Map<string, number>();
  /** Verification clusters whose binding watch already has this controller's handler. */
  readonly #watchedBindings = new Set<string>();
  /** Verification workspaces in use by a reconcile, or being deleted by the clean-up. */
  readonly #holds = new WorkspaceHolds();
  #loadTimer: ReturnType<typeof setInterval> | undefined;
  /**
   * AcceptAPIs whose status dropped the load fields (an export still on a schema without them), by
   * key, with the resourceVersion then: not reported again until the object changes.
   */
  readonly #loadDropped = new Map<string, string | undefined>();

  constructor(options: AcceptAPIControllerOptions) {
    this.#o = options;
    this.#informer = options.acceptAPIs;
    this.#logger = options.logger;
    this.queue = new WorkQueue({
      name: this.name,
      reconcile: (key, signal) => this.reconcile(key, signal),
      concurrency: 4,
      deadlineMs: 60_000,
      // One provider's AcceptAPIs (thousands, or slow to verify) leave a worker to the others.
      fairness: { groupsOf: (key) => [decodeKey(key).cluster], maxPerGroup: 3 },
      logger: this.#logger,
    });
    options.verificationScopes.onEnded((cluster) => this.#watchedBindings.delete(cluster));
    if (options.load) {
      // Load changes with every placement: reported on a timer, not per change, so a burst of
      // placements costs each AcceptAPI one status write per period.
      this.#loadTimer = setInterval(() => this.reportLoads(), options.load.everyMs);
      this.#loadTimer.unref?.();
    }
  }

  watches(): Watch[] {
    // An update of the reported load alone (this controller's own write) changes no verdict.
    return [
      watchOf(this.#informer, (e) => (e.type === 'updated' && onlyLoadChanged(e.old, e.object) ? [] : [encodeKey(objectKeyOf(e.object))])),
    ];
  }

  /** Queues a load report for every AcceptAPI whose status does not show its load now. */
  reportLoads(): void {
    const load = this.#o.load;
    if (!load?.known()) return;
    for (const a of this.#informer.store.list((a) => !a.metadata.deletionTimestamp && !this.#loadDroppedFrom(a)))
      if (!isDeepStrictEqual(reportedLoad(a), load.of(a))) this.queue.add(loadKeyOf(a));
  }

  /** Ends the load reports (the broker stopping). */
  stopLoadReports(): void {
    clearInterval(this.#loadTimer);
    this.#loadTimer = undefined;
  }

  async reconcile(keyText: string, signal: AbortSignal): Promise<ReconcileResult> {
    if (keyText === VERIFICATION_GC_KEY) return this.#collectGarbage(signal);
    if (isLoadKey(keyText)) return this.#writeLoad(keyText, signal);
    const key = decodeKey(keyText);
    const acceptAPI = this.#informer.store.get(key);
    if (!acceptAPI) {
      this.#attempts.delete(keyText);
      this.#loadDropped.delete(keyText);
      this.queue.add(VERIFICATION_GC_KEY);
      return;
    }
    const exportName = apiExportNameOf(acceptAPI);
    const deprecation = deprecationOf(acceptAPI);
    if (!exportName) {
      const { group, resource } = acceptAPI.spec.gvr;
      const message = `spec.apiExportName is required: set it to the APIExport in this workspace that serves ${resource}${group ? `.${group}` : ''} (the deprecated annotation ${APIEXPORT_NAME_ANNOTATION} is not set either)`;
      await this.#writeStatus(
        acceptAPI,
        undefined,
        [
          { type: 'BindingVerified', status: 'Unknown', reason: 'MissingAPIExportName', message: 'not verified without an APIExport name' },
          { type: 'Ready', status: 'False', reason: 'MissingAPIExportName', message },
        ],
        signal,
      );
      this.queue.add(VERIFICATION_GC_KEY);
      return;
    }
    const problems = validateFilters(acceptAPI.spec.filters);
    if (problems.length > 0) {
      await this.#writeStatus(
        acceptAPI,
        undefined,
        [
          { type: 'BindingVerified', status: 'Unknown', reason: 'InvalidFilter', message: 'not verified while filters are invalid' },
          { type: 'Ready', status: 'False', reason: 'InvalidFilter', message: problems.map((p) => p.message).join('; ') },
          ...deprecation,
        ],
        signal,
      );
      this.queue.add(VERIFICATION_GC_KEY);
      return;
    }
    const providerCluster = clusterOf(acceptAPI);
    const workspaceName = verificationWorkspaceName(providerCluster, exportName);
    // Held from before the workspace is read or created until the status names it: the clean-up
    // never deletes it meanwhile, and this waits for a delete of it already under way.
    const release = await this.#holds.hold(workspaceName);
    let verdict: Verdict;
    try {
      verdict = await this.#verify(providerCluster, exportName, acceptAPI.spec.gvr, workspaceName, signal);
      const verification = { name: workspaceName, path: `${this.#o.verificationRoot}:${workspaceName}` };
      await this.#writeStatus(
        acceptAPI,
        verification,
        verdict.bound
          ? [
              { type: 'BindingVerified', status: 'True', reason: 'Bound', message: `APIExport ${exportName} of ${providerCluster} binds` },
              { type: 'Ready', status: 'True', reason: 'Verified', message: '' },
              ...deprecation,
            ]
          : [
              { type: 'BindingVerified', status: 'False', reason: verdict.reason, message: verdict.message },
              { type: 'Ready', status: 'False', reason: 'BindingNotVerified', message: verdict.message },
              ...deprecation,
            ],
        signal,
      );
    } finally {
      release();
    }
    this.queue.add(VERIFICATION_GC_KEY);
    if (verdict.bound) {
      this.#attempts.delete(keyText);
      return;
    }
    if (verdict.reason !== 'Pending' && verdict.reason !== 'BindingRejected') return; // binding changes arrive through its watch
    // A workspace still initializing settles within seconds; a refused binding is retried ever more slowly.
    const attempts = (this.#attempts.get(keyText) ?? 0) + 1;
    this.#attempts.set(keyText, attempts);
    return { requeueAfterMs: verdict.reason === 'Pending' ? Math.min(200 * attempts, 5_000) : Math.min(1_000 * 2 ** attempts, 60_000) };
  }

  /** Whether the export binds in its verification workspace and serves `gvr`; creates what is missing. */
  async #verify(
    providerCluster: string,
    exportName: string,
    gvr: GroupVersionResource,
    workspaceName: string,
    signal: AbortSignal,
  ): Promise<Verdict> {
    const { workspaces, verificationRoot, clients } = this.#o;
    const ws = await workspaces.get(verificationRoot, workspaceName, signal);
    if (!ws) {
      await workspaces.create(verificationRoot, workspaceName, {
        labels: { [MANAGED_BY_LABEL]: MANAGER },
        location: this.#o.location,
        signal,
      });
      return { bound: false, reason: 'Pending', message: `creating verification workspace ${workspaceName}` };
    }
    // Released a moment ago (its last AcceptAPI went): made again once kcp has removed it.
    if (ws.metadata?.deletionTimestamp)
      return {
        bound: false,
        reason: 'Pending',
        message: `verification workspace ${workspaceName} is being deleted; it is created again once gone`,
      };
    if (ws.status?.phase !== 'Ready' || !ws.spec.cluster)
      return { bound: false, reason: 'Pending', message: `verification workspace ${workspaceName} is ${ws.status?.phase ?? 'not ready'}` };
    const bindings = this.#bindingInformer(ws.spec.cluster, workspaceName);
    await bindings.waitForSync(signal);
    signal.throwIfAborted();
    let binding = bindings.store.get({ cluster: ws.spec.cluster, namespace: '', name: exportName });
    if (!binding) {
      const body = apiBindingTo({ path: providerCluster, name: exportName }, { labels: { [MANAGED_BY_LABEL]: MANAGER } });
      try {
        binding = await clients.inWorkspace<APIBindingObject>(ws.spec.cluster, APIBINDINGS).create(body, signal);
      } catch (err) {
        if (isAlreadyExists(err)) return { bound: false, reason: 'Pending', message: 'binding created' };
        // kcp refuses bindings to exports it cannot find or may not bind: say so, retry later.
        return {
          bound: false,
          reason: 'BindingRejected',
          message: `kcp refused an APIBinding to APIExport ${exportName} in ${providerCluster}: ${err instanceof Error ? err.message : String(err)}`,
        };
      }
    }
    if (binding.status?.phase === 'Bound') {
      // A Bound binding to an export that does not serve the AcceptAPI's resource would win
      // placement and leave its objects waiting for a copy nobody can make.
      const served = binding.status.boundResources ?? [];
      if (served.some((r) => r.group === (gvr.group ?? '') && r.resource === gvr.resource)) return { bound: true };
      return {
        bound: false,
        reason: 'ResourceNotServed',
        message: `APIExport ${exportName} in ${providerCluster} does not serve spec.gvr ${gvr.resource}${gvr.group ? `.${gvr.group}` : ''} (it serves: ${served.map((r) => `${r.resource}${r.group ? `.${r.group}` : ''}`).join(', ') || 'nothing'})`,
      };
    }
    const failing = binding.status?.conditions?.find((c) => c.status === 'False' && c.message);
    return {
      bound: false,
      reason: failing?.reason ?? 'Binding',
      message: `APIBinding to APIExport ${exportName} in ${providerCluster} is not Bound${failing?.message ? `: ${failing.message}` : ` (phase ${binding.status?.phase ?? 'unknown'})`}`,
    };
  }

  /** Watches the APIBindings of one verification workspace: their phase changes drive the AcceptAPIs naming it. */
  #bindingInformer(cluster: string, workspaceName: string): Informer<APIBindingObject> {
    const informer = this.#o.verificationScopes.of(cluster).informer(this.#o.clients.inWorkspace<APIBindingObject>(cluster, APIBINDINGS), {
      name: `verification ${workspaceName} apibindings`,
      family: 'verification apibindings',
      logger: this.#logger,
    });
    if (!this.#watchedBindings.has(cluster)) {
      this.#watchedBindings.add(cluster);
      informer.onEvent(() => {
        this.#requeueNaming(workspaceName);
      });
    }
    return informer;
  }

  /** Queues every AcceptAPI whose verification workspace is `workspaceName`. */
  #requeueNaming(workspaceName: string): void {
    for (const a of this.#informer.store.list()) {
      const exportName = apiExportNameOf(a);
      if (exportName && verificationWorkspaceName(clusterOf(a), exportName) === workspaceName) this.queue.add(encodeKey(objectKeyOf(a)));
    }
  }

  async #writeStatus(
    acceptAPI: AcceptAPI,
    verification: { name: string; path: string } | undefined,
    conditions: Omit<Condition, 'lastTransitionTime'>[],
    signal: AbortSignal,
  ): Promise<void> {
    // A Deprecated condition stays only while this write sets it.
    let next = conditions.some((c) => c.type === DEPRECATED)
      ? acceptAPI.status?.conditions
      : acceptAPI.status?.conditions?.filter((c) => c.type !== DEPRECATED);
    for (const c of conditions) next = setCondition(next, { ...c, observedGeneration: acceptAPI.metadata.generation ?? 0 });
    const status = {
      ...(verification ? { verificationWorkspace: verification.name, verificationWorkspacePath: verification.path } : {}),
      conditions: next,
      // The load is written by its own report only (#writeLoad), or verdicts would write it on every change.
      ...reportedLoad(acceptAPI),
    };
    if (isDeepStrictEqual(status, acceptAPI.status)) return;
    try {
      await this.#o.acceptAPIClient(clusterOf(acceptAPI)).updateStatus({ ...acceptAPI, status }, signal);
    } catch (err) {
      if (isNotFound(err)) return;
      if (!isConflict(err)) throw err;
      // Usually a load report won the race: its event wakes no reconcile (onlyLoadChanged), so the
      // verdict is written again once the cache has that version.
      this.queue.addAfter(encodeKey(objectKeyOf(acceptAPI)), CONFLICT_RETRY_MS);
    }
  }

  /** Whether the AcceptAPI's status dropped the load at its current version (see #loadDropped). */
  #loadDroppedFrom(acceptAPI: AcceptAPI): boolean {
    const key = encodeKey(objectKeyOf(acceptAPI));
    return this.#loadDropped.has(key) && this.#loadDropped.get(key) === acceptAPI.metadata.resourceVersion;
  }

  /**
   * Writes the AcceptAPI's load into its status, when it differs from what the status shows: a
   * merge patch of the two counts only, so it neither resends the provider's object nor conflicts
   * with a verdict write (the counts come from the broker's own records, not from the object).
   */
  async #writeLoad(keyText: string, signal: AbortSignal): Promise<ReconcileResult> {
    const key = decodeKey(keyText);
    const acceptAPI = this.#informer.store.get(key);
    const load = this.#o.load;
    if (!acceptAPI || acceptAPI.metadata.deletionTimestamp || !load?.known() || this.#loadDroppedFrom(acceptAPI)) return undefined;
    const counts = load.of(acceptAPI);
    if (isDeepStrictEqual(reportedLoad(acceptAPI), counts)) return undefined;
    try {
      const written = await this.#o
        .acceptAPIClient(key.cluster)
        .mergePatch({ name: key.name, subresource: 'status' }, { status: counts }, signal);
      if (written.status?.servedObjects === undefined) {
        // The server pruned the fields: the export still serves a schema older than v1alpha1-5.
        this.#loadDropped.set(encodeKey(key), written.metadata.resourceVersion);
        this.#logger.warn(
          { acceptAPI: key.name, cluster: key.cluster },
          'AcceptAPI status has no servedObjects field: apply the v1alpha1-5 AcceptAPI schema (resource-broker bootstrap); its load is not reported until then',
        );
      }
    } catch (err) {
      // Gone meanwhile: nothing to report.
      if (!isNotFound(err)) throw err;
    }
    return undefined;
  }

  /** The verification workspaces current, valid AcceptAPIs name, as cached now. */
  #wanted(): Set<string> {
    const wanted = new Set<string>();
    for (const a of this.#informer.store.list((a) => !a.metadata.deletionTimestamp && validateFilters(a.spec.filters).length === 0)) {
      const exportName = apiExportNameOf(a);
      if (exportName) wanted.add(verificationWorkspaceName(clusterOf(a), exportName));
    }
    return wanted;
  }

  /**
   * Deletes verification workspaces that no current, valid AcceptAPI names (reference counting by
   * the cache). Who wants a workspace is read after the list, at the moment of each delete: a
   * workspace listed here was created by a reconcile of an AcceptAPI that was in the cache then,
   * so it is still wanted unless that AcceptAPI changed or went since. A workspace a reconcile is
   * using right now is left for the next run.
   */
  async #collectGarbage(signal: AbortSignal): Promise<ReconcileResult> {
    const { clients, verificationRoot, workspaces, verificationScopes } = this.#o;
    const list = await clients
      .inWorkspace<KubeObject & { spec: { cluster?: string } }>(verificationRoot, WORKSPACES)
      .list({ labelSelector: `${MANAGED_BY_LABEL}=${MANAGER}`, signal });
    const wantedAfterList = this.#wanted();
    let held = false;
    for (const ws of list.items) {
      const name = ws.metadata.name ?? '';
      if (ws.metadata.deletionTimestamp || wantedAfterList.has(name)) continue;
      const outcome = await this.#holds.deleteUnlessHeld(
        name,
        () => this.#wanted().has(name), // the cache as it is now, not as it was at the list
        async () => {
          if (ws.spec.cluster) await verificationScopes.end(ws.spec.cluster);
          await workspaces.delete(verificationRoot, name, signal);
        },
      );
      if (outcome === 'held') held = true;
      if (outcome !== 'deleted') continue;
      this.#logger.info({ verificationWorkspace: name }, 'verification workspace released');
      // An AcceptAPI naming it that arrived during the delete waits for it to go, then makes it again.
      this.#requeueNaming(name);
    }
    // The reconcile holding one queues this again when it ends; the requeue is a backstop.
    return held ? { requeueAfterMs: 5_000 } : undefined;
  }
}

/** The Deprecated condition of an AcceptAPI naming its export only by the standalone generation's annotation. */
const deprecationOf = (acceptAPI: AcceptAPI): Omit<Condition, 'lastTransitionTime'>[] => {
  const annotated = acceptAPI.metadata.annotations?.[APIEXPORT_NAME_ANNOTATION];
  if (acceptAPI.spec.apiExportName || !annotated) return [];
  return [
    {
      type: DEPRECATED,
      status: 'True',
      reason: 'APIExportNameAnnotation',
      message: `the APIExport is named by the annotation ${APIEXPORT_NAME_ANNOTATION}, which is deprecated: set spec.apiExportName: ${annotated}`,
    },
  ];
};
