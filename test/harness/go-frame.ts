import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { APIEXPORTS_DIR, loadManifests } from '../../src/broker/manifests.ts';
import {
  MIGRATION_GVR,
  MIGRATIONCONFIGURATION_GVR,
  type AcceptAPI,
  type Assignment,
  type Migration,
  type MigrationConfiguration,
  type StagingWorkspace,
} from '../../src/apis/types.ts';
import { Applier } from '../../src/kcp-client-ts/apply.ts';
import { ResourceClient } from '../../src/kcp-client-ts/resources.ts';
import type { APIExport } from '../../src/kcp-client-ts/typed-client.ts';
import { CONFIGMAPS, type GroupVersionResource, type KubeObject } from '../../src/kcp-client-ts/types.ts';
import type { ReadyWorkspace } from '../../src/kcp-client-ts/workspaces.ts';
import { bindExport, BrokerWorld, GVR, type ExampleApi } from './broker-world.ts';
import { eventually } from './eventually.ts';

/** The provider export every Go-style provider serves: one export for all example resources, as the Go e2e frame has. */
export const EXAMPLE_EXPORT = 'example.platform-mesh.io';
export const WORKSPACES: GroupVersionResource = { group: 'tenancy.kcp.io', version: 'v1alpha1', resource: 'workspaces' };
const APIEXPORTS: GroupVersionResource = { group: 'apis.kcp.io', version: 'v1alpha2', resource: 'apiexports' };

type PermissionClaim = NonNullable<APIExport['spec']['permissionClaims']>[number];

/** A claim on core ConfigMaps, every verb: what the Go frame adds to an export that should publish ConfigMaps. */
export const configMapsClaim = (): PermissionClaim => ({ group: '', resource: 'configmaps', verbs: ['*'] });

/**
 * A frame as the Go project's e2e tests build one (`NewFrame`): a bootstrapped platform with
 * its broker, providers that serve the example resources from one APIExport and run no
 * controller (the test plays the provider by writing status into staging copies), and
 * consumers bound to the brokered exports. Additive to BrokerWorld, which it wraps.
 */
export class GoFrame {
  readonly world: BrokerWorld;

  private constructor(world: BrokerWorld) {
    this.world = world;
  }

  static async create(prefix: string, endpoint: BrokerWorld['endpoint']): Promise<GoFrame> {
    return new GoFrame(await BrokerWorld.create(prefix, endpoint));
  }

  /**
   * A provider workspace: the example APIResourceSchemas, one APIExport `example.platform-mesh.io`
   * serving certificates, vms and dnszones (plus the given claims), bound to acceptapis. No
   * provider controller runs. Registered with the world, so `world.acceptAPIs(name)` works.
   */
  async newProvider(name: string, claims: PermissionClaim[] = []): Promise<ReadyWorkspace> {
    const { world } = this;
    const workspace = await world.workspaces.ensure(world.top, name);
    await this.serveExampleExport(workspace.path, EXAMPLE_EXPORT, claims);
    await bindExport(world.endpoint, workspace.path, world.paths.home, 'acceptapis');
    world.providers.set(name, { workspace, runners: [] });
    return workspace;
  }

  /** Applies the example schemas to a workspace and creates an APIExport serving all of them. */
  async serveExampleExport(workspace: string, exportName: string, claims: PermissionClaim[] = []): Promise<void> {
    const applier = new Applier({ endpoint: this.world.endpoint });
    const resources: NonNullable<APIExport['spec']['resources']> = [];
    for (const obj of await loadManifests(join(APIEXPORTS_DIR, 'examples'))) {
      if (obj.kind !== 'APIResourceSchema') continue;
      await applier.apply(workspace, obj);
      const spec = obj['spec'] as { group: string; names: { plural: string } };
      resources.push({ group: spec.group, name: spec.names.plural, schema: obj.metadata.name ?? '', storage: { crd: {} } });
    }
    await this.inWorkspace(workspace, APIEXPORTS).create({
      apiVersion: 'apis.kcp.io/v1alpha2',
      kind: 'APIExport',
      metadata: { name: exportName },
      spec: { resources, ...(claims.length > 0 ? { permissionClaims: claims } : {}) },
    });
  }

  /** A consumer workspace bound to the brokered exports of the home workspace, every claim accepted. */
  newConsumer(name: string, apis: ExampleApi[] = ['vms']): Promise<ReadyWorkspace> {
    return this.world.consumer(name, apis);
  }

