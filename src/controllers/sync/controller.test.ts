import { beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiError } from '../../kcp-client-ts/errors.ts';
import { UnroutableClusterError } from '../../kcp-client-ts/virtual-workspace.ts';
import { formatWrite } from '../../../test/fakes/memory-api.ts';
import {
  APIBINDINGS,
  COORD,
  CONSUMER,
  PROVIDER_FINALIZER,
  SyncWorld,
  WIDGETS,
  clusterOfStagingWorkspace,
} from '../../../test/fakes/sync-world.ts';
import {
  assignmentName,
  CONSUMER_CLUSTER_ANNOTATION,
  CONSUMER_NAME_ANNOTATION,
  FINALIZER,
  MANAGED_BY_LABEL,
  MANAGER,
  OWNER_LABEL,
  OWNER_UID_ANNOTATION,
  relatedOwnerOf,
  stagingWorkspaceName,
} from '../../apis/names.ts';
import { ACCEPTAPI_GVR, ASSIGNMENT_GVR, STAGINGWORKSPACE_GVR, type Assignment, type StagingWorkspace } from '../../apis/types.ts';
import { CLUSTER_ANNOTATION, CONFIGMAPS, SECRETS, type KubeObject } from '../../kcp-client-ts/types.ts';
import { encodeKey, type ObjectKey } from '../../runtime/object-key.ts';
import { ORPHAN_ANNOTATION } from './finalizer.ts';

const ASSIGNMENT = assignmentName(CONSUMER, WIDGETS, 'default', 'w1');
const STAGING = stagingWorkspaceName(CONSUMER, 'provider-a', 'export-a');
const WS = clusterOfStagingWorkspace(STAGING);
const secretRef = (name: string, namespace?: string) => ({
  name,
  ...(namespace ? { namespace } : {}),
  gvk: { group: '', version: 'v1', kind: 'Secret' },
});

/** A provider that publishes a Secret next to each copy and names it (plus `extra` entries) in status.relatedResources. */
const publishingSecret =
  (extra: Record<string, unknown> = {}) =>
  (copy: KubeObject, cluster: string, api: SyncWorld['api']) => {
    const name = `${copy.metadata.name}-tls`;
    api.put(cluster, SECRETS, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace: copy.metadata.namespace },
      data: { 'tls.crt': 'Y3J0' },
    });
    return { status: 'Available', url: `https://${copy.metadata.name}.example`, relatedResources: { tls: secretRef(name), ...extra } };
  };

/** The writes since `mark` (an index into the log). */
const since = (world: SyncWorld, mark: number): string[] => world.api.log().slice(mark);

