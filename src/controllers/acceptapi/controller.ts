import { isDeepStrictEqual } from 'node:util';
import { setCondition } from '../../apis/conditions.ts';
import { MANAGED_BY_LABEL, MANAGER, verificationWorkspaceName } from '../../apis/names.ts';
import type { AcceptAPI, Condition } from '../../apis/types.ts';
import { APIBINDINGS, apiBindingTo, type APIBindingObject } from '../../kcp-client-ts/bindings.ts';
import type { Clients } from '../../kcp-client-ts/clients.ts';
import { isAlreadyExists, isConflict, isNotFound } from '../../kcp-client-ts/errors.ts';
import type { ObjectClient } from '../../kcp-client-ts/resources.ts';
import { clusterOf, type GroupVersionResource, type KubeObject } from '../../kcp-client-ts/types.ts';
import type { Workspaces } from '../../kcp-client-ts/workspaces.ts';
import type { Logger } from '../../logging.ts';
import { watchOf, type Controller, type Watch } from '../../runtime/controller.ts';
import type { Informer } from '../../runtime/informer.ts';
import type { ClusterScopes } from '../../runtime/informer-scope.ts';
import { decodeKey, encodeKey, objectKeyOf } from '../../runtime/object-key.ts';
import { WorkQueue, type ReconcileResult } from '../../runtime/workqueue.ts';
import { validateFilters } from './filters.ts';

const WORKSPACES: GroupVersionResource = { group: 'tenancy.kcp.io', version: 'v1alpha1', resource: 'workspaces' };

/** The key of the garbage collection of verification workspaces, on the same queue. */
const VERIFICATION_GC_KEY = '__verification-gc__';

export type AcceptAPIControllerOptions = {
  acceptAPIs: Informer<AcceptAPI>;
  /** Writes an AcceptAPI's status, in its provider's cluster (through the acceptapis virtual workspace). */
  acceptAPIClient: (cluster: string) => ObjectClient<AcceptAPI>;
  workspaces: Pick<Workspaces, 'get' | 'create' | 'delete'>;
  clients: Clients;
  /** Workspace path under which verification workspaces are created. */
  verificationRoot: string;
  /** What is watched inside each verification workspace: ended when the workspace is released. */
  verificationScopes: ClusterScopes;
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
  }

  watches(): Watch[] {
    return [watchOf(this.#informer, (e) => [encodeKey(objectKeyOf(e.object))])];
  }

  async reconcile(keyText: string, signal: AbortSignal): Promise<ReconcileResult> {
    if (keyText === VERIFICATION_GC_KEY) return this.#collectGarbage(signal);
    const key = decodeKey(keyText);
    const acceptAPI = this.#informer.store.get(key);
    if (!acceptAPI) {
      this.#attempts.delete(keyText);
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
        ],
        signal,
      );
      this.queue.add(VERIFICATION_GC_KEY);
      return;
    }
    const providerCluster = clusterOf(acceptAPI);
    const exportName = acceptAPI.spec.apiExportName;
    const workspaceName = verificationWorkspaceName(providerCluster, exportName);
    const verificationPath = `${this.#o.verificationRoot}:${workspaceName}`;
    const verdict = await this.#verify(providerCluster, exportName, acceptAPI.spec.gvr, workspaceName, signal);
    if (verdict.bound) {
      this.#attempts.delete(keyText);
      await this.#writeStatus(
        acceptAPI,
        verificationPath,
        [
          { type: 'BindingVerified', status: 'True', reason: 'Bound', message: `APIExport ${exportName} of ${providerCluster} binds` },
          { type: 'Ready', status: 'True', reason: 'Verified', message: '' },
        ],
        signal,
      );
    } else {
      await this.#writeStatus(
        acceptAPI,
        verificationPath,
        [
          { type: 'BindingVerified', status: 'False', reason: verdict.reason, message: verdict.message },
          { type: 'Ready', status: 'False', reason: 'BindingNotVerified', message: verdict.message },
        ],
        signal,
      );
    }
    this.queue.add(VERIFICATION_GC_KEY);
    if (verdict.bound || (verdict.reason !== 'Pending' && verdict.reason !== 'BindingRejected')) return; // binding changes arrive through its watch
    // A workspace still initializing settles within seconds; a refused binding is retried ever more slowly.
    const attempts = (this.#attempts.get(keyText) ?? 0) + 1;
    this.#attempts.set(keyText, attempts);
    return { requeueAfterMs: verdict.reason === 'Pending' ? Math.min(200 * attempts, 5_000) : Math.min(1_000 * 2 ** attempts, 60_000) };
  }

  async #verify(
    providerCluster: string,
    exportName: string,
    gvr: GroupVersionResource,
    workspaceName: string,
    signal: AbortSignal,
  ): Promise<{ bound: true } | { bound: false; reason: string; message: string }> {
    const { workspaces, verificationRoot, clients } = this.#o;
    const ws = await workspaces.get(verificationRoot, workspaceName, signal);
    if (!ws) {
      await workspaces.create(verificationRoot, workspaceName, { labels: { [MANAGED_BY_LABEL]: MANAGER }, signal });
      return { bound: false, reason: 'Pending', message: `creating verification workspace ${workspaceName}` };
    }
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
      logger: this.#logger,
    });
    if (!this.#watchedBindings.has(cluster)) {
      this.#watchedBindings.add(cluster);
      informer.onEvent(() => {
        for (const a of this.#informer.store.list()) {
          if (verificationWorkspaceName(clusterOf(a), a.spec.apiExportName) === workspaceName) this.queue.add(encodeKey(objectKeyOf(a)));
        }
      });
    }
    return informer;
  }

  async #writeStatus(
    acceptAPI: AcceptAPI,
    verificationWorkspace: string | undefined,
    conditions: Omit<Condition, 'lastTransitionTime'>[],
    signal: AbortSignal,
  ): Promise<void> {
    let next = acceptAPI.status?.conditions;
    for (const c of conditions) next = setCondition(next, { ...c, observedGeneration: acceptAPI.metadata.generation ?? 0 });
    const status = { ...(verificationWorkspace ? { verificationWorkspace } : {}), conditions: next };
    if (isDeepStrictEqual(status, acceptAPI.status)) return;
    try {
      await this.#o.acceptAPIClient(clusterOf(acceptAPI)).updateStatus({ ...acceptAPI, status }, signal);
    } catch (err) {
      if (!isConflict(err) && !isNotFound(err)) throw err;
    }
  }

  /** Deletes verification workspaces that no current, valid AcceptAPI names (reference counting by the cache). */
  async #collectGarbage(signal: AbortSignal): Promise<ReconcileResult> {
    const wanted = new Set(
      this.#informer.store
        .list((a) => !a.metadata.deletionTimestamp && validateFilters(a.spec.filters).length === 0)
        .map((a) => verificationWorkspaceName(clusterOf(a), a.spec.apiExportName)),
    );
    const { clients, verificationRoot, workspaces, verificationScopes } = this.#o;
    const list = await clients
      .inWorkspace<KubeObject & { spec: { cluster?: string } }>(verificationRoot, WORKSPACES)
      .list({ labelSelector: `${MANAGED_BY_LABEL}=${MANAGER}`, signal });
    for (const ws of list.items) {
      const name = ws.metadata.name ?? '';
      if (wanted.has(name) || ws.metadata.deletionTimestamp) continue;
      if (ws.spec.cluster) await verificationScopes.end(ws.spec.cluster);
      await workspaces.delete(verificationRoot, name, signal);
      this.#logger.info({ verificationWorkspace: name }, 'verification workspace released');
    }
    return;
  }
}
