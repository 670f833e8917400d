import { describe, expect, it } from 'vitest';
import { COORD, SyncWorld } from '../../../test/fakes/sync-world.ts';
import { MOVE_TO_ANNOTATION } from '../../apis/names.ts';
import { ASSIGNMENT_GVR, type Assignment } from '../../apis/types.ts';
import type { ObjectKey } from '../../runtime/object-key.ts';
import { parseMoveTarget } from './migrator.ts';

/** Three widgets served by provider-a (the only AcceptAPI then); provider-b appears afterwards. */
const threeOnA = async (world: SyncWorld): Promise<ObjectKey[]> => {
  world.acceptAPI('provider-a', 'widgets-a', 'export-a');
  world.provider = () => ({ status: 'Available' });
  const keys = ['w1', 'w2', 'w3'].map((name) => world.createWidget('default', name, { size: 1 }));
  for (const key of keys) await world.settle(key);
  world.acceptAPI('provider-b', 'widgets-b', 'export-b');
  return keys;
};

const providersOf = (world: SyncWorld): string[] => world.assignments().map((a) => a.spec.providerCluster);

describe('moves the platform starts', () => {
  it('drains an AcceptAPI at the budget: one migration out of the provider at a time, the others wait and serve', async () => {
    const world = new SyncWorld({ budget: { total: 10, perProvider: 1 } });
    const keys = await threeOnA(world);
    world.acceptAPI('provider-a', 'widgets-a', 'export-a', { draining: true });

    const results = [];
    for (const key of keys) results.push(await world.reconcile(key));

    expect(world.migrations()).toHaveLength(1);
    expect(results.filter((r) => r?.requeueAfterMs === 2_000)).toHaveLength(2);
    // Once each move completes, the next starts, until none is left on the draining provider.
    for (let round = 0; round < 3; round++) for (const key of keys) await world.settle(key);
    expect(world.migrations()).toEqual([]);
    expect(providersOf(world)).toEqual(['provider-b', 'provider-b', 'provider-b']);
  });

  it('moves the newest objects out of an AcceptAPI whose capacity went below its load, and no more', async () => {
    const world = new SyncWorld();
    const keys = await threeOnA(world);
    world.acceptAPI('provider-a', 'widgets-a', 'export-a', { capacity: 1 });
    for (let round = 0; round < 3; round++) for (const key of keys) await world.settle(key);
    // Which ones: the newest by placement time, ties (same second) broken by name.
    expect(providersOf(world).sort()).toEqual(['provider-a', 'provider-b', 'provider-b']);
    expect(world.migrations()).toEqual([]);
  });

  it('moves one object where a platform admin asks, and refuses a target that does not accept it, saying why', async () => {
    const world = new SyncWorld();
    const [w1, w2] = await threeOnA(world);
    world.acceptAPI('provider-c', 'widgets-c', 'export-c', { filters: [{ key: 'size', valueIn: ['99'] }] });
    const annotate = (key: ObjectKey, target: string): void => {
      const a = world.assignments().find((x) => x.spec.name === key.name)!;
      world.api.put<Assignment>(COORD, ASSIGNMENT_GVR, {
        ...a,
        metadata: { ...a.metadata, annotations: { [MOVE_TO_ANNOTATION]: target } },
      });
    };
    annotate(w1!, 'widgets-b');
    annotate(w2!, 'provider-c/widgets-c');
    for (let round = 0; round < 2; round++) for (const key of [w1!, w2!]) await world.settle(key);

    const [moved, refused] = [w1, w2].map((k) => world.assignments().find((a) => a.spec.name === k!.name)!);
    expect(moved?.spec.providerCluster).toBe('provider-b');
    expect(moved?.metadata.annotations?.[MOVE_TO_ANNOTATION]).toBeUndefined();
    expect(refused?.spec.providerCluster).toBe('provider-a');
    expect(refused?.metadata.annotations?.[MOVE_TO_ANNOTATION]).toBe('provider-c/widgets-c');
    const condition = refused?.status?.conditions?.find((c) => c.type === 'MoveRequested');
    expect(condition).toMatchObject({ status: 'False', reason: 'Refused' });
    expect(condition?.message).toContain('widgets-c (provider-c): spec.filters[0] (key "size"): value "1" is not in [99]');
    expect(world.events.of('MoveRefused')).not.toEqual([]);
  });

  it('clears a request that names where the object is, and a refusal once the request is gone or done', async () => {
    const world = new SyncWorld();
    const [w1] = await threeOnA(world);
    const assignmentOf = (key: ObjectKey): Assignment => world.assignments().find((a) => a.spec.name === key.name)!;
    const annotate = (target: string | undefined): void => {
      const a = assignmentOf(w1!);
      world.api.put<Assignment>(COORD, ASSIGNMENT_GVR, {
        ...a,
        metadata: { ...a.metadata, annotations: target ? { [MOVE_TO_ANNOTATION]: target } : {} },
      });
    };
    annotate('widgets-a'); // already there
    await world.settle(w1!);
    expect(assignmentOf(w1!).metadata.annotations?.[MOVE_TO_ANNOTATION]).toBeUndefined();
    expect(world.migrations()).toEqual([]);

    annotate('no/such/thing'); // malformed: refused as it is
    await world.settle(w1!);
    expect(assignmentOf(w1!).status?.conditions?.find((c) => c.type === 'MoveRequested')?.message).toContain('is not <AcceptAPI name>');
    annotate('widgets-b'); // fixed: the move starts, and the refusal goes
    for (let round = 0; round < 2; round++) await world.settle(w1!);
    expect(assignmentOf(w1!).spec.providerCluster).toBe('provider-b');
    expect(assignmentOf(w1!).status?.conditions?.some((c) => c.type === 'MoveRequested')).toBe(false);
  });

  it('drains an object whose move request is refused: a bad request does not pin it to a draining provider', async () => {
    const world = new SyncWorld();
    const [w1] = await threeOnA(world);
    const a = world.assignments().find((x) => x.spec.name === w1!.name)!;
    world.api.put<Assignment>(COORD, ASSIGNMENT_GVR, {
      ...a,
      metadata: { ...a.metadata, annotations: { [MOVE_TO_ANNOTATION]: 'nowhere' } },
    });
    world.acceptAPI('provider-a', 'widgets-a', 'export-a', { draining: true });
    for (let round = 0; round < 2; round++) await world.settle(w1!);
    expect(world.assignments().find((x) => x.spec.name === w1!.name)?.spec.providerCluster).toBe('provider-b');
  });

  it('reads a move target as <name> or <provider cluster>/<name> only', () => {
    expect(parseMoveTarget('widgets-b')).toEqual({ acceptAPIName: 'widgets-b' });
    expect(parseMoveTarget('2m92i1xs0r3a8nbl/widgets-b')).toEqual({ providerCluster: '2m92i1xs0r3a8nbl', acceptAPIName: 'widgets-b' });
    for (const bad of ['', '/x', 'a/b/c', 'root:team/x', 'UPPER', 'x/', ' x']) expect(parseMoveTarget(bad), bad).toBeUndefined();
  });
});
