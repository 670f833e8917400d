import { KubeConfig } from '@kubernetes/client-node';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MIGRATIONCONFIGURATION_GVR } from '../../src/apis/types.ts';
import { CONFIGMAPS, type KubeObject } from '../../src/kcp-client-ts/types.ts';
import type { ReadyWorkspace } from '../../src/kcp-client-ts/workspaces.ts';
import { BrokerProcess } from '../harness/broker-process.ts';
import { BrokerWorld, statusOf } from '../harness/broker-world.ts';
import { eventually } from '../harness/eventually.ts';
import { kcpEnv } from '../harness/kcp-env.ts';

const VM_GVK = { group: 'example.platform-mesh.io', version: 'v1alpha1', kind: 'VM' };

/**
 * `--compute-kubeconfig`: migration stages deploy to the API server a kubeconfig names (the Go
 * project's `-compute-kubeconfig`; a real cluster in production). Here that server is a kcp
 * workspace reached through its own kubeconfig, which proves the wiring: stage objects land
 * there and nowhere else, and a stage completes the Go project's way, by editing the object.
 */
describe('migration stages on a compute cluster given by a kubeconfig', () => {
  let world: BrokerWorld;
  let consumer: ReadyWorkspace;
  let cluster: ReadyWorkspace;
  let broker: BrokerProcess;

  beforeAll(async () => {
    world = await BrokerWorld.create('compute', (await kcpEnv()).endpoint);
    [, , consumer, cluster] = await Promise.all([
      world.provider('x86', ['vms']),
      world.provider('arm', ['vms']),
      world.consumer('consumer', ['vms']),
      world.workspaces.ensure(world.top, 'cluster'),
    ]);
    await world.accept('x86', 'x86-vms', { api: 'vms', filters: [{ key: 'arch', valueIn: ['x86_64'] }] });
    await world.accept('arm', 'arm-vms', { api: 'vms', filters: [{ key: 'arch', valueIn: ['arm64'] }] });
    // The compute cluster's kubeconfig: the same credentials, the server URL of that workspace.
    const config = new KubeConfig();
    config.loadFromFile(inject('kcp').kubeconfig);
    const current = config.getCurrentCluster()!;
    const server = `${new URL(current.server).origin}/clusters/${cluster.path}`;
    config.clusters = config.clusters.map((c) => ({ ...c, server }));
    const kubeconfig = join(tmpdir(), `compute-${cluster.cluster}.kubeconfig`);
    await writeFile(kubeconfig, config.exportConfig());
    broker = new BrokerProcess(inject('kcp').kubeconfig, world.paths, { RB_LEADER_ELECT: 'false', RB_COMPUTE_KUBECONFIG: kubeconfig });
    await broker.start();
    await Promise.all([world.waitAcceptAPIReady('x86', 'x86-vms'), world.waitAcceptAPIReady('arm', 'arm-vms')]);
  });

  afterAll(async () => {
    await broker?.stop('SIGKILL');
    await world?.cleanup();
  });

  it('deploys the stage object to that cluster once, lets an edit complete the stage, then removes it', async () => {
    await world.inCluster(world.paths.coordination, MIGRATIONCONFIGURATION_GVR).create({
      apiVersion: 'coord.broker.platform-mesh.io/v1alpha1',
      kind: 'MigrationConfiguration',
      metadata: { name: 'vm-move' },
      spec: {
        from: VM_GVK,
        to: VM_GVK,
        stages: [
          {
            name: 'handover',
            templates: { gate: { apiVersion: 'v1', kind: 'ConfigMap', data: { vm: '${to.metadata.name}' } } },
            successConditions: ['gate.data.key == "done"'],
          },
        ],
      },
    } satisfies KubeObject);
    const vms = world.objects(consumer.path, 'vms');
    await vms.create(world.newObject('vms', 'db', { arch: 'x86_64', memory: 512 }));
    await eventually(async () => expect(statusOf(await vms.get({ namespace: 'default', name: 'db' }))).toBe('Available'));
    await vms.update({ ...(await vms.get({ namespace: 'default', name: 'db' })), spec: { arch: 'arm64', memory: 512 } });

    const inCluster = world.inCluster(cluster.path, CONFIGMAPS);
    const labelled = { labelSelector: 'broker.platform-mesh.io/migration-stage=handover' };
    const gate = await eventually(async () => {
      const [found] = (await inCluster.list(labelled)).items;
      expect(found?.['data']).toEqual({ vm: 'db' });
      return found!;
    });
    expect((await world.inCluster(world.paths.compute, CONFIGMAPS).list(labelled)).items).toEqual([]);

    // Polled for a while, the object stays as deployed (never re-applied); then the edit completes the stage.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect((await inCluster.get({ namespace: 'default', name: gate.metadata.name ?? '' })).metadata.resourceVersion).toBe(
      gate.metadata.resourceVersion,
    );
    await inCluster.update({ ...gate, data: { ...(gate['data'] as object), key: 'done' } });
    await eventually(
      async () => {
        const assignment = await world.assignmentOf(consumer, 'vms', 'db');
        expect(assignment?.status?.providerCluster).toBe((await world.workspaces.get(world.top, 'arm'))?.spec.cluster);
        expect((await inCluster.list(labelled)).items).toEqual([]);
      },
      { timeoutMs: 60_000 },
    );
    expect(statusOf(await vms.get({ namespace: 'default', name: 'db' }))).toBe('Available');
  });
});
