import {
  ASSIGNMENT_GVR,
  MIGRATION_GVR,
  STAGINGWORKSPACE_GVR,
  type Assignment,
  type Migration,
  type StagingWorkspace,
} from '../apis/types.ts';
import {
  FINALIZER,
  MANAGED_BY_LABEL,
  MANAGER,
  MIGRATION_NAME_LABEL,
  OWNER_LABEL,
  OWNER_UID_ANNOTATION,
  relatedOwnerOf,
  isStagingView,
} from '../apis/names.ts';
import type { BrokerPaths } from '../apis/paths.ts';
import { APIEXPORTS, type APIExportObject } from '../kcp-client-ts/bindings.ts';
import type { KcpEndpoint } from '../kcp-client-ts/endpoint.ts';
import { ApiError, isConflict, isNotFound } from '../kcp-client-ts/errors.ts';
import { ResourceClient } from '../kcp-client-ts/resources.ts';
import { createKcpClient, unwrap } from '../kcp-client-ts/typed-client.ts';
import { WORKSPACES } from '../kcp-client-ts/workspaces.ts';
import { CONFIGMAPS, SECRETS, clusterOf, type GroupVersionResource, type KubeObject } from '../kcp-client-ts/types.ts';
import { LeaseLock } from '../leader/lease-lock.ts';
import type { Logger } from '../logging.ts';

export type UninstallOptions = {
  endpoint: KcpEndpoint;
  paths: BrokerPaths;
  /** Also delete what the broker made: staging workspaces (providers deprovision), records, related copies. */
  purge: boolean;
  /** Say what would be done, change nothing. */
  dryRun: boolean;
  /** One line per step done (or, in a dry run, that would be done), for the person running it. */
  report: (line: string) => void;
  logger: Logger;
  signal?: AbortSignal;
};

export type UninstallSummary = {
  finalizersRemoved: number;
  relatedCopiesDeleted: number;
  recordsDeleted: number;
  workspacesDeleted: string[];
  /** What could not be done, one line each: run again, or remove by hand. */
  left: string[];
};

/** Why uninstall may not run now: a broker still leads (it would put its finalizers back). */
export class BrokerRunningError extends Error {}

/**
 * Holds the broker's leader Lease for the whole run: a broker with leader election cannot lead
 * (or come back) meanwhile and put its finalizers back. Taken as any replica takes it, so a live
 * leader (its record changing) is never displaced, whatever the clocks say; refused when the
 * Lease is not free within one lease duration. Brokers run without leader election hold no
 * Lease: uninstall cannot see them (README "Uninstall").
 */
const takeLease = async (endpoint: KcpEndpoint, paths: BrokerPaths, logger: Logger, signal?: AbortSignal): Promise<LeaseLock> => {
  const lock = new LeaseLock({
    endpoint,
    workspace: paths.coordination,
    identity: `resource-broker-uninstall-${process.pid}`,
    leaseDurationSeconds: 15,
    renewDeadlineSeconds: 10,
    retryPeriodSeconds: 1,
    logger,
  });
  // A dead leader's Lease expires after its duration (15 s by default) of not changing.
  const deadline = AbortSignal.any([AbortSignal.timeout(25_000), ...(signal ? [signal] : [])]);
  try {
    await lock.acquire(deadline);
  } catch {
    signal?.throwIfAborted();
    throw new BrokerRunningError(
      `a broker holds the leader lease (in ${paths.coordination}) and keeps renewing it: stop every replica first (helm uninstall, or scale the Deployment to 0), then run uninstall again`,
    );
  }
  return lock;
};

type BrokeredApi = { exportName: string; gvr: GroupVersionResource; urls: string[] };

