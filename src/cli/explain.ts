import {
  ACCEPTAPI_GVR,
  ASSIGNMENT_GVR,
  MIGRATION_GVR,
  type AcceptAPI,
  type AcceptAPILoad,
  type Assignment,
  type Migration,
} from '../apis/types.ts';
import { reportedLoad } from '../apis/acceptapi-load.ts';
import type { BrokerPaths } from '../apis/paths.ts';
import { celEngine } from '../controllers/acceptapi/filters.ts';
import { assignmentsByProvider, placeObject } from '../controllers/placement/placement.ts';
import { apiExportNameOf, assignmentName, migrationNameOf } from '../apis/names.ts';
import { encodeKey } from '../runtime/object-key.ts';
import type { KcpEndpoint } from '../kcp-client-ts/endpoint.ts';
import { ResourceClient } from '../kcp-client-ts/resources.ts';
import { createKcpClient, unwrap } from '../kcp-client-ts/typed-client.ts';
import { clusterOf, type GroupVersionResource } from '../kcp-client-ts/types.ts';

export type Explanation = {
  object: { workspace: string; cluster: string; resource: string; namespace?: string; name: string; status?: unknown };
  acceptAPIs: {
    name: string;
    provider: string;
    matched: boolean;
    reason: string;
    /** The APIExport it names (spec.apiExportName, or the deprecated annotation). */
    apiExportName?: string;
    /** Its verification workspace: the name (as in status.verificationWorkspace) and the path. */
    verificationWorkspace?: string;
    verificationWorkspacePath?: string;
    /** Set when the AcceptAPI names its export in a deprecated way: what to change. */
    deprecated?: string;
    /** What its status reports it serves, and the moves off it in flight (written every 15 s at most). */
    load?: Partial<AcceptAPILoad>;
  }[];
  wouldPlaceOn?: string;
  assignment?: { name: string; provider?: string; acceptAPI?: string; phase?: string; stagingWorkspace?: string; placement?: unknown };
  migration?: { name: string; state?: string; stage?: string; detail?: string; from: string; to: string };
};

/**
 * A brokered resource named as kubectl names one: plural, singular, kind or short name, with or
 * without `.group` (`certificates.example.platform-mesh.io`, `certificate`, `Certificate`, `cert`),
 * looked up in the home workspace's schemas; the version is the storage version.
 */
export const resolveResource = async (
  endpoint: KcpEndpoint,
  paths: BrokerPaths,
  resource: string,
): Promise<{ gvr: GroupVersionResource; namespaced: boolean; name: string }> => {
  const client = createKcpClient(endpoint, endpoint.workspaceUrl(paths.home));
  // Only the schemas the home workspace's exports serve: not old revisions, not unused ones.
  const exports = unwrap(await client.GET('/apis/apis.kcp.io/v1alpha2/apiexports'));
  const served = new Set(exports.items.flatMap((e) => (e.spec.resources ?? []).map((r) => r.schema)));
  const schemas = unwrap(await client.GET('/apis/apis.kcp.io/v1alpha1/apiresourceschemas')).items.filter((s) =>
    served.has(s.metadata?.name ?? ''),
  );
  const wanted = resource.toLowerCase();
  const matches = schemas.filter(({ spec }) => {
    const { names, group } = spec;
    const aliases = [names.plural, names.singular, names.kind, ...(names.shortNames ?? [])].filter((n): n is string => !!n);
    return aliases.some((n) => wanted === n.toLowerCase() || wanted === `${n}.${group}`.toLowerCase());
  });
  const fullNames = [...new Set(matches.map((m) => `${m.spec.names.plural}.${m.spec.group}`))];
  if (fullNames.length > 1)
    throw new Error(`"${resource}" names ${fullNames.length} brokered resources: say which, ${fullNames.join(' or ')}`);
  const schema = matches[0];
  if (!schema)
    throw new Error(
      `no brokered resource "${resource}" in ${paths.home} (a plural, singular, kind or short name, optionally with its group: certificates.example.platform-mesh.io)`,
    );
  const version = schema.spec.versions.find((v) => v.storage) ?? schema.spec.versions[0]!;
  const { plural } = schema.spec.names;
  return {
    gvr: { group: schema.spec.group ?? '', version: version.name, resource: plural },
    namespaced: schema.spec.scope !== 'Cluster',
    name: schema.spec.group ? `${plural}.${schema.spec.group}` : plural,
  };
};

