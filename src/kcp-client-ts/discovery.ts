import type { KcpEndpoint } from './endpoint.ts';
import { isNotFound } from './errors.ts';
import type { GroupVersionResource, KubeObject } from './types.ts';

type APIResourceList = { resources: { name: string; kind: string; namespaced: boolean }[] };

/** The server does not serve this apiVersion, or it has no such kind. */
export class UnknownKindError extends Error {
  override name = 'UnknownKindError';
}

export type ResourceMapping = { gvr: GroupVersionResource; namespaced: boolean };

/** Maps apiVersion/kind to a resource by asking the server's discovery (per cluster base, cached). */
export class Discovery {
  readonly #endpoint: KcpEndpoint;
  readonly #cache = new Map<string, APIResourceList>();

  constructor(options: { endpoint: KcpEndpoint }) {
    this.#endpoint = options.endpoint;
  }

  async mappingFor(baseUrl: string, apiVersion: string, kind: string): Promise<ResourceMapping> {
    const [group, version] = apiVersion.includes('/') ? (apiVersion.split('/') as [string, string]) : ['', apiVersion];
    const path = group === '' ? `/api/${version}` : `/apis/${group}/${version}`;
    const cacheKey = `${baseUrl}${path}`;
    let list = this.#cache.get(cacheKey);
    if (!list?.resources.some((r) => r.kind === kind)) {
      try {
        list = await this.#endpoint.json<APIResourceList>({ method: 'GET', url: cacheKey });
      } catch (err) {
        if (isNotFound(err)) throw new UnknownKindError(`${baseUrl}: API ${apiVersion} is not served`, { cause: err });
        throw err;
      }
      this.#cache.set(cacheKey, list);
    }
    const resource = list.resources.find((r) => r.kind === kind && !r.name.includes('/'));
    if (!resource) throw new UnknownKindError(`${baseUrl}: ${apiVersion} has no kind ${kind}`);
    return { gvr: { group, version, resource: resource.name }, namespaced: resource.namespaced };
  }

  forget(): void {
    this.#cache.clear();
  }
}

export const kindOf = (obj: KubeObject): { apiVersion: string; kind: string } => {
  if (!obj.apiVersion || !obj.kind) throw new Error(`object ${obj.metadata.name ?? '?'} lacks apiVersion or kind`);
  return { apiVersion: obj.apiVersion, kind: obj.kind };
};
