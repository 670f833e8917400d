import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReadyWorkspace } from '../../src/kcp-client-ts/workspaces.ts';
import { CONFIGMAPS, SECRETS, type KubeObject } from '../../src/kcp-client-ts/types.ts';
import { eventually } from '../harness/eventually.ts';
import { BrokerWorld, decodeSecret, statusOf, type PermissionClaim } from '../harness/broker-world.ts';
import { kcpEnv } from '../harness/kcp-env.ts';

const claim = (resource: string): PermissionClaim => ({ group: '', resource, verbs: ['*'] });

/**
 * A brokered export published the Go project's way: it claims Secrets only (no ConfigMaps, no
 * Events). Consumers are served anyway; what the export does not claim is not mirrored, and the
 * broker says so where it can (an Event with the events claim, its log without). The platform
 * then adds claims, the consumer accepts them, and the broker picks both up without a restart.
 */
describe('a brokered export that claims only Secrets', () => {
  let world: BrokerWorld;
  let consumer: ReadyWorkspace;
  let provider: ReadyWorkspace;
  /** What the broker logs (JSON lines, warn and above). */
  const logs: Record<string, unknown>[] = [];

  const notClaimedEvents = async (): Promise<KubeObject[]> =>
    (await world.events(consumer.path)).filter(
      (e) => e['reason'] === 'RelatedResourceNotClaimed' && (e['involvedObject'] as { name: string }).name === 'app',
    );

  beforeAll(async () => {
    world = await BrokerWorld.create('claims', (await kcpEnv()).endpoint);
    await world.setExportClaims('certificates', [claim('secrets')]);
    // The provider publishes a ConfigMap next to each certificate, besides its Secret.
    provider = await world.provider('ca', ['certificates'], {
      extraRelated: (obj) => [{ key: 'settings', kind: 'ConfigMap', name: `${obj.metadata.name}-settings`, data: { mode: 'strict' } }],
    });
    await world.accept('ca', 'ca-certs', { api: 'certificates' });
    consumer = await world.consumer('consumer', ['certificates']);
    const logger = pino({ level: 'warn' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
    await world.startBroker({ logger });
    await world.waitAcceptAPIReady('ca', 'ca-certs');
  });

  afterAll(async () => {
    await world?.cleanup();
  });

  it('places the object and brings its status and Secret up; the ConfigMap is not copied and the broker logs why', async () => {
    const certs = world.objects(consumer.path, 'certificates');
    await certs.create(world.newObject('certificates', 'app', { fqdn: 'app.example.test' }));
    await eventually(async () => expect(statusOf(await certs.get({ namespace: 'default', name: 'app' }))).toBe('Available'));
    const secret = await eventually(() => world.inCluster(consumer.path, SECRETS).get({ namespace: 'default', name: 'app-credentials' }));
    expect(decodeSecret(secret, 'issuer')).toBe(provider.path);
    // The broker is ready: nothing waits on a ConfigMap or Event watch the export does not allow.
    await eventually(() => expect(world.broker?.ready).toBe(true));

    // The provider did publish the ConfigMap next to its copy.
    const staging = await world.stagingClusterOf(consumer, 'certificates', 'app');
    expect((await world.inCluster(staging, CONFIGMAPS).get({ namespace: 'default', name: 'app-settings' }))['data']).toEqual({
      mode: 'strict',
    });
    const logged = await eventually(() => {
      const line = logs.find((l) => l['reason'] === 'RelatedResourceNotClaimed');
      expect(line).toBeDefined();
      return line!;
    });
    expect(logged).toMatchObject({ cluster: consumer.cluster, namespace: 'default', name: 'app' });
    expect(logged['message']).toBe(
      'not copied, the APIExport certificates does not claim configmaps: ConfigMap default/app-settings (settings)',
    );
    expect(logs).toContainEqual(expect.objectContaining({ export: 'certificates', unclaimed: ['configmaps', 'events'] }));
    // Events are not attempted through a claim the export does not make.
    expect(logs.filter((l) => l['msg'] === 'could not record event')).toEqual([]);
    expect(await world.inCluster(consumer.path, CONFIGMAPS).find({ namespace: 'default', name: 'app-settings' })).toBeUndefined();
  });

  it('once the platform adds the events claim and the consumer accepts it, the consumer gets an Event saying which kind the export does not claim', async () => {
    await world.setExportClaims('certificates', [claim('secrets'), claim('events')]);
    await world.acceptClaims(consumer.path, 'certificates');
    const [event] = await eventually(async () => {
      const found = await notClaimedEvents();
      expect(found).not.toHaveLength(0);
      return found;
    });
    expect(event).toMatchObject({ type: 'Warning', involvedObject: { kind: 'Certificate', namespace: 'default', name: 'app' } });
    expect(event!['message']).toBe(
      'not copied, the APIExport certificates does not claim configmaps: ConfigMap default/app-settings (settings)',
    );
  });

  it('once the platform adds the configmaps claim, the consumer hears it must accept it, and once accepted the ConfigMap arrives', async () => {
    await world.setExportClaims('certificates', [claim('secrets'), claim('events'), claim('configmaps')]);
    // kcp accepts no claim for the consumer: until it does, the broker cannot write a ConfigMap there.
    const waiting = await eventually(
      async () => {
        const found = (await notClaimedEvents()).find((e) => String(e['message']).includes('has not accepted'));
        expect(found).toBeDefined();
        return found!;
      },
      { timeoutMs: 90_000 },
    );
    expect(waiting['message']).toBe(
      'not copied, this workspace has not accepted the configmaps claim of the APIExport certificates: ConfigMap default/app-settings (settings)',
    );
    expect(await world.inCluster(consumer.path, CONFIGMAPS).find({ namespace: 'default', name: 'app-settings' })).toBeUndefined();
    await world.acceptClaims(consumer.path, 'certificates');
    const copy = await eventually(() => world.inCluster(consumer.path, CONFIGMAPS).get({ namespace: 'default', name: 'app-settings' }), {
      timeoutMs: 90_000,
    });
    expect(copy['data']).toEqual({ mode: 'strict' });
    expect(copy.metadata.labels?.['broker.platform-mesh.io/owner']).toMatch(/^[0-9a-f]{20}$/);
    // The object stays served throughout.
    const obj = await world.objects(consumer.path, 'certificates').get({ namespace: 'default', name: 'app' });
    expect(statusOf(obj)).toBe('Available');
    await eventually(() => expect(world.broker?.ready).toBe(true));
    // Nothing was tried that kcp had to refuse.
    expect(logs.filter((l) => l['msg'] === 'could not record event')).toEqual([]);
  });
});
