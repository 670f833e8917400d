import type { KcpEndpoint } from './endpoint.ts';
import { ResourceClient } from './resources.ts';
import type { GroupVersionResource, KubeObject } from './types.ts';

/**
 * Resource clients by where they point, so code above this layer names a workspace or a
 * virtual workspace cluster and never builds a URL.
 */
export class Clients {
  readonly endpoint: KcpEndpoint;

  constructor(endpoint: KcpEndpoint) {
    this.endpoint = endpoint;
  }

  /** A resource in a workspace, by logical cluster name or path (`root:org:ws`). */
  inWorkspace<T extends KubeObject = KubeObject>(workspace: string, gvr: GroupVersionResource): ResourceClient<T> {
    return new ResourceClient<T>({ endpoint: this.endpoint, baseUrl: this.endpoint.workspaceUrl(workspace), gvr });
  }

  /** A resource in one cluster of a virtual workspace (an APIExport's), or in all of them with `*`. */
  inVirtualWorkspace<T extends KubeObject = KubeObject>(
    virtualWorkspaceUrl: string,
    cluster: string,
    gvr: GroupVersionResource,
  ): ResourceClient<T> {
    return new ResourceClient<T>({
      endpoint: this.endpoint,
      baseUrl: this.endpoint.virtualWorkspaceUrl(virtualWorkspaceUrl, cluster),
      gvr,
    });
  }
}
