import { beforeEach, describe, expect, it } from 'vitest';
import { COORD, CONSUMER, SyncWorld, WIDGETS } from '../../../test/fakes/sync-world.ts';
import { assignmentName, stagingWorkspaceName } from '../../apis/names.ts';
import { ACCEPTAPI_GVR, ASSIGNMENT_GVR, type Assignment } from '../../apis/types.ts';

const signal = new AbortController().signal;
const key = { cluster: CONSUMER, namespace: 'default', name: 'w1' };
const NAME = assignmentName(CONSUMER, WIDGETS, 'default', 'w1');
const STAGING = stagingWorkspaceName(CONSUMER, 'provider-a', 'export-a');

describe('Placer', () => {
  let world: SyncWorld;
  beforeEach(() => {
    world = new SyncWorld();
    world.acceptAPI('provider-a', 'widgets-a', 'export-a', { filters: [{ key: 'size', boundary: { max: 10 } }] });
  });

  it('creates the Assignment with the decision in spec, then writes a status naming the staging workspace', async () => {
    const result = await world.placer.assign(key, { size: 3 }, signal);

    expect(world.api.log()).toEqual([`create ${COORD}/assignments /${NAME}`, `updateStatus ${COORD}/assignments /${NAME}`]);
    const stored = world.api.get<Assignment>(COORD, ASSIGNMENT_GVR, '', NAME)!;
    expect(stored.spec).toEqual({
      consumerCluster: CONSUMER,
      gvr: WIDGETS,
      namespace: 'default',
      name: 'w1',
      providerCluster: 'provider-a',
      acceptAPIName: 'widgets-a',
    });
    expect(stored.status).toMatchObject({
      phase: 'Pending',
      providerCluster: 'provider-a',
      acceptAPIName: 'widgets-a',
      apiExportName: 'export-a',
      stagingWorkspace: STAGING,
      placement: { winner: 'widgets-a (provider-a)', reason: 'only matching AcceptAPI' },
    });
    expect(result).toMatchObject({ outcome: 'assigned', assignment: stored });
  });

  it('writes nothing when no AcceptAPI matches', async () => {
    const result = await world.placer.assign(key, { size: 30 }, signal);
    expect(result.outcome).toBe('noProvider');
    expect(world.api.writes).toEqual([]);
    expect(world.placer.load.pending).toBe(0);
  });

  it('completes an Assignment a crash left without status from its spec', async () => {
    world.api.failNextWrite({ verb: 'updateStatus', resource: 'assignments' });
    await expect(world.placer.assign(key, { size: 3 }, signal)).rejects.toThrow('injected failure');
    const left = world.api.get<Assignment>(COORD, ASSIGNMENT_GVR, '', NAME)!;
    expect(left.status).toBeUndefined();
    expect(left.spec.providerCluster).toBe('provider-a');

    // The AcceptAPI's filters changed since: the recorded decision stands all the same.
    world.acceptAPI('provider-a', 'widgets-a', 'export-a', { filters: [{ key: 'size', boundary: { max: 1 } }] });
    const completed = await world.placer.complete(left, signal);

    expect(world.api.log()).toEqual([`create ${COORD}/assignments /${NAME}`, `updateStatus ${COORD}/assignments /${NAME}`]);
    expect(completed).toEqual(world.api.get(COORD, ASSIGNMENT_GVR, '', NAME));
    expect(completed?.spec).toEqual(left.spec);
    expect(completed?.status).toMatchObject({
      phase: 'Pending',
      providerCluster: 'provider-a',
      acceptAPIName: 'widgets-a',
      apiExportName: 'export-a',
      stagingWorkspace: STAGING,
    });
  });

  it('cannot complete an Assignment whose AcceptAPI is gone', async () => {
    world.api.failNextWrite({ verb: 'updateStatus', resource: 'assignments' });
    await expect(world.placer.assign(key, {}, signal)).rejects.toThrow();
    const left = world.api.get<Assignment>(COORD, ASSIGNMENT_GVR, '', NAME)!;
    world.api.remove('provider-a', ACCEPTAPI_GVR, '', 'widgets-a');
    world.acceptAPI('provider-b', 'widgets-a', 'export-a'); // same name, another provider: not the one recorded

    expect(await world.placer.complete(left, signal)).toBeUndefined();
    expect(world.api.log()).toEqual([`create ${COORD}/assignments /${NAME}`]);
    expect(world.api.get<Assignment>(COORD, ASSIGNMENT_GVR, '', NAME)?.status).toBeUndefined();
  });

  it("reports 'raced' when the Assignment exists already (the cache did not show it), leaving it alone", async () => {
    world.api.lagging = true;
    const theirs = world.api.put<Assignment>(COORD, ASSIGNMENT_GVR, {
      metadata: { name: NAME },
      spec: {
        consumerCluster: CONSUMER,
        gvr: WIDGETS,
        namespace: 'default',
        name: 'w1',
        providerCluster: 'provider-z',
        acceptAPIName: 'z',
      },
    });

    expect(await world.placer.assign(key, {}, signal)).toEqual({ outcome: 'raced' });
    expect(world.api.writes).toEqual([]);
    expect(world.api.get(COORD, ASSIGNMENT_GVR, '', NAME)).toEqual(theirs);
    expect(world.placer.load.pending).toBe(0);
  });
});
