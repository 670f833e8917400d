/**
 * The Go project's end-to-end scenarios (platform-mesh/platform-mesh,
 * operators/resource-broker/test/e2e/*_test.go as of commits 649c44c8 and cb3573bf: assignment,
 * conditions, copy, deletion, discovery, migration, migration_more, relatedResources), one `it`
 * per Go test, named after it, written here from what each scenario does and asserts. Manifests are written by this file; the
 * providers run no controller: as in the Go tests, the test plays the provider by writing status
 * (and related ConfigMaps) into the staging copies, and completes migration stages by editing
 * the objects a stage deployed in the compute workspace.
 *
 * Differences of setting, not of meaning:
 * - The Go tests build a fresh frame (home, coordination, providers, consumer, broker) per test.
 *   A frame costs 30-45 s on the shared kcp here, so tests with the same providers and AcceptAPIs
 *   share one, each test with its own consumer workspace; where a Go test counts Assignments,
 *   StagingWorkspaces or Migrations of the whole frame, this file counts those of its own
 *   consumer (the same set in a one-consumer frame), and verification workspaces created since
 *   the test began.
 * - The Go frame's provider serves all example resources from one APIExport
 *   `example.platform-mesh.io`; GoFrame builds the same from this repository's example schemas.
 * - The Go broker takes the stage namespace as a broker option (`StageNamespace`); here it is the
 *   stage's `namespace` field in the MigrationConfiguration.
 * - Waits that the Go tests bound by `wait.ForeverTestTimeout` (30 s) get 60 s here: the machine
 *   is shared and slower.
 *
 * The last describe applies the Go project's published certificates example
 * (examples/broker-certificates) in the shapes it publishes (test/harness/go-manifests.ts).
 * Its postgres example (examples/broker-postgres) is in go-postgres.test.ts: compute is a kcp
 * workspace given by `--compute-kubeconfig` that serves a `jobs.batch` CRD, and the test plays
 * the Job controller.
 *
 * Every Go scenario of those files is here; none needed a Kubernetes cluster.
 */
import { holdExclusive } from '../harness/exclusive.ts';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.ts';
import { bootstrap } from '../../src/broker/bootstrap.ts';
import { loadManifestFile } from '../../src/broker/manifests.ts';
import { DEFAULT_PATHS, type BrokerPaths } from '../../src/apis/paths.ts';
import {
  ACCEPTAPI_GVR,
  ASSIGNMENT_GVR,
  MIGRATION_GVR,
  STAGINGWORKSPACE_GVR,
  type AcceptAPI,
  type Assignment,
  type Condition,
  type Migration,
  type MigrationStage,
  type StagingWorkspace,
} from '../../src/apis/types.ts';
import { Applier } from '../../src/kcp-client-ts/apply.ts';
import { APIBINDINGS, type APIBindingObject } from '../../src/kcp-client-ts/bindings.ts';
import type { KcpEndpoint } from '../../src/kcp-client-ts/endpoint.ts';
import { ResourceClient } from '../../src/kcp-client-ts/resources.ts';
import { CONFIGMAPS, NAMESPACES, SECRETS, type GroupVersionResource, type KubeObject } from '../../src/kcp-client-ts/types.ts';
import { Workspaces, type ReadyWorkspace } from '../../src/kcp-client-ts/workspaces.ts';
import { createLogger } from '../../src/logging.ts';
import { bindExport, decodeSecret, GVR, statusOf } from '../harness/broker-world.ts';
import { eventually } from '../harness/eventually.ts';
import { configMapsClaim, EXAMPLE_EXPORT, GoFrame, never } from '../harness/go-frame.ts';
import { goManifest } from '../harness/go-manifests.ts';
import { kcpEnv, uniqueName } from '../harness/kcp-env.ts';

/** Go: wait.ForeverTestTimeout is 30 s; doubled for this shared machine. */
const FOREVER = 60_000;
const VM_GVK = { group: 'example.platform-mesh.io', version: 'v1alpha1', kind: 'VM' };
const SLICES: GroupVersionResource = { group: 'apis.kcp.io', version: 'v1alpha1', resource: 'apiexportendpointslices' };
const APIEXPORTS: GroupVersionResource = { group: 'apis.kcp.io', version: 'v1alpha2', resource: 'apiexports' };

const conditionOf = (obj: { status?: { conditions?: Condition[] } } | undefined, type: string): Condition | undefined =>
  obj?.status?.conditions?.find((c) => c.type === type);
const specOf = (obj: KubeObject): Record<string, unknown> => (obj['spec'] ?? {}) as Record<string, unknown>;
const statusObject = (obj: KubeObject): Record<string, unknown> => (obj['status'] ?? {}) as Record<string, unknown>;

// ---- the Go tests' helpers, as a user of kcp would do them ------------------------------------

const vmObject = (frame: GoFrame, name: string, arch = 'x86_64', memory = 512, namespace = 'default'): KubeObject =>
  frame.world.newObject('vms', name, { arch, memory }, namespace);

/** waitForVM: the VM is visible in the workspace (a consumer's, or a staging workspace). */
const waitForVM = (frame: GoFrame, workspace: string, name: string, namespace = 'default'): Promise<KubeObject> =>
  eventually(() => frame.vms(workspace).get({ namespace, name }), { timeoutMs: FOREVER });

/** updateVM: read, change the spec, write; again on a conflict. */
const updateVM = (frame: GoFrame, workspace: string, name: string, change: (spec: Record<string, unknown>) => void): Promise<KubeObject> =>
  eventually(
    async () => {
      const vm = await frame.vms(workspace).get({ namespace: 'default', name });
      const spec = { ...specOf(vm) };
      change(spec);
      return frame.vms(workspace).update({ ...vm, spec });
    },
    { timeoutMs: FOREVER },
  );

/** markVMAvailable: once the staging copy has the expected arch, the "provider" reports it Available. */
const markVMAvailable = (frame: GoFrame, stagingCluster: string, name: string, arch: string): Promise<void> =>
  eventually(
    async () => {
      const vm = await frame.vms(stagingCluster).get({ namespace: 'default', name });
      if (specOf(vm)['arch'] !== arch) throw new Error(`staging vm arch is ${String(specOf(vm)['arch'])}, want ${arch}`);
      if (statusOf(vm) === 'Available') return;
      await frame.vms(stagingCluster).updateStatus({ ...vm, status: { ...statusObject(vm), status: 'Available' } });
    },
    { timeoutMs: FOREVER },
  );

/** waitForBoundAssignment: the object's Assignment is Bound to a provider. */
const waitForBoundAssignment = (frame: GoFrame, consumer: ReadyWorkspace, name: string, api: 'vms' | 'dnszones' = 'vms') =>
  eventually(
    async () => {
      const a = await frame.world.assignmentOf(consumer, api, name);
      if (a?.status?.phase !== 'Bound' || !a.status.providerCluster)
        throw new Error(`assignment of ${name} not Bound: ${JSON.stringify(a?.status)}`);
      return a;
    },
    { timeoutMs: FOREVER },
  );

/** waitForMigration: a Migration exists for the object's Assignment. */
const waitForMigration = (frame: GoFrame, assignment: Assignment): Promise<Migration> =>
  eventually(
    async () => {
      const m = await frame.migrationOf(assignment.metadata.name ?? '');
      if (!m) throw new Error(`no Migration for ${assignment.metadata.name}`);
      return m;
    },
    { timeoutMs: FOREVER },
  );

/** waitForMigrationFinished: the Migration is gone and no staging workspace of the consumer names the old provider. */
const waitForMigrationFinished = async (frame: GoFrame, consumer: ReadyWorkspace, assignment: Assignment, oldProvider: ReadyWorkspace) => {
  await eventually(
    async () => {
      const m = await frame.migrationOf(assignment.metadata.name ?? '');
      if (m)
        throw new Error(
          `Migration ${m.metadata.name} still exists: state ${m.status?.state}, stage ${m.status?.stage}, StagesCompleted ${JSON.stringify(
            conditionOf(m, 'StagesCompleted'),
          )}, CutoverCompleted ${JSON.stringify(conditionOf(m, 'CutoverCompleted'))}`,
        );
    },
    { timeoutMs: FOREVER },
  );
  await eventually(
    async () => {
      const left = (await frame.stagingWorkspacesOf(consumer)).filter((s) => s.spec.providerCluster === oldProvider.cluster);
      if (left.length > 0) throw new Error(`staging workspace ${left[0]!.metadata.name} still references the old provider`);
    },
    { timeoutMs: FOREVER },
  );
};

