import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeWatchServer } from '../../test/harness/fake-watch-server.ts';
import { eventually } from '../../test/harness/eventually.ts';
import { KcpEndpoint } from '../kcp-client-ts/endpoint.ts';
import { ResourceClient } from '../kcp-client-ts/resources.ts';
import type { KubeObject } from '../kcp-client-ts/types.ts';
import { Informer, type InformerEvent } from './informer.ts';

const GVR = { group: 'example.test', version: 'v1', resource: 'widgets' };

describe('Informer against a list/watch server that fails on demand', () => {
  let server: FakeWatchServer;
  let endpoint: KcpEndpoint;
  let informer: Informer;
  let events: InformerEvent<KubeObject>[];
  let controller: AbortController;
  let running: Promise<void>;

  beforeEach(async () => {
    server = new FakeWatchServer();
    await server.start();
    server.upsert('a', { spec: { n: 1 } });
    server.upsert('b', { spec: { n: 1 } });
    endpoint = new KcpEndpoint({ serverOrigin: server.origin });
    const source = new ResourceClient({ endpoint, baseUrl: `${server.origin}/clusters/*`, gvr: GVR });
    informer = new Informer({ name: 'widgets', source, stallTimeoutMs: 300, backoff: { initialMs: 10, maxMs: 50 } });
    events = [];
    informer.onEvent((e) => events.push(e));
    controller = new AbortController();
    running = informer.run(controller.signal);
    await informer.waitForSync();
    await eventually(() => expect(server.openWatches).toBe(1));
    events.length = 0;
  });

  afterEach(async () => {
    controller.abort();
    await running;
    await endpoint.close();
    await server.stop();
  });

  /** The store equals the server, and each change produced exactly one event. */
  const expectConverged = async (expected: { type: string; name: string }[]): Promise<void> => {
    await eventually(() => {
      expect(
        informer.store
          .list()
          .map((o) => o.metadata.name)
          .sort(),
      ).toEqual(server.names());
      expect(events.map((e) => ({ type: e.type, name: e.object.metadata.name })).sort(byName)).toEqual([...expected].sort(byName));
    });
    for (const obj of informer.store.list()) expect(obj['spec']).toBeDefined();
  };

  it('streams changes as added/updated/deleted events keyed by cluster', async () => {
    server.upsert('c', { spec: { n: 1 } });
    server.upsert('a', { spec: { n: 2 } });
    server.delete('b');
    await expectConverged([
      { type: 'added', name: 'c' },
      { type: 'updated', name: 'a' },
      { type: 'deleted', name: 'b' },
    ]);
    expect(informer.store.get({ cluster: 'c1', namespace: 'default', name: 'a' })?.['spec']).toEqual({ n: 2 });
  });

  it('relists after 410 Gone and emits exactly the differences', async () => {
    server.stalled = true; // changes below reach no open watch
    server.upsert('c', { spec: { n: 1 } });
    server.upsert('a', { spec: { n: 2 } });
    server.delete('b');
    server.compact();
    server.stalled = false;
    const listsBefore = server.lists;
    server.dropWatches();
    await expectConverged([
      { type: 'added', name: 'c' },
      { type: 'updated', name: 'a' },
      { type: 'deleted', name: 'b' },
    ]);
    expect(server.lists).toBe(listsBefore + 1);
    expect(informer.stats.lists).toBe(2);
  });

  it('re-watches from its resourceVersion after a dropped connection, losing and repeating nothing', async () => {
    server.dropWatches();
    server.upsert('c', { spec: { n: 1 } });
    server.delete('a');
    await expectConverged([
      { type: 'added', name: 'c' },
      { type: 'deleted', name: 'a' },
    ]);
    expect(informer.stats.lists).toBe(1);
    expect(server.watches).toBeGreaterThanOrEqual(2);
  });

  it('detects a silent stall and reconnects', async () => {
    server.stalled = true;
    server.upsert('c', { spec: { n: 1 } });
    server.upsert('b', { spec: { n: 5 } });
    server.stalled = false;
    await expectConverged([
      { type: 'added', name: 'c' },
      { type: 'updated', name: 'b' },
    ]);
    expect(informer.stats.stalls).toBeGreaterThanOrEqual(1);
    expect(informer.stats.lists).toBe(1);
  });

  it('stops on abort without leaving a watch open', async () => {
    controller.abort();
    await running;
    await eventually(() => expect(server.openWatches).toBe(0));
  });
});

const byName = (x: { type: string; name?: string | undefined }, y: { type: string; name?: string | undefined }): number =>
  `${x.name}${x.type}`.localeCompare(`${y.name}${y.type}`);

