import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryApi } from '../../../test/fakes/memory-api.ts';
import { APIEXPORT_NAME_ANNOTATION, MANAGED_BY_LABEL, MANAGER, verificationWorkspaceName } from '../../apis/names.ts';
import { ACCEPTAPI_GVR, type AcceptAPI, type AcceptAPILoad, type Condition } from '../../apis/types.ts';
import type { Clients } from '../../kcp-client-ts/clients.ts';
import type { GroupVersionResource, KubeObject } from '../../kcp-client-ts/types.ts';
import { silentLogger } from '../../logging.ts';
import { ClusterScopes, InformerScope } from '../../runtime/informer-scope.ts';
import { encodeKey } from '../../runtime/object-key.ts';
import { AcceptAPIController, VERIFICATION_GC_KEY, WORKSPACES } from './controller.ts';

const ROOT = 'root:platform:broker:verification';
const PROVIDER = 'provider-1';
const CERTIFICATES: GroupVersionResource = { group: 'example.platform-mesh.io', version: 'v1alpha1', resource: 'certificates' };
const WS = verificationWorkspaceName(PROVIDER, 'certificates');

type WorkspaceObject = KubeObject & { spec: { cluster?: string }; status?: { phase?: string } };

/** A promise the test resolves, and one that says the code under test has reached it. */
const gate = () => {
  let open = (): void => undefined;
  let reach = (): void => undefined;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  const reached = new Promise<void>((resolve) => {
    reach = resolve;
  });
  const wait = (): Promise<void> => {
    reach();
    return opened;
  };
  return { open, reached, wait };
};

/**
 * The AcceptAPIController over a MemoryApi: verification workspaces are objects in ROOT; the
 * workspace list (clean-up), get (reconcile) and delete (clean-up) can each be held at a gate,
 * to interleave a reconcile and the clean-up exactly.
 */
class World {
  readonly api = new MemoryApi();
  readonly signal = new AbortController().signal;
  readonly gates: { list?: () => Promise<void>; get?: () => Promise<void>; delete?: () => Promise<void> } = {};
  readonly controller: AcceptAPIController;

  /** The load each AcceptAPI reports, as the test sets it (by name). */
  readonly loads = new Map<string, AcceptAPILoad>();
  /** Whether the coordination caches have synced (the counts are known). */
  known = true;
  /** When true, the server prunes the load fields (an export on the v1alpha1-4 schema). */
  oldSchema = false;

  constructor() {
    const { api, gates, loads } = this;
    const acceptAPIClient = (cluster: string) => {
      const client = api.client<AcceptAPI>(cluster, ACCEPTAPI_GVR);
      const mergePatch: typeof client.mergePatch = async (target, patch, signal) => {
        if (!this.oldSchema) return client.mergePatch(target, patch, signal);
        const { servedObjects: _s, migrationsOut: _m, ...status } = (patch as { status: Record<string, unknown> }).status;
        return client.mergePatch(target, { status }, signal);
      };
      return { ...client, mergePatch };
    };
    const workspaceClient = () => api.client<WorkspaceObject>(ROOT, WORKSPACES);
    // Only what the controller uses before a workspace is Ready: the list of verification workspaces.
    const clients = {
      inWorkspace: (workspace: string, gvr: GroupVersionResource) => {
        const client = api.client(workspace, gvr);
        const list = async (options: object) => {
          await gates.list?.();
          return client.list(options);
        };
        return { ...client, list };
      },
    } as unknown as Pick<Clients, 'inWorkspace'>;
    this.controller = new AcceptAPIController({
      acceptAPIs: api.informer<AcceptAPI>(ACCEPTAPI_GVR),
      acceptAPIClient,
      workspaces: {
        get: async (_parent, name) => {
          await gates.get?.();
          return workspaceClient().find({ name });
        },
        create: async (_parent, name, options = {}) =>
          void (await workspaceClient().createIfAbsent({
            apiVersion: 'tenancy.kcp.io/v1alpha1',
            kind: 'Workspace',
            metadata: { name, ...(options.labels ? { labels: options.labels } : {}) },
            spec: {},
          })),
        delete: async (_parent, name) => {
          await gates.delete?.();
          return workspaceClient().delete({ name });
        },
      },
      clients,
      verificationRoot: ROOT,
      verificationScopes: new ClusterScopes(new InformerScope({ name: 'verification' })),
      load: {
        of: (a) => loads.get(a.metadata.name ?? '') ?? { servedObjects: 0, migrationsOut: 0 },
        known: () => this.known,
        everyMs: 3_600_000,
      },
      logger: silentLogger(),
    });
  }

