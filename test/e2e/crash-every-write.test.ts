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
/**
 * Each phase of a lifecycle converges through kcp (workspace creation and deletion among it):
 * 18 s on a quiet machine, much longer beside another e2e file. A convergence bound, not a
 * timing claim.
 */
const PHASE_MS = 180_000;

/** Worlds run side by side, each taking every LANES-th N (kcp, not the broker, is the bottleneck). */
const LANES = Number(process.env['CRASH_LANES'] ?? 3);

/** One platform with its own broker: two providers, one consumer, a one-stage MigrationConfiguration. */
class Lane {
  readonly processes: BrokerProcess[] = [];
  world!: BrokerWorld;
  consumer!: ReadyWorkspace;

  static async create(index: number): Promise<Lane> {
    const lane = new Lane();
    lane.world = await BrokerWorld.create(`everywrite${index}`, (await kcpEnv()).endpoint);
    const { world } = lane;
    [, , lane.consumer] = await Promise.all([
      world.provider('one', ['certificates']),
      world.provider('two', ['certificates']),
      world.consumer('consumer', ['certificates']),
    ]);
    await world.accept('one', 'one', { api: 'certificates', filters: [{ key: 'fqdn', suffix: 'one.test' }] });
    await world.accept('two', 'two', { api: 'certificates', filters: [{ key: 'fqdn', suffix: 'two.test' }] });
    const CERT = { group: 'example.platform-mesh.io', version: 'v1alpha1', kind: 'Certificate' };
    await lane.coordination<MigrationConfiguration>(MIGRATIONCONFIGURATION_GVR).create({
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
    return lane;
  }

  coordination<T extends Migration | MigrationConfiguration>(gvr: typeof MIGRATION_GVR): ResourceClient<T> {
    return new ResourceClient<T>({
      endpoint: this.world.endpoint,
      baseUrl: this.world.endpoint.workspaceUrl(this.world.paths.coordination),
      gvr,
    });
  }

  /** Runs the broker crashing after its Nth write, restarting it (without the crash) whenever it exits. */
  supervise(n: number): { crashed: () => boolean; stop: () => Promise<void> } {
    let crashed = false;
    let stopping = false;
    const own: BrokerProcess[] = [];
    const start = async (env: Record<string, string>): Promise<void> => {
      const p = new BrokerProcess(inject('kcp').kubeconfig, this.world.paths, {
        RB_LEADER_ELECT_LEASE_DURATION: '3',
        RB_LEADER_ELECT_RENEW_DEADLINE: '2',
        RB_LEADER_ELECT_RETRY_PERIOD: '1',
        RB_LOG_LEVEL: 'warn',
        ...env,
      });
      this.processes.push(p);
      own.push(p);
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
        for (const p of own) await p.stop('SIGKILL');
      },
    };
  }

  /** One object's whole life with the broker dying after its Nth write; false when it never reached N writes. */
  async lifecycle(n: number): Promise<boolean> {
    const { world, consumer } = this;
    const certs = world.objects(consumer.path, 'certificates');
    const secrets = world.inCluster(consumer.path, SECRETS);
    const migrations = this.coordination<Migration>(MIGRATION_GVR);
    const one = world.runner('one', 'certificates');
    const two = world.runner('two', 'certificates');
    const servedBy = (name: string): number[] =>
      [one, two].map((p) => p.objects().filter((o) => o.metadata.name === name && !o.metadata.deletionTimestamp).length);
    const name = `w${n}`;
    const step = `crash after write ${n}`;
    const broker = this.supervise(n);
    try {
      await certs.create(world.newObject('certificates', name, { fqdn: `${name}.one.test` }));
      await eventually(
        async () => {
          expect(statusOf(await certs.get({ namespace: 'default', name })), step).toBe('Available');
          expect(decodeSecret(await secrets.get({ namespace: 'default', name: `${name}-credentials` }), 'issuer'), step).toContain(':one');
          expect(servedBy(name), step).toEqual([1, 0]);
        },
        { timeoutMs: PHASE_MS },
      );
      const placed = await certs.get({ namespace: 'default', name });
      await certs.update({ ...placed, spec: { fqdn: `${name}.two.test` } });
      await eventually(
        async () => {
          expect(decodeSecret(await secrets.get({ namespace: 'default', name: `${name}-credentials` }), 'issuer'), step).toContain(':two');
          expect((await migrations.list()).items, step).toEqual([]);
          expect(servedBy(name), step).toEqual([0, 1]);
          expect(statusOf(await certs.get({ namespace: 'default', name })), step).toBe('Available');
        },
        { timeoutMs: PHASE_MS },
      );
      await certs.delete({ namespace: 'default', name });
      await eventually(
        async () => {
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
        },
        { timeoutMs: PHASE_MS },
      );
    } finally {
      await broker.stop();
    }
    return broker.crashed();
  }
}

/**
 * Crash safety at every write: for N = 1, 2, ... the broker exits right after kcp accepted its
 * Nth write (RB_TEST_EXIT_AFTER_WRITES) and is restarted at once, while one object goes through
 * its whole life: placed, synced down, status and its Secret up, migrated to another provider
 * through a stage, deleted. Whatever N, the object ends served exactly once and, after deletion,
 * nothing the broker made for it is left. A lane stops at the first N its lifecycle never
 * reaches; the write points covered are every N below the smallest such N.
 */
describe('crash right after any write, then restart', () => {
  const lanes: Lane[] = [];

  beforeAll(async () => {
    for (let i = 0; i < LANES; i++) lanes.push(await Lane.create(i));
  });

  afterAll(async () => {
    for (const lane of lanes) {
      for (const p of lane.processes) await p.stop('SIGKILL');
      await lane.world?.cleanup();
    }
  });

  it(
    'serves the object once and leaves nothing behind, whichever write the broker dies after',
    async () => {
      const reachedEnd: number[] = [];
      await Promise.all(
        lanes.map(async (lane, i) => {
          for (let n = i + 1; n <= MAX_WRITE_POINTS; n += lanes.length) {
            const started = Date.now();
            const crashed = await lane.lifecycle(n);
            process.stderr.write(
              `crash-every-write: N=${n} ${crashed ? 'crashed and recovered' : 'never reached'} in ${Date.now() - started} ms\n`,
            );
            if (!crashed) {
              reachedEnd.push(n);
              return;
            }
          }
        }),
      );
      // Every N below the first one no lifecycle reached was a crash point, and recovered.
      const covered = Math.min(MAX_WRITE_POINTS + 1, ...reachedEnd) - 1;
      process.stderr.write(
        `crash-every-write: covered ${covered} write points (crashed and recovered after each of writes 1..${covered})\n`,
      );
      expect(covered).toBeGreaterThan(10);
    },
    40 * 60_000,
  );
});
