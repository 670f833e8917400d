import { isDeepStrictEqual } from 'node:util';
import type { ComputeWorkspace } from '../../src/controllers/migration/stage-runner.ts';
import { containsSubset } from '../../src/kcp-client-ts/apply.ts';
import { UnknownKindError, type ResourceMapping } from '../../src/kcp-client-ts/discovery.ts';
import { CONFIGMAPS, NAMESPACES, SECRETS, type KubeObject } from '../../src/kcp-client-ts/types.ts';
import type { MemoryApi } from './memory-api.ts';

const CORE: Record<string, ResourceMapping> = {
  'v1/Namespace': { gvr: NAMESPACES, namespaced: false },
  'v1/ConfigMap': { gvr: CONFIGMAPS, namespaced: true },
  'v1/Secret': { gvr: SECRETS, namespaced: true },
};

/**
 * The migration stages' compute workspace as one cluster of a MemoryApi: discovery from a table
 * (core kinds plus `kinds`, keyed `apiVersion/Kind`), and apply as the Applier does it: create,
 * or update when the object lacks a value the manifest sets. Its writes land in the api's log.
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
    apply: async <T extends KubeObject>(obj: T, signal?: AbortSignal) => {
      const { gvr, namespaced } = await mappingFor(obj.apiVersion ?? '', obj.kind ?? '');
      const client = api.client<T>(cluster, gvr);
      const desired = { ...obj, metadata: { ...obj.metadata, ...(namespaced ? { namespace: obj.metadata.namespace ?? 'default' } : {}) } };
      const current = await client.find({ namespace: desired.metadata.namespace, name: desired.metadata.name ?? '' }, signal);
      if (!current) return { object: await client.create(desired, signal), changed: true };
      const fields = Object.keys(desired).filter((k) => !['apiVersion', 'kind', 'metadata', 'status'].includes(k));
      const labels = { ...current.metadata.labels, ...desired.metadata.labels };
      if (fields.every((k) => containsSubset(current[k], desired[k])) && isDeepStrictEqual(labels, current.metadata.labels ?? {}))
        return { object: current, changed: false };
      const next = { ...current, ...Object.fromEntries(fields.map((k) => [k, desired[k]])), metadata: { ...current.metadata, labels } };
      return { object: await client.update(next, signal), changed: true };
    },
  };
};