/** publishRelatedConfigMap: the "provider" creates a ConfigMap next to the staging copy and names it in status.relatedResources. */
const publishRelatedConfigMap = async (
  frame: GoFrame,
  stagingCluster: string,
  vmName: string,
  options: { name?: string; data?: Record<string, string> } = {},
): Promise<{ namespace: string; name: string }> => {
  const cm = { namespace: 'default', name: options.name ?? 'related-configmap' };
  await frame.inWorkspace(stagingCluster, CONFIGMAPS).create({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: cm,
    data: options.data ?? { hello: 'world' },
  });
  await eventually(
    async () => {
      const vm = await frame.vms(stagingCluster).get({ namespace: 'default', name: vmName });
      await frame.vms(stagingCluster).updateStatus({
        ...vm,
        status: {
          ...statusObject(vm),
          relatedResources: { configmap: { ...cm, gvk: { group: '', version: 'v1', kind: 'ConfigMap' } } },
        },
      });
    },
    { timeoutMs: FOREVER },
  );
  return cm;
};

const configMapExists = async (frame: GoFrame, workspace: string, target: { namespace: string; name: string }): Promise<boolean> =>
  (await frame.inWorkspace(workspace, CONFIGMAPS).find(target)) !== undefined;

const waitGone = (what: string, exists: () => Promise<boolean>): Promise<void> =>
  eventually(
    async () => {
      if (await exists()) throw new Error(`${what} still exists`);
    },
    { timeoutMs: FOREVER },
  );

// ---- assignment_test.go, conditions_test.go, copy_test.go, deletion_test.go, relatedResources_test.go,
// discovery_test.go: one provider whose AcceptAPIs take every VM and DNSZone ---------------------