/** Every brokered resource: the home workspace's exports but the AcceptAPI one, with their virtual workspace URLs. */
const brokeredApis = async (endpoint: KcpEndpoint, paths: BrokerPaths, left: string[], signal?: AbortSignal): Promise<BrokeredApi[]> => {
  const home = createKcpClient(endpoint, endpoint.workspaceUrl(paths.home));
  const slices = unwrap(await home.GET('/apis/apis.kcp.io/v1alpha1/apiexportendpointslices', { ...(signal ? { signal } : {}) }));
  const apis: BrokeredApi[] = [];
  for (const slice of slices.items) {
    const exportName = slice.metadata?.name ?? '';
    if (exportName === paths.acceptAPIExport) continue;
    // The slice names its export, possibly in another workspace, as the broker reads it.
    const exportWorkspace = createKcpClient(endpoint, endpoint.workspaceUrl(slice.spec?.export?.path || paths.home));
    const found = await exportWorkspace.GET('/apis/apis.kcp.io/v1alpha2/apiexports/{name}', {
      params: { path: { name: slice.spec?.export?.name || exportName } },
      ...(signal ? { signal } : {}),
    });
    if (found.response.status === 404) {
      left.push(`export of endpoint slice ${exportName} not found: its objects were not visited`);
      continue;
    }
    // As the broker takes them: https only, each once.
    const urls = [...new Set((slice.status?.endpoints ?? []).map((e) => e.url).filter((u) => u.startsWith('https://')))];
    for (const resource of unwrap(found).spec.resources ?? []) {
      const schema = unwrap(
        await exportWorkspace.GET('/apis/apis.kcp.io/v1alpha1/apiresourceschemas/{name}', { params: { path: { name: resource.schema } } }),
      );
      const version = schema.spec.versions.find((v) => v.storage) ?? schema.spec.versions[0];
      if (version)
        apis.push({ exportName, gvr: { group: schema.spec.group ?? '', version: version.name, resource: schema.spec.names.plural }, urls });
    }
  }
  return apis;
};

/**
 * Takes the broker out of a kcp: removes its finalizer from every consumer object (nothing
 * waits for a broker that is gone), and with `purge` also deletes what it made. Holds the
 * broker's Lease meanwhile (refused while a broker leads). Idempotent: run again after an
 * interruption, it finishes the rest. A step that fails is listed in `left` and the run goes on.
 *
 * Only what the broker recorded as its own is touched: its finalizer entry (no other), related
 * copies carrying the owner label of that consumer object and its uid, the coordination
 * records, what migration stages labelled in the compute workspace, and the staging and
 * verification workspaces it labelled (never the roots, which bootstrap may have found in place).
 */
export const uninstall = async (options: UninstallOptions): Promise<UninstallSummary> => {
  const { endpoint, paths, logger, signal } = options;
  const lock = await takeLease(endpoint, paths, logger, signal);
  try {
    return await uninstallHoldingLease(options);
  } finally {
    await lock.release();
  }
};

