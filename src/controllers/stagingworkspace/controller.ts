import { isDeepStrictEqual } from 'node:util';
import { setCondition } from '../../apis/conditions.ts';
import { isStagingView, MANAGED_BY_LABEL, MANAGER, STAGING_VIEW_ANNOTATION, stagingViewName } from '../../apis/names.ts';
import { splitPath } from '../../apis/paths.ts';
import type { Assignment, Migration, StagingWorkspace } from '../../apis/types.ts';
import type { Coordination } from '../../coordination/coordination.ts';
import { APIBINDINGS, APIEXPORTS, apiBindingTo, type APIBindingObject, type APIExportObject } from '../../kcp-client-ts/bindings.ts';
import type { Clients } from '../../kcp-client-ts/clients.ts';
import { isConflict, isForbidden } from '../../kcp-client-ts/errors.ts';
import { CLUSTER_ANNOTATION, clusterOf } from '../../kcp-client-ts/types.ts';
import type { ShardSelector, WorkspaceObject, Workspaces } from '../../kcp-client-ts/workspaces.ts';
import type { Logger } from '../../logging.ts';
import { watchOf, type Controller, type Watch } from '../../runtime/controller.ts';
import type { Informer } from '../../runtime/informer.ts';
import { WorkQueue, type ReconcileResult } from '../../runtime/workqueue.ts';

/**
 * The only claims a staging binding accepts: what the provider needs in the broker's staging
 * workspace to publish related resources. Everything else an export claims (namespaces,
 * events, other groups) is rejected: the staging workspace holds copies of consumer objects.
 */
const isNeededClaim = (claim: { group?: string; resource: string }): boolean =>
  (claim.group ?? '') === '' && (claim.resource === 'secrets' || claim.resource === 'configmaps');

type Claim = { group?: string; resource: string; identityHash?: string };

const claimKey = (c: Claim): string => `${c.group ?? ''}/${c.resource}/${c.identityHash ?? ''}`;

/** A binding of the wanted name exists and binds another export. */
class BindingConflictError extends Error {}

/** Why a binding is not Bound, as kcp says it. */
const bindingProblem = (binding: APIBindingObject): string =>
  binding.status?.conditions?.find((c) => c.status === 'False')?.message ?? `phase ${binding.status?.phase ?? 'unknown'}`;

/** A staging view export: read-only claims (the broker writes into staging workspaces directly). */
const stagingViewExport = (name: string, claims: Claim[]): APIExportObject => ({
  apiVersion: 'apis.kcp.io/v1alpha2',
  kind: 'APIExport',
  metadata: { name, labels: { [MANAGED_BY_LABEL]: MANAGER } },
  spec: { permissionClaims: claims.map((c) => ({ ...c, group: c.group ?? '', verbs: ['get', 'list', 'watch'] })) },
});

/** Bounded polling while kcp finishes a binding (or a workspace, when the tree is not watched): both settle within seconds. */
const SETTLE_MS = 500;

const NAME_INDEX = 'name';

/**
 * An informer transform: a staging-root Workspace reduced to what the controller reads (its
 * phase, its logical cluster, whether and since when it exists). A cached Workspace keeps its
 * spec, conditions and managedFields otherwise: a few KiB for each of thousands.
 */
export const workspaceStateOf = (ws: WorkspaceObject): WorkspaceObject => {
  const { name, uid, resourceVersion, creationTimestamp, deletionTimestamp } = ws.metadata;
  return {
    apiVersion: ws.apiVersion,
    kind: ws.kind,
    metadata: {
      name,
      uid,
      resourceVersion,
      creationTimestamp,
      ...(deletionTimestamp ? { deletionTimestamp } : {}),
      annotations: { [CLUSTER_ANNOTATION]: clusterOf(ws) },
    },
    spec: ws.spec?.cluster ? { cluster: ws.spec.cluster } : {},
    ...(ws.status?.phase ? { status: { phase: ws.status.phase } } : {}),
  };
};

