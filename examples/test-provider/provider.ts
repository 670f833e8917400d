import { parseArgs } from 'node:util';
import type { Informer } from '../../src/runtime/informer.ts';
import { InformerScope } from '../../src/runtime/informer-scope.ts';
import { decodeKey, encodeKey, objectKeyOf } from '../../src/runtime/object-key.ts';
import { WorkQueue, type ReconcileResult } from '../../src/runtime/workqueue.ts';
import { KcpEndpoint } from '../../src/kcp-client-ts/endpoint.ts';
import { isAlreadyExists, isNotFound } from '../../src/kcp-client-ts/errors.ts';
import { ResourceClient } from '../../src/kcp-client-ts/resources.ts';
import { VirtualWorkspace } from '../../src/kcp-client-ts/virtual-workspace.ts';
import type { APIExportEndpointSlice } from '../../src/kcp-client-ts/typed-client.ts';
import { CONFIGMAPS, SECRETS, type GroupVersionResource, type KubeObject } from '../../src/kcp-client-ts/types.ts';
import { createLogger, silentLogger, type Logger } from '../../src/logging.ts';

const SLICES: GroupVersionResource = { group: 'apis.kcp.io', version: 'v1alpha1', resource: 'apiexportendpointslices' };

export type TestProviderOptions = {
  endpoint: KcpEndpoint;
  /** The provider's workspace, holding its APIExport. */
  workspace: string;
  exportName: string;
  gvr: GroupVersionResource;
  /**
   * What goes into the published Secret, given what it holds now (undefined before the first
   * issue); by default the object's spec as JSON plus who issued it. Returning `current`
   * unchanged leaves the Secret alone.
   */
  secretData?: (obj: KubeObject, current: Record<string, string> | undefined) => Record<string, string> | Promise<Record<string, string>>;
  logger?: Logger;
  /**
   * More entries for `status.relatedResources` (tests of hostile or unusual providers): each may
   * name any namespace, and a Secret (default) or a ConfigMap; with `data`, the provider also
   * writes that object next to the object.
   */
  extraRelated?: (
    obj: KubeObject,
  ) => Array<{ key: string; namespace?: string; name: string; kind?: 'Secret' | 'ConfigMap'; data?: Record<string, string> }>;
  /** More status fields, written with `status: Available` (tests of providers that write too much). */
  extraStatus?: (obj: KubeObject) => Record<string, unknown>;
};

/**
 * A provider as the broker sees one: it serves its own APIExport, watches that export's virtual
 * workspace (the broker's staging workspaces bind it), marks each object Provisioning, writes a
 * Secret `<name>-credentials` next to it, then reports Available with the Secret in
 * `status.relatedResources.secret`. Spec changes re-issue the Secret.
 */
export class TestProvider {
  readonly #options: TestProviderOptions;
  readonly #controller = new AbortController();
  readonly #informers = new InformerScope({ name: 'provider', signal: this.#controller.signal });
  readonly #queue: WorkQueue;
  #virtualWorkspace: VirtualWorkspace | undefined;
  #objects: Informer<KubeObject> | undefined;
  /** Set to hold objects in Provisioning (tests of the consumer-visible gap). */
  holdProvisioning = false;