const migrationSummary = (m: Migration): NonNullable<Explanation['migration']> => {
  // The condition that says what the migration waits for or why it failed.
  const blocking = ['StagesCompleted', 'CutoverCompleted']
    .map((type) => m.status?.conditions?.find((c) => c.type === type && c.status === 'False'))
    .find((c) => c?.message);
  return {
    name: m.metadata.name ?? '',
    state: m.status?.state,
    ...(m.status?.stage ? { stage: m.status.stage } : {}),
    ...(blocking ? { detail: blocking.message } : {}),
    from: m.spec.from.providerCluster,
    to: m.spec.to.providerCluster,
  };
};

/** `, serves 7, 2 moving out`: an AcceptAPI's reported load, when its status has one. */
const loadText = (load: Partial<AcceptAPILoad> | undefined): string =>
  load?.servedObjects === undefined
    ? ''
    : `, serves ${load.servedObjects}${load.migrationsOut ? `, ${load.migrationsOut} moving out` : ''}`;

/** What explain shows of one AcceptAPI beside the placement verdict. */
const acceptAPIDetails = (a: AcceptAPI | undefined): Partial<Explanation['acceptAPIs'][number]> => {
  if (!a) return {};
  const apiExportName = apiExportNameOf(a);
  const { verificationWorkspace, verificationWorkspacePath } = a.status ?? {};
  const deprecated = a.status?.conditions?.find((c) => c.type === 'Deprecated' && c.status === 'True')?.message;
  const load = reportedLoad(a);
  return {
    ...(Object.keys(load).length > 0 ? { load } : {}),
    ...(apiExportName ? { apiExportName } : {}),
    ...(verificationWorkspace ? { verificationWorkspace } : {}),
    ...(verificationWorkspacePath ? { verificationWorkspacePath } : {}),
    ...(deprecated ? { deprecated } : {}),
  };
};

/** For one consumer object: every AcceptAPI considered and why, the Assignment, the Migration. */
export const explain = async (options: {
  endpoint: KcpEndpoint;
  paths: BrokerPaths;
  workspace: string;
  resource: string;
  namespace?: string;
  name: string;
}): Promise<Explanation> => {
  const { endpoint, paths } = options;
  const { gvr, namespaced, name: resource } = await resolveResource(endpoint, paths, options.resource);
  // As kubectl: a namespaced object without --namespace is looked for in "default".
  const namespace = namespaced ? (options.namespace ?? 'default') : undefined;
  const target = { namespace, name: options.name };
  const obj = await new ResourceClient({ endpoint, baseUrl: endpoint.workspaceUrl(options.workspace), gvr }).find(target);
  if (!obj)
    throw new Error(`${resource} "${options.name}" not found in ${options.workspace}${namespace ? `, namespace ${namespace}` : ''}`);
  const cluster = clusterOf(obj);
  const home = createKcpClient(endpoint, endpoint.workspaceUrl(paths.home));
  const slice = unwrap(
    await home.GET('/apis/apis.kcp.io/v1alpha1/apiexportendpointslices/{name}', { params: { path: { name: paths.acceptAPIExport } } }),
  );
  // Every shard's endpoint: providers' workspaces may be on any shard.
  const acceptAPIs = (
    await Promise.all(
      (slice.status?.endpoints ?? []).map(
        async ({ url }) =>
          (
            await new ResourceClient<AcceptAPI>({ endpoint, baseUrl: endpoint.virtualWorkspaceUrl(url, '*'), gvr: ACCEPTAPI_GVR }).list()
          ).items,
      ),
    )
  ).flat();
  const coordination = endpoint.workspaceUrl(paths.coordination);
  const assignments = new ResourceClient<Assignment>({ endpoint, baseUrl: coordination, gvr: ASSIGNMENT_GVR });
  const load = assignmentsByProvider((await assignments.list()).items, gvr);
  const objectId = encodeKey({ cluster, namespace: namespace ?? '', name: options.name });
  // Placement is synchronous: the CEL engine its filters may need is loaded first.
  await celEngine.load();
  const decision = placeObject({ gvr, spec: obj['spec'], objectId, acceptAPIs, assignmentsByProvider: load });
  const aName = assignmentName(cluster, gvr, namespace ?? '', options.name);
  const assignment = await assignments.find({ name: aName });
  const migration = assignment
    ? await new ResourceClient<Migration>({ endpoint, baseUrl: coordination, gvr: MIGRATION_GVR }).find({
        name: migrationNameOf(assignment),
      })
    : undefined;
  return {
    object: {
      workspace: options.workspace,
      cluster,
      resource,
      ...(namespace ? { namespace } : {}),
      name: options.name,
      status: obj['status'],
    },
    acceptAPIs: decision.candidates.map((c) => ({
      name: c.acceptAPI,
      provider: c.providerCluster,
      matched: c.matched,
      reason: c.reason,
      ...acceptAPIDetails(acceptAPIs.find((a) => a.metadata.name === c.acceptAPI && clusterOf(a) === c.providerCluster)),
    })),
    ...(decision.winner
      ? { wouldPlaceOn: `${decision.winner.acceptAPIName} (${decision.winner.providerCluster}): ${decision.reason}` }
      : {}),
    ...(assignment
      ? {
          assignment: {
            name: aName,
            provider: assignment.status?.providerCluster,
            acceptAPI: assignment.status?.acceptAPIName,
            phase: assignment.status?.phase,
            stagingWorkspace: assignment.status?.stagingWorkspace,
            placement: assignment.status?.placement,
          },
        }
      : {}),
    ...(migration ? { migration: migrationSummary(migration) } : {}),
  };
};

