import { ApiError } from '../kcp-client-ts/errors.ts';
import type { KcpEndpoint } from '../kcp-client-ts/endpoint.ts';
import { Workspaces } from '../kcp-client-ts/workspaces.ts';
import { splitPath, type BrokerPaths } from '../apis/paths.ts';

/**
 * Checks, before anything else, that kcp answers, accepts the credentials and has the
 * coordination workspace; throws an error whose message says what to fix.
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
};
