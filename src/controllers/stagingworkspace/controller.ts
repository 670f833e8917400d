import { WorkQueue, type ReconcileResult } from '../../cache/workqueue.ts';
import { setCondition } from '../../apis/conditions.ts';
import { MANAGED_BY_LABEL, MANAGER } from '../../apis/names.ts';
import type { StagingWorkspace } from '../../apis/types.ts';
import { splitPath } from '../../broker/config.ts';
import { ASSIGNMENT_BY_STAGING, MIGRATION_BY_STAGING, type BrokerContext } from '../../broker/context.ts';
import { isAlreadyExists, isNotFound } from '../../kcp-client-ts/errors.ts';
import { createKcpClient, unwrap, type APIBinding } from '../../kcp-client-ts/typed-client.ts';
import type { Logger } from '../../logging.ts';
import { isDeepStrictEqual } from 'node:util';

/** Bounded polling while kcp finishes a workspace or binding: both settle within seconds. */
const SETTLE_MS = 500;

/**
 * Owns the StagingWorkspace objects: for each, a kcp workspace under the staging tree with an
 * APIBinding to the provider's export that accepts every claim the export makes; torn down
 * (workspace, then object) when no Assignment references it any more.
 */
export class StagingWorkspaceController {
  readonly queue: WorkQueue;
  readonly #ctx: BrokerContext;
  readonly #logger: Logger;

