import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { APIEXPORTS } from '../../src/kcp-client-ts/bindings.ts';
import { OWNER_LABEL, OWNER_UID_ANNOTATION, FINALIZER } from '../../src/apis/names.ts';
import { SECRETS } from '../../src/kcp-client-ts/types.ts';
import type { ReadyWorkspace } from '../../src/kcp-client-ts/workspaces.ts';
import { BrokerProcess, runCliFor } from '../harness/broker-process.ts';
import { BrokerWorld, statusOf } from '../harness/broker-world.ts';
import { eventually } from '../harness/eventually.ts';
import { kcpEnv } from '../harness/kcp-env.ts';

/** `resource-broker uninstall`: refused while a broker leads, a dry run, finalizers only, then --purge. */
describe('resource-broker uninstall', () => {
  let world: BrokerWorld;
  let consumer: ReadyWorkspace;
  let broker: BrokerProcess;
  const uninstall = (...extra: string[]) => runCliFor(inject('kcp').kubeconfig, world.paths, 'uninstall', '--log-level', 'error', ...extra);

  beforeAll(async () => {
    world = await BrokerWorld.create('uninstall', (await kcpEnv()).endpoint);
    [, consumer] = await Promise.all([world.provider('ca', ['certificates']), world.consumer('consumer', ['certificates'])]);
    await world.accept('ca', 'certs', { api: 'certificates' });
    broker = new BrokerProcess(inject('kcp').kubeconfig, world.paths, {
      RB_LEADER_ELECT_LEASE_DURATION: '4',
      RB_LEADER_ELECT_RENEW_DEADLINE: '3',
      RB_LEADER_ELECT_RETRY_PERIOD: '1',
    });
    await broker.start();
  });

  afterAll(async () => {
    await broker?.stop('SIGKILL');
    await world?.cleanup();
  });

  it('removes only what the broker made, and only once no broker runs', async () => {
    const certs = world.objects(consumer.path, 'certificates');
    const secrets = world.inCluster(consumer.path, SECRETS);
    for (const name of ['kept', 'gone']) await certs.create(world.newObject('certificates', name, { fqdn: `${name}.example.org` }));
    await eventually(
      async () => {
        for (const name of ['kept', 'gone']) {
          expect(statusOf(await certs.get({ namespace: 'default', name }))).toBe('Available');
          expect(await secrets.find({ namespace: 'default', name: `${name}-credentials` })).toBeDefined();
        }
      },
      { timeoutMs: 90_000 },
    );
    const kept = await certs.get({ namespace: 'default', name: 'kept' });
    // The consumer's own Secret dressed as a broker copy for "kept" but without its uid: never touched.
    await secrets.create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'mine', namespace: 'default', labels: { [OWNER_LABEL]: 'x' }, annotations: { [OWNER_UID_ANNOTATION]: 'not-kept' } },
      stringData: { mine: 'yes' },
    });

    // A running broker would put its finalizers back: refused (after trying to take its Lease), saying what to do.
    const refused = await uninstall();
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('stop every replica first');
    expect((await certs.get({ namespace: 'default', name: 'kept' })).metadata.finalizers).toContain(FINALIZER);

    expect(await broker.stop('SIGTERM')).toBe(0); // releases the Lease

    const dryRun = await uninstall('--dry-run', '--purge');
    expect(dryRun.code, dryRun.stderr).toBe(0);
    expect(dryRun.stdout).toContain('would remove the finalizer from certificates default/kept');
    expect(dryRun.stdout).toContain(`would delete workspace ${world.paths.stagingRoot}`);
    expect((await certs.get({ namespace: 'default', name: 'kept' })).metadata.finalizers).toContain(FINALIZER);
    expect(await secrets.find({ namespace: 'default', name: 'kept-credentials' })).toBeDefined();

    // Finalizers only: consumer objects stay, and are deleted at once now; providers keep serving.
    const plain = await uninstall();
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toContain('removed 2 finalizers');
    expect((await certs.get({ namespace: 'default', name: 'kept' })).metadata.finalizers ?? []).not.toContain(FINALIZER);
    expect((await certs.get({ namespace: 'default', name: 'kept' })).metadata.uid).toBe(kept.metadata.uid);
    await certs.delete({ namespace: 'default', name: 'gone' });
    await eventually(async () => expect(await certs.find({ namespace: 'default', name: 'gone' })).toBeUndefined());
    expect(
      world
        .runner('ca', 'certificates')
        .objects()
        .map((o) => o.metadata.name),
    ).toEqual(expect.arrayContaining(['kept', 'gone']));

    // A workspace someone else made under the staging root: not the broker's, never deleted.
    await world.workspaces.ensure(world.paths.stagingRoot, 'foreign');
    // The staging view of the provider's export, and an export someone labelled like the broker's
    // but did not name as a view: only the view goes.
    const exports = world.inCluster(world.paths.stagingRoot, APIEXPORTS);
    const exportNames = async (): Promise<string[]> => (await exports.list()).items.map((e) => e.metadata.name ?? '').sort();
    expect(await exportNames()).toEqual([expect.stringMatching(/^view-[0-9a-f]{20}$/)]);
    await exports.create({
      apiVersion: 'apis.kcp.io/v1alpha2',
      kind: 'APIExport',
      metadata: { name: 'view-lookalike', labels: { 'app.kubernetes.io/managed-by': 'resource-broker' } },
      spec: {},
    });

    // --purge: the related copies made for consumer objects, the records and the staging workspaces (providers deprovision).
    const purged = await uninstall('--purge');
    expect(purged.code, purged.stderr).toBe(0);
    expect(purged.stdout).toContain('delete secrets default/kept-credentials');
    expect(await secrets.find({ namespace: 'default', name: 'kept-credentials' })).toBeUndefined();
    expect(await secrets.find({ namespace: 'default', name: 'mine' })).toBeDefined();
    expect(await certs.find({ namespace: 'default', name: 'kept' })).toBeDefined(); // the consumer's object is the consumer's
    expect((await world.assignments().list()).items).toEqual([]);
    expect((await world.stagingWorkspaces().list()).items).toEqual([]);
    await eventually(() => expect(world.runner('ca', 'certificates').objects()).toEqual([]), { timeoutMs: 90_000 });
    const { parent, name } = { parent: world.paths.stagingRoot, name: 'foreign' };
    expect(await world.workspaces.get(parent, name)).toBeDefined();
    expect(await world.workspaces.get(world.paths.coordination, 'staging')).toBeDefined(); // the root stays
    expect(await exportNames()).toEqual(['view-lookalike']);

    // Idempotent: nothing left to do, and no error.
    const again = await uninstall('--purge');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('removed 0 finalizers');
  }, 400_000);
});
