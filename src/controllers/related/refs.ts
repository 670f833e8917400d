import type { RelatedResource } from '../../apis/types.ts';
import type { KubeObject } from '../../kcp-client-ts/types.ts';
import type { RelatedKind } from './mirror.ts';

export type RelatedRef = { key: string; kind: RelatedKind; namespace: string; name: string };

/** An entry of `status.relatedResources` that is not mirrored, and why. */
export type RefusedRef = { key: string; reason: string };

/** Most related resources mirrored per object: a provider cannot fill a consumer's namespace. */
export const MAX_RELATED = 32;

/** A Secret's or ConfigMap's name as the API server allows it (a DNS subdomain). */
const OBJECT_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** Namespaces the broker never writes into, whatever a provider names. */
const SYSTEM_NAMESPACES = new Set(['kube-system', 'kube-public', 'kube-node-lease', 'kcp-system', 'default-system']);
export const isSystemNamespace = (namespace: string): boolean =>
  SYSTEM_NAMESPACES.has(namespace) || namespace.startsWith('kube-') || namespace.startsWith('kcp-');

/**
 * The Secrets and ConfigMaps a staging copy publishes in `status.relatedResources`, in the only
 * namespace they may come from: the copy's own (for a cluster-scoped resource, `home`). The
 * provider writes that status, so everything else it names is refused with a reason: other
 * kinds, other namespaces, system namespaces.
 */
export const relatedRefs = (staging: KubeObject, home: string): { refs: RelatedRef[]; refused: RefusedRef[] } => {
  const entries = (staging['status'] as { relatedResources?: Record<string, RelatedResource> } | undefined)?.relatedResources ?? {};
  const refs: RelatedRef[] = [];
  const refused: RefusedRef[] = [];
  if (typeof entries !== 'object' || entries === null || Array.isArray(entries))
    return { refs, refused: [{ key: '', reason: 'status.relatedResources is not a map' }] };
  for (const [key, value] of Object.entries(entries)) {
    const entry: Partial<RelatedResource> = value !== null && typeof value === 'object' ? value : {};
    const group = entry?.gvk?.group ?? '';
    const kind = entry?.gvk?.kind;
    const namespace = entry?.namespace || home;
    if ((group !== '' && group !== 'core') || (kind !== 'Secret' && kind !== 'ConfigMap'))
      refused.push({ key, reason: 'only core Secrets and ConfigMaps are mirrored' });
    else if (typeof entry.name !== 'string' || entry.name === '') refused.push({ key, reason: 'name is empty' });
    else if (!OBJECT_NAME.test(entry.name)) refused.push({ key, reason: 'name is not a valid object name' });
    else if (namespace !== home) refused.push({ key, reason: `namespace "${namespace}" is not the object's namespace "${home}"` });
    else if (isSystemNamespace(namespace)) refused.push({ key, reason: `namespace "${namespace}" is a system namespace` });
    else if (refs.length >= MAX_RELATED) refused.push({ key, reason: `more than ${MAX_RELATED} related resources` });
    else refs.push({ key, kind, namespace, name: entry.name });
  }
  return { refs, refused };
};
