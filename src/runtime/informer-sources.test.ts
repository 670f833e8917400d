import { describe, expect, it } from 'vitest';
import { ApiError } from '../kcp-client-ts/errors.ts';
import type { ListOptions, WatchOptions } from '../kcp-client-ts/resources.ts';
import type { KubeList, KubeObject, WatchEvent } from '../kcp-client-ts/types.ts';
import { Informer, type ListerWatcher, type SourceSet } from './informer.ts';

const object = (cluster: string, name: string, resourceVersion = '5'): KubeObject => ({
  metadata: { name, namespace: 'default', resourceVersion, annotations: { 'kcp.io/cluster': cluster } },
});

/** One shard: lists what it holds; its watch sends what the test pushes, until aborted. */
class FakeShard implements ListerWatcher<KubeObject> {
  items: KubeObject[];
  lists = 0;
  #push: ((e: WatchEvent<KubeObject> | 'gone') => void) | undefined;
  readonly #pending: (WatchEvent<KubeObject> | 'gone')[] = [];

  constructor(items: KubeObject[]) {
    this.items = items;
  }

  async list(_options?: ListOptions): Promise<KubeList<KubeObject>> {
    this.lists++;
    return { metadata: { resourceVersion: '5' }, items: [...this.items] };
  }

  watch(options: WatchOptions): AsyncGenerator<WatchEvent<KubeObject>> {
    const pending = this.#pending;
    const self = this;
    return (async function* () {
      while (!options.signal.aborted) {
        const next = pending.shift();
        if (next === 'gone') throw new ApiError({ status: 410, reason: 'Expired', message: 'too old', method: 'WATCH', url: 'fake' });
        if (next) {
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => {
          self.#push = (e) => {
            pending.push(e);
            resolve();
          };
          options.signal.addEventListener('abort', () => resolve(), { once: true });
        });
      }
    })();
  }

  /** A watch event, or `gone`: the watch fails with 410 (the informer relists this shard). */
  send(event: WatchEvent<KubeObject> | 'gone'): void {
    if (this.#push) this.#push(event);
    else this.#pending.push(event);
  }
}

/** A set of shards the test changes, as a slice's endpoints change. */
class Shards implements SourceSet<KubeObject> {
  readonly id = 'test';
  readonly #shards = new Map<string, FakeShard>();
  readonly #listeners = new Set<() => void>();

  set(url: string, shard: FakeShard | undefined): void {
    if (shard) this.#shards.set(url, shard);
    else this.#shards.delete(url);
    for (const l of this.#listeners) l();
  }

  current(): ReadonlyMap<string, ListerWatcher<KubeObject>> {
    return new Map(this.#shards);
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

const names = (informer: Informer<KubeObject>): string[] =>
  informer.store
    .list()
    .map((o) => `${o.metadata.annotations?.['kcp.io/cluster']}/${o.metadata.name}`)
    .sort();

describe('an informer over a changing set of sources (the shards of a virtual workspace)', () => {
  it('is synced at once with no source, and serves what each shard holds as shards come and go', async () => {
    const shards = new Shards();
    const informer = new Informer<KubeObject>({ name: 't', source: shards, backoff: { initialMs: 1, maxMs: 1 } });
    const seen: string[] = [];
    informer.onEvent((e) => seen.push(`${e.type} ${e.object.metadata.name}`));
    const controller = new AbortController();
    const running = informer.run(controller.signal);
    await informer.waitForSync();
    expect(informer.synced).toBe(true);
    expect(names(informer)).toEqual([]);

    const a = new FakeShard([object('c1', 'x')]);
    const b = new FakeShard([object('c2', 'y')]);
    shards.set('https://shard-a', a);
    shards.set('https://shard-b', b);
    await expect.poll(() => names(informer)).toEqual(['c1/x', 'c2/y']);

    // A watch event on one shard touches only its objects.
    b.send({ type: 'ADDED', object: object('c3', 'z', '6') });
    await expect.poll(() => names(informer)).toEqual(['c1/x', 'c2/y', 'c3/z']);

    // A shard leaving the slice takes its objects with it, and only those.
    shards.set('https://shard-b', undefined);
    await expect.poll(() => names(informer)).toEqual(['c1/x']);
    expect(seen.sort()).toEqual(['added x', 'added y', 'added z', 'deleted y', 'deleted z']);
    controller.abort();
    await running;
  });

  it('a relist of one shard (410 Gone) does not drop what another shard holds', async () => {
    const shards = new Shards();
    const a = new FakeShard([object('c1', 'x')]);
    const b = new FakeShard([object('c2', 'y')]);
    shards.set('https://shard-a', a);
    shards.set('https://shard-b', b);
    const informer = new Informer<KubeObject>({ name: 't', source: shards, backoff: { initialMs: 1, maxMs: 1 } });
    const controller = new AbortController();
    const running = informer.run(controller.signal);
    await informer.waitForSync();
    expect(names(informer)).toEqual(['c1/x', 'c2/y']);
    a.items = [object('c1', 'w')];
    a.send('gone');
    await expect.poll(() => names(informer)).toEqual(['c1/w', 'c2/y']);
    expect(a.lists).toBe(2);
    expect(b.lists).toBe(1);
    controller.abort();
    await running;
  });

  it('is not synced until every shard present has listed', async () => {
    const shards = new Shards();
    let release: () => void = () => undefined;
    const slow = new FakeShard([object('c2', 'y')]);
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const list = slow.list.bind(slow);
    slow.list = async (o) => {
      await gate;
      return list(o);
    };
    shards.set('https://shard-a', new FakeShard([object('c1', 'x')]));
    shards.set('https://shard-b', slow);
    const informer = new Informer<KubeObject>({ name: 't', source: shards, backoff: { initialMs: 1, maxMs: 1 } });
    const controller = new AbortController();
    const running = informer.run(controller.signal);
    await expect.poll(() => names(informer)).toEqual(['c1/x']);
    expect(informer.synced).toBe(false);
    release();
    await informer.waitForSync();
    expect(names(informer)).toEqual(['c1/x', 'c2/y']);
    controller.abort();
    await running;
  });
});

describe('synced, as shards join', () => {
  it('is not synced again while a shard that joined has not listed (a half-filled cache must not say "absent")', async () => {
    const shards = new Shards();
    shards.set('https://shard-a', new FakeShard([object('c1', 'x')]));
    const informer = new Informer<KubeObject>({ name: 't', source: shards, backoff: { initialMs: 1, maxMs: 1 } });
    const controller = new AbortController();
    const running = informer.run(controller.signal);
    await informer.waitForSync();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const late = new FakeShard([object('c2', 'y')]);
    const list = late.list.bind(late);
    late.list = async (o) => {
      await gate;
      return list(o);
    };
    shards.set('https://shard-b', late);
    expect(informer.synced).toBe(false);
    const synced = informer.waitForSync();
    release();
    await synced;
    expect(names(informer)).toEqual(['c1/x', 'c2/y']);
    controller.abort();
    await running;
  });
});
