import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Informer } from '../../src/runtime/informer.ts';
import { KcpEndpoint } from '../../src/kcp-client-ts/endpoint.ts';
import { isGone } from '../../src/kcp-client-ts/errors.ts';
import { ResourceClient } from '../../src/kcp-client-ts/resources.ts';
import { CONFIGMAPS, type KubeObject } from '../../src/kcp-client-ts/types.ts';
import { Workspaces } from '../../src/kcp-client-ts/workspaces.ts';
import { LocalKcp } from '../../hack/kcp/local-kcp.ts';
import { eventually } from '../harness/eventually.ts';
import { kcpEnv, uniqueName } from '../harness/kcp-env.ts';
import { LoopbackProxy } from '../harness/loopback-proxy.ts';

const LABEL = 'test=watch-faults';

/**
 * The Informer on ConfigMaps of one real kcp workspace, reaching kcp through a LoopbackProxy
 * that drops, stalls or refuses connections; a direct client makes the changes and reads the
 * truth. What a user of the cache observes: its final state equals the server's, and each
 * change shows up as exactly one event.
 */
class RelayedWatch {
  readonly proxy: LoopbackProxy;
  readonly direct: ResourceClient;
  readonly informer: Informer;
  readonly seen: string[] = [];
  readonly #relayed: KcpEndpoint;
  readonly #direct: KcpEndpoint;
  readonly #relayedKubeconfig: string;
  readonly #controller = new AbortController();
  #running: Promise<void> = Promise.resolve();

  private constructor(options: {
    proxy: LoopbackProxy;
    direct: KcpEndpoint;
    relayed: KcpEndpoint;
    workspace: string;
    relayedKubeconfig: string;
    stallTimeoutMs: number;
  }) {
    this.proxy = options.proxy;
    this.#direct = options.direct;
    this.#relayed = options.relayed;
    this.#relayedKubeconfig = options.relayedKubeconfig;
    this.direct = new ResourceClient({
      endpoint: options.direct,
      baseUrl: options.direct.workspaceUrl(options.workspace),
      gvr: CONFIGMAPS,
    });
    this.informer = new Informer({
      name: 'configmaps through the relay',
      source: new ResourceClient({ endpoint: options.relayed, baseUrl: options.relayed.workspaceUrl(options.workspace), gvr: CONFIGMAPS }),
      labelSelector: LABEL,
      stallTimeoutMs: options.stallTimeoutMs,
      backoff: { initialMs: 50, maxMs: 500 },
    });
    this.informer.onEvent((e) => this.seen.push(`${e.type} ${e.object.metadata.name}`));
  }

  /**
   * A relay in front of the kcp that `kubeconfig` names, and a synced informer through it, over
   * HTTP/2 (as the broker runs) or HTTP/1.1 (a socket per watch).
   */
  static async start(
    kubeconfig: string,
    workspace: string,
    options: { http: '1.1' | '2'; stallTimeoutMs: number; pingIntervalMs?: number },
  ): Promise<RelayedWatch> {
    const direct = await KcpEndpoint.fromKubeconfig({ path: kubeconfig });
    const proxy = new LoopbackProxy({ targetPort: Number(new URL(direct.serverOrigin).port) });
    await proxy.start();
    const relayedKubeconfig = join(tmpdir(), `${uniqueName('relay')}.kubeconfig`);
    await writeFile(relayedKubeconfig, (await readFile(kubeconfig, 'utf8')).replaceAll(direct.serverOrigin, proxy.origin));
    const relayed = await KcpEndpoint.fromKubeconfig({
      path: relayedKubeconfig,
      allowH2: options.http === '2',
      ...(options.pingIntervalMs !== undefined ? { pingIntervalMs: options.pingIntervalMs } : {}),
    });
    expect(relayed.serverOrigin).toBe(proxy.origin);
    const watch = new RelayedWatch({ proxy, direct, relayed, workspace, relayedKubeconfig, stallTimeoutMs: options.stallTimeoutMs });
    watch.#running = watch.informer.run(watch.#controller.signal);
    await watch.informer.waitForSync();
    return watch;
  }