describe('Informer with a transform', () => {
  it('keeps what the transform returns, from the list and from watch events, and emits it', async () => {
    const server = new FakeWatchServer();
    await server.start();
    server.upsert('a', { spec: { n: 1, big: 'x'.repeat(10_000) } });
    const endpoint = new KcpEndpoint({ serverOrigin: server.origin });
    const source = new ResourceClient({ endpoint, baseUrl: `${server.origin}/clusters/*`, gvr: GVR });
    const keepN = (obj: KubeObject): KubeObject => ({ metadata: obj.metadata, n: (obj['spec'] as { n: number }).n });
    const informer = new Informer({ name: 'widgets', source, transform: keepN, backoff: { initialMs: 10, maxMs: 50 } });
    const events: InformerEvent<KubeObject>[] = [];
    informer.onEvent((e) => events.push(e));
    const controller = new AbortController();
    const running = informer.run(controller.signal);
    try {
      await informer.waitForSync();
      server.upsert('b', { spec: { n: 2, big: 'y'.repeat(10_000) } });
      await eventually(() => expect(informer.store.list()).toHaveLength(2));
      for (const obj of informer.store.list()) {
        expect(obj['spec']).toBeUndefined();
        expect(obj['n']).toBeTypeOf('number');
      }
      expect(events.map((e) => e.object['n'])).toEqual([1, 2]);
    } finally {
      controller.abort();
      await running;
      await endpoint.close();
      await server.stop();
    }
  });
});

describe('Informer with keep', () => {
  it('stores and announces only kept objects; admits a read one without overwriting newer; forgets on request', async () => {
    const server = new FakeWatchServer();
    await server.start();
    server.upsert('a', { spec: { n: 1 } });
    server.upsert('b', { spec: { n: 1 } });
    const endpoint = new KcpEndpoint({ serverOrigin: server.origin });
    const source = new ResourceClient({ endpoint, baseUrl: `${server.origin}/clusters/*`, gvr: GVR });
    const kept = new Set(['a']);
    const informer = new Informer({
      name: 'widgets',
      source,
      keep: (o) => kept.has(o.metadata.name ?? ''),
      stallTimeoutMs: 300,
      backoff: { initialMs: 10, maxMs: 50 },
    });
    const events: string[] = [];
    informer.onEvent((e) => events.push(`${e.type} ${e.object.metadata.name} ${(e.object['spec'] as { n: number }).n}`));
    const controller = new AbortController();
    const running = informer.run(controller.signal);
    // Short waits: a failure shows the difference instead of the test's timeout.
    const soon = (check: () => void): Promise<void> => eventually(check, { timeoutMs: 5_000 });
    const names = (): string[] =>
      informer.store
        .list()
        .map((o) => `${o.metadata.name} ${(o['spec'] as { n: number }).n}`)
        .sort();
    const read = (name: string, n: number, resourceVersion: string): KubeObject => ({
      metadata: { name, namespace: 'default', resourceVersion, annotations: { 'kcp.io/cluster': 'c1' } },
      spec: { n },
    });
    try {
      await informer.waitForSync();
      expect(names()).toEqual(['a 1']);
      server.upsert('c', { spec: { n: 1 } }); // not kept: seen and forgotten
      server.upsert('a', { spec: { n: 2 } });
      await soon(() => expect(names()).toEqual(['a 2']));
      // c becomes kept (a copy names it): read with a GET and admitted, silently.
      kept.add('c');
      let mark = informer.admissionMark();
      expect(informer.admit(read('c', 1, '1'), mark)).toBe(true);
      expect(names()).toEqual(['a 2', 'c 1']);
      // An older read of a does not replace what the stream brought.
      expect(informer.admit(read('a', 1, '1'), informer.admissionMark())).toBe(false);
      expect(names()).toEqual(['a 2', 'c 1']);
      server.upsert('c', { spec: { n: 2 } });
      await soon(() => expect(names()).toEqual(['a 2', 'c 2']));
      // An admitted object deleted before any event of it: the deletion takes it out.
      server.upsert('d', { spec: { n: 1 } });
      server.upsert('a', { spec: { n: 3 } }); // after d in the stream: seen once a is
      await soon(() => expect(names()).toEqual(['a 3', 'c 2']));
      kept.add('d');
      expect(informer.admit(read('d', 1, '1'), informer.admissionMark())).toBe(true);
      server.delete('d');
      await soon(() => expect(names()).toEqual(['a 3', 'c 2']));
      // A read that began before the object's deletion came through is refused: it would bring back a deleted object.
      server.upsert('e', { spec: { n: 1 } });
      kept.add('e');
      await soon(() => expect(names()).toEqual(['a 3', 'c 2', 'e 1']));
      kept.delete('e');
      informer.forget({ cluster: 'c1', namespace: 'default', name: 'e' });
      kept.add('e');
      mark = informer.admissionMark();
      server.delete('e');
      server.upsert('a', { spec: { n: 4 } });
      await soon(() => expect(names()).toEqual(['a 4', 'c 2']));
      expect(informer.admit(read('e', 1, '1'), mark)).toBe(false);
      // A read that began before the key was forgotten (and changed unseen) is refused too.
      mark = informer.admissionMark();
      kept.delete('c');
      informer.forget({ cluster: 'c1', namespace: 'default', name: 'c' });
      kept.add('c');
      expect(informer.admit(read('c', 2, '1'), mark)).toBe(false);
      // A read of a kept object that changed and was deleted meanwhile is refused as well.
      mark = informer.admissionMark();
      server.upsert('a', { spec: { n: 5 } });
      server.delete('a');
      await soon(() => expect(names()).toEqual([]));
      expect(informer.admit(read('a', 4, '1'), mark)).toBe(false);
      server.upsert('a', { spec: { n: 5 } });
      await soon(() => expect(names()).toEqual(['a 5']));
      // After a watch gap (410, relist), reads begun before it are refused, and an admitted object
      // the list does not have (deleted during the gap) goes.
      kept.add('f');
      expect(informer.admit(read('f', 1, '1'), informer.admissionMark())).toBe(true);
      mark = informer.admissionMark();
      server.stalled = true;
      server.upsert('g', { spec: { n: 1 } });
      server.compact();
      server.stalled = false;
      server.dropWatches();
      await soon(() => expect(informer.stats.lists).toBe(2));
      await soon(() => expect(names()).toEqual(['a 5', 'c 2'])); // c is kept again, and listed
      kept.add('g');
      expect(informer.admit(read('g', 1, '1'), mark)).toBe(false);
      // c no longer kept: forgotten, and its later changes are not seen.
      kept.delete('c');
      informer.forget({ cluster: 'c1', namespace: 'default', name: 'c' });
      server.upsert('c', { spec: { n: 3 } });
      server.upsert('a', { spec: { n: 6 } });
      await soon(() => expect(names()).toEqual(['a 6']));
      expect(events).toEqual([
        'added a 1',
        'updated a 2',
        'updated c 2',
        'updated a 3',
        'deleted d 1',
        'added e 1',
        'updated a 4',
        'updated a 5',
        'deleted a 5',
        'added a 5',
        'added c 2',
        'updated a 6',
      ]);
    } finally {
      controller.abort();
      await running;
      await endpoint.close();
      await server.stop();
    }
  });
});

