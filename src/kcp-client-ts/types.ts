/** Shapes shared by every Kubernetes object; the generated client has the full schemas. */
export type ObjectMeta = {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: unknown[];
  managedFields?: unknown[];
  [key: string]: unknown;
};

export type KubeObject = {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
};

export type KubeList<T extends KubeObject = KubeObject> = {
  apiVersion?: string;
  kind?: string;
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
};

export type GroupVersionResource = { group: string; version: string; resource: string };

/** Core resources several layers use. */
export const SECRETS: GroupVersionResource = { group: '', version: 'v1', resource: 'secrets' };
export const CONFIGMAPS: GroupVersionResource = { group: '', version: 'v1', resource: 'configmaps' };
export const NAMESPACES: GroupVersionResource = { group: '', version: 'v1', resource: 'namespaces' };

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';
export type WatchEvent<T extends KubeObject = KubeObject> = { type: WatchEventType; object: T };

/** The annotation kcp puts on every object served through a wildcard or virtual-workspace request. */
export const CLUSTER_ANNOTATION = 'kcp.io/cluster';

export const clusterOf = (obj: KubeObject): string => obj.metadata.annotations?.[CLUSTER_ANNOTATION] ?? '';

export const apiVersionOf = (gvr: Pick<GroupVersionResource, 'group' | 'version'>): string =>
  gvr.group === '' ? gvr.version : `${gvr.group}/${gvr.version}`;

export const gvrString = (gvr: GroupVersionResource): string =>
  gvr.group === '' ? `${gvr.resource}.${gvr.version}` : `${gvr.resource}.${gvr.version}.${gvr.group}`;
