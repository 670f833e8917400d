import { inject } from 'vitest';
import { KcpEndpoint } from '../../src/kcp-client-ts/endpoint.ts';
import { Workspaces } from '../../src/kcp-client-ts/workspaces.ts';

/** The run's kcp, as an admin endpoint, plus a unique name for this test's workspaces. */
export const kcpEnv = async (): Promise<{ endpoint: KcpEndpoint; workspaces: Workspaces; kubeconfig: string }> => {
  const { kubeconfig } = inject('kcp');
  const endpoint = await KcpEndpoint.fromKubeconfig({ path: kubeconfig });
  return { endpoint, workspaces: new Workspaces({ endpoint }), kubeconfig };
};

export { uniqueName } from './names.ts';