describe('Go e2e scenarios with one provider accepting every VM and DNSZone', () => {
  let frame: GoFrame;
  let provider: ReadyWorkspace;
  const consumers: Record<string, ReadyWorkspace> = {};
  const vmConsumers = ['status', 'conditions', 'specupdate', 'namespace', 'relremoval', 'claims', 'deletion', 'refcount', 'related'];

  beforeAll(async () => {
    frame = await GoFrame.create('go-one', (await kcpEnv()).endpoint);
    // TestPermissionClaimMirroring's provider claims ConfigMaps; the other tests do not care.
    provider = await frame.newProvider('provider', [configMapsClaim()]);
    await frame.createAcceptAPI('provider', 'accept-vms', 'vms');
    await frame.createAcceptAPI('provider', 'accept-dnszones', 'dnszones');
    await frame.world.startBroker();
    await Promise.all([
      ...vmConsumers.map(async (n) => {
        consumers[n] = await frame.newConsumer(`c-${n}`, ['vms']);
      }),
      (async () => {
        consumers['cluster'] = await frame.newConsumer('c-cluster', ['dnszones']);
      })(),
    ]);
  });

  afterAll(async () => {
    await frame?.cleanup();
  });

  // conditions_test.go
  it('TestStatusReflection: provider status on the staging copy reaches the consumer VM', async () => {
    const consumer = consumers['status']!;
    await frame.vms(consumer.path).create(vmObject(frame, 'test-vm'));
    const staging = await frame.stagingClusterFor(consumer, provider);
    await waitForVM(frame, staging, 'test-vm');
    await markVMAvailable(frame, staging, 'test-vm', 'x86_64');
    await eventually(
      async () => expect(statusOf(await frame.vms(consumer.path).get({ namespace: 'default', name: 'test-vm' }))).toBe('Available'),
      {
        timeoutMs: FOREVER,
      },
    );
  });

  // conditions_test.go
  it('TestConditionsSurfaced: AcceptAPI, Assignment and StagingWorkspace report their conditions and phases', async () => {
    const consumer = consumers['conditions']!;
    await frame.vms(consumer.path).create(vmObject(frame, 'test-vm'));
    const staging = await frame.stagingClusterFor(consumer, provider);
    await waitForVM(frame, staging, 'test-vm');

    await eventually(
      async () => {
        const a = await frame.world.acceptAPIs('provider').get({ name: 'accept-vms' });
        expect(conditionOf(a, 'BindingVerified')?.status).toBe('True');
        expect(conditionOf(a, 'Ready')?.status).toBe('True');
      },
      { timeoutMs: FOREVER },
    );
    const assignment = await waitForBoundAssignment(frame, consumer, 'test-vm');
    expect(assignment.status?.providerCluster).toBe(provider.cluster);
    expect(assignment.status?.acceptAPIName).toBe('accept-vms');
    expect(assignment.status?.stagingWorkspace).toBeTruthy();

    await eventually(
      async () => {
        const sws = await frame.stagingWorkspacesOf(consumer);
        expect(sws).toHaveLength(1);
        expect(sws[0]!.status?.phase).toBe('Ready');
        expect(conditionOf(sws[0], 'WorkspaceReady')?.status).toBe('True');
        expect(conditionOf(sws[0], 'BindingReady')?.status).toBe('True');
      },
      { timeoutMs: FOREVER },
    );
  });

  // copy_test.go
  it('TestSpecUpdateWithoutMigration: a spec update the AcceptAPI still accepts reaches the staging copy, no Migration', async () => {
    const consumer = consumers['specupdate']!;
    await frame.vms(consumer.path).create(vmObject(frame, 'test-vm'));
    const staging = await frame.stagingClusterFor(consumer, provider);
    await waitForVM(frame, staging, 'test-vm');
    await updateVM(frame, consumer.path, 'test-vm', (spec) => {
      spec['memory'] = 1024;
    });
    await eventually(
      async () => expect(specOf(await frame.vms(staging).get({ namespace: 'default', name: 'test-vm' }))['memory']).toBe(1024),
      {
        timeoutMs: FOREVER,
      },
    );
    const assignment = await frame.world.assignmentOf(consumer, 'vms', 'test-vm');
    expect(await frame.migrationOf(assignment?.metadata.name ?? '')).toBeUndefined();
  });

  // copy_test.go
  it('TestNonDefaultNamespace: a VM in namespace apps is copied into apps in the staging workspace', async () => {
    const consumer = consumers['namespace']!;
    await frame.inWorkspace(consumer.path, NAMESPACES).create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'apps' } });
    await frame.vms(consumer.path).create(vmObject(frame, 'test-vm', 'x86_64', 512, 'apps'));
    const staging = await frame.stagingClusterFor(consumer, provider);
    await waitForVM(frame, staging, 'test-vm', 'apps');
  });

  // copy_test.go. The Go test documents its broker's behaviour: a related ConfigMap dropped from
  // the staging copy's status stays in the consumer workspace (orphaned). This repository's
  // contract says otherwise on purpose (broker-spec.md 5.4, README "What happens to an object"
  // step 4): the copy is removed when dropped from the status. Asserted here as specified.
  it('TestRelatedResourceRemovalKeepsConsumerCopy: a related ConfigMap dropped from the status (here: its consumer copy is removed)', async () => {
    const consumer = consumers['relremoval']!;
    await frame.vms(consumer.path).create(vmObject(frame, 'test-vm'));
    const staging = await frame.stagingClusterFor(consumer, provider);
    await waitForVM(frame, staging, 'test-vm');
    const cm = await publishRelatedConfigMap(frame, staging, 'test-vm');
    await eventually(async () => expect(await configMapExists(frame, consumer.path, cm)).toBe(true), { timeoutMs: FOREVER });

    await eventually(
      async () => {
        const vm = await frame.vms(staging).get({ namespace: 'default', name: 'test-vm' });
        const { relatedResources: _dropped, ...rest } = statusObject(vm);
        await frame.vms(staging).updateStatus({ ...vm, status: rest });
      },
      { timeoutMs: FOREVER },
    );
    await waitGone('consumer copy of the dropped related ConfigMap', () => configMapExists(frame, consumer.path, cm));
  });

  // copy_test.go
  it("TestPermissionClaimMirroring: the staging binding accepts the provider export's configmaps claim", async () => {
    const consumer = consumers['claims']!;
    await frame.vms(consumer.path).create(vmObject(frame, 'test-vm'));
    const staging = await frame.stagingClusterFor(consumer, provider);
    await waitForVM(frame, staging, 'test-vm');
    const binding = (await frame.inWorkspace(staging, APIBINDINGS).get({ name: EXAMPLE_EXPORT })) as APIBindingObject;
    const claim = (binding.spec.permissionClaims ?? []).find((c) => c.resource === 'configmaps' && (c.group ?? '') === '');
    expect(
      claim,
      `staging binding should mirror the provider's configmaps claim, has: ${JSON.stringify(binding.spec.permissionClaims)}`,
    ).toBeDefined();
    expect(claim?.state).toBe('Accepted');
  });

  // copy_test.go
  it('TestClusterScopedResource: a DNSZone is brokered like a namespaced object, status up, deletion cleans up', async () => {
    const consumer = consumers['cluster']!;
    const zones = frame.world.objects(consumer.path, 'dnszones');
    await zones.create(frame.world.newObject('dnszones', 'test-zone', { domain: 'example.com', ttl: 300 }));
    const staging = await frame.stagingClusterFor(consumer, provider);
    const stagingZones = frame.inWorkspace(staging, GVR.dnszones);
    await eventually(
      async () => expect(specOf(await stagingZones.get({ name: 'test-zone' }))).toMatchObject({ domain: 'example.com', ttl: 300 }),
      { timeoutMs: FOREVER },
    );
    await eventually(
      async () => {
        const zone = await stagingZones.get({ name: 'test-zone' });
        await stagingZones.updateStatus({ ...zone, status: { ...statusObject(zone), status: 'Available' } });
      },
      { timeoutMs: FOREVER },
    );
    await eventually(async () => expect(statusOf(await zones.get({ name: 'test-zone' }))).toBe('Available'), { timeoutMs: FOREVER });

    await zones.delete({ name: 'test-zone' });
    await waitGone('consumer dnszone', async () => (await zones.find({ name: 'test-zone' })) !== undefined);
    await eventually(
      async () => {
        expect(await frame.assignmentsOf(consumer)).toEqual([]);
        expect(await frame.stagingWorkspacesOf(consumer)).toEqual([]);
      },
      { timeoutMs: FOREVER },
    );
  });

  // deletion_test.go
  it('TestConsumerDeletionCleansUp: deleting the VM removes its related copy, Assignment and staging workspace', async () => {
    const consumer = consumers['deletion']!;
    await frame.vms(consumer.path).create(vmObject(frame, 'test-vm'));
    const staging = await frame.stagingClusterFor(consumer, provider);
    await waitForVM(frame, staging, 'test-vm');
    const cm = await publishRelatedConfigMap(frame, staging, 'test-vm');
    await eventually(async () => expect(await configMapExists(frame, consumer.path, cm)).toBe(true), { timeoutMs: FOREVER });

    await frame.vms(consumer.path).delete({ namespace: 'default', name: 'test-vm' });
    await waitGone(
      'consumer vm',
      async () => (await frame.vms(consumer.path).find({ namespace: 'default', name: 'test-vm' })) !== undefined,
    );
    await waitGone('related configmap copy', () => configMapExists(frame, consumer.path, cm));
    await eventually(async () => expect(await frame.assignmentsOf(consumer)).toEqual([]), { timeoutMs: FOREVER });
    await eventually(async () => expect(await frame.stagingWorkspacesOf(consumer)).toEqual([]), { timeoutMs: FOREVER });
  });

  // assignment_test.go
  it('TestStagingWorkspaceRefcounting: a shared staging workspace is released with the last VM using it', async () => {
    const consumer = consumers['refcount']!;
    await frame.vms(consumer.path).create(vmObject(frame, 'test-vm-1'));
    await frame.vms(consumer.path).create(vmObject(frame, 'test-vm-2'));
    const staging = await frame.stagingClusterFor(consumer, provider);
    await waitForVM(frame, staging, 'test-vm-1');
    await waitForVM(frame, staging, 'test-vm-2');
    expect(await frame.stagingWorkspacesOf(consumer)).toHaveLength(1);

    await frame.vms(consumer.path).delete({ namespace: 'default', name: 'test-vm-1' });
    await waitGone(
      'first vm',
      async () => (await frame.vms(consumer.path).find({ namespace: 'default', name: 'test-vm-1' })) !== undefined,
    );
    await never(
      async () => (await frame.stagingWorkspacesOf(consumer)).length === 0,
      5_000,
      'staging workspace must survive while still referenced',
    );

    await frame.vms(consumer.path).delete({ namespace: 'default', name: 'test-vm-2' });
    await eventually(async () => expect(await frame.stagingWorkspacesOf(consumer)).toEqual([]), { timeoutMs: FOREVER });
    await eventually(async () => expect(await frame.assignmentsOf(consumer)).toEqual([]), { timeoutMs: FOREVER });
  });

  // relatedResources_test.go
  it('TestRelatedResources: a ConfigMap the provider names in status.relatedResources is copied to the consumer', async () => {
    const consumer = consumers['related']!;
    await frame.vms(consumer.path).create(vmObject(frame, 'test-vm'));
    const staging = await frame.stagingClusterFor(consumer, provider);
    await waitForVM(frame, staging, 'test-vm');
    const cm = await publishRelatedConfigMap(frame, staging, 'test-vm', { data: { 'related-key': 'related-value' } });
    await eventually(
      async () =>
        expect((await frame.inWorkspace(consumer.path, CONFIGMAPS).get(cm))['data']).toMatchObject({ 'related-key': 'related-value' }),
      { timeoutMs: FOREVER },
    );
  });

  // deletion_test.go
  // Differs from the Go project on purpose (README "Differences from the Go project"): StagingWorkspaces
  // are the broker's records, so one that no Assignment or Migration references is released, object
  // and workspace, instead of being made Ready. The Go test's end state (both gone) is the same.
  it('TestStagingWorkspaceDeletion: a StagingWorkspace nobody references is released, its kcp workspace with it', async () => {
    const sws = frame.world.stagingWorkspaces();
    const name = 'staging-deletion-test';
    await sws.create({
      apiVersion: 'coord.broker.platform-mesh.io/v1alpha1',
      kind: 'StagingWorkspace',
      metadata: { name },
      spec: { consumerCluster: 'unused', providerCluster: provider.cluster, apiExportName: EXAMPLE_EXPORT },
    } satisfies StagingWorkspace);
    await eventually(async () => expect(await sws.find({ name })).toBeUndefined(), { timeoutMs: FOREVER });
    expect(await frame.world.workspaces.get(frame.world.paths.stagingRoot, name)).toBeUndefined();
  });

  // discovery_test.go. Last in this frame: it adds an endpoint slice to the home workspace.
  it('TestExportViaRefPath: an endpoint slice naming an export in another workspace is brokered; deleting the slice stops it', async () => {
    const { world } = frame;
    const exporter = await world.workspaces.ensure(world.top, 'exporter');
    await frame.serveExampleExport(exporter.path, EXAMPLE_EXPORT, [configMapsClaim()]);
    const slices = frame.inWorkspace(world.paths.home, SLICES);
    // kcp checks "bind" on the export in a workspace made just now; its authorizer caches may not hold
    // that workspace's admin bindings yet (seen as a 403 under load), so the create is retried.
    await eventually(
      async () =>
        await slices.create({
          apiVersion: 'apis.kcp.io/v1alpha1',
          kind: 'APIExportEndpointSlice',
          metadata: { name: 'cross-example' },
          spec: { export: { path: exporter.path, name: EXAMPLE_EXPORT } },
        }),
      { timeoutMs: 60_000 },
    );
    const consumer = await world.workspaces.ensure(world.top, 'c-refpath');
    await bindExport(world.endpoint, consumer.path, exporter.path, EXAMPLE_EXPORT);
    await eventually(
      async () => {
        const slice = await slices.get({ name: 'cross-example' });
        const endpoints = (slice['status'] as { endpoints?: { url?: string }[] } | undefined)?.endpoints ?? [];
        expect(endpoints[0]?.url).toBeTruthy();
      },
      { timeoutMs: FOREVER },
    );

    await frame.vms(consumer.path).create(vmObject(frame, 'test-vm'));
    const staging = await frame.stagingClusterFor(consumer, provider, FOREVER);
    await waitForVM(frame, staging, 'test-vm');

    await slices.delete({ name: 'cross-example' });
    await sleep(3_000); // as the Go test: give discovery a moment before the update
    await updateVM(frame, consumer.path, 'test-vm', (spec) => {
      spec['memory'] = 2048;
    });
    await never(
      async () => specOf(await frame.vms(staging).get({ namespace: 'default', name: 'test-vm' }))['memory'] === 2048,
      10_000,
      'consumer updates must not propagate after the endpoint slice is gone',
    );
  });
});

// ---- assignment_test.go: two providers that both accept every VM -------------------------------

