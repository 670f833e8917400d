import { beforeEach, describe, expect, it } from 'vitest';
import { ASSIGNMENT_GVR, STAGINGWORKSPACE_GVR, type Assignment, type StagingWorkspace } from '../../apis/types.ts';
import { stagingViewName } from '../../apis/names.ts';
import { APIBINDINGS, APIEXPORTS, type APIBindingObject, type APIExportObject } from '../../kcp-client-ts/bindings.ts';
import { WORKSPACES, type WorkspaceObject, type Workspaces } from '../../kcp-client-ts/workspaces.ts';
import { silentLogger } from '../../logging.ts';
import { memoryCoordination } from '../../../test/fakes/coordination.ts';
import { MemoryApi } from '../../../test/fakes/memory-api.ts';
import { ApiError } from '../../kcp-client-ts/errors.ts';
import { StagingWorkspaceController, workspaceStateOf } from './controller.ts';

const COORD = 'coord';
const SW = 'sw-1';
const CLUSTER = 'c1';
const IDENTITY = 'a'.repeat(64);

type Workspace = Awaited<ReturnType<Workspaces['get']>> & object;

/** The staging tree as kcp keeps it: workspaces that are Ready, and deletions that finish when told. */
class FakeWorkspaces {
  readonly all = new Map<string, Workspace>();
  readonly deleted: string[] = [];
  get = async (parent: string, name: string): Promise<Workspace | undefined> => this.all.get(`${parent}:${name}`);
  create = async (parent: string, name: string): Promise<void> => {
    const ws = {
      metadata: { name, creationTimestamp: new Date(0).toISOString() },
      spec: { cluster: CLUSTER },
      status: { phase: 'Ready' },
    } as unknown as Workspace;
    this.all.set(`${parent}:${name}`, ws);
  };
  delete = async (parent: string, name: string): Promise<boolean> => {
    this.deleted.push(`${parent}:${name}`);
    const ws = this.all.get(`${parent}:${name}`);
    if (ws) ws.metadata.deletionTimestamp = new Date().toISOString();
    return ws !== undefined;
  };
}