/**
 * How long an unreferenced staging workspace stays marked Terminating before its workspace is
 * deleted: longer than a sync takes from reading it Ready to writing its Assignment and copy, so
 * an Assignment made in that gap reaches the cache first and keeps the workspace.
 */
const RELEASE_DELAY_MS = 2_000;

export type StagingWorkspaceControllerOptions = {
  coordination: Coordination;
  informers: { assignments: Informer<Assignment>; stagingWorkspaces: Informer<StagingWorkspace>; migrations: Informer<Migration> };
  /** The staging views (the broker's APIExports in the staging root); optional for tests that never delete one. */
  stagingViews?: Informer<APIExportObject>;
  workspaces: Pick<Workspaces, 'get' | 'create' | 'delete'>;
  /**
   * The staging root's Workspaces (those the broker made), watched: a workspace's progress comes
   * as events and is read from the cache. Without it (tests), each pending workspace is polled
   * with a GET; with a thousand consumers that was 29 GETs a second against a busy kcp, and a
   * workspace that became Ready waited up to 44 s for its turn in the queue.
   */
  stagingTree?: Informer<WorkspaceObject>;
  clients: Pick<Clients, 'inWorkspace'>;
  /** Workspace path under which staging workspaces are created. */
  stagingRoot: string;
  /** The shards staging workspaces are scheduled to (default: any). */
  location?: ShardSelector | undefined;
  logger: Logger;
  /** The clock (tests). */
  now?: () => number;
};

/**
 * Owns the StagingWorkspace objects: for each, a kcp workspace under the staging tree with an
 * APIBinding to the provider's export that accepts its Secret and ConfigMap claims only, and one
 * to the broker's staging view of that export (what the sync controllers watch); torn down
 * (workspace, then object) when no Assignment or Migration references it any more.
 */
export class StagingWorkspaceController implements Controller {
  readonly name = 'stagingworkspace';
  readonly queue: WorkQueue;
  readonly #o: StagingWorkspaceControllerOptions;
  readonly #logger: Logger;
  /** When this process marked each staging workspace Terminating (a restart waits again). */
  readonly #terminatingSince = new Map<string, number>();

  constructor(options: StagingWorkspaceControllerOptions) {
    this.#o = options;
    this.#logger = options.logger;
    options.stagingTree?.store.addIndex(NAME_INDEX, (ws) => [ws.metadata.name ?? '']);
    this.queue = new WorkQueue({
      name: this.name,
      reconcile: (key, signal) => this.reconcile(key, signal),
      concurrency: 4,
      deadlineMs: 60_000,
      logger: this.#logger,
    });
  }