const uninstallHoldingLease = async (options: UninstallOptions): Promise<UninstallSummary> => {
  const { endpoint, paths, purge, dryRun, report, signal } = options;
  const summary: UninstallSummary = { finalizersRemoved: 0, relatedCopiesDeleted: 0, recordsDeleted: 0, workspacesDeleted: [], left: [] };
  /** Runs one step; a failure is listed, not fatal. True when done. */
  const step = async (what: string, write: () => Promise<unknown>): Promise<boolean> => {
    if (dryRun) {
      report(`would ${what}`);
      return true;
    }
    try {
      await write();
      report(what);
      return true;
    } catch (err) {
      if (isNotFound(err)) return true; // gone already
      summary.left.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
      return false;
    }
  };

  for (const api of await brokeredApis(endpoint, paths, summary.left, signal)) {
    for (const url of api.urls) {
      const objects = await new ResourceClient({ endpoint, baseUrl: endpoint.virtualWorkspaceUrl(url, '*'), gvr: api.gvr }).list({
        ...(signal ? { signal } : {}),
      });
      for (const listed of objects.items) {
        const cluster = clusterOf(listed);
        const at = { namespace: listed.metadata.namespace, name: listed.metadata.name ?? '' };
        const where = `${api.gvr.resource} ${at.namespace ? `${at.namespace}/` : ''}${at.name} (cluster ${cluster})`;
        if (purge) summary.relatedCopiesDeleted += await deleteRelatedCopies(endpoint, url, api.gvr, listed, step, summary.left, signal);
        if (!listed.metadata.finalizers?.includes(FINALIZER)) continue;
        const client = new ResourceClient({ endpoint, baseUrl: endpoint.virtualWorkspaceUrl(url, cluster), gvr: api.gvr });
        const removed = await step(`remove the finalizer from ${where}`, async () => {
          // Optimistic concurrency: the object as read, retried on a conflict with a fresh read.
          let current: KubeObject | undefined = listed;
          for (let attempt = 0; current?.metadata.finalizers?.includes(FINALIZER); attempt++) {
            try {
              const finalizers = current.metadata.finalizers.filter((f) => f !== FINALIZER);
              await client.update({ ...current, metadata: { ...current.metadata, finalizers } }, signal);
              return;
            } catch (err) {
              if (!isConflict(err) || attempt >= 5) throw err;
              current = await client.find(at, signal);
            }
          }
        });
        if (removed) summary.finalizersRemoved++;
      }
    }
  }
  if (!purge) return summary;

  const coordination = endpoint.workspaceUrl(paths.coordination);
  const migrations = new ResourceClient<Migration>({ endpoint, baseUrl: coordination, gvr: MIGRATION_GVR });
  // Each Migration's uid, read before any record goes: what a stage deployed carries its
  // Migration's name (label) and uid (annotation), and only such objects are deleted.
  const recorded = new Map<string, string>();
  for (const m of (await migrations.list({ ...(signal ? { signal } : {}) })).items) {
    recorded.set(m.metadata.name ?? '', m.metadata.uid ?? '');
    // What stages deployed beyond the ConfigMaps and Secrets swept below: said, not guessed at.
    for (const o of m.status?.stageObjects ?? []) {
      if (o.kind !== 'ConfigMap' && o.kind !== 'Secret')
        summary.left.push(
          `${o.kind} ${o.namespace ? `${o.namespace}/` : ''}${o.name} deployed by migration ${m.metadata.name}: remove it from the compute cluster by hand`,
        );
    }
  }
  // Swept while the Migrations that own them still exist: an interrupted run can trace them again.
  for (const gvr of [CONFIGMAPS, SECRETS]) {
    const compute = new ResourceClient({ endpoint, baseUrl: endpoint.workspaceUrl(paths.compute), gvr });
    for (const staged of (await compute.list({ labelSelector: MIGRATION_NAME_LABEL, ...(signal ? { signal } : {}) })).items) {
      const where = `${gvr.resource} ${staged.metadata.namespace}/${staged.metadata.name} (${paths.compute})`;
      const owner = recorded.get(staged.metadata.labels?.[MIGRATION_NAME_LABEL] ?? '');
      if (!owner || staged.metadata.annotations?.[OWNER_UID_ANNOTATION] !== owner) {
        summary.left.push(`${where}: labelled by a migration stage, but no recorded Migration owns it; not deleted`);
        continue;
      }
      const done = await step(`delete what a migration stage deployed: ${where}`, () =>
        compute.delete({ namespace: staged.metadata.namespace, name: staged.metadata.name ?? '' }, signal, { uid: staged.metadata.uid }),
      );
      if (done) summary.recordsDeleted++;
    }
  }
  for (const gvr of [MIGRATION_GVR, ASSIGNMENT_GVR, STAGINGWORKSPACE_GVR]) {
    const records = new ResourceClient<Migration | Assignment | StagingWorkspace>({ endpoint, baseUrl: coordination, gvr });
    for (const record of (await records.list({ ...(signal ? { signal } : {}) })).items) {
      const done = await step(`delete ${gvr.resource} ${record.metadata.name} (${paths.coordination})`, () =>
        records.delete({ name: record.metadata.name ?? '' }, signal, { uid: record.metadata.uid }),
      );
      if (done) summary.recordsDeleted++;
    }
  }
  // The workspaces the broker made and labelled: kcp deletes each with what is inside it (a
  // staging workspace's copies, which providers then deprovision). The roots stay.
  for (const root of [paths.stagingRoot, paths.verificationRoot]) {
    const workspaces = new ResourceClient({ endpoint, baseUrl: endpoint.workspaceUrl(root), gvr: WORKSPACES });
    const made = await workspaces
      .list({ labelSelector: `${MANAGED_BY_LABEL}=${MANAGER}`, ...(signal ? { signal } : {}) })
      .catch((err: unknown) => {
        summary.left.push(`list the workspaces in ${root}: ${err instanceof Error ? err.message : String(err)}`);
        return { items: [] as KubeObject[] };
      });
    for (const ws of made.items) {
      const path = `${root}:${ws.metadata.name}`;
      const done = await step(`delete workspace ${path} (providers deprovision what was placed there)`, () =>
        workspaces.delete({ name: ws.metadata.name ?? '' }, signal, { uid: ws.metadata.uid }),
      );
      if (done) summary.workspacesDeleted.push(path);
    }
  }
  // The staging views (APIExports the broker named after an API identity and labelled; their
  // bindings went with the staging workspaces).
  const views = new ResourceClient<APIExportObject>({ endpoint, baseUrl: endpoint.workspaceUrl(paths.stagingRoot), gvr: APIEXPORTS });
  const listed = await views
    .list({ labelSelector: `${MANAGED_BY_LABEL}=${MANAGER}`, ...(signal ? { signal } : {}) })
    .catch((err: unknown) => {
      summary.left.push(`list the staging views in ${paths.stagingRoot}: ${err instanceof Error ? err.message : String(err)}`);
      return { items: [] };
    });
  for (const view of listed.items.filter(isStagingView)) {
    const done = await step(`delete staging view apiexport ${view.metadata.name} (${paths.stagingRoot})`, () =>
      views.delete({ name: view.metadata.name ?? '' }, signal, { uid: view.metadata.uid }),
    );
    if (done) summary.recordsDeleted++;
  }
  return summary;
};

