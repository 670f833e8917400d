import { isDeepStrictEqual } from 'node:util';
import { decodeKey, encodeKey, objectKeyOf } from '../../cache/object-key.ts';
import type { Informer } from '../../cache/informer.ts';
import { WorkQueue, type ReconcileResult } from '../../cache/workqueue.ts';
import { setCondition } from '../../apis/conditions.ts';
import { MANAGED_BY_LABEL, MANAGER, nameHash } from '../../apis/names.ts';
import type { AcceptAPI, Condition } from '../../apis/types.ts';
import type { BrokerContext } from '../../broker/context.ts';
import { isAlreadyExists, isConflict, isNotFound } from '../../kcp-client-ts/errors.ts';
import { ResourceClient } from '../../kcp-client-ts/resources.ts';
import { createKcpClient, unwrap, type APIBinding } from '../../kcp-client-ts/typed-client.ts';
import { clusterOf, type GroupVersionResource, type KubeObject } from '../../kcp-client-ts/types.ts';

const APIBINDINGS: GroupVersionResource = { group: 'apis.kcp.io', version: 'v1alpha2', resource: 'apibindings' };
import type { Logger } from '../../logging.ts';
import { validateFilters } from './filters.ts';

/** The key of the garbage collection of verification workspaces, on the same queue. */
export const VERIFICATION_GC_KEY = '__verification-gc__';

export const verificationWorkspaceName = (providerCluster: string, apiExportName: string): string =>
  `verify-${nameHash(providerCluster, apiExportName)}`;

/**
 * Verifies AcceptAPIs: filters must be valid, and a binding to the named export (in a shared
 * workspace per provider and export under the verification tree) must become Bound. Writes
 * `BindingVerified` and `Ready`, and deletes verification workspaces nobody names any more.
 */
export class AcceptAPIController {
  readonly queue: WorkQueue;
  readonly #ctx: BrokerContext;
  readonly #informer: Informer<AcceptAPI>;
  readonly #client: (cluster: string) => ResourceClient<AcceptAPI>;
  readonly #logger: Logger;
  readonly #attempts = new Map<string, number>();