describe('StagingWorkspaceController', () => {
  let api: MemoryApi;
  let workspaces: FakeWorkspaces;
  let controller: StagingWorkspaceController;
  let clock = 0;
  const signal = new AbortController().signal;
  const assign = (name: string): Assignment =>
    api.put<Assignment>(COORD, ASSIGNMENT_GVR, {
      apiVersion: 'coord.broker.platform-mesh.io/v1alpha1',
      kind: 'Assignment',
      metadata: { name },
      spec: {
        consumerCluster: 'consumer',
        gvr: { group: 'example.platform-mesh.io', version: 'v1alpha1', resource: 'widgets' },
        namespace: 'default',
        name,
        providerCluster: 'provider',
        acceptAPIName: 'widgets',
      },
      status: { stagingWorkspace: SW },
    });
  const phase = (): string | undefined => api.get<StagingWorkspace>(COORD, STAGINGWORKSPACE_GVR, '', SW)?.status?.phase;

  beforeEach(async () => {
    api = new MemoryApi();
    const { informers, coordination } = memoryCoordination(api, COORD);
    workspaces = new FakeWorkspaces();
    controller = new StagingWorkspaceController({
      coordination,
      informers,
      workspaces,
      clients: { inWorkspace: (cluster, gvr) => api.client(cluster, gvr) as never },
      stagingRoot: 'root:staging',
      logger: silentLogger(),
      now: () => clock,
    });
    api.put<StagingWorkspace>(COORD, STAGINGWORKSPACE_GVR, {
      apiVersion: 'coord.broker.platform-mesh.io/v1alpha1',
      kind: 'StagingWorkspace',
      metadata: { name: SW },
      spec: { consumerCluster: 'consumer', providerCluster: 'provider', apiExportName: 'widgets' },
    } as StagingWorkspace);
    // A served staging workspace: its workspace Ready, the provider's export bound.
    assign('a-1');
    await controller.reconcile(SW, signal); // creates the workspace
    await controller.reconcile(SW, signal); // binds the provider's export
    const binding = api.get<APIBindingObject>(CLUSTER, APIBINDINGS, '', 'widgets')!;
    api.put(CLUSTER, APIBINDINGS, {
      ...binding,
      status: { phase: 'Bound', exportPermissionClaims: [], boundResources: [bound('widgets')] },
    });
    await controller.reconcile(SW, signal); // records the staging view on the StagingWorkspace first
    expect(api.get<StagingWorkspace>(COORD, STAGINGWORKSPACE_GVR, '', SW)?.metadata.annotations).toMatchObject({
      'broker.platform-mesh.io/staging-view': VIEW,
    });
    await controller.reconcile(SW, signal); // creates the staging view
    expect(api.get<APIBindingObject>(CLUSTER, APIBINDINGS, '', VIEW)).toBeUndefined(); // bound next round: a shard may not know it yet
    // This workspace's shard does not know the new view yet: waited for and said, not a failure.
    api.failNextWrite(
      { verb: 'create', resource: 'apibindings' },
      new ApiError({ status: 403, reason: 'Forbidden', message: 'no permission to bind to export', method: 'POST', url: 'u' }),
    );
    expect(await controller.reconcile(SW, signal)).toEqual({ requeueAfterMs: expect.any(Number) });
    expect(JSON.stringify(api.get<StagingWorkspace>(COORD, STAGINGWORKSPACE_GVR, '', SW)?.status?.conditions)).toContain(
      'not bindable here yet: no permission to bind to export',
    );
    await controller.reconcile(SW, signal); // binds it
    expect(phase()).toBe('Pending');
    bindView();
    await controller.reconcile(SW, signal); // accepts the view's claims
    expect(phase()).toBe('Pending');
    bindView({ applied: true });
    await controller.reconcile(SW, signal);
    expect(phase()).toBe('Ready');
  });

  const VIEW = stagingViewName(IDENTITY);
  const bound = (resource: string) => ({
    group: 'example.platform-mesh.io',
    resource,
    schema: { identityHash: IDENTITY, name: `v1.${resource}.example.platform-mesh.io`, UID: 'u' },
    storageVersions: ['v1alpha1'],
  });
  /** kcp's side of the view binding: Bound, listing the claims the view export makes (and, once applied, those). */
  const bindView = (options: { applied?: boolean } = {}): void => {
    const view = api.get<APIBindingObject>(CLUSTER, APIBINDINGS, '', VIEW)!;
    const claims = viewExport()?.spec.permissionClaims ?? [];
    api.put(CLUSTER, APIBINDINGS, {
      ...view,
      status: { phase: 'Bound', exportPermissionClaims: claims, ...(options.applied ? { appliedPermissionClaims: claims } : {}) },
    });
  };
  const viewExport = (): APIExportObject | undefined => api.get<APIExportObject>('root:staging', APIEXPORTS, '', VIEW);

  it("creates one staging view per API identity in the staging root, claiming the export's resources, Secrets and ConfigMaps read-only", () => {
    expect(viewExport()?.metadata.labels).toEqual({ 'app.kubernetes.io/managed-by': 'resource-broker' });
    expect(viewExport()?.spec.permissionClaims).toEqual([
      { group: 'example.platform-mesh.io', resource: 'widgets', identityHash: IDENTITY, verbs: ['get', 'list', 'watch'] },
      { group: '', resource: 'secrets', verbs: ['get', 'list', 'watch'] },
      { group: '', resource: 'configmaps', verbs: ['get', 'list', 'watch'] },
    ]);
    expect(api.get<APIBindingObject>(CLUSTER, APIBINDINGS, '', VIEW)?.spec.reference.export).toEqual({ path: 'root:staging', name: VIEW });
  });

  it('accepts every claim of the view, and widens the view (never narrows it) to what is placed in staging, not all the export serves', async () => {
    bindView();
    await controller.reconcile(SW, signal);
    const view = api.get<APIBindingObject>(CLUSTER, APIBINDINGS, '', VIEW)!;
    expect(view.spec.permissionClaims?.map((c) => [c.resource, c.state])).toEqual([
      ['widgets', 'Accepted'],
      ['secrets', 'Accepted'],
      ['configmaps', 'Accepted'],
    ]);
    // The provider's export serves more; only what is placed here is claimed, and the view widens when it is.
    const provider = api.get<APIBindingObject>(CLUSTER, APIBINDINGS, '', 'widgets')!;
    api.put(CLUSTER, APIBINDINGS, {
      ...provider,
      status: { ...provider.status!, boundResources: [bound('widgets'), bound('gadgets'), bound('unplaced')] },
    });
    await controller.reconcile(SW, signal);
    expect(viewExport()?.spec.permissionClaims?.map((c) => c.resource)).toEqual(['widgets', 'secrets', 'configmaps']);
    const gadget = assign('g-1');
    api.put(COORD, ASSIGNMENT_GVR, { ...gadget, spec: { ...gadget.spec, gvr: { ...gadget.spec.gvr, resource: 'gadgets' } } });
    await controller.reconcile(SW, signal);
    expect(viewExport()?.spec.permissionClaims?.map((c) => c.resource)).toEqual(['widgets', 'secrets', 'configmaps', 'gadgets']);
  });

  it("never adopts a binding of the view's name that binds another export: the workspace stays Pending, saying why", async () => {
    const view = api.get<APIBindingObject>(CLUSTER, APIBINDINGS, '', VIEW)!;
    api.put(CLUSTER, APIBINDINGS, { ...view, spec: { ...view.spec, reference: { export: { path: 'root:provider', name: VIEW } } } });
    expect(await controller.reconcile(SW, signal)).toEqual({ requeueAfterMs: 500 });
    expect(phase()).toBe('Pending');
    const sw = api.get<StagingWorkspace>(COORD, STAGINGWORKSPACE_GVR, '', SW)!;
    expect(sw.status?.conditions?.find((c) => c.type === 'BindingReady')?.message).toBe(
      `staging view: APIBinding ${VIEW} in staging cluster ${CLUSTER} binds root:provider:${VIEW}, not root:staging:${VIEW}`,
    );
    expect(api.get<APIBindingObject>(CLUSTER, APIBINDINGS, '', VIEW)?.spec.reference.export?.path).toBe('root:provider');
  });

  it('deletes the staging view with the last StagingWorkspace naming it, before that record goes', async () => {
    const other = api.put<StagingWorkspace>(COORD, STAGINGWORKSPACE_GVR, {
      apiVersion: 'coord.broker.platform-mesh.io/v1alpha1',
      kind: 'StagingWorkspace',
      metadata: { name: 'sw-2', annotations: { 'broker.platform-mesh.io/staging-view': VIEW } },
      spec: { consumerCluster: 'consumer-2', providerCluster: 'provider', apiExportName: 'widgets' },
    } as StagingWorkspace);
    const release = async (name: string): Promise<void> => {
      for (let round = 0; round < 6 && api.get(COORD, STAGINGWORKSPACE_GVR, '', name); round++) {
        await controller.reconcile(name, signal);
        clock += 2_000;
        workspaces.all.clear(); // kcp finished deleting the workspace
      }
    };
    api.remove(COORD, ASSIGNMENT_GVR, '', 'a-1');
    await release(SW);
    expect(api.get(COORD, STAGINGWORKSPACE_GVR, '', SW)).toBeUndefined();
    expect(viewExport()).toBeDefined(); // sw-2 still names it
    await release(other.metadata.name!);
    expect(api.get(COORD, STAGINGWORKSPACE_GVR, '', 'sw-2')).toBeUndefined();
    expect(viewExport()).toBeUndefined();
  });

  it('marks an unreferenced staging workspace Terminating first and deletes its workspace only once the mark is 2 s old', async () => {
    api.remove(COORD, ASSIGNMENT_GVR, '', 'a-1');
    expect(await controller.reconcile(SW, signal)).toEqual({ requeueAfterMs: 2_000 });
    expect(phase()).toBe('Terminating');
    // Its own status event brings the next round at once: too early.
    clock += 100;
    expect(await controller.reconcile(SW, signal)).toEqual({ requeueAfterMs: 1_900 });
    expect(workspaces.deleted).toEqual([]);
    clock += 2_000;
    await controller.reconcile(SW, signal);
    expect(workspaces.deleted).toEqual(['root:staging:sw-1']);
  });

  it('starts no teardown from a mark that lost to a newer version: the 2 s count from the mark that lands', async () => {
    api.remove(COORD, ASSIGNMENT_GVR, '', 'a-1');
    const conflict = new ApiError({ status: 409, reason: 'Conflict', message: 'the object has been modified', method: 'PUT', url: 'u' });
    api.failNextWrite({ verb: 'updateStatus', resource: 'stagingworkspaces' }, conflict);
    expect(await controller.reconcile(SW, signal)).toBeUndefined(); // the newer version's event brings the next round
    expect(phase()).toBe('Ready');
    clock += 5_000;
    expect(await controller.reconcile(SW, signal)).toEqual({ requeueAfterMs: 2_000 }); // marked now: 2 s from here
    expect(phase()).toBe('Terminating');
    expect(workspaces.deleted).toEqual([]);
  });

  it('keeps the workspace when an Assignment comes between the mark and the delete (a sync that read Ready)', async () => {
    api.remove(COORD, ASSIGNMENT_GVR, '', 'a-1');
    await controller.reconcile(SW, signal);
    expect(phase()).toBe('Terminating');
    assign('a-2');
    clock += 5_000;
    await controller.reconcile(SW, signal);
    expect(workspaces.deleted).toEqual([]);
    expect(phase()).toBe('Ready');
  });

  it('marks a StagingWorkspace deleted by hand Terminating before its workspace goes, so no sync writes into it', async () => {
    const sw = api.get<StagingWorkspace>(COORD, STAGINGWORKSPACE_GVR, '', SW)!;
    api.put(COORD, STAGINGWORKSPACE_GVR, {
      ...sw,
      metadata: { ...sw.metadata, finalizers: ['admin'], deletionTimestamp: new Date().toISOString() },
    });
    await controller.reconcile(SW, signal);
    expect(phase()).toBe('Terminating');
    expect(workspaces.deleted).toEqual(['root:staging:sw-1']);
  });

  it('is woken by an Assignment only for a resource new to a workspace or its last object leaving, not by other writes or more of the same', () => {
    const assignments = controller.watches()[1]!;
    const keysOf = (event: object): string[] => [...assignments.toKeys(event as never)];
    // As the informer calls it: after the store took the event.
    const a = api.get<Assignment>(COORD, ASSIGNMENT_GVR, '', 'a-1')!;
    expect(keysOf({ type: 'updated', old: a, object: { ...a, status: { ...a.status, conditions: [] } } })).toEqual([]);
    expect(keysOf({ type: 'updated', old: { ...a, status: {} }, object: a })).toEqual([SW]); // the first widget in sw-1
    const b = assign('a-2');
    expect(keysOf({ type: 'added', object: b })).toEqual([]); // sw-1 holds widgets already
    const moved = api.put<Assignment>(COORD, ASSIGNMENT_GVR, { ...a, status: { stagingWorkspace: 'other' } });
    expect(keysOf({ type: 'updated', old: a, object: moved })).toEqual(['other']); // sw-1 still holds a-2
    api.remove(COORD, ASSIGNMENT_GVR, '', 'a-2');
    expect(keysOf({ type: 'deleted', object: b })).toEqual([SW]); // the last widget left sw-1
    const gadget = api.put<Assignment>(COORD, ASSIGNMENT_GVR, {
      ...moved,
      metadata: { name: 'a-3' },
      spec: { ...moved.spec, gvr: { ...moved.spec.gvr, resource: 'gadgets' }, name: 'a-3' },
    });
    expect(keysOf({ type: 'added', object: gadget })).toEqual(['other']); // a resource its view does not claim yet
    api.remove(COORD, ASSIGNMENT_GVR, '', 'a-3');
    expect(keysOf({ type: 'deleted', object: gadget })).toEqual([]); // claims only widen, and other still holds a-1
    const sprocket = api.put<Assignment>(COORD, ASSIGNMENT_GVR, {
      ...moved,
      spec: { ...moved.spec, gvr: { ...moved.spec.gvr, resource: 'sprockets' } },
    });
    expect(keysOf({ type: 'updated', old: moved, object: sprocket })).toEqual(['other']); // its resource changed in place
  });

  describe('with the staging tree watched', () => {
    const TREE = 'tree-cluster';
    const MANAGED = { 'app.kubernetes.io/managed-by': 'resource-broker' };
    let stagingTree: ReturnType<typeof api.informer<WorkspaceObject>>;
    let kcpReads: string[];
    let watched: StagingWorkspaceController;
    /** kcp's Workspace, with the fields the cache does not keep. */
    const kcpWorkspace = (name: string, fields: { labels?: Record<string, string>; phase: string; cluster?: string }): WorkspaceObject =>
      api.put<WorkspaceObject>(TREE, WORKSPACES, {
        apiVersion: 'tenancy.kcp.io/v1alpha1',
        kind: 'Workspace',
        metadata: { name, creationTimestamp: new Date(0).toISOString(), managedFields: [{ manager: 'kcp' }], labels: fields.labels ?? {} },
        spec: { type: { name: 'universal', path: 'root' }, ...(fields.cluster ? { cluster: fields.cluster } : {}) },
        status: { phase: fields.phase, conditions: [{ type: 'WorkspaceScheduled', status: 'False' }] },
      } as WorkspaceObject);
    const swStatus = (name: string) => api.get<StagingWorkspace>(COORD, STAGINGWORKSPACE_GVR, '', name)?.status;

    beforeEach(() => {
      stagingTree = api.informer<WorkspaceObject>(WORKSPACES, {
        clusters: [TREE],
        labelSelector: 'app.kubernetes.io/managed-by=resource-broker',
        transform: workspaceStateOf,
      });
      kcpReads = [];
      watched = new StagingWorkspaceController({
        ...memoryCoordination(api, COORD),
        workspaces: {
          get: async (parent, name) => {
            kcpReads.push(`${parent}:${name}`);
            return api.get<WorkspaceObject>(TREE, WORKSPACES, '', name);
          },
          create: async (_parent, name, options) => {
            if (api.get(TREE, WORKSPACES, '', name)) return; // kcp's AlreadyExists, which create swallows
            kcpWorkspace(name, { labels: options?.labels ?? {}, phase: 'Scheduling' });
          },
          delete: async () => true,
        },
        clients: { inWorkspace: (cluster, gvr) => api.client(cluster, gvr) as never },
        stagingRoot: 'root:staging',
        stagingTree,
        logger: silentLogger(),
        now: () => clock,
      });
    });

    it('reads a workspace kcp is still making from the cache and waits for its event, not polled', async () => {
      api.put<StagingWorkspace>(COORD, STAGINGWORKSPACE_GVR, {
        apiVersion: 'coord.broker.platform-mesh.io/v1alpha1',
        kind: 'StagingWorkspace',
        metadata: { name: 'sw-new' },
        spec: { consumerCluster: 'consumer', providerCluster: 'provider', apiExportName: 'widgets' },
      } as StagingWorkspace);
      api.put(COORD, ASSIGNMENT_GVR, { ...assign('n-1'), status: { stagingWorkspace: 'sw-new' } });
      expect(await watched.reconcile('sw-new', signal)).toBeUndefined(); // created (absence asked of kcp); its event brings the next round
      expect(kcpReads).toEqual(['root:staging:sw-new']);
      expect(await watched.reconcile('sw-new', signal)).toBeUndefined(); // still Scheduling
      expect(swStatus('sw-new')?.conditions?.find((c) => c.type === 'WorkspaceReady')?.message).toBe('workspace phase Scheduling');
      expect(kcpReads).toHaveLength(1);
      // The cache keeps what the controller reads, no more.
      expect(stagingTree.store.list()).toEqual([
        {
          apiVersion: 'tenancy.kcp.io/v1alpha1',
          kind: 'Workspace',
          metadata: expect.objectContaining({ name: 'sw-new', creationTimestamp: expect.any(String) }),
          spec: {},
          status: { phase: 'Scheduling' },
        },
      ]);
      expect(stagingTree.store.list()[0]!.metadata).not.toHaveProperty('managedFields');
      const deleting = workspaceStateOf({
        ...api.get<WorkspaceObject>(TREE, WORKSPACES, '', 'sw-new')!,
        metadata: { name: 'sw-new', deletionTimestamp: 'then' },
      });
      expect(deleting.metadata.deletionTimestamp).toBe('then');
      // kcp makes it Ready: the event names the StagingWorkspace, whose next round goes on to bind.
      const ready = kcpWorkspace('sw-new', { labels: MANAGED, phase: 'Ready', cluster: 'c-new' });
      const treeWatch = watched.watches().find((w) => w.informer === (stagingTree as unknown))!;
      expect([...treeWatch.toKeys({ type: 'updated', old: ready, object: ready } as never)]).toEqual(['sw-new']);
      await watched.reconcile('sw-new', signal);
      expect(api.get<APIBindingObject>('c-new', APIBINDINGS, '', 'widgets')?.spec.reference.export).toEqual({
        path: 'provider',
        name: 'widgets',
      });
      expect(kcpReads).toHaveLength(2); // kcp's word on a workspace new to the record, once
      await watched.reconcile('sw-new', signal); // the binding settling: from the cache
      expect(kcpReads).toHaveLength(2);
    });

    it("goes by kcp, and keeps polling, for a workspace the cache does not show (not labelled as the broker's): never created again, never released", async () => {
      kcpWorkspace(SW, { phase: 'Initializing' }); // its label removed by hand
      expect(await watched.reconcile(SW, signal)).toEqual({ requeueAfterMs: 500 });
      expect(swStatus(SW)?.conditions?.find((c) => c.type === 'WorkspaceReady')?.message).toBe('workspace phase Initializing');
      // Its last object goes: the record is released only once kcp says the workspace is gone.
      api.remove(COORD, ASSIGNMENT_GVR, '', 'a-1');
      for (let round = 0; round < 4; round++) {
        await watched.reconcile(SW, signal);
        clock += 2_000;
      }
      expect(swStatus(SW)?.phase).toBe('Terminating');
      expect(api.get(COORD, STAGINGWORKSPACE_GVR, '', SW)).toBeDefined();
    });

    it("marks a workspace Ready by kcp's word, not by a cache still showing it Ready after the teardown deleted it", async () => {
      // The served workspace of the outer set-up, as the cache last saw it.
      kcpWorkspace(SW, { labels: MANAGED, phase: 'Ready', cluster: CLUSTER });
      // The teardown marked it and deleted the workspace; an Assignment comes before the cache hears of the delete.
      const sw = api.get<StagingWorkspace>(COORD, STAGINGWORKSPACE_GVR, '', SW)!;
      api.put(COORD, STAGINGWORKSPACE_GVR, { ...sw, status: { ...sw.status!, phase: 'Terminating' } });
      const cached = stagingTree.store.list()[0]!;
      api.put(TREE, WORKSPACES, {
        ...api.get<WorkspaceObject>(TREE, WORKSPACES, '', SW)!,
        metadata: { ...cached.metadata, labels: {}, deletionTimestamp: 'now' },
      });
      stagingTree.store.upsert(cached); // the cache, a step behind
      const writes = api.writes.length;
      expect(await watched.reconcile(SW, signal)).toEqual({ requeueAfterMs: 500 });
      expect(swStatus(SW)?.phase).toBe('Terminating');
      expect(api.writes.slice(writes)).toEqual([]); // nothing written into the workspace kcp is deleting
    });

    it("asks kcp and polls while the tree's watch is down (its cache may be any age)", async () => {
      kcpWorkspace(SW, { labels: MANAGED, phase: 'Initializing' });
      Object.defineProperty(stagingTree, 'connected', { get: () => false });
      expect(await watched.reconcile(SW, signal)).toEqual({ requeueAfterMs: 500 });
      expect(kcpReads).toEqual([`root:staging:${SW}`]);
      expect(swStatus(SW)?.phase).toBe('Pending');
    });

    it("takes a Ready record back to Pending by kcp's word only, not by a cache a step behind", async () => {
      expect(swStatus(SW)).toMatchObject({ phase: 'Ready', clusterName: CLUSTER });
      // The cache's first news of the workspace comes late, older than what kcp says now.
      kcpWorkspace(SW, { labels: MANAGED, phase: 'Ready', cluster: CLUSTER });
      stagingTree.store.upsert(
        workspaceStateOf({ ...api.get<WorkspaceObject>(TREE, WORKSPACES, '', SW)!, status: { phase: 'Initializing' } }),
      );
      await watched.reconcile(SW, signal);
      expect(swStatus(SW)).toMatchObject({ phase: 'Ready', clusterName: CLUSTER });
      expect(kcpReads).toEqual([`root:staging:${SW}`]);
      // kcp says so too: Pending.
      kcpWorkspace(SW, { labels: MANAGED, phase: 'Initializing' });
      await watched.reconcile(SW, signal);
      expect(swStatus(SW)?.phase).toBe('Pending');
    });
  });
});
