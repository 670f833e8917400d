import { isDeepStrictEqual } from 'node:util';
import { CONSUMER_CLUSTER_ANNOTATION, CONSUMER_NAME_ANNOTATION, MANAGED_BY_LABEL, MANAGER, OWNER_LABEL } from '../../apis/names.ts';
import type { RelatedResource } from '../../apis/types.ts';
import { CLUSTER_ANNOTATION, clusterOf, type KubeObject } from '../../kcp-client-ts/types.ts';

/** Top-level fields that belong to the server or the provider, never copied down. */
const NOT_SPEC = new Set(['apiVersion', 'kind', 'metadata', 'status']);

const isKcpInternal = (key: string): boolean => key === CLUSTER_ANNOTATION || key.startsWith('kcp.io/') || key.startsWith('claimed.internal.apis.kcp.io/');

const cleanMap = (map: Record<string, string> | undefined): Record<string, string> =>
  Object.fromEntries(Object.entries(map ?? {}).filter(([k]) => !isKcpInternal(k)));

/** The fields a consumer owns: every top-level field but apiVersion/kind/metadata/status. */
export const specFields = (obj: KubeObject): Record<string, unknown> =>
  Object.fromEntries(Object.entries(obj).filter(([k]) => !NOT_SPEC.has(k)));

/**
 * The staging copy of a consumer object: same namespace/name, the consumer's fields, labels and
 * annotations without server or kcp metadata, and two annotations naming the consumer.
 */
export const stagingCopyOf = (consumer: KubeObject, type: { apiVersion: string; kind: string }): KubeObject => ({
  apiVersion: type.apiVersion,
  kind: type.kind,
  metadata: {
    name: consumer.metadata.name,
    ...(consumer.metadata.namespace ? { namespace: consumer.metadata.namespace } : {}),
    labels: cleanMap(consumer.metadata.labels),
    annotations: {
      ...cleanMap(consumer.metadata.annotations),
      [CONSUMER_CLUSTER_ANNOTATION]: clusterOf(consumer),
      [CONSUMER_NAME_ANNOTATION]: consumer.metadata.namespace ? `${consumer.metadata.namespace}/${consumer.metadata.name}` : (consumer.metadata.name ?? ''),
    },
  },
  ...specFields(consumer),
});

/** Whether the staging copy must be rewritten to equal `desired` (fields, labels, annotations). */
export const stagingCopyDiffers = (current: KubeObject, desired: KubeObject): boolean =>
  !isDeepStrictEqual(specFields(current), specFields(desired)) ||
  !isDeepStrictEqual(cleanMap(current.metadata.labels), desired.metadata.labels ?? {}) ||
  !isDeepStrictEqual(cleanMap(current.metadata.annotations), desired.metadata.annotations ?? {});

/** `current` rewritten to `desired`: removed fields go, the resourceVersion guards the write. */
export const updatedStagingCopy = (current: KubeObject, desired: KubeObject): KubeObject => ({
  ...desired,
  metadata: { ...current.metadata, labels: desired.metadata.labels, annotations: desired.metadata.annotations },
});

export const statusOf = (obj: KubeObject | undefined): unknown => obj?.['status'];

export const statusDiffers = (consumer: KubeObject, staging: KubeObject): boolean =>
  staging['status'] !== undefined && !isDeepStrictEqual(consumer['status'], staging['status']);

export type RelatedKind = 'Secret' | 'ConfigMap';

export type RelatedRef = { key: string; kind: RelatedKind; namespace: string; name: string };

/**
 * The Secrets and ConfigMaps named in a staging copy's `status.relatedResources`; entries of
 * other kinds are reported so the caller can say they are not mirrored.
 */
export const relatedRefs = (staging: KubeObject, defaultNamespace: string): { refs: RelatedRef[]; unsupported: string[] } => {
  const entries = ((staging['status'] as { relatedResources?: Record<string, RelatedResource> } | undefined)?.relatedResources) ?? {};
  const refs: RelatedRef[] = [];
  const unsupported: string[] = [];
  for (const [key, entry] of Object.entries(entries)) {
    const group = entry?.gvk?.group ?? '';
    const kind = entry?.gvk?.kind;
    if ((group === '' || group === 'core') && (kind === 'Secret' || kind === 'ConfigMap') && entry.name) {
      refs.push({ key, kind, namespace: entry.namespace || defaultNamespace, name: entry.name });
    } else {
      unsupported.push(key);
    }
  }
  return { refs, unsupported };
};

const RELATED_FIELDS = ['data', 'binaryData', 'stringData', 'type', 'immutable'];

/** The content of a Secret/ConfigMap, what every copy of it carries. */
export const relatedPayload = (source: KubeObject): Record<string, unknown> =>
  Object.fromEntries(RELATED_FIELDS.filter((f) => source[f] !== undefined).map((f) => [f, source[f]]));

/**
 * The consumer-side copy of a related Secret/ConfigMap, labelled with its owner. The kind is
 * passed in: items of a list response carry no apiVersion/kind.
 */
export const relatedCopyOf = (source: KubeObject, kind: RelatedKind, owner: string): KubeObject => ({
  apiVersion: 'v1',
  kind,
  metadata: {
    name: source.metadata.name,
    namespace: source.metadata.namespace,
    labels: { ...cleanMap(source.metadata.labels), [OWNER_LABEL]: owner, [MANAGED_BY_LABEL]: MANAGER },
    annotations: cleanMap(source.metadata.annotations),
  },
  ...relatedPayload(source),
});

export const relatedCopyDiffers = (current: KubeObject, desired: KubeObject): boolean =>
  RELATED_FIELDS.some((f) => !isDeepStrictEqual(current[f], desired[f])) ||
  !isDeepStrictEqual(cleanMap(current.metadata.labels), desired.metadata.labels);