describe('Informer.waitForSync', () => {
  it('leaves no listener on the signal it was given once the list arrived (it would hold the signal until it aborts)', async () => {
    const server = new FakeWatchServer();
    await server.start();
    const endpoint = new KcpEndpoint({ serverOrigin: server.origin });
    const informer = new Informer({
      name: 'widgets',
      source: new ResourceClient({ endpoint, baseUrl: `${server.origin}/clusters/*`, gvr: GVR }),
    });
    const reconcile = new AbortController();
    const synced = informer.waitForSync(reconcile.signal);
    expect(getEventListeners(reconcile.signal, 'abort')).toHaveLength(1);
    const stop = new AbortController();
    const running = informer.run(stop.signal);
    await synced;
    expect(getEventListeners(reconcile.signal, 'abort')).toHaveLength(0);
    stop.abort();
    await running;
    await endpoint.close();
    await server.stop();
  });
});

describe("Informer's store copy", () => {
  it('drops managedFields and keeps the rest of metadata, in order', async () => {
    const endpoint = new KcpEndpoint({ serverOrigin: 'https://127.0.0.1:1' });
    const informer = new Informer({
      name: 'widgets',
      source: new ResourceClient({ endpoint, baseUrl: 'https://127.0.0.1:1/clusters/*', gvr: GVR }),
    });
    const metadata = {
      name: 'a',
      namespace: 'default',
      uid: 'u1',
      resourceVersion: '7',
      labels: { team: 'x' },
      managedFields: [{ manager: 'kubectl', operation: 'Update' }],
      finalizers: ['f'],
    };
    const kept = informer.transform({ apiVersion: 'v1', kind: 'Widget', metadata: { ...metadata }, spec: { n: 1 } });
    expect(Object.keys(kept.metadata)).toEqual(['name', 'namespace', 'uid', 'resourceVersion', 'labels', 'finalizers']);
    const { managedFields: _, ...rest } = metadata;
    expect(kept).toEqual({ apiVersion: 'v1', kind: 'Widget', metadata: rest, spec: { n: 1 } });
    await endpoint.close();
  });
});
