import { clusterOf, type KubeObject } from '../kcp-client-ts/types.ts';

/**
 * Identifies an object across workspaces: the same namespace/name exists in many logical
 * clusters, so the logical cluster (from `kcp.io/cluster`) is part of every key.
 */
export type ObjectKey = { cluster: string; namespace: string; name: string };

export const objectKeyOf = (obj: KubeObject): ObjectKey => ({
  cluster: clusterOf(obj),
  namespace: obj.metadata.namespace ?? '',
  name: obj.metadata.name ?? '',
});

/** `cluster|namespace|name`: none of the three may contain `|`. */
export const encodeKey = (key: ObjectKey): string => `${key.cluster}|${key.namespace}|${key.name}`;

export const decodeKey = (text: string): ObjectKey => {
  const [cluster = '', namespace = '', name = ''] = text.split('|');
  return { cluster, namespace, name };
};
