import { Discovery, kindOf } from './discovery.ts';
import type { KcpEndpoint } from './endpoint.ts';
import { resourcePath, withQuery } from './paths.ts';
import type { KubeObject } from './types.ts';

/** Server-side apply of manifests into one workspace, by a named field manager. Idempotent. */
export class Applier {
  readonly #endpoint: KcpEndpoint;
  readonly #discovery: Discovery;
  readonly #fieldManager: string;

  constructor(options: { endpoint: KcpEndpoint; fieldManager: string; discovery?: Discovery }) {
    this.#endpoint = options.endpoint;
    this.#fieldManager = options.fieldManager;
    this.#discovery = options.discovery ?? new Discovery({ endpoint: options.endpoint });
  }

  async apply<T extends KubeObject>(workspace: string, obj: T, signal?: AbortSignal): Promise<T> {
    const baseUrl = this.#endpoint.workspaceUrl(workspace);
    const { apiVersion, kind } = kindOf(obj);
    const { gvr, namespaced } = await this.#discovery.mappingFor(baseUrl, apiVersion, kind);
    const path = resourcePath(gvr, { namespace: namespaced ? (obj.metadata.namespace ?? 'default') : undefined, name: obj.metadata.name });
    return this.#endpoint.json<T>({
      method: 'PATCH',
      url: withQuery(`${baseUrl}${path}`, { fieldManager: this.#fieldManager, force: true }),
      body: obj,
      contentType: 'application/apply-patch+yaml',
      signal,
    });
  }

  /** Forgets discovery answers: after a CRD or binding adds resources. */
  refresh(): void {
    this.#discovery.forget();
  }
}