/** The provider's `status.status`, else the broker's own condition (a pending object's reason). */
const statusLine = (status: unknown): string => {
  const { status: text, conditions } = (status ?? {}) as { status?: unknown; conditions?: { type?: string; reason?: string }[] };
  if (typeof text === 'string' && text) return text;
  const placed = Array.isArray(conditions) ? conditions.find((c) => c?.type === 'BrokerPlaced') : undefined;
  return placed?.reason ? `pending (BrokerPlaced=False, ${placed.reason})` : '(none)';
};

export const formatExplanation = (e: Explanation): string => {
  const lines = [
    `Object:      ${e.object.resource} ${e.object.namespace ? `${e.object.namespace}/` : ''}${e.object.name} in ${e.object.workspace} (cluster ${e.object.cluster})`,
    `Status:      ${statusLine(e.object.status)}`,
    'AcceptAPIs:',
    ...(e.acceptAPIs.length === 0
      ? ['  (none for this resource)']
      : e.acceptAPIs.flatMap((a) => [
          `  ${a.matched ? 'match' : 'no   '}  ${a.name} (${a.provider}): ${a.reason}${a.apiExportName ? ` [export ${a.apiExportName}${a.verificationWorkspacePath ? `, verified in ${a.verificationWorkspacePath}` : ''}${loadText(a.load)}]` : ''}`,
          ...(a.deprecated ? [`         deprecated: ${a.deprecated}`] : []),
        ])),
    `Placement:   ${e.wouldPlaceOn ?? 'no AcceptAPI matches now'}`,
    e.assignment
      ? `Assignment:  ${e.assignment.name}: provider ${e.assignment.provider ?? '?'} via ${e.assignment.acceptAPI ?? '?'}, phase ${e.assignment.phase ?? '?'}, staging ${e.assignment.stagingWorkspace ?? '?'}`
      : 'Assignment:  none',
    e.migration
      ? `Migration:   ${e.migration.name}: ${e.migration.from} -> ${e.migration.to}, ${e.migration.state ?? 'Pending'}${e.migration.stage ? ` (stage ${e.migration.stage})` : ''}${e.migration.detail ? `: ${e.migration.detail}` : ''}`
      : 'Migration:   none',
  ];
  return lines.join('\n');
};