/** Deletes the related copies made for one consumer object: the owner label of that object, and its uid recorded on them. */
const deleteRelatedCopies = async (
  endpoint: KcpEndpoint,
  url: string,
  gvr: GroupVersionResource,
  owner: KubeObject,
  step: (what: string, write: () => Promise<unknown>) => Promise<boolean>,
  left: string[],
  signal?: AbortSignal,
): Promise<number> => {
  let deleted = 0;
  const cluster = clusterOf(owner);
  const label = `${OWNER_LABEL}=${relatedOwnerOf(cluster, gvr, owner.metadata.namespace ?? '', owner.metadata.name ?? '')}`;
  for (const kind of [SECRETS, CONFIGMAPS]) {
    const client = new ResourceClient({ endpoint, baseUrl: endpoint.virtualWorkspaceUrl(url, cluster), gvr: kind });
    let copies: KubeObject[];
    try {
      copies = (await client.list({ labelSelector: label, ...(signal ? { signal } : {}) })).items;
    } catch (err) {
      // 403: the export does not claim this kind, or the workspace did not accept it: the broker made none there.
      if (err instanceof ApiError && err.status === 403) continue;
      left.push(
        `list ${kind.resource} copied for ${owner.metadata.name} (cluster ${cluster}): ${err instanceof Error ? err.message : String(err)}`,
      );
      continue;
    }
    for (const copy of copies) {
      if (copy.metadata.annotations?.[OWNER_UID_ANNOTATION] !== owner.metadata.uid) continue;
      const done = await step(
        `delete ${kind.resource} ${copy.metadata.namespace}/${copy.metadata.name} (cluster ${cluster}), copied for ${owner.metadata.name}`,
        () => client.delete({ namespace: copy.metadata.namespace, name: copy.metadata.name ?? '' }, signal, { uid: copy.metadata.uid }),
      );
      if (done) deleted++;
    }
  }
  return deleted;
};
