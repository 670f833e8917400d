import {
  ASSIGNMENT_GVR,
  MIGRATION_GVR,
  STAGINGWORKSPACE_GVR,
  type Assignment,
  type Migration,
  type StagingWorkspace,
} from '../apis/types.ts';
import { FINALIZER, MIGRATION_NAME_LABEL, OWNER_LABEL, OWNER_UID_ANNOTATION } from '../apis/names.ts';
import { splitPath, type BrokerPaths } from '../apis/paths.ts';
import type { KcpEndpoint } from '../kcp-client-ts/endpoint.ts';
import { isConflict, isNotFound } from '../kcp-client-ts/errors.ts';
import { ResourceClient } from '../kcp-client-ts/resources.ts';
import { createKcpClient, unwrap } from '../kcp-client-ts/typed-client.ts';
import { CONFIGMAPS, SECRETS, clusterOf, type GroupVersionResource, type KubeObject } from '../kcp-client-ts/types.ts';
import { Workspaces } from '../kcp-client-ts/workspaces.ts';

export type UninstallOptions = {
  endpoint: KcpEndpoint;
  paths: BrokerPaths;
  /** Also delete what the broker made: staging workspaces (providers deprovision), records, related copies. */
  purge: boolean;
  /** Say what would be done, change nothing. */
  dryRun: boolean;
  /** One line per step, for the person running it. */
  report: (line: string) => void;
  signal?: AbortSignal;
};

export type UninstallSummary = {
  finalizersRemoved: number;
  relatedCopiesDeleted: number;
  recordsDeleted: number;
  workspacesDeleted: string[];
};

/** Why uninstall may not run now: a broker still leads (it would put its finalizers back). */
export class BrokerRunningError extends Error {}

type Lease = { spec?: { holderIdentity?: string; renewTime?: string; leaseDurationSeconds?: number } };

/** Refuses while the Lease is held and not expired: the running broker must be stopped first. */
const refuseWhileLeading = async (endpoint: KcpEndpoint, paths: BrokerPaths, signal?: AbortSignal): Promise<void> => {
  const leases = new ResourceClient<Lease & KubeObject>({
    endpoint,
    baseUrl: endpoint.workspaceUrl(paths.coordination),
    gvr: { group: 'coordination.k8s.io', version: 'v1', resource: 'leases' },
  });
  const lease = await leases.find({ namespace: 'default', name: 'resource-broker' }, signal);
  const holder = lease?.spec?.holderIdentity;
  if (!holder) return;
  const renewed = Date.parse(lease.spec?.renewTime ?? '');
  const expires = renewed + (lease.spec?.leaseDurationSeconds ?? 15) * 1000;
  if (Number.isNaN(renewed) || Date.now() < expires)
    throw new BrokerRunningError(
      `a broker holds the leader lease (${holder}, in ${paths.coordination}): stop every replica first (helm uninstall, or scale the Deployment to 0), then run uninstall again`,
    );
};

type BrokeredApi = { exportName: string; gvr: GroupVersionResource; urls: string[] };