  constructor(options: { ctx: BrokerContext }) {
    this.#ctx = options.ctx;
    this.#logger = options.ctx.logger.child({ controller: 'stagingworkspace' });
    this.queue = new WorkQueue({ name: 'stagingworkspace', reconcile: (key, signal) => this.reconcile(key, signal), onReconciled: (o) => options.ctx.onReconciled('stagingworkspace', o), concurrency: 4, logger: this.#logger });
  }

  start(): void {
    this.queue.start();
  }

  async reconcile(name: string, signal: AbortSignal): Promise<ReconcileResult> {
    const ctx = this.#ctx;
    const sw = ctx.stagingWorkspaces.store.get({ cluster: ctx.coordinationCluster, namespace: '', name });
    if (!sw) return;
    const referenced = ctx.assignments.store.byIndex(ASSIGNMENT_BY_STAGING, name).length > 0 || ctx.migrations.store.byIndex(MIGRATION_BY_STAGING, name).length > 0;
    const { parent, name: treeName } = splitPath(`${ctx.paths.stagingRoot}:${name}`);
    if (!referenced || sw.metadata.deletionTimestamp) return this.#teardown(sw, parent, treeName, signal);

    const ws = await ctx.workspaces.get(parent, treeName, signal);
    if (!ws) {
      await ctx.workspaces.create(parent, treeName, { labels: { [MANAGED_BY_LABEL]: MANAGER }, signal });
      await this.#setStatus(sw, { phase: 'Pending' }, { type: 'WorkspaceReady', status: 'False', reason: 'Creating', message: `creating workspace ${parent}:${treeName}` }, signal);
      return { requeueAfterMs: SETTLE_MS };
    }
    if (ws.metadata.deletionTimestamp) {
      // Wanted again while an earlier teardown deletes it: wait for it to go, then start afresh.
      await this.#setStatus(sw, { phase: 'Pending' }, { type: 'WorkspaceReady', status: 'False', reason: 'PreviousWorkspaceDeleting', message: `workspace ${parent}:${treeName} is still being deleted` }, signal);
      return { requeueAfterMs: SETTLE_MS };
    }
    if (ws.status?.phase !== 'Ready' || !ws.spec.cluster) {
      await this.#setStatus(sw, { phase: 'Pending' }, { type: 'WorkspaceReady', status: 'False', reason: 'Initializing', message: `workspace phase ${ws.status?.phase ?? 'unknown'}` }, signal);
      return { requeueAfterMs: SETTLE_MS };
    }
    const cluster = ws.spec.cluster;
    const binding = await this.#ensureBinding(sw, cluster, signal);
    if (binding.status?.phase !== 'Bound') {
      const why = binding.status?.conditions?.find((c) => c.status === 'False')?.message ?? `phase ${binding.status?.phase ?? 'unknown'}`;
      await this.#setStatus(sw, { phase: 'Pending', clusterName: cluster }, { type: 'BindingReady', status: 'False', reason: 'Binding', message: why }, signal);
      return { requeueAfterMs: SETTLE_MS };
    }
    await this.#setStatus(sw, { phase: 'Ready', clusterName: cluster }, undefined, signal);
    return;
  }

  /**
   * The binding of the staging workspace to the provider's export, accepting exactly the claims
   * the export makes (same verbs). Those are read from the binding's own
   * `status.exportPermissionClaims`, so the broker needs `bind` on the export and no read access
   * to the provider's workspace.
   */
  async #ensureBinding(sw: StagingWorkspace, cluster: string, signal: AbortSignal): Promise<APIBinding> {
    const { endpoint } = this.#ctx;
    const client = createKcpClient(endpoint, endpoint.workspaceUrl(cluster));
    const name = sw.spec.apiExportName;
    const existing = await client.GET('/apis/apis.kcp.io/v1alpha2/apibindings/{name}', { params: { path: { name } }, signal });
    if (!existing.response.ok || !existing.data) {
      const body: APIBinding = {
        apiVersion: 'apis.kcp.io/v1alpha2',
        kind: 'APIBinding',
        metadata: { name, labels: { [MANAGED_BY_LABEL]: MANAGER } },
        spec: { reference: { export: { path: sw.spec.providerCluster, name } } },
      };
      try {
        return unwrap(await client.POST('/apis/apis.kcp.io/v1alpha2/apibindings', { body, signal }));
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
        return unwrap(await client.GET('/apis/apis.kcp.io/v1alpha2/apibindings/{name}', { params: { path: { name } }, signal }));
      }
    }
    const binding = existing.data;
    const claimKey = (c: { group?: string; resource: string; identityHash?: string }): string => `${c.group ?? ''}/${c.resource}/${c.identityHash ?? ''}`;
    const accepted = new Set((binding.spec.permissionClaims ?? []).filter((c) => c.state === 'Accepted').map(claimKey));
    const wanted = binding.status?.exportPermissionClaims ?? [];
    if (wanted.every((c) => accepted.has(claimKey(c)))) return binding;
    return unwrap(
      await client.PUT('/apis/apis.kcp.io/v1alpha2/apibindings/{name}', {
        params: { path: { name } },
        body: { ...binding, spec: { ...binding.spec, permissionClaims: wanted.map((claim) => ({ ...claim, state: 'Accepted' as const, selector: { matchAll: true } })) } },
        signal,
      }),
    );
  }

  async #teardown(sw: StagingWorkspace, parent: string, name: string, signal: AbortSignal): Promise<ReconcileResult> {
    const ctx = this.#ctx;
    if (sw.status?.phase !== 'Terminating') await this.#setStatus(sw, { phase: 'Terminating' }, undefined, signal);
    const cluster = sw.status?.clusterName;
    if (cluster) for (const key of ctx.informers.keys()) if (key.startsWith(`staging|${cluster}|`)) await ctx.informers.stop(key);
    const ws = await ctx.workspaces.get(parent, name, signal);
    if (ws) {
      if (!ws.metadata.deletionTimestamp) await ctx.workspaces.delete(parent, name, signal);
      return { requeueAfterMs: SETTLE_MS };
    }
    try {
      await ctx.stagingWorkspaceClient.delete({ name: sw.metadata.name ?? '' }, signal);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    this.#logger.info({ stagingWorkspace: sw.metadata.name }, 'staging workspace released');
    return;
  }

  async #setStatus(
    sw: StagingWorkspace,
    fields: { phase: 'Pending' | 'Ready' | 'Terminating'; clusterName?: string },
    failing: { type: 'WorkspaceReady' | 'BindingReady'; status: 'False'; reason: string; message: string } | undefined,
    signal: AbortSignal,
  ): Promise<void> {
    let conditions = sw.status?.conditions;
    const workspaceReady = fields.clusterName !== undefined || fields.phase === 'Ready';
    conditions = setCondition(conditions, workspaceReady ? { type: 'WorkspaceReady', status: 'True', reason: 'Ready', message: '' } : failing?.type === 'WorkspaceReady' ? failing : { type: 'WorkspaceReady', status: 'False', reason: 'Pending', message: '' });
    conditions = setCondition(conditions, fields.phase === 'Ready' ? { type: 'BindingReady', status: 'True', reason: 'Bound', message: '' } : failing?.type === 'BindingReady' ? failing : { type: 'BindingReady', status: 'False', reason: 'Pending', message: '' });
    conditions = setCondition(conditions, fields.phase === 'Ready' ? { type: 'Ready', status: 'True', reason: 'Ready', message: '' } : { type: 'Ready', status: 'False', reason: fields.phase, message: failing?.message ?? '' });
    const status = { ...sw.status, ...fields, conditions };
    if (isDeepStrictEqual(status, sw.status)) return;
    await this.#ctx.stagingWorkspaceClient.updateStatus({ ...sw, status }, signal);
  }
}
