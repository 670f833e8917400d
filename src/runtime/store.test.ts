import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../kcp-client-ts/types.ts';
import { ObjectStore } from './store.ts';

const object = (name: string, owner: string): KubeObject =>
  ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace: 'default', annotations: { 'kcp.io/cluster': 'c1', owner } },
  }) satisfies KubeObject;

const names = (objects: KubeObject[]): string[] => objects.map((o) => o.metadata.name ?? '').sort();

describe('ObjectStore indexes', () => {
  it('answers by index value through one, several, fewer and no objects, and follows updates', () => {
    const store = new ObjectStore();
    store.addIndex('owner', (o) => [o.metadata.annotations?.['owner'] ?? '']);
    store.upsert(object('a', 'x'));
    expect(names(store.byIndex('owner', 'x'))).toEqual(['a']);
    store.upsert(object('b', 'x'));
    store.upsert(object('c', 'x'));
    expect(names(store.byIndex('owner', 'x'))).toEqual(['a', 'b', 'c']);
    store.remove(object('b', 'x'));
    store.remove(object('c', 'x'));
    expect(names(store.byIndex('owner', 'x'))).toEqual(['a']);
    store.upsert(object('d', 'x'));
    expect(names(store.byIndex('owner', 'x'))).toEqual(['a', 'd']);
    // An update that changes the value moves the object.
    store.upsert(object('a', 'y'));
    expect(names(store.byIndex('owner', 'x'))).toEqual(['d']);
    expect(names(store.byIndex('owner', 'y'))).toEqual(['a']);
    // The same object stored again, and an index function naming a value twice.
    store.upsert(object('a', 'y'));
    expect(names(store.byIndex('owner', 'y'))).toEqual(['a']);
    store.remove(object('a', 'y'));
    store.remove(object('d', 'x'));
    expect(store.byIndex('owner', 'x')).toEqual([]);
    expect(store.byIndex('owner', 'y')).toEqual([]);
  });

  it('moves a lone key with its object when its value changes', () => {
    const store = new ObjectStore();
    store.addIndex('owner', (o) => [o.metadata.annotations?.['owner'] ?? '']);
    store.upsert(object('a', 'x'));
    store.upsert(object('a', 'y'));
    expect(store.byIndex('owner', 'x')).toEqual([]);
    expect(names(store.byIndex('owner', 'y'))).toEqual(['a']);
  });

  it('indexes objects stored before the index was added, and an object under several values', () => {
    const store = new ObjectStore();
    store.upsert(object('a', 'x'));
    store.addIndex('both', (o) => [o.metadata.name ?? '', 'all', 'all']);
    store.upsert(object('b', 'x'));
    expect(names(store.byIndex('both', 'all'))).toEqual(['a', 'b']);
    expect(names(store.byIndex('both', 'a'))).toEqual(['a']);
    store.remove(object('a', 'x'));
    expect(names(store.byIndex('both', 'all'))).toEqual(['b']);
    expect(store.byIndex('both', 'a')).toEqual([]);
  });
});

describe('ObjectStore tallies', () => {
  it('counts objects per value through adds, moves, the same object again, removals and uncounted objects', () => {
    const store = new ObjectStore();
    store.upsert(object('before', 'x'));
    const owner = (o: KubeObject): string | undefined => o.metadata.annotations?.['owner'] || undefined;
    store.addTally('owner', owner);
    store.addTally('owner', owner); // the same again: kept once
    expect(() => store.addTally('owner', () => 'other')).toThrow('tally owner is kept already, by another function');
    expect(Object.fromEntries(store.tally('owner'))).toEqual({ x: 1 }); // objects stored before it are counted
    store.upsert(object('a', 'x'));
    store.upsert(object('b', 'y'));
    store.upsert(object('b', 'y'));
    store.upsert(object('c', ''));
    expect(Object.fromEntries(store.tally('owner'))).toEqual({ x: 2, y: 1 });
    store.upsert(object('a', 'y'));
    expect(Object.fromEntries(store.tally('owner'))).toEqual({ x: 1, y: 2 });
    store.remove(object('before', 'x'));
    store.remove(object('gone', 'y')); // never stored: nothing changes
    expect(Object.fromEntries(store.tally('owner'))).toEqual({ y: 2 });
    store.remove(object('a', 'y'));
    store.remove(object('b', 'y'));
    store.remove(object('c', ''));
    expect(store.tally('owner').size).toBe(0);
    expect(store.tally('unknown').size).toBe(0);
  });
});
