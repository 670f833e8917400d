import { isDeepStrictEqual } from 'node:util';
import { CONSUMER_CLUSTER_ANNOTATION, CONSUMER_NAME_ANNOTATION } from '../../apis/names.ts';
import { withoutKcpKeys as cleanMap } from '../related/mirror.ts';
import { clusterOf, type KubeObject } from '../../kcp-client-ts/types.ts';

/** Top-level fields that belong to the server or the provider, never copied down. */
const NOT_SPEC = new Set(['apiVersion', 'kind', 'metadata', 'status']);

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
      [CONSUMER_NAME_ANNOTATION]: consumer.metadata.namespace
        ? `${consumer.metadata.namespace}/${consumer.metadata.name}`
        : (consumer.metadata.name ?? ''),
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

export const statusDiffers = (consumer: KubeObject, staging: KubeObject): boolean =>
  staging['status'] !== undefined && !isDeepStrictEqual(consumer['status'], staging['status']);
