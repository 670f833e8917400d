import { setTimeout as sleep } from 'node:timers/promises';
import type { KcpEndpoint } from './endpoint.ts';
import { isAlreadyExists, isNotFound } from './errors.ts';
import { createKcpClient, unwrap, type Workspace } from './typed-client.ts';
import type { GroupVersionResource, KubeObject } from './types.ts';

/** kcp Workspaces, as a parent workspace lists them (for ResourceClient and informers). */
export const WORKSPACES: GroupVersionResource = { group: 'tenancy.kcp.io', version: 'v1alpha1', resource: 'workspaces' };

/** A Workspace as a KubeObject. */
export type WorkspaceObject = Workspace & KubeObject;

export type ReadyWorkspace = {
  /** `root:a:b` */
  path: string;
  /** The logical cluster name (what virtual workspaces and `kcp.io/cluster` use). */
  cluster: string;
};

/** Which shards a workspace may be scheduled to: Shard labels (kcp labels each Shard `name: <shard>`). */
export type ShardSelector = { matchLabels: Record<string, string> };

export type EnsureWorkspaceOptions = {
  type?: { name: string; path?: string };
  labels?: Record<string, string>;
  /** Where it is scheduled (spec.location); kcp picks any shard without one. */
  location?: ShardSelector | undefined;
  timeoutMs?: number;
  signal?: AbortSignal;
};

/** Creating, reading and deleting kcp workspaces (tenancy.kcp.io/v1alpha1). */
export class Workspaces {
  readonly #endpoint: KcpEndpoint;

  constructor(options: { endpoint: KcpEndpoint }) {
    this.#endpoint = options.endpoint;
  }

  async get(parent: string, name: string, signal?: AbortSignal): Promise<Workspace | undefined> {
    const client = createKcpClient(this.#endpoint, this.#endpoint.workspaceUrl(parent));
    const result = await client.GET('/apis/tenancy.kcp.io/v1alpha1/workspaces/{name}', { params: { path: { name } }, signal });
    if (result.response.status === 404) return undefined;
    return unwrap(result);
  }

  /** Creates the workspace unless it exists, then waits until it is Ready. Idempotent. */
  async ensure(parent: string, name: string, options: EnsureWorkspaceOptions = {}): Promise<ReadyWorkspace> {
    await this.create(parent, name, options);
    return this.waitReady(parent, name, options);
  }

  /** Creates the workspace unless it exists; does not wait. */
  async create(parent: string, name: string, options: Omit<EnsureWorkspaceOptions, 'timeoutMs'> = {}): Promise<void> {
    const client = createKcpClient(this.#endpoint, this.#endpoint.workspaceUrl(parent));
    const body: Workspace = {
      apiVersion: 'tenancy.kcp.io/v1alpha1',
      kind: 'Workspace',
      metadata: { name, ...(options.labels ? { labels: options.labels } : {}) },
      spec: { ...(options.type ? { type: options.type } : {}), ...(options.location ? { location: { selector: options.location } } : {}) },
    };
    try {
      unwrap(await client.POST('/apis/tenancy.kcp.io/v1alpha1/workspaces', { body, signal: options.signal }));
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
  }

  /** Polls until the workspace reports phase Ready; a workspace is not watchable from its parent cheaply. */
  async waitReady(parent: string, name: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<ReadyWorkspace> {
    const deadline = Date.now() + (options.timeoutMs ?? 60_000);
    let delay = 50;
    let phase = 'absent';
    while (Date.now() < deadline) {
      const ws = await this.get(parent, name, options.signal);
      phase = ws?.status?.phase ?? 'absent';
      if (phase === 'Ready' && ws?.spec.cluster) return { path: `${parent}:${name}`, cluster: ws.spec.cluster };
      await sleep(delay, undefined, options.signal ? { signal: options.signal } : {});
      delay = Math.min(delay * 2, 1_000);
    }
    throw new Error(`workspace ${parent}:${name} not Ready within ${options.timeoutMs ?? 60_000} ms (phase ${phase})`);
  }

  /** Deletes the workspace; false when it was already gone. */
  async delete(parent: string, name: string, signal?: AbortSignal): Promise<boolean> {
    const client = createKcpClient(this.#endpoint, this.#endpoint.workspaceUrl(parent));
    try {
      unwrap(await client.DELETE('/apis/tenancy.kcp.io/v1alpha1/workspaces/{name}', { params: { path: { name } }, signal }));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }
}