describe('SyncController', () => {
  let world: SyncWorld;
  let key: ObjectKey;
  beforeEach(() => {
    world = new SyncWorld();
    world.acceptAPI('provider-a', 'widgets-a', 'export-a');
    key = world.createWidget('default', 'w1', { size: 2 }, CONSUMER, {
      metadata: { labels: { app: 'shop' }, annotations: { note: 'hello' } },
    });
  });

  it('adds its finalizer, places the object and creates its StagingWorkspace on the first reconcile', async () => {
    await world.reconcile(key);

    expect(world.api.log()).toEqual([
      `patch ${CONSUMER}/widgets default/w1`,
      `create ${COORD}/assignments /${ASSIGNMENT}`,
      `updateStatus ${COORD}/assignments /${ASSIGNMENT}`,
      `create ${COORD}/stagingworkspaces /${STAGING}`,
    ]);
    expect(world.widget(key)?.metadata.finalizers).toEqual([FINALIZER]);
    expect(world.assignments()).toMatchObject([{ spec: { providerCluster: 'provider-a' }, status: { stagingWorkspace: STAGING } }]);
    expect(world.api.get<StagingWorkspace>(COORD, STAGINGWORKSPACE_GVR, '', STAGING)?.spec).toEqual({
      consumerCluster: CONSUMER,
      providerCluster: 'provider-a',
      apiExportName: 'export-a',
    });
    expect(world.events.of('Assigned')).toMatchObject([{ object: `${CONSUMER}/default/w1`, type: 'Normal' }]);

    // Until the StagingWorkspace is Ready there is nothing more to do.
    await world.reconcile(key);
    expect(world.api.writes).toHaveLength(4);
  });

  it('records NoMatchingProvider and says so in a BrokerPlaced=False condition until a provider takes the object', async () => {
    world.api.remove('provider-a', ACCEPTAPI_GVR, '', 'widgets-a');
    await world.reconcile(key);
    expect(world.api.log()).toEqual([`patch ${CONSUMER}/widgets default/w1`, `updateStatus ${CONSUMER}/widgets default/w1`]);
    expect(world.events.of('NoMatchingProvider')).toHaveLength(1);
    const pending = (world.widget(key)!['status'] as { conditions: Record<string, string>[] }).conditions;
    expect(pending).toMatchObject([{ type: 'BrokerPlaced', status: 'False', reason: 'NoMatchingProvider' }]);
    expect(pending[0]!['message']).toContain('no');
    // Waiting on: the same reason writes nothing more.
    await world.reconcile(key);
    expect(world.api.writes).toHaveLength(2);

    // A provider appears: the object is placed and the condition goes before any provider status.
    world.provider = () => undefined;
    world.acceptAPI('provider-a', 'widgets-a', 'export-a');
    await world.settle(key);
    expect(world.assignments()).toHaveLength(1);
    expect(world.widget(key)?.['status']).toEqual({});
  });

  it('serves a placed object even when the consumer refuses the removal of its pending condition', async () => {
    world.api.remove('provider-a', ACCEPTAPI_GVR, '', 'widgets-a');
    await world.reconcile(key);
    world.acceptAPI('provider-a', 'widgets-a', 'export-a');
    // Every status write on the consumer object is refused from now on.
    for (let i = 0; i < 20; i++)
      world.api.failNextWrite(
        { verb: 'updateStatus', resource: 'widgets' },
        new ApiError({ status: 403, reason: 'Forbidden', message: 'denied by an admission policy', method: 'PUT', url: 'memory://' }),
      );
    await world.settle(key);
    expect(world.assignments()).toHaveLength(1);
    expect(world.copyIn(STAGING, key)?.['spec']).toEqual({ size: 2 });
  });

  it("drops a BrokerPlaced condition a provider writes: that condition is the broker's", async () => {
    world.provider = () => ({
      status: 'Ready',
      conditions: [
        { type: 'BrokerPlaced', status: 'False', reason: 'NoMatchingProvider' },
        { type: 'Ready', status: 'True' },
      ],
    });
    await world.settle(key);
    expect(world.widget(key)?.['status']).toEqual({ status: 'Ready', conditions: [{ type: 'Ready', status: 'True' }] });
  });

  it("creates the staging copy with the consumer's spec, labels and annotations once the StagingWorkspace is Ready", async () => {
    await world.reconcile(key);
    world.stagingWorkspacesReady();
    const mark = world.api.writes.length;

    await world.reconcile(key);

    expect(since(world, mark)).toEqual([
      `create ${WS}/namespaces /default`,
      `create ${WS}/widgets default/w1`,
      `updateStatus ${COORD}/assignments /${ASSIGNMENT}`,
    ]);
    const copy = world.copyIn(STAGING, key)!;
    expect(copy['spec']).toEqual({ size: 2 });
    expect(copy.metadata.labels).toEqual({ app: 'shop' });
    expect(copy.metadata.annotations).toEqual({
      note: 'hello',
      [CONSUMER_CLUSTER_ANNOTATION]: CONSUMER,
      [CONSUMER_NAME_ANNOTATION]: 'w1',
      [CLUSTER_ANNOTATION]: WS,
    });
    expect(copy.metadata.finalizers).toBeUndefined();
    expect(world.assignments()[0]?.status?.phase).toBe('Bound');

    // A spec edit reaches the copy; an unchanged object writes nothing.
    const widget = world.widget(key)!;
    world.api.put(CONSUMER, WIDGETS, { ...widget, spec: { size: 5 } });
    await world.reconcile(key);
    await world.reconcile(key);
    expect(since(world, mark).slice(3)).toEqual([`update ${WS}/widgets default/w1`]);
    expect(world.copyIn(STAGING, key)?.['spec']).toEqual({ size: 5 });
  });

  it("brings the provider's status on the copy up to the consumer object", async () => {
    world.provider = () => ({ status: 'Provisioning' });
    await world.settle(key);
    expect(world.widget(key)?.['status']).toEqual({ status: 'Provisioning' });

    const copy = world.copyIn(STAGING, key)!;
    world.api.put(WS, WIDGETS, { ...copy, status: { status: 'Available', url: 'https://w1.example' } });
    const mark = world.api.writes.length;
    await world.settle(key);

    expect(since(world, mark)).toEqual([`updateStatus ${CONSUMER}/widgets default/w1`]);
    expect(world.widget(key)?.['status']).toEqual({ status: 'Available', url: 'https://w1.example' });
    expect(world.widget(key)?.['spec']).toEqual({ size: 2 });
  });

  it('keeps the last status and says why when the consumer API refuses the provider status, instead of retrying it', async () => {
    await world.settle(key);
    const copy = world.copyIn(STAGING, key)!;
    world.api.put(WS, WIDGETS, { ...copy, status: { status: 'Weird' } });
    world.api.failNextWrite(
      { verb: 'updateStatus', resource: 'widgets' },
      new ApiError({
        status: 422,
        reason: 'Invalid',
        message: 'status.status: Unsupported value: "Weird"',
        method: 'PUT',
        url: 'memory://',
      }),
    );
    await world.settle(key); // settles: no retry loop

    expect(world.widget(key)?.['status']).toEqual({ status: 'Available' });
    expect(world.events.of('StatusRefused').map((e) => e.message)).toEqual([
      expect.stringContaining('status.status: Unsupported value: "Weird"'),
    ]);
    expect(world.copyIn(STAGING, key)?.['status']).toEqual({ status: 'Weird' });
  });

  it("copies a related Secret of the copy's namespace and refuses other namespaces and kube-system with an Event", async () => {
    world.provider = publishingSecret({ elsewhere: secretRef('stolen', 'other'), system: secretRef('admin', 'kube-system') });
    await world.settle(key);

    const secrets = world.api.list(CONSUMER, SECRETS);
    expect(secrets.map((s) => `${s.metadata.namespace}/${s.metadata.name}`)).toEqual(['default/w1-tls']);
    expect(secrets[0]?.['data']).toEqual({ 'tls.crt': 'Y3J0' });
    expect(secrets[0]?.metadata.labels).toEqual({
      [OWNER_LABEL]: relatedOwnerOf(CONSUMER, WIDGETS, 'default', 'w1'),
      [MANAGED_BY_LABEL]: MANAGER,
    });
    expect(secrets[0]?.metadata.annotations?.[OWNER_UID_ANNOTATION]).toBe(world.widget(key)?.metadata.uid);
    const refused = world.events.of('RelatedResourceRefused');
    expect(refused.length).toBeGreaterThan(0);
    expect(refused[0]?.type).toBe('Warning');
    expect(refused[0]?.message).toContain('elsewhere: namespace "other" is not the object\'s namespace "default"');
    expect(refused[0]?.message).toContain('system: namespace "kube-system"');
  });

  it('follows changes of a related Secret, and deletes its copy once the provider stops naming it', async () => {
    world.provider = publishingSecret();
    await world.settle(key);
    const published = world.api.get(WS, SECRETS, 'default', 'w1-tls')!;
    world.api.put(WS, SECRETS, { ...published, data: { 'tls.crt': 'cmVuZXdlZA==' } });
    const mark = world.api.writes.length;
    await world.settle(key);
    expect(since(world, mark)).toEqual([`update ${CONSUMER}/secrets default/w1-tls`]);
    expect(world.api.get(CONSUMER, SECRETS, 'default', 'w1-tls')?.['data']).toEqual({ 'tls.crt': 'cmVuZXdlZA==' });

    const copy = world.copyIn(STAGING, key)!;
    world.api.put(WS, WIDGETS, { ...copy, status: { status: 'Available' } });
    await world.settle(key);
    expect(since(world, mark).slice(1)).toEqual([
      `updateStatus ${CONSUMER}/widgets default/w1`,
      `delete ${CONSUMER}/secrets default/w1-tls`,
    ]);
    expect(world.api.list(CONSUMER, SECRETS)).toEqual([]);
  });

  it('finalizes an object whose owner label another consumer copied onto its own Secret, leaving that Secret alone', async () => {
    const other = 'consumer-2';
    world = new SyncWorld({ consumerClusters: [CONSUMER, other] });
    world.acceptAPI('provider-a', 'widgets-a', 'export-a');
    key = world.createWidget('default', 'w1', { size: 2 });
    world.provider = publishingSecret();
    await world.settle(key);
    // The owner label is a hash of names anyone may know: another tenant can put it on its own Secret.
    const forged = world.api.put(other, SECRETS, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 'w1-tls',
        namespace: 'default',
        labels: { [OWNER_LABEL]: relatedOwnerOf(CONSUMER, WIDGETS, 'default', 'w1'), [MANAGED_BY_LABEL]: MANAGER },
        annotations: { [OWNER_UID_ANNOTATION]: world.widget(key)?.metadata.uid ?? '' },
      },
      data: { theirs: 'eA==' },
    });

    world.deleteWidget(key);
    await world.settle(key);
    world.providersAct();
    await world.settle(key);

    // Counted as this object's copy, the other tenant's Secret would hold the finalizer for ever.
    expect(world.widget(key)).toBeUndefined();
    expect(world.api.list(CONSUMER, SECRETS)).toEqual([]);
    expect(JSON.stringify(world.api.get(other, SECRETS, 'default', 'w1-tls'))).toBe(JSON.stringify(forged));
  });

  it("leaves the consumer's own Secret of the same name untouched and says so with a RelatedResourceConflict Event", async () => {
    world.provider = publishingSecret();
    const mine = world.api.put(CONSUMER, SECRETS, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'w1-tls', namespace: 'default' },
      data: { mine: 'eA==' },
    });

    await world.settle(key);

    expect(JSON.stringify(world.api.get(CONSUMER, SECRETS, 'default', 'w1-tls'))).toBe(JSON.stringify(mine));
    expect(world.api.log({ cluster: CONSUMER, resource: 'secrets' })).toEqual([]);
    expect(world.events.of('RelatedResourceConflict')[0]?.message).toContain('Secret default/w1-tls');
    expect(world.widget(key)?.['status']).toMatchObject({ status: 'Available' }); // the object itself is served

    // Deleting the object does not take the consumer's Secret with it.
    world.deleteWidget(key);
    await world.settle(key);
    expect(JSON.stringify(world.api.get(CONSUMER, SECRETS, 'default', 'w1-tls'))).toBe(JSON.stringify(mine));
  });

  it('deletes related copies, then the staging copy (waiting while the provider holds it), then the Assignment, the finalizer last', async () => {
    world.provider = publishingSecret();
    await world.settle(key);
    const mark = world.api.writes.length;
    world.deleteWidget(key);

    expect(await world.reconcile(key)).toMatchObject({ requeueAfterMs: expect.any(Number) });
    expect(since(world, mark)).toEqual([`delete ${CONSUMER}/secrets default/w1-tls`]);

    expect(await world.reconcile(key)).toMatchObject({ requeueAfterMs: expect.any(Number) });
    expect(world.copyIn(STAGING, key)?.metadata.finalizers).toEqual([PROVIDER_FINALIZER]);
    expect(await world.reconcile(key)).toMatchObject({ requeueAfterMs: expect.any(Number) }); // still there: waits
    expect(since(world, mark)).toEqual([`delete ${CONSUMER}/secrets default/w1-tls`, `delete ${WS}/widgets default/w1`]);
    expect(world.assignments()).toHaveLength(1);
    expect(world.widget(key)?.metadata.finalizers).toEqual([FINALIZER]);

    world.providersAct(); // the provider finalizes its copy
    expect(await world.reconcile(key)).toBeUndefined();
    expect(since(world, mark)).toEqual([
      `delete ${CONSUMER}/secrets default/w1-tls`,
      `delete ${WS}/widgets default/w1`,
      `delete ${COORD}/assignments /${ASSIGNMENT}`,
      `patch ${CONSUMER}/widgets default/w1`,
    ]);
    expect(world.widget(key)).toBeUndefined();
    expect(world.assignments()).toEqual([]);
    expect(world.released).toEqual([STAGING]);
  });

  it('tells the consumer who holds its deletion up, and lets go of the provider copy only when the platform annotates the Assignment', async () => {
    world.provider = publishingSecret();
    await world.settle(key);
    world.deleteWidget(key);
    for (let i = 0; i < 3; i++) await world.reconcile(key);
    const copy = world.copyIn(STAGING, key)!;
    expect(copy.metadata.deletionTimestamp).toBeDefined();
    expect(world.events.recorded.filter((e) => e.reason === 'DeletionBlocked')).toEqual([]); // not yet: it was just deleted

    // The provider has held its copy for a minute.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 60_000 });
    try {
      await world.reconcile(key);
    } finally {
      vi.useRealTimers();
    }
    const blocked = world.events.recorded.filter((e) => e.reason === 'DeletionBlocked');
    expect(blocked).toHaveLength(1);
    expect(blocked[0]!.message).toContain(`held by finalizers ${PROVIDER_FINALIZER}`);
    expect(blocked[0]!.message).toContain('provider provider-a');
    expect(blocked[0]!.message).toContain(`Assignment ${ASSIGNMENT} (coordination workspace) with ${ORPHAN_ANNOTATION}=true`);
    const conditions = (world.widget(key)!['status'] as { conditions?: { type: string; status: string; reason: string }[] }).conditions;
    expect(conditions?.find((c) => c.type === 'DeletionBlocked')).toMatchObject({ status: 'True', reason: 'ProviderFinalizer' });
    expect(world.widget(key)?.metadata.finalizers).toEqual([FINALIZER]);
    expect(world.assignments()).toHaveLength(1);

    // The consumer cannot let go by itself: its own annotation changes nothing.
    const widget = world.widget(key)!;
    world.api.put(CONSUMER, WIDGETS, {
      ...widget,
      metadata: { ...widget.metadata, annotations: { ...widget.metadata.annotations, [ORPHAN_ANNOTATION]: 'true' } },
    });
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 60_000 });
    try {
      await world.reconcile(key);
    } finally {
      vi.useRealTimers();
    }
    expect(world.copyIn(STAGING, key)?.metadata.finalizers).toEqual([PROVIDER_FINALIZER]);

    // A platform admin lets go on the Assignment: the broker removes the provider's finalizer and finishes the deletion.
    const assignment = world.assignments()[0]!;
    world.api.put(COORD, ASSIGNMENT_GVR, {
      ...assignment,
      metadata: { ...assignment.metadata, annotations: { [ORPHAN_ANNOTATION]: 'true' } },
    });
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 60_000 });
    try {
      for (let i = 0; i < 4 && world.widget(key); i++) await world.reconcile(key);
    } finally {
      vi.useRealTimers();
    }
    expect(world.copyIn(STAGING, key)).toBeUndefined();
    expect(world.assignments()).toEqual([]);
    expect(world.widget(key)).toBeUndefined();
  });

  it('cleans up behind an object that was forced away without its finalizer running', async () => {
    world.provider = publishingSecret();
    await world.settle(key);
    world.api.remove(CONSUMER, WIDGETS, 'default', 'w1');
    await world.settle(key);
    expect(world.api.list(CONSUMER, SECRETS)).toEqual([]);
    expect(world.copyIn(STAGING, key)).toBeUndefined();
    expect(world.assignments()).toEqual([]);
  });

  it('keeps the provider copy of an object that left the cache but not the server (its shard left the slice, or a cache anomaly)', async () => {
    world.provider = publishingSecret();
    await world.settle(key);
    const copyBefore = world.copyIn(STAGING, key);
    expect(copyBefore).toBeDefined();
    const cached = world.consumers.objects.store.get(key)!;
    world.consumers.objects.store.remove(cached);
    await world.settle(key);
    expect(world.copyIn(STAGING, key)).toBeDefined();
    expect(world.assignments()).toHaveLength(1);

    // No shard is known to hold the workspace any more: out of reach, nothing is torn down either.
    const client = world.consumers.client;
    world.consumers.client = (cluster) => {
      throw new UnroutableClusterError('widgets', cluster, 1);
    };
    world.api.remove(CONSUMER, WIDGETS, 'default', 'w1');
    await world.settle(key);
    expect(world.copyIn(STAGING, key)).toBeDefined();
    expect(world.assignments()).toHaveLength(1);
    world.consumers.client = client;
  });

  it('deletes during a migration: related copies, both staging copies, the Migration, the Assignment, the finalizer last', async () => {
    world.provider = (copy, cluster, api) => (cluster === WS ? publishingSecret()(copy, cluster, api) : { status: 'Provisioning' });
    await world.settle(key);
    world.acceptAPI('provider-b', 'widgets-b', 'export-b');
    world.acceptAPI('provider-a', 'widgets-a', 'export-a', { ready: false });
    await world.settle(key);
    const destination = stagingWorkspaceName(CONSUMER, 'provider-b', 'export-b');
    expect(world.migrations()).toHaveLength(1);
    expect(world.copyIn(destination, key)?.['status']).toEqual({ status: 'Provisioning' });
    const mark = world.api.writes.length;

    world.deleteWidget(key);
    await world.settle(key);

    const log = since(world, mark);
    const at = (line: string): number => {
      expect(log).toContain(line);
      return log.indexOf(line);
    };
    const related = at(`delete ${CONSUMER}/secrets default/w1-tls`);
    const origin = at(`delete ${WS}/widgets default/w1`);
    const dest = at(`delete ${clusterOfStagingWorkspace(destination)}/widgets default/w1`);
    const migration = at(`delete ${COORD}/migrations /${ASSIGNMENT.replace('assignment-', 'migration-')}`);
    const assignment = at(`delete ${COORD}/assignments /${ASSIGNMENT}`);
    const finalizer = at(`patch ${CONSUMER}/widgets default/w1`);
    expect(related).toBeLessThan(Math.min(origin, dest));
    expect(Math.max(origin, dest)).toBeLessThan(migration);
    expect(migration).toBeLessThan(assignment);
    expect(assignment).toBeLessThan(finalizer);
    expect(finalizer).toBe(log.length - 1);
    expect(world.migrations()).toEqual([]);
    expect(world.copyIn(destination, key)).toBeUndefined();
    expect(world.released.sort()).toEqual([STAGING, destination].sort());
  });

  it('completes an Assignment a crash left without status, instead of placing again', async () => {
    world.api.failNextWrite({ verb: 'updateStatus', resource: 'assignments' });
    await expect(world.reconcile(key)).rejects.toThrow('injected failure');
    expect(world.assignments()).toMatchObject([{ spec: { providerCluster: 'provider-a' } }]);
    expect(world.assignments()[0]?.status).toBeUndefined();
    const mark = world.api.writes.length;

    await world.reconcile(key);

    expect(since(world, mark)).toEqual([
      `updateStatus ${COORD}/assignments /${ASSIGNMENT}`,
      `create ${COORD}/stagingworkspaces /${STAGING}`,
    ]);
    expect(world.assignments()).toHaveLength(1);
    expect(world.assignments()[0]?.status?.stagingWorkspace).toBe(STAGING);
  });

  it('deletes an Assignment left without status whose AcceptAPI is gone, and places the object afresh', async () => {
    world.api.failNextWrite({ verb: 'updateStatus', resource: 'assignments' });
    await expect(world.reconcile(key)).rejects.toThrow();
    world.api.remove('provider-a', ACCEPTAPI_GVR, '', 'widgets-a');
    world.acceptAPI('provider-b', 'widgets-b', 'export-b');
    const mark = world.api.writes.length;

    await world.reconcile(key);
    await world.reconcile(key);

    expect(since(world, mark)).toEqual([
      `delete ${COORD}/assignments /${ASSIGNMENT}`,
      `create ${COORD}/assignments /${ASSIGNMENT}`,
      `updateStatus ${COORD}/assignments /${ASSIGNMENT}`,
      `create ${COORD}/stagingworkspaces /${stagingWorkspaceName(CONSUMER, 'provider-b', 'export-b')}`,
    ]);
    expect(world.api.get<Assignment>(COORD, ASSIGNMENT_GVR, '', ASSIGNMENT)?.status?.providerCluster).toBe('provider-b');
  });
});

