import type { ComputeWorkspace } from '../../src/controllers/migration/stage-runner.ts';
import { UnknownKindError, type ResourceMapping } from '../../src/kcp-client-ts/discovery.ts';
import { CONFIGMAPS, NAMESPACES, SECRETS } from '../../src/kcp-client-ts/types.ts';
import type { MemoryApi } from './memory-api.ts';

const CORE: Record<string, ResourceMapping> = {
  'v1/Namespace': { gvr: NAMESPACES, namespaced: false },
  'v1/ConfigMap': { gvr: CONFIGMAPS, namespaced: true },
  'v1/Secret': { gvr: SECRETS, namespaced: true },
};

/**
 * The migration stages' compute workspace as one cluster of a MemoryApi: discovery from a table
 * (core kinds plus `kinds`, keyed `apiVersion/Kind`) and a client per resource. Its writes land
 * in the api's log.
 */
export const memoryCompute = (api: MemoryApi, cluster: string, kinds: Record<string, ResourceMapping> = {}): ComputeWorkspace => {
  const table = { ...CORE, ...kinds };
  const mappingFor = async (apiVersion: string, kind: string): Promise<ResourceMapping> => {
    const mapping = table[`${apiVersion}/${kind}`];
    if (!mapping) throw new UnknownKindError(`memory://${cluster}: ${apiVersion} has no kind ${kind}`);
    return mapping;
  };
  return {
    mappingFor,
    client: (gvr) => api.client(cluster, gvr),
  };
};
