import { isDeepStrictEqual } from 'node:util';
import { Discovery, kindOf } from './discovery.ts';
import type { KcpEndpoint } from './endpoint.ts';
import { isAlreadyExists } from './errors.ts';
import { ResourceClient } from './resources.ts';
import type { KubeObject } from './types.ts';

const OWNED_BY_SERVER = new Set(['apiVersion', 'kind', 'metadata', 'status']);

/** Whether `actual` has every value `wanted` sets; fields the server defaulted are ignored. */
export const containsSubset = (actual: unknown, wanted: unknown): boolean => {
  if (Array.isArray(wanted)) {
    return Array.isArray(actual) && actual.length === wanted.length && wanted.every((w, i) => containsSubset(actual[i], w));
  }
  if (wanted !== null && typeof wanted === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return false;
    return Object.entries(wanted).every(([k, w]) => containsSubset((actual as Record<string, unknown>)[k], w));
  }
  return isDeepStrictEqual(actual, wanted);
};

/**
 * Create-or-update of manifests into one workspace. Not server-side apply: kcp's typed patch
 * of CustomResourceDefinitions fails ("field not declared in schema"). An object that already has
 * every value the manifest sets is left alone, so running it twice writes nothing. It reads
 * first: applying what already exists (the usual case) is one GET.
 */
export class Applier {
  readonly #endpoint: KcpEndpoint;
  readonly #discovery: Discovery;

  constructor(options: { endpoint: KcpEndpoint; discovery?: Discovery }) {
    this.#endpoint = options.endpoint;
    this.#discovery = options.discovery ?? new Discovery({ endpoint: options.endpoint });
  }

  async apply<T extends KubeObject>(workspace: string, obj: T, signal?: AbortSignal): Promise<{ object: T; changed: boolean }> {
    const baseUrl = this.#endpoint.workspaceUrl(workspace);
    const { apiVersion, kind } = kindOf(obj);
    const { gvr, namespaced } = await this.#discovery.mappingFor(baseUrl, apiVersion, kind);
    const client = new ResourceClient<T>({ endpoint: this.#endpoint, baseUrl, gvr });
    const desired = { ...obj, metadata: { ...obj.metadata, ...(namespaced ? { namespace: obj.metadata.namespace ?? 'default' } : {}) } };
    const target = { namespace: desired.metadata.namespace, name: desired.metadata.name ?? '' };
    let current = await client.find(target, signal);
    if (!current) {
      try {
        return { object: await client.create(desired, signal), changed: true };
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
      }
      current = await client.get(target, signal);
    }
    const fields = Object.keys(desired).filter((k) => !OWNED_BY_SERVER.has(k));
    const labels = { ...current.metadata.labels, ...desired.metadata.labels };
    const annotations = { ...current.metadata.annotations, ...desired.metadata.annotations };
    const same =
      fields.every((k) => containsSubset(current[k], desired[k])) &&
      isDeepStrictEqual(labels, current.metadata.labels ?? {}) &&
      isDeepStrictEqual(annotations, current.metadata.annotations ?? {});
    if (same) return { object: current, changed: false };
    const updated = await client.update(
      { ...current, ...Object.fromEntries(fields.map((k) => [k, desired[k]])), metadata: { ...current.metadata, labels, annotations } },
      signal,
    );
    return { object: updated, changed: true };
  }
}
