import { createHash } from 'node:crypto';
import { BROKER_GROUP, MANAGED_BY_LABEL, SOURCE_HASH_ANNOTATION } from '../../apis/names.ts';
import { byCodeUnit } from '../../apis/order.ts';
import { CLUSTER_ANNOTATION, type KubeObject } from '../../kcp-client-ts/types.ts';

/**
 * What the broker keeps in memory of a Secret or ConfigMap it may copy: identity and a hash of
 * everything a copy carries, never the data. The informers of related resources store these, so
 * a provider's (or consumer's) large or numerous Secrets cost a few hundred bytes each; the
 * data is read with a GET only when a copy must be written.
 */
type RelatedDigest = KubeObject & { contentHash: string };

/**
 * List page size of the informers that keep digests: a Secret may hold 1 MiB, and a page is held
 * whole until its items are digested.
 */
export const RELATED_PAGE_SIZE = 50;

const PAYLOAD_FIELDS = ['data', 'binaryData', 'stringData', 'type', 'immutable'] as const;

const isKcpKey = (key: string): boolean =>
  key === CLUSTER_ANNOTATION || key.startsWith('kcp.io/') || key.startsWith('claimed.internal.apis.kcp.io/');

/** Keys the broker sets on copies (ownership, provenance): never taken from a source, never part of its content. */
const isBrokerKey = (key: string): boolean => key === MANAGED_BY_LABEL || key.startsWith(`${BROKER_GROUP}/`);

/** Labels or annotations without the ones kcp sets. */
export const withoutKcpKeys = (map: Record<string, string> | undefined): Record<string, string> =>
  Object.fromEntries(Object.entries(map ?? {}).filter(([k]) => !isKcpKey(k)));

/** Labels or annotations a copy takes from its source: without kcp's and the broker's own keys. */
export const copiedKeys = (map: Record<string, string> | undefined): Record<string, string> =>
  Object.fromEntries(Object.entries(map ?? {}).filter(([k]) => !isKcpKey(k) && !isBrokerKey(k)));

/**
 * The content of a Secret/ConfigMap, what every copy of it carries. A type the cluster acts on
 * (a service account token, which the token controller would fill in and the broker rewrite
 * forever) is copied as Opaque.
 */
export const relatedPayload = (source: KubeObject): Record<string, unknown> => {
  const payload = Object.fromEntries(PAYLOAD_FIELDS.filter((f) => source[f] !== undefined).map((f) => [f, source[f]]));
  if (payload['type'] === 'kubernetes.io/service-account-token') payload['type'] = 'Opaque';
  return payload;
};

/** Same for a source and each intact copy of it: payload, labels and annotations, less kcp's and the broker's keys. */
export const contentHashOf = (obj: KubeObject): string => {
  if (typeof obj['contentHash'] === 'string') return obj['contentHash']; // a digest already
  const content = {
    payload: relatedPayload(obj),
    labels: copiedKeys(obj.metadata.labels),
    annotations: copiedKeys(obj.metadata.annotations),
  };
  return createHash('sha256').update(JSON.stringify(content, sortedKeys)).digest('hex');
};

/** Object keys in a stable order, so equal content hashes equally whatever order the server sent. */
const sortedKeys = (_key: string, value: unknown): unknown =>
  value !== null && typeof value === 'object' && !Array.isArray(value)
    ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => byCodeUnit(a, b)))
    : value;

/**
 * An informer transform: the object reduced to its digest. Kept of the metadata: identity,
 * deletion, kcp's cluster annotation, and the broker's own labels and annotations (ownership is
 * checked on them), each value bounded by what the API server allows for a label or our hashes.
 */
export const relatedDigestOf = (obj: KubeObject): KubeObject => {
  const brokerOnly = (map: Record<string, string> | undefined): Record<string, string> | undefined => {
    const kept = Object.entries(map ?? {}).filter(([k, v]) => (isBrokerKey(k) || k === CLUSTER_ANNOTATION) && v.length <= 128);
    return kept.length > 0 ? Object.fromEntries(kept) : undefined;
  };
  const { labels, annotations } = obj.metadata;
  const metadata: KubeObject['metadata'] = {};
  for (const field of ['name', 'namespace', 'uid', 'resourceVersion', 'deletionTimestamp'] as const) {
    const value = obj.metadata[field];
    if (value) metadata[field] = value;
  }
  const keptLabels = brokerOnly(labels);
  const keptAnnotations = brokerOnly(annotations);
  if (keptLabels) metadata.labels = keptLabels;
  if (keptAnnotations) metadata.annotations = keptAnnotations;
  return { apiVersion: obj.apiVersion, kind: obj.kind, metadata, contentHash: contentHashOf(obj) } satisfies RelatedDigest;
};

/** Whether `copy` (an object or its digest) is an unaltered copy of the source whose content hash is `sourceHash`. */
export const isIntactCopyOf = (copy: KubeObject, sourceHash: string): boolean =>
  copy.metadata.annotations?.[SOURCE_HASH_ANNOTATION] === sourceHash && contentHashOf(copy) === sourceHash;