  /** A provider creates (or changes) an AcceptAPI for certificates. */
  accept(name: string, naming: { apiExportName?: string; annotation?: string }): void {
    this.api.put<AcceptAPI>(PROVIDER, ACCEPTAPI_GVR, {
      apiVersion: 'broker.platform-mesh.io/v1alpha1',
      kind: 'AcceptAPI',
      metadata: { name, ...(naming.annotation ? { annotations: { [APIEXPORT_NAME_ANNOTATION]: naming.annotation } } : {}) },
      spec: { gvr: CERTIFICATES, ...(naming.apiExportName ? { apiExportName: naming.apiExportName } : {}) },
    });
  }

  /** A verification workspace left from before, which the broker made. */
  existingWorkspace(name: string): void {
    this.api.put(ROOT, WORKSPACES, { metadata: { name, labels: { [MANAGED_BY_LABEL]: MANAGER } }, spec: {} });
  }

  acceptAPI(name: string): AcceptAPI | undefined {
    return this.api.get<AcceptAPI>(PROVIDER, ACCEPTAPI_GVR, '', name);
  }

  condition(name: string, type: string): Condition | undefined {
    return this.acceptAPI(name)?.status?.conditions?.find((c) => c.type === type);
  }

  workspace(name: string): WorkspaceObject | undefined {
    return this.api.get<WorkspaceObject>(ROOT, WORKSPACES, '', name);
  }

  reconcile(name: string) {
    return this.controller.reconcile(encodeKey({ cluster: PROVIDER, namespace: '', name }), this.signal);
  }

  collectGarbage() {
    return this.controller.reconcile(VERIFICATION_GC_KEY, this.signal);
  }
}

describe('AcceptAPIController: verification workspaces and their clean-up', () => {
  let world: World;
  beforeEach(() => {
    world = new World();
  });

  it('never deletes a workspace a reconcile created while the clean-up was listing', async () => {
    // The clean-up starts before the AcceptAPI is in the cache and waits for its list...
    const listing = gate();
    world.gates.list = listing.wait;
    const cleanup = world.collectGarbage();
    await listing.reached;
    // ...meanwhile the AcceptAPI arrives and its reconcile creates the verification workspace...
    world.accept('certs', { apiExportName: 'certificates' });
    await world.reconcile('certs');
    expect(world.workspace(WS)).toBeDefined();
    // ...then the list answers, with the new workspace in it.
    listing.open();
    await cleanup;

    expect(world.workspace(WS)).toBeDefined();
    expect(world.api.log({ resource: 'workspaces' })).toEqual([`create ${ROOT}/workspaces /${WS}`]);
    expect(world.acceptAPI('certs')?.status).toMatchObject({ verificationWorkspace: WS, verificationWorkspacePath: `${ROOT}:${WS}` });
  });

  it('lets a reconcile wait for a delete of its workspace under way, then makes it again', async () => {
    world.existingWorkspace(WS); // nobody names it: the clean-up deletes it
    const deleting = gate();
    world.gates.delete = deleting.wait;
    const cleanup = world.collectGarbage();
    await deleting.reached;
    // An AcceptAPI naming that export arrives while the delete is in flight.
    world.accept('certs', { apiExportName: 'certificates' });
    const reconcile = world.reconcile('certs');
    await new Promise((resolve) => setImmediate(resolve));
    expect(world.api.log({ resource: 'workspaces' })).toEqual([]);
    deleting.open();
    await Promise.all([cleanup, reconcile]);

    expect(world.api.log({ resource: 'workspaces' })).toEqual([`delete ${ROOT}/workspaces /${WS}`, `create ${ROOT}/workspaces /${WS}`]);
    expect(world.workspace(WS)).toBeDefined();
  });

  it('leaves a workspace a reconcile is using to the next clean-up, which deletes it once nobody names it', async () => {
    world.existingWorkspace(WS);
    world.accept('certs', { apiExportName: 'certificates' });
    const reading = gate();
    world.gates.get = reading.wait;
    const reconcile = world.reconcile('certs');
    await reading.reached;
    // The provider deletes the AcceptAPI while its reconcile still reads the workspace.
    world.api.remove(PROVIDER, ACCEPTAPI_GVR, '', 'certs');

    expect(await world.collectGarbage()).toEqual({ requeueAfterMs: expect.any(Number) });
    expect(world.workspace(WS)).toBeDefined();
    reading.open();
    await reconcile;
    delete world.gates.get;
    expect(await world.collectGarbage()).toBeUndefined();
    expect(world.workspace(WS)).toBeUndefined();
  });

  it('keeps a workspace another AcceptAPI of the same export still names', async () => {
    world.accept('certs-a', { apiExportName: 'certificates' });
    world.accept('certs-b', { apiExportName: 'certificates' });
    await world.reconcile('certs-a');
    await world.reconcile('certs-b');
    world.api.remove(PROVIDER, ACCEPTAPI_GVR, '', 'certs-a');
    await world.collectGarbage();
    expect(world.workspace(WS)).toBeDefined();
    world.api.remove(PROVIDER, ACCEPTAPI_GVR, '', 'certs-b');
    await world.collectGarbage();
    expect(world.workspace(WS)).toBeUndefined();
  });
});