describe('Go e2e scenarios with two providers accepting every VM', () => {
  let frame: GoFrame;
  let one: ReadyWorkspace;
  let two: ReadyWorkspace;
  const consumers: Record<string, ReadyWorkspace> = {};

  beforeAll(async () => {
    frame = await GoFrame.create('go-two', (await kcpEnv()).endpoint);
    [one, two] = await Promise.all([frame.newProvider('p-one'), frame.newProvider('p-two')]);
    await frame.createAcceptAPI('p-one', 'accept-vms', 'vms');
    await frame.createAcceptAPI('p-two', 'accept-vms', 'vms');
    await frame.world.startBroker();
    await Promise.all(
      ['multi', 'withdraw'].map(async (n) => {
        consumers[n] = await frame.newConsumer(`c-${n}`, ['vms']);
      }),
    );
  });

  afterAll(async () => {
    await frame?.cleanup();
  });

  const byCluster = (cluster: string | undefined): { name: string; workspace: ReadyWorkspace } => {
    if (cluster === one.cluster) return { name: 'p-one', workspace: one };
    if (cluster === two.cluster) return { name: 'p-two', workspace: two };
    throw new Error(`no provider with cluster name ${cluster}`);
  };

  it('TestMultipleMatchingAcceptAPIs: a VM two AcceptAPIs match is assigned to exactly one of them', async () => {
    const consumer = consumers['multi']!;
    await frame.vms(consumer.path).create(vmObject(frame, 'test-vm'));
    const assignment = await waitForBoundAssignment(frame, consumer, 'test-vm');
    expect([one.cluster, two.cluster]).toContain(assignment.status?.providerCluster);
    expect(await frame.assignmentsOf(consumer)).toHaveLength(1);
    const chosen = byCluster(assignment.status?.providerCluster);
    await waitForVM(frame, await frame.stagingClusterFor(consumer, chosen.workspace), 'test-vm');
  });

  // Last in this frame: it deletes an AcceptAPI.
  it('TestProviderWithdrawalTriggersMigration: deleting the bound AcceptAPI migrates the VM to the other provider', async () => {
    const consumer = consumers['withdraw']!;
    await frame.vms(consumer.path).create(vmObject(frame, 'test-vm'));
    const assignment = await waitForBoundAssignment(frame, consumer, 'test-vm');
    const origin = byCluster(assignment.status?.providerCluster);
    const other = origin.workspace === one ? byCluster(two.cluster) : byCluster(one.cluster);
    await waitForVM(frame, await frame.stagingClusterFor(consumer, origin.workspace), 'test-vm');

    await frame.world.acceptAPIs(origin.name).delete({ name: 'accept-vms' });
    await waitForMigration(frame, assignment);
    await markVMAvailable(frame, await frame.stagingClusterFor(consumer, other.workspace), 'test-vm', 'x86_64');
    await waitForMigrationFinished(frame, consumer, assignment, origin.workspace);

    const rebound = await waitForBoundAssignment(frame, consumer, 'test-vm');
    expect(rebound.status?.providerCluster).toBe(other.workspace.cluster);
  });
});

// ---- assignment_test.go: one provider accepting x86_64 VMs only ---------------------------------

describe('Go e2e scenarios with one provider accepting x86_64 VMs only', () => {
  let frame: GoFrame;
  let provider: ReadyWorkspace;
  const consumers: Record<string, ReadyWorkspace> = {};

  beforeAll(async () => {
    frame = await GoFrame.create('go-x86', (await kcpEnv()).endpoint);
    provider = await frame.newProvider('provider');
    await frame.createVMAcceptAPI('provider', 'accept-x86', 'x86_64');
    await frame.world.startBroker();
    await Promise.all(
      ['pending', 'notarget'].map(async (n) => {
        consumers[n] = await frame.newConsumer(`c-${n}`, ['vms']);
      }),
    );
  });

  afterAll(async () => {
    await frame?.cleanup();
  });

  it('TestNoMatchingAcceptAPIStaysPending: an arm64 VM no AcceptAPI matches gets no Assignment and no staging workspace', async () => {
    const consumer = consumers['pending']!;
    await frame.vms(consumer.path).create(vmObject(frame, 'test-vm', 'arm64'));
    await never(
      async () => (await frame.assignmentsOf(consumer)).length > 0 || (await frame.stagingWorkspacesOf(consumer)).length > 0,
      10_000,
      'no assignment or staging workspace may be created without a matching AcceptAPI',
    );
  });

  it('TestNoMigrationTargetKeepsAssignment: with nowhere to migrate to, the VM stays assigned to its provider', async () => {
    const consumer = consumers['notarget']!;
    await frame.vms(consumer.path).create(vmObject(frame, 'test-vm'));
    await waitForVM(frame, await frame.stagingClusterFor(consumer, provider), 'test-vm');
    const assignment = await waitForBoundAssignment(frame, consumer, 'test-vm');

    await updateVM(frame, consumer.path, 'test-vm', (spec) => {
      spec['arch'] = 'arm64';
    });
    await never(
      async () => (await frame.migrationOf(assignment.metadata.name ?? '')) !== undefined,
      10_000,
      'no migration may be created without a target AcceptAPI',
    );
    const assignments = await frame.assignmentsOf(consumer);
    expect(assignments).toHaveLength(1);
    expect(assignments[0]!.status?.providerCluster).toBe(provider.cluster);
  });
});

// ---- conditions_test.go, deletion_test.go: verification workspaces -----------------------------

describe('Go e2e scenarios about verification workspaces', () => {
  let frame: GoFrame;

  beforeAll(async () => {
    frame = await GoFrame.create('go-verify', (await kcpEnv()).endpoint);
    await frame.world.startBroker();
  });

  afterAll(async () => {
    await frame?.cleanup();
  });

  /** Names of the verification workspaces not in `before` (those present when the test began). */
  const createdSince = async (before: Set<string>): Promise<string[]> =>
    (await frame.verificationWorkspaces())
      .map((w) => w.metadata.name ?? '')
      .filter((n) => !before.has(n))
      .sort();
  const snapshot = async (): Promise<Set<string>> => new Set((await frame.verificationWorkspaces()).map((w) => w.metadata.name ?? ''));
  const bindingVerified = async (provider: string, name: string): Promise<AcceptAPI> =>
    eventually(
      async () => {
        const a = await frame.world.acceptAPIs(provider).get({ name });
        expect(conditionOf(a, 'BindingVerified')?.status, `AcceptAPI ${name}: ${JSON.stringify(a.status)}`).toBe('True');
        return a;
      },
      { timeoutMs: FOREVER },
    );

  // conditions_test.go
  it('TestVerificationBindingNeverBound: an AcceptAPI naming an export that does not exist stays unverified', async () => {
    const before = await snapshot();
    await frame.newProvider('v-unbindable');
    await frame.world.acceptAPIs('v-unbindable').create({
      apiVersion: 'broker.platform-mesh.io/v1alpha1',
      kind: 'AcceptAPI',
      metadata: { name: 'accept-unbindable' },
      spec: { gvr: GVR.vms, apiExportName: 'does-not-exist' },
    });
    await eventually(async () => expect(await createdSince(before)).toHaveLength(1), { timeoutMs: FOREVER });
    await eventually(
      async () => {
        const a = await frame.world.acceptAPIs('v-unbindable').get({ name: 'accept-unbindable' });
        const c = conditionOf(a, 'BindingVerified');
        expect(c, 'BindingVerified condition').toBeDefined();
        expect(c?.status).not.toBe('True');
      },
      { timeoutMs: FOREVER },
    );
    await never(
      async () =>
        conditionOf(await frame.world.acceptAPIs('v-unbindable').get({ name: 'accept-unbindable' }), 'BindingVerified')?.status === 'True',
      5_000,
      'BindingVerified must not become true for a missing export',
    );
  });

  // deletion_test.go
  it('TestAcceptAPIDeletionReleasesVerificationWorkspace: deleting the AcceptAPI deletes its verification workspace', async () => {
    const before = await snapshot();
    await frame.newProvider('v-delete');
    await frame.createAcceptAPI('v-delete', 'accept-vms', 'vms');
    await eventually(async () => expect(await createdSince(before)).toHaveLength(1), { timeoutMs: FOREVER });
    await bindingVerified('v-delete', 'accept-vms');

    await frame.world.acceptAPIs('v-delete').delete({ name: 'accept-vms' });
    await waitGone('acceptapi', async () => (await frame.world.acceptAPIs('v-delete').find({ name: 'accept-vms' })) !== undefined);
    await eventually(async () => expect(await createdSince(before)).toEqual([]), { timeoutMs: FOREVER });
  });

  // deletion_test.go
  it('TestAcceptAPISpecChangeReleasesVerificationWorkspace: a new apiExportName moves verification to a new workspace, the old one goes', async () => {
    const before = await snapshot();
    const provider = await frame.newProvider('v-change');
    await frame.createAcceptAPI('v-change', 'accept-vms', 'vms');
    // createSecondExport: the provider's example export, cloned under another name.
    const exports = frame.inWorkspace(provider.path, APIEXPORTS);
    const existing = await exports.get({ name: EXAMPLE_EXPORT });
    await exports.create({
      apiVersion: 'apis.kcp.io/v1alpha2',
      kind: 'APIExport',
      metadata: { name: 'example-copy' },
      spec: existing['spec'],
    });

    const verified = await bindingVerified('v-change', 'accept-vms');
    const oldWorkspace = verified.status?.verificationWorkspace ?? '';
    expect(oldWorkspace).not.toBe('');

    await eventually(
      async () => {
        const a = await frame.world.acceptAPIs('v-change').get({ name: 'accept-vms' });
        await frame.world.acceptAPIs('v-change').update({ ...a, spec: { ...a.spec, apiExportName: 'example-copy' } });
      },
      { timeoutMs: FOREVER },
    );
    const moved = await eventually(
      async () => {
        const a = await frame.world.acceptAPIs('v-change').get({ name: 'accept-vms' });
        const ws = a.status?.verificationWorkspace ?? '';
        if (ws === '' || ws === oldWorkspace) throw new Error(`verification still in ${ws || '(none)'}`);
        return ws;
      },
      { timeoutMs: FOREVER },
    );
    // The old one is released: exactly one left, and it is the one the AcceptAPI names (the Go
    // test compares status.verificationWorkspace with the workspace's name).
    await eventually(
      async () => {
        const left = await createdSince(before);
        expect(left).toHaveLength(1);
        expect(left).not.toContain(oldWorkspace);
        expect(left).toEqual([moved]);
      },
      { timeoutMs: FOREVER },
    );
  });

  // deletion_test.go
  it('TestSharedVerificationWorkspace: AcceptAPIs of one export share a verification workspace until the last one goes', async () => {
    const before = await snapshot();
    await frame.newProvider('v-shared');
    await frame.createAcceptAPI('v-shared', 'accept-certificates', 'certificates');
    await frame.createAcceptAPI('v-shared', 'accept-vms', 'vms');
    await bindingVerified('v-shared', 'accept-certificates');
    await bindingVerified('v-shared', 'accept-vms');
    expect(await createdSince(before)).toHaveLength(1);

    await frame.world.acceptAPIs('v-shared').delete({ name: 'accept-certificates' });
    await waitGone(
      'first acceptapi',
      async () => (await frame.world.acceptAPIs('v-shared').find({ name: 'accept-certificates' })) !== undefined,
    );
    await never(
      async () => (await createdSince(before)).length === 0,
      5_000,
      'shared verification workspace must survive while referenced',
    );

    await frame.world.acceptAPIs('v-shared').delete({ name: 'accept-vms' });
    await eventually(async () => expect(await createdSince(before)).toEqual([]), { timeoutMs: FOREVER });
  });
});

