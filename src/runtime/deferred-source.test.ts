import { describe, expect, it } from 'vitest';
import type { ResourceClient } from '../kcp-client-ts/resources.ts';
import type { KubeObject } from '../kcp-client-ts/types.ts';
import { DeferredSource } from './deferred-source.ts';
import { Informer } from './informer.ts';

const object = (name: string): KubeObject => ({
  metadata: { name, namespace: '', resourceVersion: '5', annotations: { 'kcp.io/cluster': 'c1' } },
});

describe('DeferredSource', () => {
  it('syncs empty at once, then relists from the real source once it is known and keeps its objects', async () => {
    const source = new DeferredSource<KubeObject>('acceptapis');
    const informer = new Informer<KubeObject>({ name: 't', source, backoff: { initialMs: 1, maxMs: 1 } });
    const controller = new AbortController();
    const running = informer.run(controller.signal);
    await informer.waitForSync();
    expect(informer.store.list()).toEqual([]);

    const seen: string[] = [];
    informer.onEvent((e) => seen.push(`${e.type} ${e.object.metadata.name}`));
    const real = {
      list: async () => ({ metadata: { resourceVersion: '5' }, items: [object('a')] }),
      watch: (options: { signal: AbortSignal }) =>
        (async function* () {
          await new Promise<void>((resolve) => options.signal.addEventListener('abort', () => resolve(), { once: true }));
        })(),
    } as unknown as ResourceClient<KubeObject>;
    source.resolve(real);
    await expect.poll(() => informer.store.list().map((o) => o.metadata.name)).toEqual(['a']);
    expect(seen).toEqual(['added a']);
    controller.abort();
    await running;
  });
});
