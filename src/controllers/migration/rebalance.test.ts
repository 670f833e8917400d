import { describe, expect, it } from 'vitest';
import { COORD, SyncWorld } from '../../../test/fakes/sync-world.ts';
import { MOVE_TO_ANNOTATION, MOVED_AT_ANNOTATION } from '../../apis/names.ts';
import { ACCEPTAPI_GVR, ASSIGNMENT_GVR, type Assignment } from '../../apis/types.ts';
import { encodeKey } from '../../runtime/object-key.ts';
import type { ObjectKey } from '../../runtime/object-key.ts';

const MINUTE = 60_000;

/** `count` widgets served by provider-a, the only AcceptAPI then. */
const onA = async (world: SyncWorld, count: number, spec: Record<string, unknown> = { size: 1 }): Promise<ObjectKey[]> => {
  world.acceptAPI('provider-a', 'widgets-a', 'export-a');
  world.provider = () => ({ status: 'Available' });
  const keys = Array.from({ length: count }, (_, i) => world.createWidget('default', `w${i}`, spec));
  for (const key of keys) await world.settle(key);
  return keys;
};

const loads = (world: SyncWorld): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const a of world.assignments()) out[a.spec.providerCluster] = (out[a.spec.providerCluster] ?? 0) + 1;
  return out;
};

const settleAll = async (world: SyncWorld, keys: ObjectKey[], rounds = 3): Promise<void> => {
  for (let round = 0; round < rounds; round++) for (const key of keys) await world.settle(key);
};

