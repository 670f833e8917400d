import { ApiError } from '../kcp-client-ts/errors.ts';
import type { KcpEndpoint } from '../kcp-client-ts/endpoint.ts';
import { createKcpClient } from '../kcp-client-ts/typed-client.ts';
import { Workspaces } from '../kcp-client-ts/workspaces.ts';
import { splitPath, type BrokerPaths } from '../apis/paths.ts';

/**
 * Checks, before anything else, that kcp answers, accepts the credentials and has the
 * coordination workspace and the home workspace's AcceptAPI export; throws an error whose
 * message says what to fix.
 */
export const preflight = async (endpoint: KcpEndpoint, paths: BrokerPaths, signal?: AbortSignal): Promise<void> => {
  const { parent, name } = splitPath(paths.coordination);
  let found: Awaited<ReturnType<Workspaces['get']>>;
  try {
    found = await new Workspaces({ endpoint }).get(
      parent,
      name,
      AbortSignal.any([AbortSignal.timeout(15_000), ...(signal ? [signal] : [])]),
    );
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      throw new Error(`kcp at ${endpoint.serverOrigin} refused the kubeconfig's credentials (401): check --kubeconfig and --context`);
    }
    if (err instanceof ApiError && err.status === 403) {
      throw new Error(
        `kcp at ${endpoint.serverOrigin} forbids reading workspace ${paths.coordination} (403): the workspace ${parent} does not exist, or the identity lacks the permissions in README "Permissions"`,
      );
    }
    if (err instanceof ApiError)
      throw new Error(`kcp at ${endpoint.serverOrigin} answered ${err.status} reading workspace ${paths.coordination}: ${err.message}`);
    const cause = err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
    throw new Error(`cannot reach kcp at ${endpoint.serverOrigin} (${cause}): is it running, and is --kubeconfig right?`);
  }
  if (!found)
    throw new Error(
      `coordination workspace ${paths.coordination} does not exist: run \`resource-broker bootstrap\` first, or set --coordination`,
    );
  // What a leader needs beyond the Lease, read before it may stand by as Ready: a replica with a
  // wrong --home or --acceptapi-export, or without the home workspace's permissions, fails here,
  // not only once it takes over. (The verification root is not read: the broker's identity may
  // hold permissions inside its workspaces only.)
  const bounded = AbortSignal.any([AbortSignal.timeout(15_000), ...(signal ? [signal] : [])]);
  const home = createKcpClient(endpoint, endpoint.workspaceUrl(paths.home));
  const slice = await home.GET('/apis/apis.kcp.io/v1alpha1/apiexportendpointslices/{name}', {
    params: { path: { name: paths.acceptAPIExport } },
    signal: bounded,
  });
  if (!slice.response.ok)
    throw new Error(
      `cannot read APIExportEndpointSlice ${paths.acceptAPIExport} in home workspace ${paths.home} (${slice.response.status}): check --home and --acceptapi-export, run \`resource-broker bootstrap\`, or grant deploy/kcp-permissions/home.yaml`,
    );
  // The staging views live in the staging root: without them no staging copy is ever seen.
  const stagingRoot = createKcpClient(endpoint, endpoint.workspaceUrl(paths.stagingRoot));
  const views = await stagingRoot.GET('/apis/apis.kcp.io/v1alpha2/apiexports', { params: { query: { limit: 1 } }, signal: bounded });
  if (!views.response.ok)
    throw new Error(
      `cannot list APIExports in staging root ${paths.stagingRoot} (${views.response.status}): check --staging-root, run \`resource-broker bootstrap\`, or grant deploy/kcp-permissions/staging-views.yaml`,
    );
};