// ---- migration_test.go, migration_more_test.go, deletion_test.go: x86_64 and arm64 providers, a
// MigrationConfiguration VM -> VM --------------------------------------------------------------

describe('Go e2e scenarios of migrations between an x86_64 and an arm64 provider', () => {
  let frame: GoFrame;
  let x86: ReadyWorkspace;
  let arm: ReadyWorkspace;
  const consumers: Record<string, ReadyWorkspace> = {};
  const names = [
    'delmig',
    'abort',
    'nostages',
    'withstages',
    'freeze',
    'multistage',
    'stagerel',
    'unknown',
    'celcompile',
    'celnonbool',
    'cutover',
    'customns',
  ];
  /** The VM each test made, deleted after it so that a migration it left running stops. */
  let made: ReadyWorkspace | undefined;

  beforeAll(async () => {
    frame = await GoFrame.create('go-migrate', (await kcpEnv()).endpoint);
    [x86, arm] = await Promise.all([frame.newProvider('x86'), frame.newProvider('arm64')]);
    await frame.createVMAcceptAPI('x86', 'accept-x86', 'x86_64');
    await frame.createVMAcceptAPI('arm64', 'accept-arm64', 'arm64');
    await frame.world.startBroker();
    await Promise.all(
      names.map(async (n) => {
        consumers[n] = await frame.newConsumer(`c-${n}`, ['vms']);
      }),
    );
  });

  afterEach(async () => {
    const consumer = made;
    made = undefined;
    if (!consumer) return;
    await frame.vms(consumer.path).delete({ namespace: 'default', name: 'test-vm' });
    await eventually(async () => expect(await frame.vms(consumer.path).find({ namespace: 'default', name: 'test-vm' })).toBeUndefined(), {
      timeoutMs: 30_000,
    }).catch(() => undefined);
  });

  afterAll(async () => {
    await frame?.cleanup();
  });

  /** The MigrationConfiguration migrate-vm (VM -> VM) with these stages, replacing the previous test's. */
  const configure = async (stages?: MigrationStage[]): Promise<void> => {
    const configurations = frame.configurations();
    for (const c of (await configurations.list()).items) await configurations.delete({ name: c.metadata.name ?? '' });
    await eventually(async () => expect((await configurations.list()).items).toEqual([]));
    await configurations.create({
      apiVersion: 'coord.broker.platform-mesh.io/v1alpha1',
      kind: 'MigrationConfiguration',
      metadata: { name: 'migrate-vm' },
      spec: { from: VM_GVK, to: VM_GVK, ...(stages ? { stages } : {}) },
    });
  };

  /** configMapStage: one ConfigMap template `{data: {key: value}}`. */
  const configMapStage = (name: string, template: string, progress: boolean, ...successConditions: string[]): MigrationStage => ({
    name,
    templates: { [template]: { apiVersion: 'v1', kind: 'ConfigMap', data: { key: 'value' } } },
    successConditions,
    progress,
  });

  /** newMigrationFixture: the configuration, then an x86_64 VM in the test's consumer, copied to the x86 provider. */
  const fixture = async (consumerName: string, stages?: MigrationStage[]) => {
    await configure(stages);
    const consumer = consumers[consumerName]!;
    await frame.vms(consumer.path).create(vmObject(frame, 'test-vm'));
    made = consumer;
    const x86Staging = await frame.stagingClusterFor(consumer, x86);
    await waitForVM(frame, x86Staging, 'test-vm');
    const assignment = await waitForBoundAssignment(frame, consumer, 'test-vm');
    return { consumer, x86Staging, assignment };
  };

  /** triggerMigration: arm64 makes the x86 AcceptAPI reject the VM. */
  const triggerMigration = async (consumer: ReadyWorkspace, assignment: Assignment): Promise<Migration> => {
    await updateVM(frame, consumer.path, 'test-vm', (spec) => {
      spec['arch'] = 'arm64';
    });
    return waitForMigration(frame, assignment);
  };

  const stageObject = (migration: Migration, key: string, namespace = 'default') => ({
    namespace,
    name: `${migration.metadata.name}-${key}`,
  });

  /** completeStageConfigMap: the stage's work is done, the Go way: data.key of the deployed ConfigMap becomes "done". */
  const completeStageConfigMap = (target: { namespace: string; name: string }): Promise<KubeObject> =>
    eventually(
      async () => {
        const cm = await frame.compute().get(target);
        return frame.compute().update({ ...cm, data: { ...(cm['data'] as Record<string, string>), key: 'done' } });
      },
      { timeoutMs: FOREVER },
    );

  const migrationNamed = (name: string): Promise<Migration | undefined> => frame.migrations().find({ name });

  /** waitForStagesCompletedError: StagesCompleted is not True and its message matches. */
  const waitForStagesCompletedError = (name: string, ...patterns: RegExp[]): Promise<Condition> =>
    eventually(
      async () => {
        const c = conditionOf(await migrationNamed(name), 'StagesCompleted');
        expect(c, 'StagesCompleted condition').toBeDefined();
        expect(c?.status).not.toBe('True');
        for (const p of patterns) expect(c?.message).toMatch(p);
        return c!;
      },
      { timeoutMs: FOREVER },
    );

  // deletion_test.go
  it('TestConsumerDeletionDuringMigration: deleting the VM mid-migration removes the Migration, Assignment and both staging workspaces', async () => {
    const { consumer, assignment } = await fixture('delmig');
    await triggerMigration(consumer, assignment);

    await frame.vms(consumer.path).delete({ namespace: 'default', name: 'test-vm' });
    await waitGone(
      'consumer vm',
      async () => (await frame.vms(consumer.path).find({ namespace: 'default', name: 'test-vm' })) !== undefined,
    );
    await eventually(async () => expect(await frame.migrationOf(assignment.metadata.name ?? '')).toBeUndefined(), { timeoutMs: FOREVER });
    await eventually(async () => expect(await frame.assignmentsOf(consumer)).toEqual([]), { timeoutMs: FOREVER });
    await eventually(async () => expect(await frame.stagingWorkspacesOf(consumer)).toEqual([]), { timeoutMs: FOREVER });
  });

  // deletion_test.go
  it('TestMigrationAbortCleansStageResources: deleting the VM mid-stage removes the deployed stage ConfigMap', async () => {
    const { consumer, assignment } = await fixture('abort', [configMapStage('copy-data', 'dummy', false, 'dummy.data.key == "done"')]);
    const migration = await triggerMigration(consumer, assignment);
    const cm = stageObject(migration, 'dummy');
    await eventually(async () => expect(await configMapExists(frame, frame.world.paths.compute, cm)).toBe(true), { timeoutMs: FOREVER });

    await frame.vms(consumer.path).delete({ namespace: 'default', name: 'test-vm' });
    await eventually(async () => expect(await migrationNamed(migration.metadata.name ?? '')).toBeUndefined(), { timeoutMs: FOREVER });
    await waitGone('stage configmap', () => configMapExists(frame, frame.world.paths.compute, cm));
    await waitGone(
      'consumer vm',
      async () => (await frame.vms(consumer.path).find({ namespace: 'default', name: 'test-vm' })) !== undefined,
    );
  });

  // migration_test.go
  it('TestMigrationNoStages: a configuration without stages migrates once the destination is Available', async () => {
    const { consumer, assignment } = await fixture('nostages');
    await triggerMigration(consumer, assignment);
    await markVMAvailable(frame, await frame.stagingClusterFor(consumer, arm), 'test-vm', 'arm64');
    await waitForMigrationFinished(frame, consumer, assignment, x86);
  });

  // migration_test.go. Completes the stage the Go way, by editing the ConfigMap the stage deployed.
  it('TestMigrationWithStages: the stage ConfigMap is deployed and labelled; editing it completes the stage, the migration, and removes it', async () => {
    const { consumer, assignment } = await fixture('withstages', [configMapStage('copy-data', 'dummy', false, 'dummy.data.key == "done"')]);
    const migration = await triggerMigration(consumer, assignment);
    const target = stageObject(migration, 'dummy');
    const cm = await eventually(() => frame.compute().get(target), { timeoutMs: FOREVER });
    expect(cm.metadata.labels?.['broker.platform-mesh.io/migration-stage']).toBe('copy-data');
    expect(cm.metadata.labels?.['broker.platform-mesh.io/migration-name']).toBe(migration.metadata.name);
    expect((cm['data'] as Record<string, string>)['key']).toBe('value');

    await completeStageConfigMap(target);
    await markVMAvailable(frame, await frame.stagingClusterFor(consumer, arm), 'test-vm', 'arm64');
    await waitForMigrationFinished(frame, consumer, assignment, x86);
    await waitGone('stage configmap', () => configMapExists(frame, frame.world.paths.compute, target));
  });

  // migration_test.go
  it('TestMigrationFreezesOrigin: during the migration the origin staging copy gets no write but its deletion', async () => {
    const { consumer, x86Staging, assignment } = await fixture('freeze');
    // The origin copy settles: the broker's annotations are on it.
    const settled = await eventually(
      async () => {
        const vm = await frame.vms(x86Staging).get({ namespace: 'default', name: 'test-vm' });
        const annotations = vm.metadata.annotations ?? {};
        if (!annotations['broker.platform-mesh.io/consumer-cluster'] || !annotations['broker.platform-mesh.io/consumer-name'])
          throw new Error(`staging copy not annotated yet: ${JSON.stringify(annotations)}`);
        return vm;
      },
      { timeoutMs: FOREVER },
    );
    // The Go broker's annotations: the consumer's logical cluster, and the consumer object's name.
    expect.soft(settled.metadata.annotations?.['broker.platform-mesh.io/consumer-cluster']).toBe(consumer.cluster);
    expect.soft(settled.metadata.annotations?.['broker.platform-mesh.io/consumer-name']).toBe('test-vm');

    // Watch the origin copy from the settled resourceVersion: nothing but its deletion may come.
    const stop = new AbortController();
    const events: { type: string; resourceVersion?: string | undefined }[] = [];
    let opened = false;
    const watching = (async () => {
      try {
        for await (const e of frame.vms(x86Staging).watch({
          namespace: 'default',
          resourceVersion: settled.metadata.resourceVersion,
          stallTimeoutMs: 120_000,
          signal: stop.signal,
          onOpen: () => {
            opened = true;
          },
        })) {
          if (e.type !== 'BOOKMARK' && e.object.metadata.name === 'test-vm')
            events.push({ type: e.type, resourceVersion: e.object.metadata.resourceVersion });
        }
      } catch {
        // the origin staging workspace is torn down at the end of the migration, which may end the watch
      }
    })();

    await triggerMigration(consumer, assignment);
    await markVMAvailable(frame, await frame.stagingClusterFor(consumer, arm), 'test-vm', 'arm64');
    await waitForMigrationFinished(frame, consumer, assignment, x86);
    stop.abort();
    await watching;
    expect(opened, 'the watch on the origin copy was open').toBe(true);
    expect(events.filter((e) => e.type !== 'DELETED')).toEqual([]);
  });

  // migration_more_test.go
  it('TestMigrationMultiStage: two stages run in order, progress moves the state to InitialCompleted, each stage object goes after its stage', async () => {
    const { consumer, assignment } = await fixture('multistage', [
      configMapStage('one', 'a', true, 'a.data.key == "done"'),
      configMapStage('two', 'b', false, 'b.data.key == "done"'),
    ]);
    const migration = await triggerMigration(consumer, assignment);
    const name = migration.metadata.name ?? '';
    const cmA = stageObject(migration, 'a');
    const cmB = stageObject(migration, 'b');

    await eventually(async () => expect(await configMapExists(frame, frame.world.paths.compute, cmA)).toBe(true), { timeoutMs: FOREVER });
    await eventually(async () => expect((await migrationNamed(name))?.status?.state).toBe('InitialInProgress'), { timeoutMs: FOREVER });

    await completeStageConfigMap(cmA);
    await eventually(
      async () => {
        const m = await migrationNamed(name);
        expect({ stage: m?.status?.stage, state: m?.status?.state }, JSON.stringify(conditionOf(m, 'StagesCompleted'))).toEqual({
          stage: 'two',
          state: 'InitialCompleted',
        });
      },
      { timeoutMs: FOREVER },
    );
    await waitGone('first stage configmap', () => configMapExists(frame, frame.world.paths.compute, cmA));
    await eventually(async () => expect(await configMapExists(frame, frame.world.paths.compute, cmB)).toBe(true), { timeoutMs: FOREVER });

    await completeStageConfigMap(cmB);
    await eventually(async () => expect((await migrationNamed(name))?.status?.state).toBe('CutoverInProgress'), { timeoutMs: FOREVER });
    await markVMAvailable(frame, await frame.stagingClusterFor(consumer, arm), 'test-vm', 'arm64');
    await waitForMigrationFinished(frame, consumer, assignment, x86);
    await waitGone('second stage configmap', () => configMapExists(frame, frame.world.paths.compute, cmB));
  });

  // migration_more_test.go
  it("TestMigrationStageRelatedResources: the origin copy's related ConfigMap is mirrored into compute as from-<name>", async () => {
    const { consumer, x86Staging, assignment } = await fixture('stagerel', [
      configMapStage('copy-data', 'dummy', false, 'dummy.data.key == "done"'),
    ]);
    const cm = await publishRelatedConfigMap(frame, x86Staging, 'test-vm');
    await eventually(async () => expect(await configMapExists(frame, consumer.path, cm)).toBe(true), { timeoutMs: FOREVER });

    const migration = await triggerMigration(consumer, assignment);
    await eventually(
      async () =>
        expect((await frame.compute().get({ namespace: cm.namespace, name: `from-${cm.name}` }))['data']).toMatchObject({ hello: 'world' }),
      { timeoutMs: FOREVER },
    );
    await completeStageConfigMap(stageObject(migration, 'dummy'));
    await markVMAvailable(frame, await frame.stagingClusterFor(consumer, arm), 'test-vm', 'arm64');
    await waitForMigrationFinished(frame, consumer, assignment, x86);
  });

  // migration_more_test.go. The Go broker words it "not found in MigrationConfiguration"; any
  // wording that names the stage and says the configuration does not have it passes.
  it('TestMigrationUnknownStageErrors: a Migration in a stage its configuration does not have says so in StagesCompleted', async () => {
    const { consumer, assignment } = await fixture('unknown', [configMapStage('copy-data', 'dummy', false, 'dummy.data.key == "done"')]);
    const migration = await triggerMigration(consumer, assignment);
    const name = migration.metadata.name ?? '';
    await eventually(
      async () => expect(await configMapExists(frame, frame.world.paths.compute, stageObject(migration, 'dummy'))).toBe(true),
      {
        timeoutMs: FOREVER,
      },
    );

    await eventually(
      async () => {
        const m = await frame.migrations().get({ name });
        await frame.migrations().updateStatus({ ...m, status: { ...m.status, stage: 'bogus' } });
      },
      { timeoutMs: FOREVER },
    );
    await waitForStagesCompletedError(name, /bogus/, /not (found )?in (the )?MigrationConfiguration/);
  });

  // migration_more_test.go. Go's message: "compiling success condition ..."; here any message
  // that names the success condition and says it does not compile.
  it('TestMigrationStageCELCompileError: a success condition that is not CEL is reported and blocks the cutover', async () => {
    const { consumer, assignment } = await fixture('celcompile', [configMapStage('copy-data', 'dummy', false, 'this is not CEL(((')]);
    const migration = await triggerMigration(consumer, assignment);
    // The stages only run once the destination staging copy exists.
    await waitForVM(frame, await frame.stagingClusterFor(consumer, arm), 'test-vm');
    await waitForStagesCompletedError(migration.metadata.name ?? '', /success ?conditions?/i, /compil/i);
    await never(
      async () => (await migrationNamed(migration.metadata.name ?? ''))?.status?.state === 'CutoverInProgress',
      5_000,
      'migration must not reach the cutover with a broken success condition',
    );
  });

  // migration_more_test.go. Go's message: "did not evaluate to a boolean"; here any message that
  // says the condition is not a bool.
  it('TestMigrationStageCELNonBoolean: a success condition that is not boolean is reported', async () => {
    const { consumer, assignment } = await fixture('celnonbool', [configMapStage('copy-data', 'dummy', false, 'dummy.data.key')]);
    const migration = await triggerMigration(consumer, assignment);
    await waitForVM(frame, await frame.stagingClusterFor(consumer, arm), 'test-vm');
    await waitForStagesCompletedError(migration.metadata.name ?? '', /dummy\.data\.key/, /not (evaluate to )?a bool/);
  });

  // migration_more_test.go
  it('TestCutoverWaitsForAvailable: the cutover waits while the destination reports Provisioning', async () => {
    const { consumer, assignment } = await fixture('cutover');
    const migration = await triggerMigration(consumer, assignment);
    const armStaging = await frame.stagingClusterFor(consumer, arm);
    await eventually(
      async () => {
        const vm = await frame.vms(armStaging).get({ namespace: 'default', name: 'test-vm' });
        if (specOf(vm)['arch'] !== 'arm64') throw new Error(`destination arch ${String(specOf(vm)['arch'])}`);
        await frame.vms(armStaging).updateStatus({ ...vm, status: { ...statusObject(vm), status: 'Provisioning' } });
      },
      { timeoutMs: FOREVER },
    );
    await eventually(
      async () => {
        const m = await migrationNamed(migration.metadata.name ?? '');
        expect(m?.status?.state).toBe('CutoverInProgress');
        expect(conditionOf(m, 'StagesCompleted')?.status).toBe('True');
        const cutover = conditionOf(m, 'CutoverCompleted');
        expect(cutover, 'CutoverCompleted condition').toBeDefined();
        expect(cutover?.status).not.toBe('True');
      },
      { timeoutMs: FOREVER },
    );
    await never(
      async () => (await migrationNamed(migration.metadata.name ?? '')) === undefined,
      5_000,
      'migration must not complete while the target is provisioning',
    );
    await markVMAvailable(frame, armStaging, 'test-vm', 'arm64');
    await waitForMigrationFinished(frame, consumer, assignment, x86);
  });

  // migration_more_test.go. Go passes the stage namespace as a broker option; here it is the
  // stage's namespace field. As in Go, the namespace is created in compute beforehand.
  it('TestMigrationCustomStageNamespace: stage objects go into the configured namespace', async () => {
    const namespaces = frame.compute(NAMESPACES);
    if (!(await namespaces.find({ name: 'stages' })))
      await namespaces.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'stages' } });
    const { consumer, assignment } = await fixture('customns', [
      { ...configMapStage('copy-data', 'dummy', false, 'dummy.data.key == "done"'), namespace: 'stages' },
    ]);
    const migration = await triggerMigration(consumer, assignment);
    const target = stageObject(migration, 'dummy', 'stages');
    await eventually(async () => expect(await configMapExists(frame, frame.world.paths.compute, target)).toBe(true), {
      timeoutMs: FOREVER,
    });

    await completeStageConfigMap(target);
    await markVMAvailable(frame, await frame.stagingClusterFor(consumer, arm), 'test-vm', 'arm64');
    await waitForMigrationFinished(frame, consumer, assignment, x86);
  });
});