  constructor(options: TestProviderOptions) {
    this.#options = options;
    this.#queue = new WorkQueue({
      name: `provider-${options.workspace}`,
      reconcile: (key, signal) => this.#reconcile(key, signal),
      concurrency: 16,
      logger: options.logger ?? silentLogger(),
    });
  }

  get exportName(): string {
    return this.#options.exportName;
  }

  start(): void {
    const { endpoint, workspace, exportName } = this.#options;
    this.#informers
      .informer(
        new ResourceClient<APIExportEndpointSlice & KubeObject>({ endpoint, baseUrl: endpoint.workspaceUrl(workspace), gvr: SLICES }),
        { name: 'slices' },
      )
      .onEvent((e) => {
        if (e.object.metadata.name !== exportName) return;
        // Every shard's endpoint: a staging workspace may be on any shard.
        const vw = this.#watch();
        vw.update(e.type === 'deleted' ? [] : (e.object.status?.endpoints ?? []).map((ep) => ep.url));
      });
    this.#queue.start();
  }

  #watch(): VirtualWorkspace {
    if (this.#virtualWorkspace) return this.#virtualWorkspace;
    const { endpoint, gvr, exportName } = this.#options;
    const vw = new VirtualWorkspace(endpoint, exportName);
    this.#virtualWorkspace = vw;
    this.#objects = this.#informers.informer(vw.wildcard(gvr), { name: 'objects' });
    this.#objects.onEvent((e) => this.#queue.add(encodeKey(objectKeyOf(e.object))));
    return vw;
  }

  /** Objects this provider currently serves (all staging workspaces), for assertions. */
  objects(): KubeObject[] {
    return this.#objects?.store.list() ?? [];
  }

  /** Re-runs every object (after holdProvisioning is lifted). */
  resync(): void {
    for (const obj of this.objects()) this.#queue.add(encodeKey(objectKeyOf(obj)));
  }

  async stop(): Promise<void> {
    await this.#queue.shutdown();
    this.#controller.abort();
    await this.#informers.end();
  }

  async #reconcile(keyText: string, signal: AbortSignal): Promise<ReconcileResult> {
    try {
      return await this.#provision(keyText, signal);
    } catch (err) {
      if (isNotFound(err)) return; // deleted while we worked on it: its DELETED event already dropped it
      throw err;
    }
  }

  async #provision(keyText: string, signal: AbortSignal): Promise<ReconcileResult> {
    const key = decodeKey(keyText);
    const obj = this.#objects?.store.get(key);
    const vw = this.#virtualWorkspace;
    if (!obj || obj.metadata.deletionTimestamp || !vw) return;
    const { gvr } = this.#options;
    const objects = vw.client(key.cluster, gvr);
    const secrets = vw.client(key.cluster, SECRETS);
    const status = (obj['status'] ?? {}) as { status?: string; observedGeneration?: number };
    if (!status.status) {
      await objects.updateStatus({ ...obj, status: { status: 'Provisioning' } }, signal);
      return;
    }
    if (this.holdProvisioning) return;
    const namespace = obj.metadata.namespace || 'default';
    const secretName = `${obj.metadata.name}-credentials`;
    const existing = await secrets.find({ namespace, name: secretName }, signal);
    const current = existing
      ? Object.fromEntries(
          Object.entries((existing['data'] ?? {}) as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
        )
      : undefined;
    const data = (await this.#options.secretData?.(obj, current)) ?? { spec: JSON.stringify(obj['spec']), issuer: this.#options.workspace };
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: secretName, namespace }, stringData: data };
    if (!existing) {
      try {
        await secrets.create(secret, signal);
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
        return { requeueAfterMs: 100 };
      }
    } else if (JSON.stringify(current) !== JSON.stringify(data)) {
      await secrets.update({ ...secret, metadata: { ...secret.metadata, resourceVersion: existing.metadata.resourceVersion } }, signal);
    }
    const relatedResources: Record<string, { namespace: string; name: string; gvk: { group: string; version: string; kind: string } }> = {
      secret: { namespace, name: secretName, gvk: { group: '', version: 'v1', kind: 'Secret' } },
    };
    for (const extra of this.#options.extraRelated?.(obj) ?? []) {
      const at = { namespace: extra.namespace ?? namespace, name: extra.name };
      const kind = extra.kind ?? 'Secret';
      const client = kind === 'Secret' ? secrets : vw.client(key.cluster, CONFIGMAPS);
      if (extra.data && !(await client.find(at, signal))) {
        const payload = kind === 'Secret' ? { stringData: extra.data } : { data: extra.data };
        await client.createIfAbsent({ apiVersion: 'v1', kind, metadata: at, ...payload }, signal);
      }
      relatedResources[extra.key] = { ...at, gvk: { group: '', version: 'v1', kind } };
    }
    const desired = { ...this.#options.extraStatus?.(obj), status: 'Available', relatedResources };
    if (JSON.stringify(obj['status']) !== JSON.stringify(desired)) await objects.updateStatus({ ...obj, status: desired }, signal);
    return;
  }
}

/**
 * Run as a program, a provider for any API (README "Broker your own API"):
 *   node examples/test-provider/provider.ts --workspace root:storage --export buckets --resource buckets.v1alpha1.storage.example.org
 * It uses $KUBECONFIG; SIGTERM or Ctrl-C stops it.
 */
if (import.meta.main) {
  const { values } = parseArgs({
    options: { kubeconfig: { type: 'string' }, workspace: { type: 'string' }, export: { type: 'string' }, resource: { type: 'string' } },
  });
  const [resource, version, ...group] = (values.resource ?? '').split('.');
  if (!values.workspace || !values.export || !resource || !version) {
    console.error(
      'usage: provider.ts [--kubeconfig K] --workspace root:storage --export buckets --resource buckets.v1alpha1.storage.example.org',
    );
    process.exit(2);
  }
  const endpoint = await KcpEndpoint.fromKubeconfig({ path: values.kubeconfig });
  const provider = new TestProvider({
    endpoint,
    workspace: values.workspace,
    exportName: values.export,
    gvr: { group: group.join('.'), version, resource },
    logger: createLogger({ level: 'warn', name: values.workspace }),
  });
  provider.start();
  console.error(`serving ${values.resource} from ${values.workspace} (export ${values.export})`);
  const stop = (): void => void provider.stop().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