describe('AcceptAPIController: naming the export', () => {
  let world: World;
  beforeEach(() => {
    world = new World();
  });

  it('reads the standalone annotation when spec.apiExportName is absent, and says it is deprecated', async () => {
    world.accept('certs', { annotation: 'certificates' });
    await world.reconcile('certs');

    expect(world.workspace(WS)).toBeDefined(); // the verification workspace of the annotated export
    expect(world.acceptAPI('certs')?.status).toMatchObject({ verificationWorkspace: WS, verificationWorkspacePath: `${ROOT}:${WS}` });
    expect(world.condition('certs', 'Deprecated')).toMatchObject({
      status: 'True',
      reason: 'APIExportNameAnnotation',
      message: expect.stringContaining(`${APIEXPORT_NAME_ANNOTATION}, which is deprecated: set spec.apiExportName: certificates`),
    });

    // Once the provider sets the field the condition goes; the field wins over the annotation.
    world.accept('certs', { apiExportName: 'certificates', annotation: 'something-else' });
    await world.reconcile('certs');
    expect(world.condition('certs', 'Deprecated')).toBeUndefined();
    expect(world.acceptAPI('certs')?.status?.verificationWorkspace).toBe(WS);
  });

  it('is not Ready when neither spec.apiExportName nor the annotation names an export, and says which field to set', async () => {
    world.accept('nameless', {});
    await world.reconcile('nameless');

    expect(world.condition('nameless', 'Ready')).toMatchObject({
      status: 'False',
      reason: 'MissingAPIExportName',
      message: expect.stringContaining('spec.apiExportName is required'),
    });
    expect(world.api.log({ resource: 'workspaces' })).toEqual([]);
    expect(world.acceptAPI('nameless')?.status?.verificationWorkspace).toBeUndefined();
  });
});