/** A provider that publishes a Secret and a ConfigMap next to each copy and names both. */
const publishingSecretAndConfigMap = (copy: KubeObject, cluster: string, api: SyncWorld['api']) => {
  const status = publishingSecret()(copy, cluster, api);
  const name = `${copy.metadata.name}-settings`;
  api.put(cluster, CONFIGMAPS, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace: copy.metadata.namespace },
    data: { mode: 'strict' },
  });
  return {
    ...status,
    relatedResources: { ...status.relatedResources, settings: { name, gvk: { group: '', version: 'v1', kind: 'ConfigMap' } } },
  };
};

describe('SyncController and the claims of the brokered export', () => {
  it('copies a related ConfigMap when the export claims ConfigMaps', async () => {
    const world = new SyncWorld();
    world.acceptAPI('provider-a', 'widgets-a', 'export-a');
    const key = world.createWidget('default', 'w1', { size: 2 });
    world.provider = publishingSecretAndConfigMap;
    await world.settle(key);
    expect(world.api.get(CONSUMER, CONFIGMAPS, 'default', 'w1-settings')?.['data']).toEqual({ mode: 'strict' });
    expect(world.api.log().filter((w) => w.includes('/configmaps '))).toEqual([`create ${CONSUMER}/configmaps default/w1-settings`]);
    expect(world.events.of('RelatedResourceNotClaimed')).toEqual([]);
  });

  it('without a ConfigMap claim: copies the Secret, writes no ConfigMap, tells the consumer which kind the export does not claim', async () => {
    const world = new SyncWorld({ claimed: ['Secret'] });
    world.acceptAPI('provider-a', 'widgets-a', 'export-a');
    const key = world.createWidget('default', 'w1', { size: 2 });
    world.provider = publishingSecretAndConfigMap;
    await world.settle(key);

    expect(world.widget(key)?.['status']).toMatchObject({ status: 'Available' });
    expect(world.api.get(CONSUMER, SECRETS, 'default', 'w1-tls')?.['data']).toEqual({ 'tls.crt': 'Y3J0' });
    expect(world.api.log().filter((w) => w.includes('/configmaps '))).toEqual([]);
    const notClaimed = world.events.of('RelatedResourceNotClaimed');
    expect(notClaimed.length).toBeGreaterThan(0);
    expect(notClaimed[0]).toMatchObject({ object: `${CONSUMER}/default/w1`, type: 'Warning' });
    expect(notClaimed[0]?.message).toBe(
      'not copied, the APIExport widgets does not claim configmaps: ConfigMap default/w1-settings (settings)',
    );

    // Deletion does not wait on, or write to, the unclaimed kind.
    world.deleteWidget(key);
    await world.settle(key);
    expect(world.widget(key)).toBeUndefined();
    expect(world.api.list(CONSUMER, SECRETS)).toEqual([]);
    expect(world.api.log().filter((w) => w.includes('/configmaps '))).toEqual([]);
  });
  it('a workspace that has not accepted the ConfigMap claim: gets no ConfigMap and hears why; accepting it brings the copy', async () => {
    const world = new SyncWorld({ bindings: true });
    const binding = (resources: string[]): KubeObject => ({
      apiVersion: 'apis.kcp.io/v1alpha2',
      kind: 'APIBinding',
      metadata: { name: 'widgets' },
      status: { appliedPermissionClaims: resources.map((resource) => ({ group: '', resource, verbs: ['*'] })) },
    });
    world.api.put(CONSUMER, APIBINDINGS, binding(['secrets', 'events']));
    world.acceptAPI('provider-a', 'widgets-a', 'export-a');
    const key = world.createWidget('default', 'w1', { size: 2 });
    world.provider = publishingSecretAndConfigMap;
    await world.settle(key);

    expect(world.api.get(CONSUMER, SECRETS, 'default', 'w1-tls')).toBeDefined();
    expect(world.api.log().filter((w) => w.includes('/configmaps '))).toEqual([]);
    expect(world.events.of('RelatedResourceNotClaimed').at(-1)?.message).toBe(
      'not copied, this workspace has not accepted the configmaps claim of the APIExport widgets: ConfigMap default/w1-settings (settings)',
    );

    // The consumer accepts the claim: its binding's event brings the object back to the queue.
    const bindingWatch = world.sync.watches().find((w) => w.informer === world.consumers.bindings?.informer)!;
    const before = world.consumers.bindings!.informer.store.list()[0]!;
    world.api.put(CONSUMER, APIBINDINGS, binding(['secrets', 'events', 'configmaps']));
    const after = world.consumers.bindings!.informer.store.list()[0]!;
    expect([...bindingWatch.toKeys({ type: 'updated', object: after, old: before })]).toEqual([encodeKey(key)]);
    expect([...bindingWatch.toKeys({ type: 'updated', object: after, old: after })]).toEqual([]);
    await world.settle(key);
    expect(world.api.get(CONSUMER, CONFIGMAPS, 'default', 'w1-settings')?.['data']).toEqual({ mode: 'strict' });
  });
});

