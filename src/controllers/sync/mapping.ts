import { isDeepStrictEqual } from 'node:util';
import { CONSUMER_CLUSTER_ANNOTATION, CONSUMER_NAME_ANNOTATION } from '../../apis/names.ts';
import { withoutKcpKeys as cleanMap } from '../related/digest.ts';
import { clusterOf, type KubeObject } from '../../kcp-client-ts/types.ts';
import { truncateMessage } from '../../apis/conditions.ts';

/** Top-level fields that belong to the server or the provider, never copied down. */
const NOT_SPEC = new Set(['apiVersion', 'kind', 'metadata', 'status']);

/** The fields a consumer owns: every top-level field but apiVersion/kind/metadata/status. */
export const specFields = (obj: KubeObject): Record<string, unknown> =>
  Object.fromEntries(Object.entries(obj).filter(([k]) => !NOT_SPEC.has(k)));

/**
 * The staging copy of a consumer object: same namespace/name, the consumer's fields, labels and
 * annotations without server or kcp metadata, and the two annotations the Go project writes: the
 * consumer's logical cluster and its name (the namespace is the copy's own).
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
      [CONSUMER_NAME_ANNOTATION]: consumer.metadata.name ?? '',
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

/**
 * The largest provider status copied to a consumer object, in bytes of JSON. Far below what kcp
 * stores (about 1.5 MiB per object, spec and metadata included), so the consumer's own fields
 * always fit beside it.
 */
export const MAX_STATUS_BYTES = 256 * 1024;

/** A top-level status field left out because the status was too large. */
export type DroppedField = { field: string; bytes: number };

const jsonBytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value) ?? '');

/**
 * The status a consumer object gets from its staging copy: the provider's, whole when it fits in
 * MAX_STATUS_BYTES; otherwise without its largest top-level fields (largest first) until it
 * fits, with a `StatusTruncated` condition naming them. The provider decides the size; the
 * consumer's object must stay writable.
 */
export const consumerStatusOf = (
  staging: KubeObject,
  consumer: KubeObject,
  now: Date = new Date(),
): { status: unknown; dropped: DroppedField[] } => {
  const status = staging['status'];
  if (status === undefined || jsonBytes(status) <= MAX_STATUS_BYTES) return { status, dropped: [] };
  if (status === null || typeof status !== 'object' || Array.isArray(status))
    return { status: undefined, dropped: [{ field: 'status', bytes: jsonBytes(status) }] };
  const kept: Record<string, unknown> = { ...status };
  const dropped: DroppedField[] = [];
  const bySize = Object.entries(kept)
    .map(([field, value]) => ({ field, bytes: jsonBytes(value) }))
    .sort((a, b) => b.bytes - a.bytes);
  for (const entry of bySize) {
    if (jsonBytes(kept) <= MAX_STATUS_BYTES - 2048) break; // room for the condition below
    delete kept[entry.field];
    dropped.push({ field: `status.${entry.field}`, bytes: entry.bytes });
  }
  const conditions = Array.isArray(kept['conditions']) ? (kept['conditions'] as unknown[]) : [];
  const previous = (
    (consumer['status'] as { conditions?: unknown } | undefined)?.conditions as { type?: string; lastTransitionTime?: string }[] | undefined
  )?.find?.((c) => c?.type === 'StatusTruncated');
  const note = {
    type: 'StatusTruncated',
    status: 'True',
    reason: 'ProviderStatusTooLarge',
    message:
      `the provider's status is larger than ${MAX_STATUS_BYTES} bytes; not copied: ${dropped.map((d) => `${d.field} (${d.bytes} bytes)`).join(', ')}`.slice(
        0,
        1024,
      ),
    // Kept while it stays truncated, so the same provider status maps to the same consumer status.
    lastTransitionTime: previous?.lastTransitionTime ?? now.toISOString().replace(/\.\d+Z$/, 'Z'),
  };
  kept['conditions'] = [...conditions, note];
  return { status: kept, dropped };
};

export const statusDiffers = (consumer: KubeObject, status: unknown): boolean =>
  status !== undefined && !isDeepStrictEqual(consumer['status'], status);

/**
 * The broker's condition on a consumer object that has no provider: `BrokerPlaced=False` with the
 * reason (`kubectl get` shows it in the example APIs' PENDING column). It lives only while the
 * object waits; once placed, the provider's status replaces the consumer's status as before.
 */
export const PLACEMENT_CONDITION = 'BrokerPlaced';

type ConditionLike = { type?: unknown; status?: unknown; reason?: unknown; message?: unknown; lastTransitionTime?: unknown };

const conditionsOf = (status: unknown): ConditionLike[] | undefined => {
  const list = status !== null && typeof status === 'object' ? (status as { conditions?: unknown }).conditions : undefined;
  return Array.isArray(list) ? (list as ConditionLike[]) : undefined;
};

/** Whether the consumer object carries the broker's pending condition. */
export const hasPendingCondition = (consumer: KubeObject): boolean =>
  conditionsOf(consumer['status'])?.some((c) => c?.type === PLACEMENT_CONDITION) ?? false;

/**
 * The consumer's status with the broker's pending condition set (`pending`) or removed
 * (undefined); its other fields and conditions as they are. lastTransitionTime stays while the
 * condition does, so the same reason maps to the same status (no write).
 */
export const withPendingCondition = (
  consumer: KubeObject,
  pending: { reason: string; message: string } | undefined,
  now: Date = new Date(),
): Record<string, unknown> => {
  const current = consumer['status'];
  const status: Record<string, unknown> = current !== null && typeof current === 'object' && !Array.isArray(current) ? { ...current } : {};
  const others = (conditionsOf(current) ?? []).filter((c) => c?.type !== PLACEMENT_CONDITION);
  const previous = conditionsOf(current)?.find((c) => c?.type === PLACEMENT_CONDITION);
  if (!pending) {
    if (others.length > 0) status['conditions'] = others;
    else delete status['conditions'];
    return status;
  }
  status['conditions'] = [
    ...others,
    {
      type: PLACEMENT_CONDITION,
      status: 'False',
      reason: pending.reason,
      message: truncateMessage(pending.message, 1024),
      lastTransitionTime:
        typeof previous?.lastTransitionTime === 'string' && previous.status === 'False'
          ? previous.lastTransitionTime
          : now.toISOString().replace(/\.\d+Z$/, 'Z'),
    },
  ];
  return status;
};
