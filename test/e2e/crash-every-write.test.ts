import { inject } from 'vitest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATION_GVR, MIGRATIONCONFIGURATION_GVR, type Migration, type MigrationConfiguration } from '../../src/apis/types.ts';
import { ResourceClient } from '../../src/kcp-client-ts/resources.ts';
import { CONFIGMAPS, SECRETS } from '../../src/kcp-client-ts/types.ts';
import type { ReadyWorkspace } from '../../src/kcp-client-ts/workspaces.ts';
import { BrokerProcess } from '../harness/broker-process.ts';
import { BrokerWorld, decodeSecret, statusOf } from '../harness/broker-world.ts';
import { eventually } from '../harness/eventually.ts';
import { kcpEnv } from '../harness/kcp-env.ts';

/** The exit code of the broker's RB_TEST_EXIT_AFTER_WRITES test mode. */
const CRASHED = 86;
/** Stop after this many write points even if the lifecycle has more (a bound on the run time). */
const MAX_WRITE_POINTS = Number(process.env['CRASH_MAX_WRITES'] ?? 80);

/**
 * Crash safety at every write: for N = 1, 2, ... the broker exits right after kcp accepted its
 * Nth write (RB_TEST_EXIT_AFTER_WRITES) and is restarted at once, while one object goes through
 * its whole life: placed, synced down, status and its Secret up, migrated to another provider
 * through a stage, deleted. Whatever N, the object ends served exactly once and, after deletion,
 * nothing the broker made for it is left. The loop ends when a lifecycle completes without the
 * broker reaching N writes: N - 1 write points were covered.
 */
describe('crash right after any write, then restart', () => {
  let world: BrokerWorld;
  let consumer: ReadyWorkspace;
  const processes: BrokerProcess[] = [];

  const coordination = <T extends Migration | MigrationConfiguration>(gvr: typeof MIGRATION_GVR): ResourceClient<T> =>
    new ResourceClient<T>({ endpoint: world.endpoint, baseUrl: world.endpoint.workspaceUrl(world.paths.coordination), gvr });

  /** Runs the broker crashing after its Nth write; restarts it (without the crash) whenever it exits so. Returns whether it crashed. */
  const supervise = (n: number): { crashed: () => boolean; stop: () => Promise<void> } => {
    let crashed = false;
    let stopping = false;
    const start = async (env: Record<string, string>): Promise<void> => {
      const p = new BrokerProcess(inject('kcp').kubeconfig, world.paths, {
        RB_LEADER_ELECT_LEASE_DURATION: '3',
        RB_LEADER_ELECT_RENEW_DEADLINE: '2',
        RB_LEADER_ELECT_RETRY_PERIOD: '1',
        RB_LOG_LEVEL: 'warn',
        ...env,
      });
      processes.push(p);
      await p.start();
      p.child!.once('exit', (code) => {
        if (stopping) return;
        if (code === CRASHED) crashed = true;
        void start({});
      });
    };
    void start({ RB_TEST_EXIT_AFTER_WRITES: String(n) });
    return {
      crashed: () => crashed,
      stop: async () => {
        stopping = true;
        for (const p of processes) await p.stop('SIGKILL');
      },
    };
  };

  beforeAll(async () => {
    world = await BrokerWorld.create('everywrite', (await kcpEnv()).endpoint);
    [, , consumer] = await Promise.all([
      world.provider('one', ['certificates']),
      world.provider('two', ['certificates']),
      world.consumer('consumer', ['certificates']),
    ]);
    await world.accept('one', 'one', { api: 'certificates', filters: [{ key: 'fqdn', suffix: 'one.test' }] });
    await world.accept('two', 'two', { api: 'certificates', filters: [{ key: 'fqdn', suffix: 'two.test' }] });
    const CERT = { group: 'example.platform-mesh.io', version: 'v1alpha1', kind: 'Certificate' };
    await coordination<MigrationConfiguration>(MIGRATIONCONFIGURATION_GVR).create({
      apiVersion: 'coord.broker.platform-mesh.io/v1alpha1',
      kind: 'MigrationConfiguration',
      metadata: { name: 'certs' },
      spec: {
        from: CERT,
        to: CERT,
        stages: [
          {
            name: 'check',
            templates: { plan: { apiVersion: 'v1', kind: 'ConfigMap', data: { to: '${to.spec.fqdn}' } } },
            successConditions: ['plan.data.to.endsWith("two.test")'],
          },
        ],
      },
    });
  });

  afterAll(async () => {
    for (const p of processes) await p.stop('SIGKILL');
    await world?.cleanup();
  });

  it('serves the object once and leaves nothing behind, whichever write the broker dies after', async () => {
    const certs = world.objects(consumer.path, 'certificates');
    const secrets = world.inCluster(consumer.path, SECRETS);
    const migrations = coordination<Migration>(MIGRATION_GVR);
    const one = world.runner('one', 'certificates');
    const two = world.runner('two', 'certificates');
    const servedBy = (name: string): number[] =>
      [one, two].map((p) => p.objects().filter((o) => o.metadata.name === name && !o.metadata.deletionTimestamp).length);
    let covered = 0;
    for (let n = 1; n <= MAX_WRITE_POINTS; n++) {
      const name = `w${n}`;
      const broker = supervise(n);
      const step = `write ${n}`;
      await certs.create(world.newObject('certificates', name, { fqdn: `${name}.one.test` }));
      await eventually(async () => {
        expect(statusOf(await certs.get({ namespace: 'default', name })), step).toBe('Available');
        expect(decodeSecret(await secrets.get({ namespace: 'default', name: `${name}-credentials` }), 'issuer'), step).toContain(':one');
        expect(servedBy(name), step).toEqual([1, 0]);
      });
      const placed = await certs.get({ namespace: 'default', name });
      await certs.update({ ...placed, spec: { fqdn: `${name}.two.test` } });
      await eventually(async () => {
        expect(decodeSecret(await secrets.get({ namespace: 'default', name: `${name}-credentials` }), 'issuer'), step).toContain(':two');
        expect((await migrations.list()).items, step).toEqual([]);
        expect(servedBy(name), step).toEqual([0, 1]);
        expect(statusOf(await certs.get({ namespace: 'default', name })), step).toBe('Available');
      });
      await certs.delete({ namespace: 'default', name });
      await eventually(async () => {
        expect(await certs.find({ namespace: 'default', name }), step).toBeUndefined();
        expect((await world.assignments().list()).items, step).toEqual([]);
        expect((await world.stagingWorkspaces().list()).items, step).toEqual([]);
        expect(servedBy(name), step).toEqual([0, 0]);
        const owned = (await secrets.list({ namespace: 'default', labelSelector: 'broker.platform-mesh.io/owner' })).items;
        expect(
          owned.map((s) => s.metadata.name),
          step,
        ).toEqual([]);
        const staged = (
          await world.inCluster(world.paths.compute, CONFIGMAPS).list({ labelSelector: 'broker.platform-mesh.io/migration-name' })
        ).items;
        expect(
          staged.map((c) => c.metadata.name),
          step,
        ).toEqual([]);
      });
      await broker.stop();
      if (!broker.crashed()) break; // the whole lifecycle took fewer than n writes
      covered = n;
    }
    process.stderr.write(`crash-every-write: covered ${covered} write points (the lifecycle takes ${covered} writes)\n`);
    expect(covered).toBeGreaterThan(10);
  });
});