describe('AcceptAPIController: the load in status (beyond the Go project)', () => {
  let world: World;
  beforeEach(() => {
    world = new World();
    world.controller.queue.start();
  });
  afterEach(async () => {
    world.controller.stopLoadReports();
    await world.controller.queue.shutdown();
  });
  const statusWrites = () => world.api.log({ resource: 'acceptapis' });

  it('writes the load when it differs from the status, once, and nothing while it stays', async () => {
    world.accept('certs', { apiExportName: 'certificates' });
    world.loads.set('certs', { servedObjects: 7, migrationsOut: 2 });
    world.controller.reportLoads();
    await world.controller.queue.idle();
    expect(world.acceptAPI('certs')?.status).toMatchObject({ servedObjects: 7, migrationsOut: 2 });
    expect(statusWrites()).toHaveLength(1);

    world.controller.reportLoads();
    await world.controller.queue.idle();
    expect(statusWrites()).toHaveLength(1);

    world.loads.set('certs', { servedObjects: 9, migrationsOut: 0 });
    world.controller.reportLoads();
    await world.controller.queue.idle();
    expect(world.acceptAPI('certs')?.status).toMatchObject({ servedObjects: 9, migrationsOut: 0 });
    expect(statusWrites()).toHaveLength(2);
  });

  it('keeps the reported load through a verdict write, and the verdict through a load write', async () => {
    world.accept('nameless', {});
    world.loads.set('nameless', { servedObjects: 3, migrationsOut: 1 });
    world.controller.reportLoads();
    await world.controller.queue.idle();
    await world.reconcile('nameless');
    expect(world.acceptAPI('nameless')?.status).toMatchObject({ servedObjects: 3, migrationsOut: 1 });
    expect(world.condition('nameless', 'Ready')).toMatchObject({ status: 'False', reason: 'MissingAPIExportName' });

    world.loads.set('nameless', { servedObjects: 4, migrationsOut: 0 });
    world.controller.reportLoads();
    await world.controller.queue.idle();
    expect(world.acceptAPI('nameless')?.status).toMatchObject({ servedObjects: 4, migrationsOut: 0 });
    expect(world.condition('nameless', 'Ready')).toMatchObject({ status: 'False', reason: 'MissingAPIExportName' });
  });

  it('writes a verdict again when its write lost the race to a load report (whose event wakes nothing)', async () => {
    world.accept('nameless', {});
    world.loads.set('nameless', { servedObjects: 2, migrationsOut: 0 });
    // The load report lands, but the cache has not seen it when the verdict is written: a conflict.
    world.api.lagging = true;
    world.controller.reportLoads();
    await world.controller.queue.idle();
    await world.reconcile('nameless');
    expect(world.condition('nameless', 'Ready')).toBeUndefined();
    world.api.flush();
    world.api.lagging = false;
    await new Promise((resolve) => setTimeout(resolve, 1_300));
    await world.controller.queue.idle();
    expect(world.condition('nameless', 'Ready')).toMatchObject({ status: 'False', reason: 'MissingAPIExportName' });
    expect(world.acceptAPI('nameless')?.status).toMatchObject({ servedObjects: 2, migrationsOut: 0 });
  });

  it('does not reconcile an AcceptAPI again for its own load write, but does for any other change', () => {
    world.accept('certs', { apiExportName: 'certificates' });
    const old = world.acceptAPI('certs')!;
    const [watch] = world.controller.watches();
    const loadOnly = { ...old, metadata: { ...old.metadata, resourceVersion: '99' }, status: { servedObjects: 5, migrationsOut: 0 } };
    expect([...watch!.toKeys({ type: 'updated', old, object: loadOnly } as never)]).toEqual([]);
    const respecced = { ...loadOnly, spec: { ...old.spec, priority: 2 } };
    expect([...watch!.toKeys({ type: 'updated', old, object: respecced } as never)]).toHaveLength(1);
    const relabelled = { ...loadOnly, metadata: { ...loadOnly.metadata, labels: { team: 'b' } } };
    expect([...watch!.toKeys({ type: 'updated', old, object: relabelled } as never)]).toHaveLength(1);
  });

  it('reports nothing before the counts are known (coordination caches still filling)', async () => {
    world.accept('certs', { apiExportName: 'certificates' });
    world.known = false;
    world.controller.reportLoads();
    await world.controller.queue.idle();
    expect(statusWrites()).toEqual([]);
  });

  it('verifies an AcceptAPI named "load", whose key is no load report', async () => {
    world.accept('load', {});
    await world.reconcile('load');
    expect(world.condition('load', 'Ready')).toMatchObject({ status: 'False', reason: 'MissingAPIExportName' });
  });

  it('stops reporting to an AcceptAPI whose schema drops the fields, until the object changes', async () => {
    world.oldSchema = true;
    world.accept('certs', { apiExportName: 'certificates' });
    world.loads.set('certs', { servedObjects: 2, migrationsOut: 0 });
    for (let i = 0; i < 3; i++) {
      world.controller.reportLoads();
      await world.controller.queue.idle();
    }
    expect(statusWrites()).toHaveLength(1);
    // The platform applies the new schema; the next change of the object lets the report try again.
    world.oldSchema = false;
    world.accept('certs', { apiExportName: 'certificates', annotation: 'certificates' });
    world.controller.reportLoads();
    await world.controller.queue.idle();
    expect(world.acceptAPI('certs')?.status).toMatchObject({ servedObjects: 2, migrationsOut: 0 });
  });

  it('reports nothing for an AcceptAPI being deleted', async () => {
    world.accept('certs', { apiExportName: 'certificates' });
    const a = world.acceptAPI('certs')!;
    world.api.put<AcceptAPI>(PROVIDER, ACCEPTAPI_GVR, {
      ...a,
      metadata: { ...a.metadata, deletionTimestamp: '2026-01-01T00:00:00Z', finalizers: ['x'] },
    });
    world.loads.set('certs', { servedObjects: 1, migrationsOut: 0 });
    world.controller.reportLoads();
    await world.controller.queue.idle();
    expect(statusWrites()).toEqual([]);
  });
});
