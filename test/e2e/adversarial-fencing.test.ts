import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createKcpClient, unwrap } from '../../src/kcp-client-ts/typed-client.ts';
import type { ReadyWorkspace } from '../../src/kcp-client-ts/workspaces.ts';
import { BrokerProcess } from '../harness/broker-process.ts';
import { BrokerWorld, statusOf } from '../harness/broker-world.ts';
import { eventually } from '../harness/eventually.ts';
import { kcpEnv } from '../harness/kcp-env.ts';

/** One writer at a time: a leader that starts slowly keeps its lease; a paused one stops writing when it resumes. */
describe('adversarial: two replicas never both act', () => {
  let world: BrokerWorld;
  let consumer: ReadyWorkspace;
  const processes: BrokerProcess[] = [];
  const lease = async (): Promise<{ holder: string; transitions: number }> => {
    const client = createKcpClient(world.endpoint, world.endpoint.workspaceUrl(world.paths.coordination));
    const l = unwrap(
      await client.GET('/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}', {
        params: { path: { namespace: 'default', name: 'resource-broker' } },
      }),
    );
    return { holder: l.spec?.holderIdentity ?? '', transitions: l.spec?.leaseTransitions ?? 0 };
  };
  const replica = async (env: Record<string, string> = {}): Promise<BrokerProcess> => {
    const p = new BrokerProcess(inject('kcp').kubeconfig, world.paths, {
      RB_LEADER_ELECT_LEASE_DURATION: '4',
      RB_LEADER_ELECT_RENEW_DEADLINE: '3',
      RB_LEADER_ELECT_RETRY_PERIOD: '1',
      ...env,
    });
    processes.push(p);
    await p.start();
    return p;
  };
  const identityOf = (p: BrokerProcess): string | undefined => {
    const line = p.logs.find((l) => l.includes('"msg":"became leader"'));
    return line ? (JSON.parse(line) as { identity: string }).identity : undefined;
  };

  beforeAll(async () => {
    world = await BrokerWorld.create('fence', (await kcpEnv()).endpoint);
    [, consumer] = await Promise.all([world.provider('ca', ['certificates']), world.consumer('consumer', ['certificates'])]);
    await world.accept('ca', 'certs', { api: 'certificates' });
  });

  afterAll(async () => {
    for (const p of processes) await p.stop('SIGKILL');
    await world?.cleanup();
  });

  it('keeps the lease through a start slower than the lease duration, so the other replica waits', async () => {
    // An export nothing binds yet: its endpoint slice exists (the preflight passes) but lists no
    // endpoint, so this replica leads while its start waits (as on a slow kcp).
    await world.inCluster(world.paths.home, { group: 'apis.kcp.io', version: 'v1alpha2', resource: 'apiexports' }).create({
      apiVersion: 'apis.kcp.io/v1alpha2',
      kind: 'APIExport',
      metadata: { name: 'not-published-yet' },
      spec: {},
    });
    const slices = world.inCluster(world.paths.home, { group: 'apis.kcp.io', version: 'v1alpha1', resource: 'apiexportendpointslices' });
    await eventually(async () => expect(await slices.find({ name: 'not-published-yet' })).toBeDefined());
    const slow = await replica({ RB_ACCEPTAPI_EXPORT: 'not-published-yet' });
    await eventually(() => expect(identityOf(slow)).toBeDefined());
    const other = await replica();
    await eventually(() => expect(other.logs.some((l) => l.includes('waiting for the leader lease'))).toBe(true));
    const { transitions } = await lease();
    await sleep(10_000); // well past the 4 s lease duration
    expect(await lease()).toEqual({ holder: identityOf(slow), transitions });
    expect(identityOf(other)).toBeUndefined();
    // Stopped during its start, it exits cleanly and hands over at once.
    expect(await slow.stop('SIGTERM')).toBe(0);
    await eventually(async () => expect(await other.serving()).toBe(true));
    await other.stop('SIGTERM');
  });

  it('a leader paused past its lease stops writing the moment it resumes and exits; the new leader serves alone', async () => {
    const first = await replica();
    await eventually(async () => expect(await first.readyz()).toBe(200));
    await world.waitAcceptAPIReady('ca', 'certs');
    const second = await replica();
    await eventually(() => expect(second.logs.some((l) => l.includes('waiting for the leader lease'))).toBe(true));
    const certs = world.objects(consumer.path, 'certificates');

    first.child!.kill('SIGSTOP');
    await eventually(async () => expect((await lease()).holder).toBe(identityOf(second)), { timeoutMs: 30_000 });
    await eventually(async () => expect(await second.serving()).toBe(true));
    // Work the paused leader had not seen: only the new leader may act on it.
    await certs.create(world.newObject('certificates', 'during', { fqdn: 'during.example.org' }));
    await eventually(async () => expect(statusOf(await certs.get({ namespace: 'default', name: 'during' }))).toBe('Available'));

    const exited = new Promise<number | null>((resolve) => first.child!.once('exit', (code) => resolve(code)));
    first.child!.kill('SIGCONT');
    expect(await Promise.race([exited, sleep(20_000, 'still running')])).toBe(1);
    expect(first.hasLog('lost the leader lease, stopping')).toBe(true);
    // Nothing it had queued reached kcp as a placement: one Assignment, still served.
    const assignments = (await world.assignments().list()).items.filter((a) => a.spec.name === 'during');
    expect(assignments).toHaveLength(1);
    expect((await lease()).holder).toBe(identityOf(second));
    expect(statusOf(await certs.get({ namespace: 'default', name: 'during' }))).toBe('Available');
  });
});