/** Every brokered resource: the home workspace's exports but the AcceptAPI one, with their virtual workspace URLs. */
const brokeredApis = async (endpoint: KcpEndpoint, paths: BrokerPaths, signal?: AbortSignal): Promise<BrokeredApi[]> => {
  const home = createKcpClient(endpoint, endpoint.workspaceUrl(paths.home));
  const slices = unwrap(await home.GET('/apis/apis.kcp.io/v1alpha1/apiexportendpointslices', { ...(signal ? { signal } : {}) }));
  const apis: BrokeredApi[] = [];
  for (const slice of slices.items) {
    const exportName = slice.metadata?.name ?? '';
    if (exportName === paths.acceptAPIExport) continue;
    const found = await home.GET('/apis/apis.kcp.io/v1alpha2/apiexports/{name}', {
      params: { path: { name: slice.spec?.export?.name || exportName } },
      ...(signal ? { signal } : {}),
    });
    if (found.response.status === 404) continue;
    const urls = (slice.status?.endpoints ?? []).map((e) => e.url);
    for (const resource of unwrap(found).spec.resources ?? []) {
      const schema = unwrap(
        await home.GET('/apis/apis.kcp.io/v1alpha1/apiresourceschemas/{name}', { params: { path: { name: resource.schema } } }),
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
 * waits for a broker that is gone), and with `purge` also deletes what it made. Refuses while
 * a broker leads. Idempotent: run again after an interruption, it finishes the rest.
 *
 * Only what the broker recorded as its own is touched: its finalizer entry (no other), related
 * copies carrying its owner label and the consumer object's uid, and the coordination records,
 * staging and verification roots it made.
 */
export const uninstall = async (options: UninstallOptions): Promise<UninstallSummary> => {
  const { endpoint, paths, purge, dryRun, report, signal } = options;
  await refuseWhileLeading(endpoint, paths, signal);
  const summary: UninstallSummary = { finalizersRemoved: 0, relatedCopiesDeleted: 0, recordsDeleted: 0, workspacesDeleted: [] };
  const would = dryRun ? 'would ' : '';

  for (const api of await brokeredApis(endpoint, paths, signal)) {
    for (const url of api.urls) {
      const objects = await new ResourceClient({ endpoint, baseUrl: endpoint.virtualWorkspaceUrl(url, '*'), gvr: api.gvr }).list({
        ...(signal ? { signal } : {}),
      });
      for (const listed of objects.items) {
        if (!listed.metadata.finalizers?.includes(FINALIZER) && !purge) continue;
        const cluster = clusterOf(listed);
        const at = { namespace: listed.metadata.namespace, name: listed.metadata.name ?? '' };
        const where = `${api.gvr.resource} ${at.namespace ? `${at.namespace}/` : ''}${at.name} (cluster ${cluster})`;
        if (purge) summary.relatedCopiesDeleted += await deleteRelatedCopies(endpoint, url, listed, dryRun, report, signal);
        if (!listed.metadata.finalizers?.includes(FINALIZER)) continue;
        summary.finalizersRemoved++;
        report(`${would}remove the finalizer from ${where}`);
        if (dryRun) continue;
        const client = new ResourceClient({ endpoint, baseUrl: endpoint.virtualWorkspaceUrl(url, cluster), gvr: api.gvr });
        // Optimistic concurrency: the object as read, retried on a conflict with a fresh read.
        let current: KubeObject | undefined = listed;
        for (let attempt = 0; current?.metadata.finalizers?.includes(FINALIZER); attempt++) {
          try {
            await client.update(
              { ...current, metadata: { ...current.metadata, finalizers: current.metadata.finalizers.filter((f) => f !== FINALIZER) } },
              signal,
            );
            break;
          } catch (err) {
            if (isNotFound(err)) break;
            if (!isConflict(err) || attempt >= 5) throw err;
            current = await client.find(at, signal);
          }
        }
      }
    }
  }
  if (!purge) return summary;

  const coordination = endpoint.workspaceUrl(paths.coordination);
  for (const gvr of [MIGRATION_GVR, ASSIGNMENT_GVR, STAGINGWORKSPACE_GVR]) {
    const records = new ResourceClient<Migration | Assignment | StagingWorkspace>({ endpoint, baseUrl: coordination, gvr });
    for (const record of (await records.list({ ...(signal ? { signal } : {}) })).items) {
      summary.recordsDeleted++;
      report(`${would}delete ${gvr.resource} ${record.metadata.name} (${paths.coordination})`);
      if (!dryRun) await records.delete({ name: record.metadata.name ?? '' }, signal, { uid: record.metadata.uid }).catch(ignoreNotFound);
    }
  }
  const compute = new ResourceClient({ endpoint, baseUrl: endpoint.workspaceUrl(paths.compute), gvr: CONFIGMAPS });
  for (const staged of (
    await compute.list({ labelSelector: MIGRATION_NAME_LABEL, ...(signal ? { signal } : {}) }).catch(() => ({ items: [] }))
  ).items) {
    summary.recordsDeleted++;
    report(
      `${would}delete what a migration stage deployed: configmap ${staged.metadata.namespace}/${staged.metadata.name} (${paths.compute})`,
    );
    if (!dryRun)
      await compute.delete({ namespace: staged.metadata.namespace, name: staged.metadata.name ?? '' }, signal).catch(ignoreNotFound);
  }
  // The roots whole: kcp deletes the workspaces below them, and with the staging workspaces
  // their copies, which providers then deprovision.
  const workspaces = new Workspaces({ endpoint });
  for (const path of [paths.stagingRoot, paths.verificationRoot]) {
    const { parent, name } = splitPath(path);
    if (!(await workspaces.get(parent, name, signal))) continue;
    summary.workspacesDeleted.push(path);
    report(`${would}delete workspace ${path} and every workspace below it (providers deprovision what was placed there)`);
    if (!dryRun) await workspaces.delete(parent, name, signal);
  }
  return summary;
};

/** Deletes the related copies made for one consumer object: its label and its uid recorded on them. */
const deleteRelatedCopies = async (
  endpoint: KcpEndpoint,
  url: string,
  owner: KubeObject,
  dryRun: boolean,
  report: (line: string) => void,
  signal?: AbortSignal,
): Promise<number> => {
  let deleted = 0;
  const cluster = clusterOf(owner);
  for (const gvr of [SECRETS, CONFIGMAPS]) {
    const client = new ResourceClient({ endpoint, baseUrl: endpoint.virtualWorkspaceUrl(url, cluster), gvr });
    // Not claimed by the export, or not accepted in this workspace: the broker made none there.
    const copies = await client
      .list({ labelSelector: OWNER_LABEL, ...(signal ? { signal } : {}) })
      .catch(() => ({ items: [] as KubeObject[] }));
    for (const copy of copies.items) {
      if (copy.metadata.annotations?.[OWNER_UID_ANNOTATION] !== owner.metadata.uid) continue;
      deleted++;
      report(
        `${dryRun ? 'would ' : ''}delete ${gvr.resource} ${copy.metadata.namespace}/${copy.metadata.name} (cluster ${cluster}), copied for ${owner.metadata.name}`,
      );
      if (!dryRun)
        await client
          .delete({ namespace: copy.metadata.namespace, name: copy.metadata.name ?? '' }, signal, { uid: copy.metadata.uid })
          .catch(ignoreNotFound);
    }
  }
  return deleted;
};

const ignoreNotFound = (err: unknown): void => {
  if (!isNotFound(err)) throw err;
};