  watches(): Watch[] {
    const { informers } = this.#o;
    return [
      watchOf(informers.stagingWorkspaces, (e) => [e.object.metadata.name ?? '']),
      // What a workspace needs changes only with the resources placed in it: the first object of a
      // resource placed there (its view must claim the resource) and the last object leaving it
      // (released). Any other Assignment write would cost a workspace and two APIBinding reads: in
      // a burst, nearly every object lands in a workspace already Ready. Read after the store took
      // the event, so the counts include it.
      watchOf(informers.assignments, (e) => {
        const old = e.type === 'updated' ? e.old : e.type === 'deleted' ? e.object : undefined;
        const now = e.type === 'deleted' ? undefined : e.object.status?.stagingWorkspace;
        const before = old?.status?.stagingWorkspace;
        if (now === before && (!old || resourceKey(old.spec.gvr) === resourceKey(e.object.spec.gvr))) return [];
        const { coordination } = this.#o;
        const first = now !== undefined && coordination.assignmentsOfResourceIn(now, e.object.spec.gvr) === 1;
        const last =
          before !== undefined &&
          old !== undefined &&
          coordination.assignmentsOfResourceIn(before, old.spec.gvr) === 0 &&
          coordination.assignmentsIn(before).length === 0;
        return [...new Set([...(first ? [now] : []), ...(last ? [before] : [])])];
      }),
      watchOf(informers.migrations, (e) => [e.object.spec.fromStagingWorkspace, e.object.spec.stagingWorkspace]),
      // A view deleted (released as its last user went, while another was setting up to use it)
      // is made again by the staging workspaces that name it.
      ...(this.#o.stagingViews
        ? [
            watchOf(this.#o.stagingViews, (e) =>
              e.type !== 'deleted'
                ? []
                : informers.stagingWorkspaces.store
                    .list((sw) => sw.metadata.annotations?.[STAGING_VIEW_ANNOTATION] === e.object.metadata.name)
                    .map((sw) => sw.metadata.name ?? ''),
            ),
          ]
        : []),
      // A staging workspace is named after its StagingWorkspace.
      ...(this.#o.stagingTree ? [watchOf(this.#o.stagingTree, (e) => [e.object.metadata.name ?? ''])] : []),
    ];
  }

  async reconcile(name: string, signal: AbortSignal): Promise<ReconcileResult> {
    const { coordination, workspaces } = this.#o;
    const sw = coordination.stagingWorkspace(name);
    if (!sw) {
      this.#terminatingSince.delete(name);
      return;
    }
    const referenced = coordination.assignmentsIn(name).length > 0 || coordination.migrationsIn(name).length > 0;
    const { parent, name: treeName } = splitPath(`${this.#o.stagingRoot}:${name}`);
    if (!referenced || sw.metadata.deletionTimestamp) return this.#teardown(sw, parent, treeName, signal);
    this.#terminatingSince.delete(name);

    const ws = await this.#workspace(parent, treeName, signal, sw);
    if (!ws) {
      // A cache that lags behind an earlier create answers "absent": kcp then says it exists.
      await workspaces.create(parent, treeName, { labels: { [MANAGED_BY_LABEL]: MANAGER }, location: this.#o.location, signal });
      await this.#setStatus(
        sw,
        { phase: 'Pending' },
        { type: 'WorkspaceReady', status: 'False', reason: 'Creating', message: `creating workspace ${parent}:${treeName}` },
        signal,
      );
      return this.#untilWorkspaceChanges(treeName);
    }
    if (ws.metadata.deletionTimestamp) {
      // Wanted again while an earlier teardown deletes it: wait for it to go, then start afresh.
      await this.#setStatus(
        sw,
        { phase: 'Pending' },
        {
          type: 'WorkspaceReady',
          status: 'False',
          reason: 'PreviousWorkspaceDeleting',
          message: `workspace ${parent}:${treeName} is still being deleted`,
        },
        signal,
      );
      return this.#untilWorkspaceChanges(treeName);
    }
    if (ws.status?.phase !== 'Ready' || !ws.spec.cluster) {
      await this.#setStatus(
        sw,
        { phase: 'Pending' },
        { type: 'WorkspaceReady', status: 'False', reason: 'Initializing', message: `workspace phase ${ws.status?.phase ?? 'unknown'}` },
        signal,
      );
      return this.#untilWorkspaceChanges(treeName);
    }
    const cluster = ws.spec.cluster;
    if (this.#o.stagingTree && (sw.status?.clusterName !== cluster || sw.status.phase === 'Terminating')) {
      // A workspace new to the record goes by kcp's word before anything is written into it: a
      // cache behind the teardown's delete still shows the old workspace Ready, and bindings, then
      // syncs' copies, would go into a workspace kcp is deleting. Once per workspace.
      const current = await workspaces.get(parent, treeName, signal);
      if (current?.spec.cluster !== cluster || current.metadata.deletionTimestamp) return { requeueAfterMs: SETTLE_MS };
    }
    const binding = await this.#ensureBinding(sw, cluster, signal).catch((err: unknown) => {
      if (err instanceof BindingConflictError) return err;
      throw err;
    });
    if (binding instanceof BindingConflictError || binding.status?.phase !== 'Bound') {
      const why = binding instanceof BindingConflictError ? binding.message : bindingProblem(binding);
      await this.#setStatus(
        sw,
        { phase: 'Pending', clusterName: cluster },
        { type: 'BindingReady', status: 'False', reason: 'Binding', message: why },
        signal,
      );
      return { requeueAfterMs: SETTLE_MS };
    }
    const view = await this.#ensureView(sw, binding, cluster, this.#resourcesIn(name), signal).catch((err: unknown) => {
      // A binding of the view's name that binds something else (a provider can name its export so):
      // said on the StagingWorkspace, looked at again every SETTLE_MS, never adopted.
      if (err instanceof BindingConflictError) return { waiting: err.message };
      throw err;
    });
    if ('recorded' in view) return; // its own update event brings the next round, with the record's resourceVersion
    const viewPending = 'waiting' in view ? view.waiting : undefined;
    if (viewPending !== undefined) {
      await this.#setStatus(
        sw,
        { phase: 'Pending', clusterName: cluster },
        { type: 'BindingReady', status: 'False', reason: 'StagingView', message: `staging view: ${viewPending}` },
        signal,
      );
      return { requeueAfterMs: SETTLE_MS };
    }
    await this.#setStatus(sw, { phase: 'Ready', clusterName: cluster }, undefined, signal);
    return;
  }

  /**
   * The staging workspace as the watched tree shows it; kcp is asked when the cache has none. What
   * follows "absent" (a create, or the record's release) goes by kcp's word: a cache a step behind
   * a create would otherwise have a workspace released with nothing left pointing to it.
   */
  async #workspace(parent: string, name: string, signal: AbortSignal, sw?: StagingWorkspace): Promise<WorkspaceObject | undefined> {
    const cached = this.#cachedWorkspace(name);
    if (!cached) return this.#o.workspaces.get(parent, name, signal);
    // A step back from Ready goes by kcp's word too: a cache a step behind the read that found the
    // workspace Ready (kcp's, while the cache had none) would take the record back to Pending.
    const agrees =
      sw?.status?.phase !== 'Ready' ||
      (cached.status?.phase === 'Ready' && !cached.metadata.deletionTimestamp && cached.spec.cluster === sw.status.clusterName);
    return agrees ? cached : this.#o.workspaces.get(parent, name, signal);
  }

  /** From the tree's cache while its watch is up; nothing otherwise (then kcp is asked, and the workspace polled). */
  #cachedWorkspace(name: string): WorkspaceObject | undefined {
    const tree = this.#o.stagingTree;
    return tree?.synced && tree.connected ? tree.store.byIndex(NAME_INDEX, name)[0] : undefined;
  }

  /**
   * While kcp makes (or deletes) a workspace: its watch event brings the next round. Polled while
   * the cache does not show it (just created, or not labelled as the broker's: no event would come).
   */
  #untilWorkspaceChanges(name: string): ReconcileResult {
    return this.#cachedWorkspace(name) ? undefined : { requeueAfterMs: SETTLE_MS };
  }

  /**
   * The binding of the staging workspace to the provider's export, accepting the Secret and
   * ConfigMap claims the export makes (same verbs) and rejecting the rest. Those are read from the binding's own
   * `status.exportPermissionClaims`, so the broker needs `bind` on the export and no read access
   * to the provider's workspace.
   */
  #ensureBinding(sw: StagingWorkspace, cluster: string, signal: AbortSignal): Promise<APIBindingObject> {
    return this.#bind(cluster, { path: sw.spec.providerCluster, name: sw.spec.apiExportName }, isNeededClaim, signal);
  }

  /** The resources (`group/resource`) of the objects placed in, or moving to, a staging workspace. */
  #resourcesIn(stagingWorkspace: string): Set<string> {
    const { coordination } = this.#o;
    const gvrs = [
      ...coordination.assignmentsIn(stagingWorkspace).map((a) => a.spec.gvr),
      ...coordination.migrationsIn(stagingWorkspace).map((m) => coordination.assignment(m.spec.assignment)?.spec.gvr),
    ];
    return new Set(gvrs.filter((g) => g !== undefined).map(resourceKey));
  }

  /**
   * The staging view of the provider's export (its API identity, read from the bound resources):
   * the broker's APIExport in the staging root claiming the resources placed here, Secrets and ConfigMaps
   * (read-only), created or widened here, and bound in this workspace with every claim accepted.
   * Through its virtual workspace one wildcard watch per resource and shard sees every staging
   * workspace of the export, instead of three watches per workspace.
   */
  async #ensureView(
    sw: StagingWorkspace,
    providerBinding: APIBindingObject,
    cluster: string,
    needed: Set<string>,
    signal: AbortSignal,
  ): Promise<{ ready: true } | { waiting: string } | { recorded: string }> {
    // Only what the broker places here: the provider decides how many resources its export has.
    const bound = (providerBinding.status?.boundResources ?? []).filter((r) => needed.has(`${r.group}/${r.resource}`));
    const identity = bound[0]?.schema.identityHash;
    if (!identity) return { waiting: `the provider's export does not serve ${[...needed].join(', ') || 'what is placed here'} (yet)` };
    const name = stagingViewName(identity);
    // Recorded first: the sync controllers read a workspace's copies from this view only, and the
    // view's clean-up counts the StagingWorkspaces naming it (a crash after creating it loses nothing).
    if (sw.metadata.annotations?.[STAGING_VIEW_ANNOTATION] !== name) {
      await this.#o.coordination.stagingWorkspaces.client.update(
        { ...sw, metadata: { ...sw.metadata, annotations: { ...sw.metadata.annotations, [STAGING_VIEW_ANNOTATION]: name } } },
        signal,
      );
      return { recorded: name }; // the update's event brings the next round
    }
    const wanted = [
      ...bound
        .filter((r) => r.schema.identityHash === identity)
        .map((r) => ({ group: r.group, resource: r.resource, identityHash: identity })),
      { group: '', resource: 'secrets' },
      { group: '', resource: 'configmaps' },
    ];
    const exports = this.#o.clients.inWorkspace<APIExportObject>(this.#o.stagingRoot, APIEXPORTS);
    const existing = await this.#viewExport(name, signal);
    if (!existing) {
      // Bound from the next round, not this one: on a sharded kcp the shard of this workspace may
      // not know the new export yet, and refuses the binding (403) until it does.
      await exports.createIfAbsent(stagingViewExport(name, wanted), signal);
      return { waiting: `view ${name} is being created` };
    }
    const claims = existing.spec.permissionClaims ?? [];
    const missing = wanted.filter((w) => !claims.some((c) => claimKey(c) === claimKey(w)));
    // Widened, never narrowed: other staging workspaces of the export may use what this one does not.
    if (missing.length > 0) {
      await exports.update(
        {
          ...existing,
          spec: { ...existing.spec, permissionClaims: [...claims, ...stagingViewExport(name, missing).spec.permissionClaims!] },
        },
        signal,
      );
      return { waiting: `view ${name} widened to ${missing.map((m) => m.resource).join(', ')}` };
    }
    const binding = await this.#bind(cluster, { path: this.#o.stagingRoot, name }, () => true, signal).catch((err: unknown) => {
      // The view is new to this workspace's shard (kcp's cache server has not brought it there
      // yet): waited for, said on the StagingWorkspace. A refusal that lasts stays said there.
      if (isForbidden(err)) return { refused: err.serverMessage };
      throw err;
    });
    if ('refused' in binding) return { waiting: `view ${name} not bindable here yet: ${binding.refused}` };
    if (binding.status?.phase !== 'Bound') return { waiting: bindingProblem(binding) };
    // Ready only once kcp applied every claim this workspace needs: until then the view does not
    // show its copies, and a sync would wait for events that never come.
    const applied = new Set((binding.status.appliedPermissionClaims ?? []).map(claimKey));
    const unapplied = wanted.filter((w) => !applied.has(claimKey(w)));
    if (unapplied.length > 0) return { waiting: `claims not applied yet: ${unapplied.map((u) => u.resource).join(', ')}` };
    return { ready: true };
  }

  /**
   * The APIBinding named after an export in a staging workspace, created when missing, with each
   * claim the export makes (as the binding's status lists them) accepted or rejected by `accept`.
   * A binding of that name to another export is a conflict, never adopted.
   */
  async #bind(
    cluster: string,
    exportRef: { path: string; name: string },
    accept: (claim: { group?: string; resource: string }) => boolean,
    signal: AbortSignal,
  ): Promise<APIBindingObject> {
    const client = this.#o.clients.inWorkspace<APIBindingObject>(cluster, APIBINDINGS);
    const { name } = exportRef;
    const binding =
      (await client.find({ name }, signal)) ??
      (await client.createIfAbsent(apiBindingTo(exportRef, { labels: { [MANAGED_BY_LABEL]: MANAGER } }), signal)) ??
      (await client.get({ name }, signal));
    const ref = binding.spec.reference.export;
    if (ref?.name !== exportRef.name || (ref.path ?? '') !== exportRef.path)
      throw new BindingConflictError(
        `APIBinding ${name} in staging cluster ${cluster} binds ${ref?.path ?? ''}:${ref?.name ?? ''}, not ${exportRef.path}:${exportRef.name}`,
      );
    const stateOf = new Map((binding.spec.permissionClaims ?? []).map((c) => [claimKey(c), c.state]));
    const claims = binding.status?.exportPermissionClaims ?? [];
    const wantedState = (c: { group?: string; resource: string }): 'Accepted' | 'Rejected' => (accept(c) ? 'Accepted' : 'Rejected');
    if (claims.every((c) => stateOf.get(claimKey(c)) === wantedState(c))) return binding;
    const permissionClaims = claims.map((claim) => ({ ...claim, state: wantedState(claim), selector: { matchAll: true } }));
    return client.update({ ...binding, spec: { ...binding.spec, permissionClaims } }, signal);
  }

  async #teardown(sw: StagingWorkspace, parent: string, name: string, signal: AbortSignal): Promise<ReconcileResult> {
    const { coordination, workspaces } = this.#o;
    const key = sw.metadata.name ?? '';
    // Marked first, so that no sync writes into it from then on (they wait for Ready). A mark that
    // did not land (a stale read) starts nothing: the newer version's round marks it again.
    if (sw.status?.phase !== 'Terminating' && !(await this.#setStatus(sw, { phase: 'Terminating' }, undefined, signal))) return;
    if (!sw.metadata.deletionTimestamp) {
      // Deleted only once the mark is RELEASE_DELAY_MS old and the Assignment and Migration
      // caches are live: a sync that read Ready just before the mark has written its Assignment
      // by then, the next round sees it and keeps the workspace. Deleted at once, a copy written
      // in that gap would be provisioned and deprovisioned with the workspace.
      const now = this.#o.now?.() ?? Date.now();
      const since = this.#terminatingSince.get(key) ?? now;
      this.#terminatingSince.set(key, since);
      const wait = since + RELEASE_DELAY_MS - now;
      const { assignments, migrations } = this.#o.informers;
      if (wait > 0 || !assignments.connected || !migrations.connected) return { requeueAfterMs: Math.max(wait, SETTLE_MS) };
    }
    const ws = await this.#workspace(parent, name, signal);
    if (ws) {
      // kcp v0.30 leaves a workspace deleted while still Scheduling stuck on its logicalcluster
      // finalizer (over a minute, seen in the Go-scenario e2e); deleted once scheduled, it goes in seconds.
      // A workspace that never gets scheduled is deleted anyway after a minute.
      const young = Date.now() - Date.parse(ws.metadata.creationTimestamp ?? '') < 60_000;
      const scheduling = (ws.status?.phase === 'Scheduling' || ws.status?.phase === undefined) && young;
      if (!ws.metadata.deletionTimestamp && !scheduling) await workspaces.delete(parent, name, signal);
      return { requeueAfterMs: SETTLE_MS };
    }
    // The view first: after a crash the record is still here to say which view to release.
    await this.#releaseView(sw, signal);
    await coordination.stagingWorkspaces.client.delete({ name: key }, signal, { uid: sw.metadata.uid });
    this.#terminatingSince.delete(key);
    this.#logger.info({ stagingWorkspace: key }, 'staging workspace released');
    return;
  }

  /**
   * A view export as the views cache shows it (no request on every reconcile of a served
   * workspace); read from kcp when there is no synced cache. A cache that lags answers
   * "absent": the create then finds it exists and the next round sees it.
   */
  async #viewExport(name: string, signal: AbortSignal): Promise<APIExportObject | undefined> {
    const views = this.#o.stagingViews;
    if (views?.synced) return views.store.list((e) => e.metadata.name === name)[0];
    return this.#o.clients.inWorkspace<APIExportObject>(this.#o.stagingRoot, APIEXPORTS).find({ name }, signal);
  }

  /**
   * Deletes the staging view a released workspace was bound to once no other StagingWorkspace
   * names it: a view, and the watches through it, last only while staging workspaces use it.
   * A workspace setting up the same view meanwhile records it first and creates it again.
   */
  async #releaseView(sw: StagingWorkspace, signal: AbortSignal): Promise<void> {
    const view = sw.metadata.annotations?.[STAGING_VIEW_ANNOTATION];
    if (!view) return;
    const others = this.#o.coordination.stagingWorkspaces.store.list(
      (o) => o.metadata.name !== sw.metadata.name && o.metadata.annotations?.[STAGING_VIEW_ANNOTATION] === view,
    );
    if (others.length > 0) return;
    const found = await this.#viewExport(view, signal);
    if (!found || !isStagingView(found)) return;
    const exports = this.#o.clients.inWorkspace<APIExportObject>(this.#o.stagingRoot, APIEXPORTS);
    await exports.delete({ name: view }, signal, { uid: found.metadata.uid });
    this.#logger.info({ view }, 'staging view released');
  }

  /** Writes the status when it changes; false when the write lost to a newer version (nothing written). */
  async #setStatus(
    sw: StagingWorkspace,
    fields: { phase: 'Pending' | 'Ready' | 'Terminating'; clusterName?: string },
    failing: { type: 'WorkspaceReady' | 'BindingReady'; status: 'False'; reason: string; message: string } | undefined,
    signal: AbortSignal,
  ): Promise<boolean> {
    let conditions = sw.status?.conditions;
    const workspaceReady = fields.clusterName !== undefined || fields.phase === 'Ready';
    conditions = setCondition(
      conditions,
      workspaceReady
        ? { type: 'WorkspaceReady', status: 'True', reason: 'Ready', message: '' }
        : failing?.type === 'WorkspaceReady'
          ? failing
          : { type: 'WorkspaceReady', status: 'False', reason: 'Pending', message: '' },
    );
    conditions = setCondition(
      conditions,
      fields.phase === 'Ready'
        ? { type: 'BindingReady', status: 'True', reason: 'Bound', message: '' }
        : failing?.type === 'BindingReady'
          ? failing
          : { type: 'BindingReady', status: 'False', reason: 'Pending', message: '' },
    );
    conditions = setCondition(
      conditions,
      fields.phase === 'Ready'
        ? { type: 'Ready', status: 'True', reason: 'Ready', message: '' }
        : { type: 'Ready', status: 'False', reason: fields.phase, message: failing?.message ?? '' },
    );
    const status = { ...sw.status, ...fields, conditions };
    if (isDeepStrictEqual(status, sw.status)) return true;
    try {
      await this.#o.coordination.stagingWorkspaces.client.updateStatus({ ...sw, status }, signal);
      return true;
    } catch (err) {
      // Read from a cache a write behind (a Workspace event can come before this controller's own
      // last status write reached the cache): the newer version's event brings the next round.
      if (!isConflict(err)) throw err;
      this.#logger.debug({ stagingWorkspace: sw.metadata.name, err }, 'status written from a stale read, waiting for the newer version');
      return false;
    }
  }
}

/** A resource as a staging view claims it: group and resource, whatever the version. */
const resourceKey = (gvr: { group?: string; resource: string }): string => `${gvr.group ?? ''}/${gvr.resource}`;