describe('SyncController after a failure at any write of a lifecycle', () => {
  /** Create, serve (status and a related Secret), delete: the state when served, and at the end. */
  const lifecycle = async (fault?: { n: number; applied: boolean }) => {
    const world = new SyncWorld();
    world.acceptAPI('provider-a', 'widgets-a', 'export-a');
    world.provider = publishingSecret();
    const key = world.createWidget('default', 'w1', { size: 2 });
    if (fault) world.api.failWriteNumber(fault.n, undefined, { applied: fault.applied });
    await world.settle(key);
    const served = world.snapshot();
    world.deleteWidget(key);
    await world.settle(key);
    return { world, served, end: world.snapshot() };
  };

  it.each([
    ['fails before it takes effect', false],
    ['takes effect but its reply is lost', true],
  ])('converges to the same state when the write %s', async (_, applied) => {
    const clean = await lifecycle();
    expect(clean.world.errors).toEqual([]);
    expect(clean.served.filter((line) => / (assignments|widgets|secrets)\./.test(line))).toHaveLength(5); // Assignment, widget, copy, 2 Secrets
    expect(clean.end.some((line) => / (assignments|widgets)\./.test(line))).toBe(false);
    const writes = clean.world.api.attempts;
    expect(writes).toBeGreaterThan(10);

    const diverged: string[] = [];
    for (let n = 1; n <= writes; n++) {
      const run = await lifecycle({ n, applied });
      const hit = run.world.api.failed.map(formatWrite).join('');
      if (run.world.errors.length !== 1) diverged.push(`write ${n} (${hit}): ${run.world.errors.length} errors`);
      if (JSON.stringify(run.served) !== JSON.stringify(clean.served)) diverged.push(`write ${n} (${hit}): served state differs`);
      if (JSON.stringify(run.end) !== JSON.stringify(clean.end)) diverged.push(`write ${n} (${hit}): end state differs`);
    }
    expect(diverged).toEqual([]);
  });

  it('converges without duplicates when each reconcile runs twice against a cache one step behind', async () => {
    const clean = await lifecycle();
    const world = new SyncWorld();
    world.acceptAPI('provider-a', 'widgets-a', 'export-a');
    world.provider = publishingSecret();
    const key = world.createWidget('default', 'w1', { size: 2 });
    world.api.lagging = true;
    const settleLagging = async (): Promise<void> => {
      for (let round = 0; round < 30; round++) {
        const [writes, errors] = [world.api.writes.length, world.errors.length];
        for (const _ of [1, 2]) await world.reconcile(key).catch((err: unknown) => world.errors.push(err));
        world.api.flush();
        const changed = world.stagingWorkspacesReady() || world.providersAct();
        world.api.flush();
        if (!changed && world.api.writes.length === writes && world.errors.length === errors) return;
      }
      throw new Error(`not settled: ${world.api.log().slice(-6).join('; ')}`);
    };

    await settleLagging();
    expect(world.snapshot()).toEqual(clean.served);
    world.deleteWidget(key);
    world.api.flush();
    await settleLagging();
    expect(world.snapshot()).toEqual(clean.end);
    expect(world.api.log({ verb: 'create', resource: 'assignments' })).toHaveLength(1);
    expect(world.api.log({ verb: 'create', resource: 'secrets' })).toHaveLength(1);
  });
});
