import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { isNotFound } from '../../src/kcp-client-ts/errors.ts';
import type { ReadyWorkspace } from '../../src/kcp-client-ts/workspaces.ts';
import { NAMESPACES, SECRETS, type KubeObject } from '../../src/kcp-client-ts/types.ts';
import { eventually } from '../harness/eventually.ts';
import { BrokerWorld, decodeSecret, GVR, statusOf } from '../harness/broker-world.ts';
import { ORPHAN_ANNOTATION } from '../../src/controllers/sync/finalizer.ts';
import { kcpEnv } from '../harness/kcp-env.ts';

/**
 * A hostile provider against a consumer: its status names the consumer's own Secret, a Secret
 * in another namespace and one in kube-system; its AcceptAPI claims a resource its export does
 * not serve. The consumer's objects must stay untouched, and other objects served.
 */
describe('adversarial: what a provider can do to a consumer', () => {
  let world: BrokerWorld;
  let consumer: ReadyWorkspace;
  /** Whether the hostile provider names one of the Secrets it hoards (see the hoarding test). */
  let hoardNamed = false;

  const eventsFor = async (name: string, reason: string): Promise<KubeObject[]> =>
    (await world.events(consumer.path)).filter((e) => e['reason'] === reason && (e['involvedObject'] as { name: string }).name === name);

  beforeAll(async () => {
    world = await BrokerWorld.create('adv', (await kcpEnv()).endpoint);
    await world.provider('hostile', ['certificates', 'vms'], {
      extraRelated: (obj) =>
        obj.metadata.name === 'victim'
          ? [
              { key: 'steal', name: 'db-password', data: { password: 'from-the-provider' } },
              { key: 'escape', namespace: 'kube-system', name: 'planted' },
              { key: 'other', namespace: 'prod', name: 'db-password' },
            ]
          : obj.metadata.name === 'hoarder' && hoardNamed
            ? [{ key: 'late', name: 'hoard-7' }]
            : [],
      // A status far larger than any consumer object should carry (kcp stores it on the staging copy).
      extraStatus: (obj) => (obj.metadata.name === 'bloated' ? { message: 'x'.repeat(400 * 1024) } : {}),
    });
    await world.provider('honest', ['certificates']);
    await world.accept('hostile', 'hostile-certs', { api: 'certificates', filters: [{ key: 'fqdn', suffix: 'hostile.test' }] });
    await world.accept('honest', 'honest-certs', { api: 'certificates', filters: [{ key: 'fqdn', suffix: 'honest.test' }] });
    consumer = await world.consumer('consumer', ['certificates']);
    const secrets = world.inCluster(consumer.path, SECRETS);
    await world.inCluster(consumer.path, NAMESPACES).create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'prod' } });
    for (const namespace of ['default', 'prod']) {
      await secrets.create({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'db-password', namespace },
        stringData: { password: `consumer-own-${namespace}` },
      });
    }
    await world.startBroker();
    await world.waitAcceptAPIReady('hostile', 'hostile-certs');
    await world.waitAcceptAPIReady('honest', 'honest-certs');
  });

  afterAll(async () => {
    await world?.cleanup();
  });

  it("never overwrites or deletes the consumer's own Secret, never writes outside the object's namespace, and says why", async () => {
    const certs = world.objects(consumer.path, 'certificates');
    const secrets = world.inCluster(consumer.path, SECRETS);
    const own = await secrets.get({ namespace: 'default', name: 'db-password' });
    const ownProd = await secrets.get({ namespace: 'prod', name: 'db-password' });
    await certs.create(world.newObject('certificates', 'victim', { fqdn: 'victim.hostile.test' }));
    await eventually(async () => expect(statusOf(await certs.get({ namespace: 'default', name: 'victim' }))).toBe('Available'));
    // What the provider may publish still arrives.
    await eventually(() => secrets.get({ namespace: 'default', name: 'victim-credentials' }));
    await eventually(async () => expect(await eventsFor('victim', 'RelatedResourceConflict')).not.toHaveLength(0));
    const conflict = (await eventsFor('victim', 'RelatedResourceConflict'))[0]!;
    expect(conflict['message']).toContain('Secret default/db-password');
    await eventually(async () => expect(await eventsFor('victim', 'RelatedResourceRefused')).not.toHaveLength(0));
    const refused = String((await eventsFor('victim', 'RelatedResourceRefused'))[0]!['message']);
    expect(refused).toContain('escape: namespace "kube-system" is not the object\'s namespace "default"');
    expect(refused).toContain('other: namespace "prod" is not the object\'s namespace "default"');

    const after = await secrets.get({ namespace: 'default', name: 'db-password' });
    expect(decodeSecret(after, 'password')).toBe('consumer-own-default');
    expect(after.metadata.resourceVersion).toBe(own.metadata.resourceVersion);
    expect(after.metadata.labels?.['broker.platform-mesh.io/owner']).toBeUndefined();
    expect((await secrets.get({ namespace: 'prod', name: 'db-password' })).metadata.resourceVersion).toBe(ownProd.metadata.resourceVersion);
    const planted = await secrets
      .get({ namespace: 'kube-system', name: 'planted' })
      .catch((err: unknown) => (isNotFound(err) ? undefined : Promise.reject(err)));
    expect(planted).toBeUndefined();

    // Deleting the object removes what the broker made for it, and nothing else.
    await certs.delete({ namespace: 'default', name: 'victim' });
    await eventually(async () => expect(await certs.find({ namespace: 'default', name: 'victim' })).toBeUndefined());
    expect(await secrets.find({ namespace: 'default', name: 'victim-credentials' })).toBeUndefined();
    const survived = await secrets.get({ namespace: 'default', name: 'db-password' });
    expect(survived.metadata.resourceVersion).toBe(own.metadata.resourceVersion);
    expect(decodeSecret(survived, 'password')).toBe('consumer-own-default');
  });

  it('an AcceptAPI whose export does not serve its resource is not Ready, says why, and never wins placement', async () => {
    // Highest priority, no filters: were it Ready, it would take every certificate.
    await world.accept('hostile', 'wrong-export', { api: 'certificates', apiExportName: 'vms', priority: 100 });
    await eventually(async () => {
      const a = await world.acceptAPIs('hostile').get({ name: 'wrong-export' });
      const verified = a.status?.conditions?.find((c) => c.type === 'BindingVerified');
      expect(verified?.reason).toBe('ResourceNotServed');
      expect(verified?.message).toContain('does not serve spec.gvr certificates.example.platform-mesh.io');
      expect(a.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('False');
    });
    const certs = world.objects(consumer.path, 'certificates');
    await certs.create(world.newObject('certificates', 'bystander', { fqdn: 'bystander.honest.test' }));
    await eventually(async () => expect(statusOf(await certs.get({ namespace: 'default', name: 'bystander' }))).toBe('Available'));
    expect((await world.assignmentOf(consumer, 'certificates', 'bystander'))?.spec.acceptAPIName).toBe('honest-certs');
  });

  it('copies an oversized provider status without its largest field, and says which in a condition and an Event', async () => {
    const certs = world.objects(consumer.path, 'certificates');
    await certs.create(world.newObject('certificates', 'bloated', { fqdn: 'bloated.hostile.test' }));
    const status = await eventually(async () => {
      const s = (await certs.get({ namespace: 'default', name: 'bloated' }))['status'] as {
        status?: string;
        message?: string;
        conditions?: { type: string; reason: string; message: string }[];
      };
      expect(s?.status).toBe('Available');
      return s;
    });
    expect(status.message).toBeUndefined();
    const truncated = status.conditions?.find((c) => c.type === 'StatusTruncated');
    expect(truncated).toMatchObject({ reason: 'ProviderStatusTooLarge' });
    expect(truncated?.message).toContain('status.message (409602 bytes)');
    await eventually(async () => expect(await eventsFor('bloated', 'ProviderStatusTooLarge')).not.toHaveLength(0));
    // The consumer's object stays writable: a spec change still goes down.
    const current = await certs.get({ namespace: 'default', name: 'bloated' });
    await certs.update({ ...current, spec: { fqdn: 'bloated2.hostile.test' } });
    const staging = await world.stagingClusterOf(consumer, 'certificates', 'bloated');
    await eventually(async () =>
      expect(
        (
          await world
            .inCluster(staging, { group: 'example.platform-mesh.io', version: 'v1alpha1', resource: 'certificates' })
            .get({ namespace: 'default', name: 'bloated' })
        )['spec'],
      ).toEqual({ fqdn: 'bloated2.hostile.test' }),
    );
  });

  it('keeps in memory only the Secrets a copy names: 40 large ones nobody names are not cached, one named later is still copied', async () => {
    const certs = world.objects(consumer.path, 'certificates');
    const consumerSecrets = world.inCluster(consumer.path, SECRETS);
    await certs.create(world.newObject('certificates', 'hoarder', { fqdn: 'hoarder.hostile.test' }));
    await eventually(async () => expect(statusOf(await certs.get({ namespace: 'default', name: 'hoarder' }))).toBe('Available'));
    await eventually(() => consumerSecrets.get({ namespace: 'default', name: 'hoarder-credentials' }));
    // What resource_broker_cached_objects{informer="staging secrets"} reports.
    const cachedStagingSecrets = (): number =>
      world
        .broker!.informers.stats()
        .filter((s) => s.family === 'staging secrets')
        .reduce((sum, s) => sum + s.objects, 0);
    const before = cachedStagingSecrets();

    const staging = await world.stagingClusterOf(consumer, 'certificates', 'hoarder');
    const stagingSecrets = world.inCluster(staging, SECRETS);
    for (let i = 0; i < 40; i++) {
      await stagingSecrets.create({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: `hoard-${i}`, namespace: 'default' },
        stringData: { blob: `${i}-${'x'.repeat(100 * 1024)}` },
      });
    }
    // The provider now names one of them (it came before any copy named it, so the broker dropped it).
    hoardNamed = true;
    const current = await certs.get({ namespace: 'default', name: 'hoarder' });
    await certs.update({ ...current, spec: { fqdn: 'again.hoarder.hostile.test' } });
    const copied = await eventually(() => consumerSecrets.get({ namespace: 'default', name: 'hoard-7' }), { timeoutMs: 60_000 });
    expect(decodeSecret(copied, 'blob')).toBe(`7-${'x'.repeat(100 * 1024)}`);
    // A change to it comes through the watch, after the 40 creations: once it is copied, the broker
    // has seen them all, and of the 40 it keeps only the named one.
    const hoard7 = await stagingSecrets.get({ namespace: 'default', name: 'hoard-7' });
    await stagingSecrets.update({ ...hoard7, data: undefined, stringData: { blob: 'changed' } });
    await eventually(async () =>
      expect(decodeSecret(await consumerSecrets.get({ namespace: 'default', name: 'hoard-7' }), 'blob')).toBe('changed'),
    );
    expect(cachedStagingSecrets()).toBeLessThanOrEqual(before + 1);
    expect(await consumerSecrets.find({ namespace: 'default', name: 'hoard-8' })).toBeUndefined();
  });

  it('a provider holding its copy with a finalizer: the deletion says who holds it up, the consumer cannot skip it, a platform admin lets go', async () => {
    const certs = world.objects(consumer.path, 'certificates');
    await certs.create(world.newObject('certificates', 'held', { fqdn: 'held.hostile.test' }));
    await eventually(async () => expect(statusOf(await certs.get({ namespace: 'default', name: 'held' }))).toBe('Available'));
    const staging = await world.stagingClusterOf(consumer, 'certificates', 'held');
    const copies = world.inCluster(staging, GVR.certificates);
    await copies.mergePatch({ namespace: 'default', name: 'held' }, { metadata: { finalizers: ['hostile.example/never'] } });
    onTestFailed(async () => {
      // Leaves no Terminating copy behind in the shared kcp.
      await copies.mergePatch({ namespace: 'default', name: 'held' }, { metadata: { finalizers: null } }).catch(() => undefined);
    });
    await certs.delete({ namespace: 'default', name: 'held' });

    // After 10 s of waiting, an Event and a condition name the provider, the finalizer and the way out.
    const blocked = await eventually(
      async () => {
        const [event] = await eventsFor('held', 'DeletionBlocked');
        expect(event?.['message']).toContain('held by finalizers hostile.example/never');
        return String(event!['message']);
      },
      { timeoutMs: 60_000 },
    );
    expect(blocked).toContain(`${ORPHAN_ANNOTATION}=true`);
    // The condition is written after the Event (a conflict delays it to the next look, 5 s later).
    await eventually(async () => {
      const terminating = await certs.get({ namespace: 'default', name: 'held' });
      expect(terminating.metadata.deletionTimestamp).toBeDefined();
      const conditions = (terminating['status'] as { conditions?: { type: string; status: string; reason: string }[] }).conditions;
      expect(conditions?.find((c) => c.type === 'DeletionBlocked')).toMatchObject({ status: 'True', reason: 'ProviderFinalizer' });
    });

    // The consumer's own annotation is not the way out: the provider's copy keeps its finalizer.
    await certs.mergePatch({ namespace: 'default', name: 'held' }, { metadata: { annotations: { [ORPHAN_ANNOTATION]: 'true' } } });
    await new Promise((resolve) => setTimeout(resolve, 7_000)); // longer than the 5 s the broker waits between looks
    expect((await copies.get({ namespace: 'default', name: 'held' })).metadata.finalizers).toEqual(['hostile.example/never']);

    // The platform admin annotates the Assignment: the provider's finalizer goes, and the deletion ends.
    const assignment = await world.assignmentOf(consumer, 'certificates', 'held');
    await world
      .assignments()
      .mergePatch({ name: assignment!.metadata.name! }, { metadata: { annotations: { [ORPHAN_ANNOTATION]: 'true' } } });
    await eventually(async () => expect(await certs.find({ namespace: 'default', name: 'held' })).toBeUndefined(), { timeoutMs: 60_000 });
    expect(await copies.find({ namespace: 'default', name: 'held' })).toBeUndefined();
    expect(await world.assignmentOf(consumer, 'certificates', 'held')).toBeUndefined();
  });
});