  constructor(options: { ctx: BrokerContext; informer: Informer<AcceptAPI>; client: (cluster: string) => ResourceClient<AcceptAPI> }) {
    this.#ctx = options.ctx;
    this.#informer = options.informer;
    this.#client = options.client;
    this.#logger = options.ctx.logger.child({ controller: 'acceptapi' });
    this.queue = new WorkQueue({ name: 'acceptapi', reconcile: (key, signal) => this.reconcile(key, signal), onReconciled: (o) => options.ctx.onReconciled('acceptapi', o), concurrency: 4, logger: this.#logger });
  }

  start(): void {
    this.queue.start();
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
      await this.#writeStatus(acceptAPI, undefined, [
        { type: 'BindingVerified', status: 'Unknown', reason: 'InvalidFilter', message: 'not verified while filters are invalid' },
        { type: 'Ready', status: 'False', reason: 'InvalidFilter', message: problems.map((p) => p.message).join('; ') },
      ], signal);
      this.queue.add(VERIFICATION_GC_KEY);
      return;
    }
    const providerCluster = clusterOf(acceptAPI);
    const exportName = acceptAPI.spec.apiExportName;
    const workspaceName = verificationWorkspaceName(providerCluster, exportName);
    const verificationPath = `${this.#ctx.paths.verificationRoot}:${workspaceName}`;
    const verdict = await this.#verify(providerCluster, exportName, workspaceName, signal);
    if (verdict.bound) {
      this.#attempts.delete(keyText);
      await this.#writeStatus(acceptAPI, verificationPath, [
        { type: 'BindingVerified', status: 'True', reason: 'Bound', message: `APIExport ${exportName} of ${providerCluster} binds` },
        { type: 'Ready', status: 'True', reason: 'Verified', message: '' },
      ], signal);
    } else {
      await this.#writeStatus(acceptAPI, verificationPath, [
        { type: 'BindingVerified', status: 'False', reason: verdict.reason, message: verdict.message },
        { type: 'Ready', status: 'False', reason: 'BindingNotVerified', message: verdict.message },
      ], signal);
    }
    this.queue.add(VERIFICATION_GC_KEY);
    if (verdict.bound || (verdict.reason !== 'Pending' && verdict.reason !== 'BindingRejected')) return; // binding changes arrive through its watch
    // A workspace still initializing settles within seconds; a refused binding is retried ever more slowly.
    const attempts = (this.#attempts.get(keyText) ?? 0) + 1;
    this.#attempts.set(keyText, attempts);
    return { requeueAfterMs: verdict.reason === 'Pending' ? Math.min(200 * attempts, 5_000) : Math.min(1_000 * 2 ** attempts, 60_000) };
  }

  async #verify(providerCluster: string, exportName: string, workspaceName: string, signal: AbortSignal): Promise<{ bound: true } | { bound: false; reason: string; message: string }> {
    const { workspaces, endpoint, paths } = this.#ctx;
    const ws = await workspaces.get(paths.verificationRoot, workspaceName, signal);
    if (!ws) {
      await workspaces.create(paths.verificationRoot, workspaceName, { labels: { [MANAGED_BY_LABEL]: MANAGER }, signal });
      return { bound: false, reason: 'Pending', message: `creating verification workspace ${workspaceName}` };
    }
    if (ws.status?.phase !== 'Ready' || !ws.spec.cluster) return { bound: false, reason: 'Pending', message: `verification workspace ${workspaceName} is ${ws.status?.phase ?? 'not ready'}` };
    const bindings = this.#bindingInformer(ws.spec.cluster, workspaceName);
    await bindings.waitForSync(signal);
    let binding = bindings.store.get({ cluster: ws.spec.cluster, namespace: '', name: exportName });
    if (!binding) {
      const client = createKcpClient(endpoint, endpoint.workspaceUrl(ws.spec.cluster));
      const body: APIBinding = {
        apiVersion: 'apis.kcp.io/v1alpha2',
        kind: 'APIBinding',
        metadata: { name: exportName, labels: { [MANAGED_BY_LABEL]: MANAGER } },
        spec: { reference: { export: { path: providerCluster, name: exportName } } },
      };
      try {
        binding = unwrap(await client.POST('/apis/apis.kcp.io/v1alpha2/apibindings', { body, signal }));
      } catch (err) {
        if (isAlreadyExists(err)) return { bound: false, reason: 'Pending', message: 'binding created' };
        // kcp refuses bindings to exports it cannot find or may not bind: say so, retry later.
        return { bound: false, reason: 'BindingRejected', message: `kcp refused an APIBinding to APIExport ${exportName} in ${providerCluster}: ${err instanceof Error ? err.message : String(err)}` };
      }
    }
    if (binding.status?.phase === 'Bound') return { bound: true };
    const failing = binding.status?.conditions?.find((c) => c.status === 'False' && c.message);
    return {
      bound: false,
      reason: failing?.reason ?? 'Binding',
      message: `APIBinding to APIExport ${exportName} in ${providerCluster} is not Bound${failing?.message ? `: ${failing.message}` : ` (phase ${binding.status?.phase ?? 'unknown'})`}`,
    };
  }

  /** Watches the APIBindings of one verification workspace: their phase changes drive the AcceptAPIs naming it. */
  #bindingInformer(cluster: string, workspaceName: string): Informer<APIBinding & KubeObject> {
    const { endpoint, informers } = this.#ctx;
    return informers.ensure<APIBinding & KubeObject>(
      `verification|${cluster}|apibindings`,
      { name: `verification ${workspaceName} apibindings`, source: new ResourceClient({ endpoint, baseUrl: endpoint.workspaceUrl(cluster), gvr: APIBINDINGS }), logger: this.#logger },
      (informer) =>
        informer.onEvent(() => {
          for (const a of this.#informer.store.list()) {
            if (verificationWorkspaceName(clusterOf(a), a.spec.apiExportName) === workspaceName) this.queue.add(encodeKey(objectKeyOf(a)));
          }
        }),
    );
  }

  async #writeStatus(acceptAPI: AcceptAPI, verificationWorkspace: string | undefined, conditions: Omit<Condition, 'lastTransitionTime'>[], signal: AbortSignal): Promise<void> {
    let next = acceptAPI.status?.conditions;
    for (const c of conditions) next = setCondition(next, { ...c, observedGeneration: acceptAPI.metadata.generation ?? 0 });
    const status = { ...(verificationWorkspace ? { verificationWorkspace } : {}), conditions: next };
    if (isDeepStrictEqual(status, acceptAPI.status)) return;
    try {
      await this.#client(clusterOf(acceptAPI)).updateStatus({ ...acceptAPI, status }, signal);
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
    const { endpoint, paths, workspaces } = this.#ctx;
    const client = createKcpClient(endpoint, endpoint.workspaceUrl(paths.verificationRoot));
    const list = unwrap(await client.GET('/apis/tenancy.kcp.io/v1alpha1/workspaces', { params: { query: { labelSelector: `${MANAGED_BY_LABEL}=${MANAGER}` } }, signal }));
    for (const ws of list.items) {
      const name = ws.metadata.name ?? '';
      if (wanted.has(name) || ws.metadata.deletionTimestamp) continue;
      if (ws.spec.cluster) await this.#ctx.informers.stop(`verification|${ws.spec.cluster}|apibindings`);
      await workspaces.delete(paths.verificationRoot, name, signal);
      this.#logger.info({ verificationWorkspace: name }, 'verification workspace released');
    }
    return;
  }
}