describe('rebalancing (opt-in)', () => {
  it('moves a new provider its share, make-before-break, until the spread is within the tolerance, then stays still', async () => {
    const world = new SyncWorld({ rebalance: { tolerance: 1, intervalMs: 10 * MINUTE } });
    const keys = await onA(world, 7);
    world.acceptAPI('provider-b', 'widgets-b', 'export-b');
    await settleAll(world, keys);
    expect(loads(world)).toEqual({ 'provider-a': 4, 'provider-b': 3 });
    expect(world.migrations()).toEqual([]);
    expect(world.events.of('MigrationStarted')).toHaveLength(3);
    expect(world.events.of('MigrationStarted')[0]?.message).toContain(
      'rebalancing: provider provider-a serves 7 objects, another provider 0',
    );
    // Every consumer object stayed served throughout (the fake provider reports Available at once).
    for (const key of keys) expect((world.widget(key)?.['status'] as { status?: string } | undefined)?.status).toBe('Available');

    // Balanced: more reconciles write nothing.
    const writes = world.api.writes.length;
    for (const key of keys) await world.reconcile(key);
    expect(world.api.writes.length).toBe(writes);
  });

  it('is off by default: a new provider takes only new objects', async () => {
    const world = new SyncWorld();
    const keys = await onA(world, 4);
    world.acceptAPI('provider-b', 'widgets-b', 'export-b');
    await settleAll(world, keys);
    expect(loads(world)).toEqual({ 'provider-a': 4 });
  });

  it('never overshoots with several moves in flight at once (the budget lets three start together)', async () => {
    const world = new SyncWorld({ rebalance: { tolerance: 1, intervalMs: 10 * MINUTE }, budget: { total: 10, perProvider: 10 } });
    const keys = await onA(world, 8);
    world.acceptAPI('provider-b', 'widgets-b', 'export-b');
    // Start every move the rules allow before any completes: in flight count as done.
    for (const key of keys) await world.reconcile(key);
    expect(world.migrations()).toHaveLength(4);
    await settleAll(world, keys);
    expect(loads(world)).toEqual({ 'provider-a': 4, 'provider-b': 4 });
  });

  it('leaves an object alone for the interval after it moved (no flapping), then evens out again', async () => {
    let now = Date.parse('2026-11-26T12:00:00Z');
    const world = new SyncWorld({ rebalance: { tolerance: 1, intervalMs: 10 * MINUTE }, now: () => now });
    const keys = await onA(world, 4);
    world.acceptAPI('provider-b', 'widgets-b', 'export-b');
    await settleAll(world, keys);
    expect(loads(world)).toEqual({ 'provider-a': 2, 'provider-b': 2 });
    const moved = world.assignments().filter((a) => a.spec.providerCluster === 'provider-b');
    expect(moved.map((a) => a.metadata.annotations?.[MOVED_AT_ANNOTATION])).toEqual([
      new Date(now).toISOString(),
      new Date(now).toISOString(),
    ]);

    // The objects left on provider-a go: provider-b now serves 2 more, but both moved just now.
    const stayed = keys.filter((k) => !moved.some((a) => a.spec.name === k.name));
    for (const key of stayed) world.deleteWidget(key);
    await settleAll(world, keys);
    expect(loads(world)).toEqual({ 'provider-b': 2 });

    now += 11 * MINUTE;
    await settleAll(world, keys);
    expect(loads(world)).toEqual({ 'provider-a': 1, 'provider-b': 1 });
  });

  it('moves nothing, and says nothing, when the less loaded provider does not accept the objects', async () => {
    const world = new SyncWorld({ rebalance: { tolerance: 1, intervalMs: 10 * MINUTE } });
    const keys = await onA(world, 4);
    world.acceptAPI('provider-b', 'widgets-b', 'export-b', { filters: [{ key: 'size', valueIn: ['99'] }] });
    await settleAll(world, keys);
    expect(loads(world)).toEqual({ 'provider-a': 4 });
    expect(world.events.of('NoMatchingProvider')).toEqual([]);
    expect(world.events.of('MigrationStarted')).toEqual([]);
  });

  it('sends no load to a provider Ready for less than a minute (a flapping provider pulls no share), then does', async () => {
    let now = Date.parse('2026-11-26T12:00:00Z');
    const world = new SyncWorld({ rebalance: { tolerance: 1, intervalMs: 10 * MINUTE }, now: () => now });
    const keys = await onA(world, 4);
    const b = world.acceptAPI('provider-b', 'widgets-b', 'export-b');
    const ready = b.status!.conditions![0]!;
    world.api.put('provider-b', ACCEPTAPI_GVR, {
      ...b,
      status: { conditions: [{ ...ready, lastTransitionTime: new Date(now - 10_000).toISOString() }] },
    });
    expect(world.sync.rebalanceSweep()).toEqual([]);
    await settleAll(world, keys);
    expect(loads(world)).toEqual({ 'provider-a': 4 });

    now += MINUTE;
    // The periodic sweep finds provider-a's objects; each reconcile then decides for its object.
    expect(world.sync.rebalanceSweep().sort()).toEqual(keys.map((k) => encodeKey(k)).sort());
    await settleAll(world, keys);
    expect(loads(world)).toEqual({ 'provider-a': 2, 'provider-b': 2 });
    expect(world.sync.rebalanceSweep()).toEqual([]);
  });

  it('looks again later, not every 2 s, while the budget is busy; an object that cannot go anywhere better is not requeued', async () => {
    const world = new SyncWorld({ rebalance: { tolerance: 1, intervalMs: 10 * MINUTE }, budget: { total: 10, perProvider: 1 } });
    world.acceptAPI('provider-a', 'widgets-a', 'export-a');
    world.provider = () => ({ status: 'Available' });
    const movable = ['m1', 'm2', 'm3'].map((name) => world.createWidget('default', name, { size: 1 }));
    const pinned = ['p1', 'p2'].map((name) => world.createWidget('default', name, { size: 7 }));
    for (const key of [...movable, ...pinned]) await world.settle(key);
    world.acceptAPI('provider-b', 'widgets-b', 'export-b', { filters: [{ key: 'size', valueIn: ['1'] }] });

    const results = [];
    for (const key of [...movable, ...pinned]) results.push(await world.reconcile(key));
    expect(world.migrations()).toHaveLength(1);
    expect(results.slice(1, 3)).toEqual([{ requeueAfterMs: 15_000 }, { requeueAfterMs: 15_000 }]);
    expect(results.slice(3)).toEqual([undefined, undefined]);
  });

  it('wakes nothing for a fallback of lower priority: the sweep finds no AcceptAPI overloaded against one of its own priority', async () => {
    const world = new SyncWorld({ rebalance: { tolerance: 1, intervalMs: 10 * MINUTE } });
    world.acceptAPI('provider-a', 'widgets-a', 'export-a', { priority: 1 });
    world.provider = () => ({ status: 'Available' });
    const keys = ['w1', 'w2', 'w3'].map((name) => world.createWidget('default', name, { size: 1 }));
    for (const key of keys) await world.settle(key);
    world.acceptAPI('provider-b', 'widgets-b', 'export-b');
    expect(world.sync.rebalanceSweep()).toEqual([]);
    await settleAll(world, keys);
    expect(loads(world)).toEqual({ 'provider-a': 3 });
  });

  it('clears a refused move request once it is gone, with rebalancing on and nowhere better to go', async () => {
    const world = new SyncWorld({ rebalance: { tolerance: 1, intervalMs: 10 * MINUTE } });
    const [w0] = await onA(world, 3);
    world.acceptAPI('provider-b', 'widgets-b', 'export-b', { filters: [{ key: 'size', valueIn: ['99'] }] });
    const assignmentOf = (): Assignment => world.assignments().find((a) => a.spec.name === w0!.name)!;
    const annotate = (annotations: Record<string, string>): void => {
      const a = assignmentOf();
      world.api.put<Assignment>(COORD, ASSIGNMENT_GVR, { ...a, metadata: { ...a.metadata, annotations } });
    };
    annotate({ [MOVE_TO_ANNOTATION]: 'widgets-b' });
    await world.settle(w0!);
    expect(assignmentOf().status?.conditions?.find((c) => c.type === 'MoveRequested')?.reason).toBe('Refused');
    annotate({});
    await world.settle(w0!);
    expect(assignmentOf().status?.conditions?.some((c) => c.type === 'MoveRequested')).toBe(false);
  });

  it('refuses a tolerance below 1 (objects would go back and forth between two providers one apart)', () => {
    expect(() => new SyncWorld({ rebalance: { tolerance: 0, intervalMs: MINUTE } })).toThrow(
      'rebalance tolerance must be a whole number >= 1',
    );
  });

  it('does not move objects to a cordoned or a full provider', async () => {
    for (const options of [{ cordoned: true }, { capacity: 0 }] as const) {
      const world = new SyncWorld({ rebalance: { tolerance: 1, intervalMs: 10 * MINUTE } });
      const keys = await onA(world, 4);
      world.acceptAPI('provider-b', 'widgets-b', 'export-b', options);
      await settleAll(world, keys);
      expect(loads(world), JSON.stringify(options)).toEqual({ 'provider-a': 4 });
    }
  });
});
