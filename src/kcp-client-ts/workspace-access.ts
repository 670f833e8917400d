import { Applier } from './apply.ts';
import { Discovery, type ResourceMapping } from './discovery.ts';
import type { KcpEndpoint } from './endpoint.ts';
import { ResourceClient } from './resources.ts';
import type { GroupVersionResource, KubeObject } from './types.ts';

/** Everything one workspace offers for arbitrary kinds: discovery, apply, and a client per resource. */
export type WorkspaceAccess = {
  mappingFor(apiVersion: string, kind: string): Promise<ResourceMapping>;
  apply<T extends KubeObject>(obj: T, signal?: AbortSignal): Promise<{ object: T; changed: boolean }>;
  client<T extends KubeObject = KubeObject>(gvr: GroupVersionResource): ResourceClient<T>;
};

/** WorkspaceAccess to a workspace (path or logical cluster) of kcp. */
export const workspaceAccess = (endpoint: KcpEndpoint, workspace: string): WorkspaceAccess => {
  const baseUrl = endpoint.workspaceUrl(workspace);
  const discovery = new Discovery({ endpoint });
  const applier = new Applier({ endpoint, discovery });
  return {
    mappingFor: (apiVersion, kind) => discovery.mappingFor(baseUrl, apiVersion, kind),
    apply: (obj, signal) => applier.apply(workspace, obj, signal),
    client: <T extends KubeObject>(gvr: GroupVersionResource) => new ResourceClient<T>({ endpoint, baseUrl, gvr }),
  };
};
