// The platform's commands for moving work between providers: cordon, uncordon and drain set an
// AcceptAPI's spec fields; migrate asks for one object's move on its Assignment. The broker does
// the moves (src/controllers/migration), paced by its migration budget.
import { ACCEPTAPI_GVR, ASSIGNMENT_GVR, type AcceptAPI, type Assignment } from '../apis/types.ts';
import { assignmentName, MOVE_TO_ANNOTATION } from '../apis/names.ts';
import type { BrokerPaths } from '../apis/paths.ts';
import type { KcpEndpoint } from '../kcp-client-ts/endpoint.ts';
import { ResourceClient } from '../kcp-client-ts/resources.ts';
import { clusterOf } from '../kcp-client-ts/types.ts';
import { parseMoveTarget } from '../controllers/migration/migrator.ts';
import { resolveResource } from './explain.ts';
import { UsageError } from './flags.ts';

export type AcceptAPIOperation = 'cordon' | 'uncordon' | 'drain';

const SPEC_OF: Record<AcceptAPIOperation, { cordoned: boolean | null; draining: boolean | null }> = {
  cordon: { cordoned: true, draining: null },
  uncordon: { cordoned: null, draining: null },
  drain: { cordoned: null, draining: true },
};

/** Sets an AcceptAPI's cordoned/draining fields (a merge patch: nothing else changes); returns a line for the user. */
export const changeAcceptAPI = async (
  endpoint: KcpEndpoint,
  operation: AcceptAPIOperation,
  workspace: string,
  name: string,
): Promise<string> => {
  const client = new ResourceClient<AcceptAPI>({ endpoint, baseUrl: endpoint.workspaceUrl(workspace), gvr: ACCEPTAPI_GVR });
  if (!(await client.find({ name }))) throw new Error(`AcceptAPI ${name} not found in ${workspace}`);
  await client.mergePatch({ name }, { spec: SPEC_OF[operation] });
  const done: Record<AcceptAPIOperation, string> = {
    cordon: 'takes no new objects; the ones it serves stay',
    uncordon: 'takes new objects again',
    drain: 'takes no new objects; its objects move to other providers at the migration budget (--max-concurrent-migrations*)',
  };
  return `AcceptAPI ${name} in ${workspace} ${done[operation]}`;
};

/** Asks the broker to move one object to `to` (annotation on its Assignment); returns a line for the user. */
export const requestMove = async (
  endpoint: KcpEndpoint,
  paths: BrokerPaths,
  target: { workspace: string; resource: string; namespace?: string | undefined; name: string; to: string },
): Promise<string> => {
  if (!parseMoveTarget(target.to))
    throw new UsageError(`--to must be <AcceptAPI name> or <provider logical cluster>/<name>, not "${target.to}"`);
  const { gvr, namespaced, name: resource } = await resolveResource(endpoint, paths, target.resource);
  const namespace = namespaced ? (target.namespace ?? 'default') : undefined;
  const obj = await new ResourceClient({ endpoint, baseUrl: endpoint.workspaceUrl(target.workspace), gvr }).find({
    namespace,
    name: target.name,
  });
  if (!obj) throw new Error(`${resource} "${target.name}" not found in ${target.workspace}${namespace ? `, namespace ${namespace}` : ''}`);
  const assignments = new ResourceClient<Assignment>({ endpoint, baseUrl: endpoint.workspaceUrl(paths.coordination), gvr: ASSIGNMENT_GVR });
  const name = assignmentName(clusterOf(obj), gvr, namespace ?? '', target.name);
  if (!(await assignments.find({ name })))
    throw new Error(`${resource} "${target.name}" is not placed yet (no Assignment ${name}): nothing to move`);
  await assignments.mergePatch({ name }, { metadata: { annotations: { [MOVE_TO_ANNOTATION]: target.to } } });
  return `asked to move ${resource} ${namespace ? `${namespace}/` : ''}${target.name} to AcceptAPI ${target.to} (Assignment ${name}); \`resource-broker explain\` or the Assignment's MoveRequested condition shows a refusal`;
};
