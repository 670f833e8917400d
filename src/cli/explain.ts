import { ACCEPTAPI_GVR, ASSIGNMENT_GVR, MIGRATION_GVR, type AcceptAPI, type Assignment, type Migration } from '../apis/types.ts';
import type { BrokerPaths } from '../apis/paths.ts';
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
  }[];
  wouldPlaceOn?: string;
  assignment?: { name: string; provider?: string; acceptAPI?: string; phase?: string; stagingWorkspace?: string; placement?: unknown };
  migration?: { name: string; state?: string; stage?: string; detail?: string; from: string; to: string };
};

/** `resource.group` (e.g. `certificates.example.platform-mesh.io`) to a GVR, the version from the home export's schema. */
const resolveResource = async (endpoint: KcpEndpoint, paths: BrokerPaths, resource: string): Promise<GroupVersionResource> => {
  const [plural, ...groupParts] = resource.split('.');
  const group = groupParts.join('.');
  const client = createKcpClient(endpoint, endpoint.workspaceUrl(paths.home));
  const schemas = unwrap(await client.GET('/apis/apis.kcp.io/v1alpha1/apiresourceschemas'));
  const schema = schemas.items.find((s) => s.spec.names.plural === plural && (group === '' || s.spec.group === group));
  if (!schema)
    throw new Error(
      `no brokered resource "${resource}" in ${paths.home} (expected <plural>.<group>, e.g. certificates.example.platform-mesh.io)`,
    );
  const version = schema.spec.versions.find((v) => v.storage) ?? schema.spec.versions[0]!;
  return { group: schema.spec.group ?? '', version: version.name, resource: plural! };
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

/** What explain shows of one AcceptAPI beside the placement verdict. */
const acceptAPIDetails = (a: AcceptAPI | undefined): Partial<Explanation['acceptAPIs'][number]> => {
  if (!a) return {};
  const apiExportName = apiExportNameOf(a);
  const { verificationWorkspace, verificationWorkspacePath } = a.status ?? {};
  const deprecated = a.status?.conditions?.find((c) => c.type === 'Deprecated' && c.status === 'True')?.message;
  return {
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
  const gvr = await resolveResource(endpoint, paths, options.resource);
  const target = { namespace: options.namespace, name: options.name };
  const obj = await new ResourceClient({ endpoint, baseUrl: endpoint.workspaceUrl(options.workspace), gvr }).get(target);
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
  const objectId = encodeKey({ cluster, namespace: options.namespace ?? '', name: options.name });
  const decision = placeObject({ gvr, spec: obj['spec'], objectId, acceptAPIs, assignmentsByProvider: load });
  const aName = assignmentName(cluster, gvr, options.namespace ?? '', options.name);
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
      resource: options.resource,
      ...(options.namespace ? { namespace: options.namespace } : {}),
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

export const formatExplanation = (e: Explanation): string => {
  const lines = [
    `Object:      ${e.object.resource} ${e.object.namespace ? `${e.object.namespace}/` : ''}${e.object.name} in ${e.object.workspace} (cluster ${e.object.cluster})`,
    `Status:      ${(e.object.status as { status?: string } | undefined)?.status ?? '(none)'}`,
    'AcceptAPIs:',
    ...(e.acceptAPIs.length === 0
      ? ['  (none for this resource)']
      : e.acceptAPIs.flatMap((a) => [
          `  ${a.matched ? 'match' : 'no   '}  ${a.name} (${a.provider}): ${a.reason}${a.apiExportName ? ` [export ${a.apiExportName}${a.verificationWorkspacePath ? `, verified in ${a.verificationWorkspacePath}` : ''}]` : ''}`,
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
