import { Discovery, type ResourceMapping } from './discovery.ts';
import type { KcpEndpoint } from './endpoint.ts';
import { ResourceClient } from './resources.ts';
import type { GroupVersionResource, KubeObject } from './types.ts';

/** Everything one API server base offers for arbitrary kinds: discovery and a client per resource. */
export type WorkspaceAccess = {
  mappingFor(apiVersion: string, kind: string): Promise<ResourceMapping>;
  client<T extends KubeObject = KubeObject>(gvr: GroupVersionResource): ResourceClient<T>;
};

const accessAt = (endpoint: KcpEndpoint, baseUrl: string): WorkspaceAccess => {
  const discovery = new Discovery({ endpoint });
  return {
    mappingFor: (apiVersion, kind) => discovery.mappingFor(baseUrl, apiVersion, kind),
    client: <T extends KubeObject>(gvr: GroupVersionResource) => new ResourceClient<T>({ endpoint, baseUrl, gvr }),
  };
};

/** WorkspaceAccess to a workspace (path or logical cluster) of kcp. */
export const workspaceAccess = (endpoint: KcpEndpoint, workspace: string): WorkspaceAccess =>
  accessAt(endpoint, endpoint.workspaceUrl(workspace));

/**
 * WorkspaceAccess to the API server a kubeconfig names, at its server URL as given (any
 * Kubernetes cluster; or a kcp workspace when the URL ends in `/clusters/<path>`).
 */
export const serverAccess = (endpoint: KcpEndpoint): WorkspaceAccess => accessAt(endpoint, endpoint.serverUrl);
