import type { KcpEndpoint } from './endpoint.ts';
import { ResourceClient } from './resources.ts';
import type { GroupVersionResource, KubeObject } from './types.ts';

/**
 * Resource clients by where they point, so code above this layer names a workspace and never
 * builds a URL (virtual workspaces: VirtualWorkspace).
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
}
