import { describe, expect, it } from 'vitest';
import { COORD, SyncWorld, WIDGETS } from '../../../test/fakes/sync-world.ts';
import type { Assignment, Migration } from '../../apis/types.ts';
import { CLUSTER_ANNOTATION } from '../../kcp-client-ts/types.ts';
import { encodeKey, type ObjectKey } from '../../runtime/object-key.ts';
import { ObjectStore } from '../../runtime/store.ts';
import { PlacementLoad } from './load.ts';
import { placeObject } from './placement.ts';

const signal = new AbortController().signal;

/** A world with two equal providers whose AcceptAPI objects the Placer sees. */
const twoProviders = (): SyncWorld => {
  const world = new SyncWorld();
  world.acceptAPI('provider-a', 'widgets-a', 'export-a');
  world.acceptAPI('provider-b', 'widgets-b', 'export-b');
  return world;
};

const providersOf = (assignments: Assignment[]): Record<string, number> => {
  const counts: Record<string, number> = {};
  for (const a of assignments) counts[a.spec.providerCluster] = (counts[a.spec.providerCluster] ?? 0) + 1;
  return counts;
};

describe('PlacementLoad', () => {
  it('spreads a burst over equal providers while the cache shows none of its Assignments', async () => {
    const world = twoProviders();
    // Objects the stable hash alone sends to provider-a: only the in-flight count can spread them.
    const keys: ObjectKey[] = [];
    for (let i = 0; keys.length < 10; i++) {
      const key = { cluster: 'consumer-1', namespace: 'default', name: `w-${i}` };
      const alone = placeObject({
        gvr: WIDGETS,
        spec: {},
        objectId: encodeKey(key),
        acceptAPIs: world.acceptAPIs.store.list(),
        assignmentsByProvider: new Map(),
      });
      if (alone.winner?.providerCluster === 'provider-a') keys.push(key);
    }
    world.api.lagging = true;

    const results = await Promise.all(keys.map((key) => world.placer.assign(key, {}, signal)));

    expect(results.map((r) => r.outcome)).toEqual(keys.map(() => 'assigned'));
    expect(world.informers.assignments.store.size).toBe(0); // the cache saw none of them
    expect(providersOf(world.assignments())).toEqual({ 'provider-a': 5, 'provider-b': 5 });
    expect(world.placer.load.pending).toBe(10);
    // Once the cache shows them they count once, from the cache.
    world.api.flush();
    expect(Object.fromEntries(world.placer.load.byProvider())).toEqual({ 'provider-a': 5, 'provider-b': 5 });
    expect(world.placer.load.pending).toBe(0);
  });

  it('never fills an AcceptAPI past its capacity, even in a burst the cache has not seen; the rest stay pending naming it full', async () => {
    const world = new SyncWorld();
    world.acceptAPI('provider-a', 'widgets-a', 'export-a', { capacity: 3 });
    world.acceptAPI('provider-b', 'widgets-b', 'export-b', { capacity: 4 });
    world.api.lagging = true;
    const keys = Array.from({ length: 10 }, (_, i) => ({ cluster: 'consumer-1', namespace: 'default', name: `w-${i}` }));

    const results = await Promise.all(keys.map((key) => world.placer.assign(key, {}, signal)));

    expect(results.filter((r) => r.outcome === 'assigned')).toHaveLength(7);
    expect(providersOf(world.assignments())).toEqual({ 'provider-a': 3, 'provider-b': 4 });
    const refused = results.find((r) => r.outcome === 'noProvider');
    expect(refused?.outcome === 'noProvider' && refused.decision.candidates.map((c) => c.reason)).toEqual([
      'full (capacity 3, spec.capacity)',
      'full (capacity 4, spec.capacity)',
    ]);
    world.api.flush();
    expect(Object.fromEntries(world.placer.load.byAcceptAPI())).toEqual({ 'provider-a/widgets-a': 3, 'provider-b/widgets-b': 4 });
  });

  it('places nothing new on a cordoned or draining AcceptAPI, and says so', async () => {
    const world = new SyncWorld();
    world.acceptAPI('provider-a', 'widgets-a', 'export-a', { cordoned: true });
    world.acceptAPI('provider-b', 'widgets-b', 'export-b', { draining: true });
    const result = await world.placer.assign({ cluster: 'consumer-1', namespace: 'default', name: 'w' }, {}, signal);
    expect(result.outcome).toBe('noProvider');
    expect(result.outcome === 'noProvider' && result.decision.candidates.map((c) => c.reason)).toEqual([
      'cordoned: takes no new objects (spec.cordoned)',
      'draining: takes no new objects (spec.draining)',
    ]);
  });

  it('stops counting a placement whose create failed', async () => {
    const world = twoProviders();
    world.api.lagging = true;
    world.api.failNextWrite({ verb: 'create', resource: 'assignments' });
    await expect(world.placer.assign({ cluster: 'consumer-1', namespace: 'default', name: 'w' }, {}, signal)).rejects.toThrow(
      'injected failure',
    );
    expect(world.placer.load.pending).toBe(0);
    expect(Object.fromEntries(world.placer.load.byProvider())).toEqual({});
  });

  it('counts an in-flight Assignment until the TTL ends, or once the cache shows it', () => {
    let now = 1_000;
    const assignments = new ObjectStore<Assignment>();
    const load = new PlacementLoad({ assignments, coordinationCluster: COORD, gvr: WIDGETS, ttlMs: 30_000, now: () => now });
    load.placing('assignment-1', 'provider-a', 'widgets-a');
    load.placing('assignment-2', 'provider-b', 'widgets-b');

    now += 30_000;
    expect(Object.fromEntries(load.byProvider())).toEqual({ 'provider-a': 1, 'provider-b': 1 }); // not yet past the TTL

    // assignment-2 shows up in the cache: counted from there, not twice.
    assignments.upsert({
      metadata: { name: 'assignment-2', annotations: { [CLUSTER_ANNOTATION]: COORD } },
      spec: { consumerCluster: 'c', gvr: WIDGETS, name: 'w2', providerCluster: 'provider-b', acceptAPIName: 'widgets-b' },
    });
    expect(Object.fromEntries(load.byProvider())).toEqual({ 'provider-a': 1, 'provider-b': 1 });
    expect(load.pending).toBe(1);

    now += 1; // past the TTL: assignment-1 never appeared (deleted at once, say)
    expect(Object.fromEntries(load.byProvider())).toEqual({ 'provider-b': 1 });
    expect(load.pending).toBe(0);
  });

  it('ignores Assignments of other resources and the entries abandoned', () => {
    const assignments = new ObjectStore<Assignment>();
    const load = new PlacementLoad({ assignments, coordinationCluster: COORD, gvr: WIDGETS });
    assignments.upsert({
      metadata: { name: 'other', annotations: { [CLUSTER_ANNOTATION]: COORD } },
      spec: {
        consumerCluster: 'c',
        gvr: { ...WIDGETS, resource: 'gadgets' },
        name: 'g',
        providerCluster: 'provider-a',
        acceptAPIName: 'x',
      },
    });
    load.placing('assignment-1', 'provider-a', 'x');
    load.abandoned('assignment-1');
    expect(Object.fromEntries(load.byProvider())).toEqual({});
  });

  it('follows Assignments as their status moves and Migrations as they start and end, without a scan per placement', () => {
    const assignments = new ObjectStore<Assignment>();
    const migrations = new ObjectStore<Migration>();
    const load = new PlacementLoad({ assignments, migrations, coordinationCluster: COORD, gvr: WIDGETS });
    const assignment = (name: string, provider: string, status?: Assignment['status']): Assignment => ({
      metadata: { name, annotations: { [CLUSTER_ANNOTATION]: COORD } },
      spec: { consumerCluster: 'c', gvr: WIDGETS, name, providerCluster: provider, acceptAPIName: `widgets-${provider}` },
      ...(status ? { status } : {}),
    });
    const gvk = { group: WIDGETS.group, version: WIDGETS.version, kind: 'Widget' };
    const migration = (state: NonNullable<Migration['status']>['state']): Migration => ({
      metadata: { name: 'move-1', annotations: { [CLUSTER_ANNOTATION]: COORD } },
      spec: {
        assignment: 'w1',
        name: 'w1',
        fromStagingWorkspace: 'from',
        stagingWorkspace: 'to',
        from: { gvk, providerCluster: 'a', acceptAPIName: 'widgets-a', apiExportName: 'export-a' },
        to: { gvk, providerCluster: 'b', acceptAPIName: 'widgets-b', apiExportName: 'export-b' },
      },
      status: { state },
    });
    for (const name of ['w1', 'w2', 'w3']) assignments.upsert(assignment(name, 'a'));
    assignments.upsert(assignment('w4', 'b'));
    expect(Object.fromEntries(load.byProvider())).toEqual({ a: 3, b: 1 });

    // A move in flight: the destination's capacity counts it now, the projection once it completes.
    migrations.upsert(migration('InitialInProgress'));
    expect(Object.fromEntries(load.byProvider())).toEqual({ a: 3, b: 1 });
    expect(Object.fromEntries(load.byAcceptAPI())).toEqual({ 'a/widgets-a': 3, 'b/widgets-b': 2 });
    expect(Object.fromEntries(load.projectedByProvider())).toEqual({ a: 2, b: 2 });

    // Cut over: the Assignment's status names the destination; the Migration, not yet done, counts no more in the projection.
    assignments.upsert(assignment('w1', 'a', { providerCluster: 'b', acceptAPIName: 'widgets-b' }));
    expect(Object.fromEntries(load.byProvider())).toEqual({ a: 2, b: 2 });
    expect(Object.fromEntries(load.projectedByProvider())).toEqual({ a: 2, b: 2 });
    migrations.upsert(migration('CutoverCompleted'));
    expect(Object.fromEntries(load.byAcceptAPI())).toEqual({ 'a/widgets-a': 2, 'b/widgets-b': 2 });

    assignments.remove(assignment('w4', 'b'));
    expect(Object.fromEntries(load.byProvider())).toEqual({ a: 2, b: 1 });
  });

  it('counts no Assignment as another resource or provider, whatever its names hold', () => {
    const assignments = new ObjectStore<Assignment>();
    const load = new PlacementLoad({ assignments, coordinationCluster: COORD, gvr: WIDGETS });
    const odd = (name: string, gvr: Assignment['spec']['gvr'], providerCluster: string): Assignment => ({
      metadata: { name, annotations: { [CLUSTER_ANNOTATION]: COORD } },
      spec: { consumerCluster: 'c', gvr, name, providerCluster, acceptAPIName: 'x' },
    });
    assignments.upsert(odd('shifted-resource', { ...WIDGETS, resource: `${WIDGETS.resource}\u0000p9` }, 'p1'));
    assignments.upsert(odd('shifted-provider', WIDGETS, 'p1\u0000z'));
    assignments.upsert(odd('dotted', { ...WIDGETS, group: `x.${WIDGETS.group}` }, 'p1'));
    expect(Object.fromEntries(load.byProvider())).toEqual({ 'p1\u0000z': 1 });
    expect(Object.fromEntries(load.byAcceptAPI())).toEqual({ 'p1\u0000z/x': 1 });
  });
});