  async create(name: string): Promise<void> {
    await this.direct.create({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace: 'default', labels: { test: 'watch-faults' } },
      data: { n: '0' },
    });
  }

  async bump(name: string): Promise<void> {
    const current = await this.direct.get({ namespace: 'default', name });
    const n = Number((current['data'] as { n: string }).n) + 1;
    await this.direct.update({ ...current, data: { n: String(n) } });
  }

  async remove(name: string): Promise<void> {
    await this.direct.delete({ namespace: 'default', name });
  }

  /** Waits until the cache holds exactly what kcp holds (names and resourceVersions). */
  async converged(): Promise<void> {
    const summary = (items: KubeObject[]): string[] => items.map((o) => `${o.metadata.name}@${o.metadata.resourceVersion}`).sort();
    await eventually(
      async () => expect(summary(this.informer.store.list())).toEqual(summary((await this.direct.list({ labelSelector: LABEL })).items)),
      { timeoutMs: 30_000 },
    );
  }

  /** True once kcp answers a watch from `resourceVersion` with 410 (compacted away). */
  async expired(resourceVersion: string): Promise<boolean> {
    const probe = new AbortController();
    try {
      for await (const _event of this.direct.watch({ resourceVersion, timeoutSeconds: 1, stallTimeoutMs: 5_000, signal: probe.signal }))
        break;
      return false;
    } catch (err) {
      if (isGone(err)) return true;
      throw err;
    } finally {
      probe.abort();
    }
  }

  async stop(): Promise<void> {
    this.#controller.abort();
    await this.#running;
    await this.proxy.stop();
    await Promise.all([this.#relayed.close(), this.#direct.close()]);
    await rm(this.#relayedKubeconfig, { force: true });
  }
}

describe('the watch layer on a real kcp, through a loopback relay that drops and stalls connections', () => {
  /** HTTP/2 as the broker runs it; its own stall timer far away, PINGs every second. */
  let overH2: RelayedWatch;
  /** HTTP/1.1, a socket per watch: only the informer's stall timer can notice a stall. */
  let overH1: RelayedWatch;

  beforeAll(async () => {
    const { endpoint, workspaces, kubeconfig } = await kcpEnv();
    const workspace = await workspaces.ensure('root', uniqueName('watch-faults'));
    await endpoint.close();
    overH2 = await RelayedWatch.start(kubeconfig, workspace.path, { http: '2', stallTimeoutMs: 120_000, pingIntervalMs: 1_000 });
    overH1 = await RelayedWatch.start(kubeconfig, workspace.path, { http: '1.1', stallTimeoutMs: 2_000 });
  });

  afterAll(async () => {
    await Promise.all([overH2?.stop(), overH1?.stop()]);
  });

  it('re-watches from its resourceVersion after every connection is dropped: no change lost or repeated, no relist', async () => {
    const watch = overH2;
    await watch.create('a');
    await watch.create('b');
    await watch.converged();
    watch.seen.length = 0;
    const { lists, watchRestarts } = watch.informer.stats;
    expect(watch.proxy.openConnections).toBeGreaterThan(0);

    watch.proxy.dropConnections();
    await watch.bump('a');
    await watch.remove('b');
    await watch.create('c');

    await watch.converged();
    expect(watch.seen.sort()).toEqual(['added c', 'deleted b', 'updated a']);
    expect(watch.informer.stats.watchRestarts).toBeGreaterThan(watchRestarts);
    expect(watch.informer.stats.lists).toBe(lists);
  });

  it('HTTP/1.1: notices a watch that silently stops delivering, reopens it, and catches up exactly', async () => {
    const watch = overH1;
    await watch.create('h1');
    await watch.converged();
    watch.seen.length = 0;
    const { stalls, lists } = watch.informer.stats;

    watch.proxy.stallConnections();
    await watch.bump('h1');
    await watch.bump('h1');
    await watch.create('h1-new');

    await watch.converged();
    expect(watch.informer.stats.stalls).toBeGreaterThan(stalls);
    expect(watch.informer.stats.lists).toBe(lists);
    expect(watch.seen.sort()).toEqual(['added h1-new', 'updated h1', 'updated h1']);
  });

  it('HTTP/2: an unanswered PING drops the shared connection that went silent; the watch catches up long before its own stall timer', async () => {
    const watch = overH2;
    await watch.create('h2');
    await watch.converged();
    watch.seen.length = 0;
    const { stalls, lists } = watch.informer.stats;

    watch.proxy.stallConnections();
    await watch.bump('h2');
    await watch.create('h2-new');

    await watch.converged(); // 30 s at most; the informer's stall timer is 120 s
    expect(watch.informer.stats.stalls).toBe(stalls);
    expect(watch.informer.stats.lists).toBe(lists);
    expect(watch.seen.sort()).toEqual(['added h2-new', 'updated h2']);
  });
});

describe('the watch layer on a real kcp whose resourceVersions expire (no watch cache, compaction every second)', () => {
  let kcp: LocalKcp;
  let watch: RelayedWatch;

  beforeAll(async () => {
    kcp = new LocalKcp({ extraArgs: ['--watch-cache=false', '--etcd-compaction-interval=1s'] });
    await kcp.start();
    const endpoint = await KcpEndpoint.fromKubeconfig({ path: kcp.kubeconfig });
    const workspace = await new Workspaces({ endpoint }).ensure('root', 'expiring');
    await endpoint.close();
    watch = await RelayedWatch.start(kcp.kubeconfig, workspace.path, { http: '2', stallTimeoutMs: 2_000 });
  });

  afterAll(async () => {
    await watch?.stop();
    await kcp?.stop();
  });

  it('relists after kcp answers 410 to its old resourceVersion, and emits exactly the differences', async () => {
    for (const name of ['a', 'b', 'c']) await watch.create(name);
    await watch.converged();
    watch.seen.length = 0;
    const { lists } = watch.informer.stats;

    // Cut the informer off while its resourceVersion is compacted away: it holds no revision
    // newer than the one kcp reports now, so once that one expires, the informer's has too.
    watch.proxy.refuse = true;
    watch.proxy.dropConnections();
    const held = (await watch.direct.list({ labelSelector: LABEL })).metadata.resourceVersion ?? '';
    await watch.bump('a');
    await watch.remove('b');
    await watch.create('d');
    await eventually(async () => expect(await watch.expired(held)).toBe(true), { timeoutMs: 30_000 });
    watch.proxy.refuse = false;

    await watch.converged();
    expect(watch.informer.stats.lists).toBe(lists + 1);
    expect(watch.seen.sort()).toEqual(['added d', 'deleted b', 'updated a']);
  });
});