// ---- the Go project's examples/broker-certificates, its manifests applied unchanged -------------

const EXAMPLE_PREFIX = 'pm__operators__resource-broker__examples__broker-certificates__';

/** One object in the shape the example publishes: the project's fixture, or with RB_UPSTREAM_EXAMPLES the published file. */
const upstreamExample = async (fixture: string, file: string): Promise<KubeObject> => goManifest(fixture, `${EXAMPLE_PREFIX}${file}`);

/**
 * The manifests name the platform workspace `root:platform`, so this platform lives there (the
 * other frames live under workspaces of their own). Providers are played by the test: in the Go
 * example an api-syncagent publishes the Certificate API into the provider's (empty) APIExport
 * `certificates`, and kro with cert-manager issues the certificate into a Secret named in
 * `status.relatedResources.secret`.
 */
describe("the Go project's broker-certificates example, its manifests applied unchanged", () => {
  const paths: BrokerPaths = DEFAULT_PATHS;
  let endpoint: KcpEndpoint;
  let workspaces: Workspaces;
  let applier: Applier;
  let broker: Broker | undefined;
  let releasePlatform: (() => Promise<void>) | undefined;
  const owned: { parent: string; name: string }[] = [];
  let internalca: ReadyWorkspace;
  let externalca: ReadyWorkspace;
  let consumer: ReadyWorkspace;

  const inWorkspace = (workspace: string, gvr: GroupVersionResource): ResourceClient<KubeObject> =>
    new ResourceClient({ endpoint, baseUrl: endpoint.workspaceUrl(workspace), gvr });
  const coordination = <T extends KubeObject>(gvr: GroupVersionResource): ResourceClient<T> =>
    new ResourceClient<T>({ endpoint, baseUrl: endpoint.workspaceUrl(paths.coordination), gvr });
  /** kubectl apply, retried while kcp still refuses to bind a fresh export (403 for a moment). */
  const apply = (workspace: string, obj: KubeObject): Promise<unknown> =>
    eventually(() => applier.apply(workspace, obj), { timeoutMs: FOREVER, intervalMs: 500 });
  const waitBound = (workspace: string, name: string): Promise<unknown> =>
    eventually(
      async () => {
        const b = (await inWorkspace(workspace, APIBINDINGS).get({ name })) as APIBindingObject;
        if (b.status?.phase !== 'Bound') throw new Error(`APIBinding ${name} in ${workspace}: ${b.status?.phase}`);
      },
      { timeoutMs: FOREVER },
    );

  /** What api-syncagent does for the provider: publish the Certificate API (schema, resource, the claim its related Secret needs) in the export. */
  const publishCertificateApi = async (provider: ReadyWorkspace): Promise<void> => {
    const schema = (await loadManifestFile(join(import.meta.dirname, '..', '..', 'apiexports', 'examples', 'certificates.yaml'))).find(
      (o) => o.kind === 'APIResourceSchema',
    )!;
    await applier.apply(provider.path, schema);
    const exports = inWorkspace(provider.path, APIEXPORTS);
    await eventually(async () => {
      const current = await exports.get({ name: 'certificates' });
      await exports.update({
        ...current,
        spec: {
          ...specOf(current),
          resources: [{ group: 'example.platform-mesh.io', name: 'certificates', schema: schema.metadata.name, storage: { crd: {} } }],
          permissionClaims: [{ group: '', resource: 'secrets', verbs: ['*'] }],
        },
      });
    });
  };

  /** The staging workspace serving the consumer's certificate on a provider. */
  const stagingOf = (provider: ReadyWorkspace): Promise<string> =>
    eventually(
      async () => {
        const sw = (await coordination<StagingWorkspace>(STAGINGWORKSPACE_GVR).list()).items.find(
          (s) => s.spec.consumerCluster === consumer.cluster && s.spec.providerCluster === provider.cluster,
        );
        if (!sw?.status?.clusterName) throw new Error(`no staging workspace on ${provider.path} yet`);
        return sw.status.clusterName;
      },
      { timeoutMs: 90_000 },
    );

  /** The provider's part: a Secret with the issued certificate next to the copy, then Available with the Secret in relatedResources. */
  const issue = async (staging: string, fqdn: string, issuer: string): Promise<string> => {
    const certs = inWorkspace(staging, GVR.certificates);
    const copy = await eventually(
      async () => {
        const c = await certs.get({ namespace: 'default', name: 'cert-from-consumer' });
        expect(specOf(c)['fqdn']).toBe(fqdn);
        return c;
      },
      { timeoutMs: FOREVER },
    );
    const pem = `-----BEGIN CERTIFICATE-----\nsubject=CN=${fqdn} issuer=CN=${issuer}\n-----END CERTIFICATE-----\n`;
    await inWorkspace(staging, SECRETS).create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { namespace: 'default', name: 'cert-from-consumer' },
      data: { 'tls.crt': Buffer.from(pem).toString('base64') },
    });
    await certs.updateStatus({
      ...copy,
      status: {
        status: 'Available',
        relatedResources: {
          secret: { gvk: { group: 'core', kind: 'Secret', version: 'v1' }, name: 'cert-from-consumer', namespace: 'default' },
        },
      },
    });
    return pem;
  };

  beforeAll(async () => {
    // root:platform is named by the manifests: one file at a time publishes it (waiting for the
    // other's, then for its deletion, may take minutes: hence this hook's 10 min).
    releasePlatform = await holdExclusive('root-platform');
    ({ endpoint } = await kcpEnv());
    workspaces = new Workspaces({ endpoint });
    applier = new Applier({ endpoint });
    const logger = createLogger({ level: process.env['BROKER_LOG_LEVEL'] ?? 'warn', format: 'json' });
    // Another file's root:platform may still be on its way out (kcp takes about a minute for the tree).
    await eventually(
      async () => {
        if ((await workspaces.get('root', 'platform'))?.metadata?.deletionTimestamp)
          throw new Error('root:platform is still being deleted');
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    owned.push({ parent: 'root', name: 'platform' });
    await bootstrap({ endpoint, paths, logger, examples: true });
    broker = new Broker({ endpoint, paths, logger });
    await broker.start();
    const names = { internalca: uniqueName('internalca'), externalca: uniqueName('externalca'), consumer: uniqueName('consumer') };
    for (const name of Object.values(names)) owned.push({ parent: 'root', name });
    [internalca, externalca, consumer] = await Promise.all([
      workspaces.ensure('root', names.internalca),
      workspaces.ensure('root', names.externalca),
      workspaces.ensure('root', names.consumer),
    ]);
  }, 600_000);

  afterAll(async () => {
    await broker?.stop();
    if (workspaces) for (const { parent, name } of owned.reverse()) await workspaces.delete(parent, name).catch(() => undefined);
    await endpoint?.close();
    await releasePlatform?.();
  });

  it('places cert-from-consumer on internalca, brings its Secret to the consumer, and moves it to externalca for app.corp.com', async () => {
    // run.bash _provider_setup_new: the provider's APIExport `certificates`, then api-syncagent publishes into it
    const providerExport = await upstreamExample(
      'broker-certificates-provider-apiexport.yaml',
      'run.bash__provider-apiexport-certificates.yaml',
    );
    for (const provider of [internalca, externalca]) {
      await apply(provider.path, providerExport);
      await publishCertificateApi(provider);
    }
    // README: bind acceptapis in both providers (heredoc 1 and 2), then their AcceptAPIs (heredoc 3 and 4)
    await apply(
      internalca.path,
      await upstreamExample(
        'broker-certificates-internalca-apibinding-acceptapis.yaml',
        'README.md__heredoc1_internalca-apibinding-acceptapis.yaml',
      ),
    );
    await apply(
      externalca.path,
      await upstreamExample(
        'broker-certificates-externalca-apibinding-acceptapis.yaml',
        'README.md__heredoc2_externalca-apibinding-acceptapis.yaml',
      ),
    );
    await waitBound(internalca.path, 'acceptapis');
    await waitBound(externalca.path, 'acceptapis');
    await apply(
      internalca.path,
      await upstreamExample('broker-certificates-internalca-acceptapi.yaml', 'README.md__heredoc3_internalca-acceptapi.yaml'),
    );
    await apply(
      externalca.path,
      await upstreamExample('broker-certificates-externalca-acceptapi.yaml', 'README.md__heredoc4_externalca-acceptapi.yaml'),
    );
    for (const provider of [internalca, externalca]) {
      // README: kubectl wait acceptapi/certificates.example.platform-mesh.io --for=condition=Ready
      await eventually(
        async () => {
          const a = (await inWorkspace(provider.path, ACCEPTAPI_GVR).get({ name: 'certificates.example.platform-mesh.io' })) as AcceptAPI;
          expect(conditionOf(a, 'Ready')?.status, `${provider.path}: ${JSON.stringify(a.status)}`).toBe('True');
        },
        { timeoutMs: 90_000 },
      );
    }
    // README: the consumer binds certificates (heredoc 5) and creates cert.yaml
    await apply(
      consumer.path,
      await upstreamExample('broker-certificates-consumer-apibinding.yaml', 'README.md__heredoc5_consumer-apibinding-certificates.yaml'),
    );
    await waitBound(consumer.path, 'certificates');
    await apply(consumer.path, await upstreamExample('broker-certificates-cert.yaml', 'README.md__yamlblock_cert.yaml'));

    // fqdn app.internal.corp: the internalca provider serves it
    const assignment = await eventually(
      async () => {
        const a = (await coordination<Assignment>(ASSIGNMENT_GVR).list()).items.find(
          (x) => x.spec.consumerCluster === consumer.cluster && x.spec.name === 'cert-from-consumer',
        );
        expect(a?.status?.providerCluster).toBe(internalca.cluster);
        return a!;
      },
      { timeoutMs: FOREVER },
    );
    const internalPem = await issue(await stagingOf(internalca), 'app.internal.corp', 'internalca');
    const consumerCerts = inWorkspace(consumer.path, GVR.certificates);
    const consumerSecrets = inWorkspace(consumer.path, SECRETS);
    await eventually(
      async () => {
        expect(statusOf(await consumerCerts.get({ namespace: 'default', name: 'cert-from-consumer' }))).toBe('Available');
        expect(decodeSecret(await consumerSecrets.get({ namespace: 'default', name: 'cert-from-consumer' }), 'tls.crt')).toBe(internalPem);
      },
      { timeoutMs: FOREVER },
    );

    // README "Switching providers": kubectl patch --type merge -p '{"spec":{"fqdn":"app.corp.com"}}'
    await consumerCerts.mergePatch({ namespace: 'default', name: 'cert-from-consumer' }, { spec: { fqdn: 'app.corp.com' } });
    await eventually(
      async () =>
        expect((await coordination<Migration>(MIGRATION_GVR).list()).items.map((m) => m.spec.assignment)).toContain(
          assignment.metadata.name,
        ),
      {
        timeoutMs: FOREVER,
      },
    );
    const externalPem = await issue(await stagingOf(externalca), 'app.corp.com', 'externalca');
    await eventually(
      async () =>
        expect(decodeSecret(await consumerSecrets.get({ namespace: 'default', name: 'cert-from-consumer' }), 'tls.crt')).toBe(externalPem),
      { timeoutMs: FOREVER },
    );
    await eventually(
      async () => {
        const a = await coordination<Assignment>(ASSIGNMENT_GVR).get({ name: assignment.metadata.name ?? '' });
        expect(a.status?.providerCluster).toBe(externalca.cluster);
        expect((await coordination<Migration>(MIGRATION_GVR).list()).items.map((m) => m.spec.assignment)).not.toContain(
          assignment.metadata.name,
        );
      },
      { timeoutMs: FOREVER },
    );
    expect(statusOf(await consumerCerts.get({ namespace: 'default', name: 'cert-from-consumer' }))).toBe('Available');

    // run.bash _cleanup: deleting the consumer's certificate cascades through the broker
    await consumerCerts.delete({ namespace: 'default', name: 'cert-from-consumer' });
    await waitGone(
      'consumer certificate',
      async () => (await consumerCerts.find({ namespace: 'default', name: 'cert-from-consumer' })) !== undefined,
    );
    await eventually(
      async () => expect(await coordination<Assignment>(ASSIGNMENT_GVR).find({ name: assignment.metadata.name ?? '' })).toBeUndefined(),
      {
        timeoutMs: FOREVER,
      },
    );
  });
});