  /** An AcceptAPI without filters for one example resource, served by the provider's example export. */
  createAcceptAPI(provider: string, name: string, api: ExampleApi): Promise<AcceptAPI> {
    return this.world.accept(provider, name, { api, apiExportName: EXAMPLE_EXPORT });
  }

  /** An AcceptAPI for VMs of one architecture (`arch` valueIn). */
  createVMAcceptAPI(provider: string, name: string, arch: string): Promise<AcceptAPI> {
    return this.world.accept(provider, name, { api: 'vms', apiExportName: EXAMPLE_EXPORT, filters: [{ key: 'arch', valueIn: [arch] }] });
  }

  inWorkspace(workspace: string, gvr: GroupVersionResource): ResourceClient<KubeObject> {
    return this.world.inCluster(workspace, gvr);
  }

  /**
   * The logical cluster of the staging workspace of one consumer on one provider, once it has
   * one: the Go frame's `StagingClient` (there, each test has one consumer, so the provider
   * alone names it; frames here are shared by several tests, each with its own consumer).
   */
  stagingClusterFor(consumer: ReadyWorkspace, provider: ReadyWorkspace, timeoutMs = 90_000): Promise<string> {
    return eventually(
      async () => {
        const sw = (await this.stagingWorkspacesOf(consumer)).find((s) => s.spec.providerCluster === provider.cluster);
        if (!sw) throw new Error(`no staging workspace of consumer ${consumer.path} on provider ${provider.path}`);
        if (!sw.status?.clusterName)
          throw new Error(`staging workspace ${sw.metadata.name} has no cluster yet: ${JSON.stringify(sw.status)}`);
        return sw.status.clusterName;
      },
      { timeoutMs },
    );
  }

  /** The Assignments of one consumer workspace's objects. */
  async assignmentsOf(consumer: ReadyWorkspace): Promise<Assignment[]> {
    return (await this.listAssignments()).filter((a) => a.spec.consumerCluster === consumer.cluster);
  }

  /** The StagingWorkspaces made for one consumer workspace. */
  async stagingWorkspacesOf(consumer: ReadyWorkspace): Promise<StagingWorkspace[]> {
    return (await this.listStagingWorkspaces()).filter((s) => s.spec.consumerCluster === consumer.cluster);
  }

  /** The Migration of one Assignment, if any. */
  async migrationOf(assignmentName: string): Promise<Migration | undefined> {
    return (await this.listMigrations()).find((m) => m.spec.assignment === assignmentName);
  }

  async listAssignments(): Promise<Assignment[]> {
    return (await this.world.assignments().list()).items;
  }

  async listStagingWorkspaces(): Promise<StagingWorkspace[]> {
    return (await this.world.stagingWorkspaces().list()).items;
  }

  migrations(): ResourceClient<Migration> {
    return new ResourceClient<Migration>({
      endpoint: this.world.endpoint,
      baseUrl: this.world.endpoint.workspaceUrl(this.world.paths.coordination),
      gvr: MIGRATION_GVR,
    });
  }

  async listMigrations(): Promise<Migration[]> {
    return (await this.migrations().list()).items;
  }

  configurations(): ResourceClient<MigrationConfiguration> {
    return new ResourceClient<MigrationConfiguration>({
      endpoint: this.world.endpoint,
      baseUrl: this.world.endpoint.workspaceUrl(this.world.paths.coordination),
      gvr: MIGRATIONCONFIGURATION_GVR,
    });
  }

  /** The kcp Workspaces under the verification tree root. */
  async verificationWorkspaces(): Promise<KubeObject[]> {
    return (await this.inWorkspace(this.world.paths.verificationRoot, WORKSPACES).list()).items;
  }

  /** Objects of one resource in the compute workspace (ConfigMaps by default). */
  compute(gvr: GroupVersionResource = CONFIGMAPS): ResourceClient<KubeObject> {
    return this.inWorkspace(this.world.paths.compute, gvr);
  }

  vms(workspace: string): ResourceClient<KubeObject> {
    return this.world.inCluster(workspace, GVR.vms);
  }

  cleanup(): Promise<void> {
    return this.world.cleanup();
  }
}

/**
 * Fails when `condition` holds at any check during `durationMs` (testify's `require.Never`):
 * checks every `intervalMs`, the first one at once.
 */
export const never = async (
  condition: () => Promise<boolean> | boolean,
  durationMs: number,
  message: string,
  intervalMs = 1_000,
): Promise<void> => {
  const deadline = Date.now() + durationMs;
  while (Date.now() < deadline) {
    if (await condition()) throw new Error(`condition became true: ${message}`);
    await sleep(intervalMs);
  }
};
