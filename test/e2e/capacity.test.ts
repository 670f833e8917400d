import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MIGRATION_GVR, type Assignment, type Migration } from '../../src/apis/types.ts';
import { ResourceClient } from '../../src/kcp-client-ts/resources.ts';
import type { KubeObject } from '../../src/kcp-client-ts/types.ts';
import type { ReadyWorkspace } from '../../src/kcp-client-ts/workspaces.ts';
import { BrokerProcess, runCliFor } from '../harness/broker-process.ts';
import { BrokerWorld, statusOf } from '../harness/broker-world.ts';
import { eventually } from '../harness/eventually.ts';
import { kcpEnv } from '../harness/kcp-env.ts';

const PER_PROVIDER = 5;

/** Capacity, drain at the migration budget with no consumer ever losing Available, and single-object moves. */
/** How many objects each AcceptAPI serves, by the Assignments (status once written, else the decision in spec). */
const byAcceptAPI = (assignments: Assignment[]): Record<string, number> => {
  const counts: Record<string, number> = {};
  for (const a of assignments) {
    const name = a.status?.acceptAPIName ?? a.spec.acceptAPIName;
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
};

describe('capacity and intent: providers declare capacity, platforms drain, every move make-before-break and paced', () => {
  let world: BrokerWorld;
  let consumer: ReadyWorkspace;
  let broker: BrokerProcess;
  const cli = (command: string, ...flags: string[]) => runCliFor(inject('kcp').kubeconfig, world.paths, command, ...flags);

  beforeAll(async () => {
    world = await BrokerWorld.create('capacity', (await kcpEnv()).endpoint);
    [, , consumer] = await Promise.all([
      world.provider('one', ['certificates']),
      world.provider('two', ['certificates']),
      world.consumer('consumer', ['certificates']),
    ]);
    await world.accept('one', 'one', { api: 'certificates', capacity: 3 });
    await world.accept('two', 'two', { api: 'certificates', capacity: 4 });
    await world.accept('one', 'picky', { api: 'certificates', filters: [{ key: 'fqdn', suffix: 'picky.test' }] });
    broker = new BrokerProcess(inject('kcp').kubeconfig, world.paths, {
      RB_MAX_CONCURRENT_MIGRATIONS: '10',
      RB_MAX_CONCURRENT_MIGRATIONS_PER_PROVIDER: String(PER_PROVIDER),
    });
    await broker.start();
    await Promise.all(['one', 'two'].map((p) => world.waitAcceptAPIReady(p, p)));
  });

  afterAll(async () => {
    await broker?.stop('SIGKILL');
    await world?.cleanup();
  });

  it('never places past an AcceptAPI capacity in a burst; the rest wait naming the full providers, and go once there is room', async () => {
    const certs = world.objects(consumer.path, 'certificates');
    await Promise.all(
      Array.from({ length: 10 }, (_, i) => certs.create(world.newObject('certificates', `burst-${i}`, { fqdn: `burst-${i}.example.org` }))),
    );
    const seen: Record<string, number>[] = [];
    await eventually(
      async () => {
        const counts = byAcceptAPI((await world.assignments().list()).items);
        seen.push(counts);
        expect(counts).toEqual({ one: 3, two: 4 });
        const pending = (await certs.list({ namespace: 'default' })).items.filter((c) => !statusOf(c));
        expect(pending).toHaveLength(3);
        const events = await world.events(consumer.path);
        for (const c of pending) {
          const placed = (c['status'] as { conditions?: { type: string; reason: string }[] } | undefined)?.conditions?.find(
            (x) => x.type === 'BrokerPlaced',
          );
          expect(placed?.reason).toBe('NoMatchingProvider');
          // The Event names each full AcceptAPI.
          const said = events
            .filter((e) => (e['involvedObject'] as { name?: string }).name === c.metadata.name && e['reason'] === 'NoMatchingProvider')
            .map((e) => String(e['message']))
            .join('\n');
          expect(said).toMatch(/one \([^)]*\): full \(capacity 3/);
          expect(said).toMatch(/two \([^)]*\): full \(capacity 4/);
        }
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    );
    // Checked from the Assignments all along: no AcceptAPI ever held more than its capacity.
    for (const counts of seen) expect((counts['one'] ?? 0) <= 3 && (counts['two'] ?? 0) <= 4, JSON.stringify(counts)).toBe(true);

    await world.acceptAPIs('one').mergePatch({ name: 'one' }, { spec: { capacity: 100 } });
    await world.acceptAPIs('two').mergePatch({ name: 'two' }, { spec: { capacity: null } });
    await eventually(async () => expect((await world.assignments().list()).items).toHaveLength(10), { timeoutMs: 90_000 });
  });

  it('drains a provider serving about 50 objects to the other, never more than the budget in flight, no consumer ever losing Available', async () => {
    const certs = world.objects(consumer.path, 'certificates');
    // 44 more, all on one (two is cordoned meanwhile): one serves 50 or so.
    expect((await cli('cordon', '--workspace', world.providers.get('two')!.workspace.path, '--acceptapi', 'two')).code).toBe(0);
    for (let i = 0; i < 44; i += 11)
      await Promise.all(
        Array.from({ length: 11 }, (_, j) =>
          certs.create(world.newObject('certificates', `d-${i + j}`, { fqdn: `d-${i + j}.example.org` })),
        ),
      );
    await eventually(
      async () => {
        const all = (await certs.list({ namespace: 'default' })).items;
        expect(all.filter((c) => statusOf(c) === 'Available')).toHaveLength(54);
        expect((await world.assignments().list()).items).toHaveLength(54);
      },
      { timeoutMs: 240_000 },
    );
    expect((await cli('uncordon', '--workspace', world.providers.get('two')!.workspace.path, '--acceptapi', 'two')).code).toBe(0);

    const drained = await cli('drain', '--workspace', world.providers.get('one')!.workspace.path, '--acceptapi', 'one');
    expect(drained.code, drained.stderr).toBe(0);
    const migrations = new ResourceClient<Migration>({
      endpoint: world.endpoint,
      baseUrl: world.endpoint.workspaceUrl(world.paths.coordination),
      gvr: MIGRATION_GVR,
    });
    let peak = 0;
    const unavailable: string[] = [];
    const deadline = Date.now() + 600_000;
    for (;;) {
      const [inFlight, all, assignments] = await Promise.all([
        migrations.list(),
        certs.list({ namespace: 'default' }),
        world.assignments().list(),
      ]);
      peak = Math.max(peak, inFlight.items.filter((m) => m.status?.state !== 'CutoverCompleted').length);
      for (const c of all.items as KubeObject[]) if (statusOf(c) !== 'Available') unavailable.push(`${c.metadata.name}: ${statusOf(c)}`);
      if (byAcceptAPI(assignments.items)['two'] === 54 && inFlight.items.length === 0) break;
      if (Date.now() > deadline) throw new Error(`drain not done: ${JSON.stringify(byAcceptAPI(assignments.items))}`);
      await sleep(300);
    }
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(PER_PROVIDER);
    expect(unavailable).toEqual([]);
    expect(world.runner('one', 'certificates').objects()).toEqual([]);
    // The AcceptAPIs' status catches up with the load within the broker's report period (15 s).
    await eventually(
      async () => {
        expect((await world.acceptAPIs('one').get({ name: 'one' })).status).toMatchObject({ servedObjects: 0, migrationsOut: 0 });
        expect((await world.acceptAPIs('two').get({ name: 'two' })).status).toMatchObject({ servedObjects: 54, migrationsOut: 0 });
      },
      { timeoutMs: 45_000 },
    );
  }, 900_000);

  it('moves one object where the platform asks, and refuses a target that does not accept it, saying why', async () => {
    const providerOne = world.providers.get('one')!.workspace.path;
    expect((await cli('uncordon', '--workspace', providerOne, '--acceptapi', 'one')).code).toBe(0);
    const move = await cli('migrate', '--workspace', consumer.path, '--resource', 'certificate', '--name', 'd-0', '--to', 'one');
    expect(move.code, move.stderr).toBe(0);
    await eventually(async () => expect((await world.assignmentOf(consumer, 'certificates', 'd-0'))?.status?.acceptAPIName).toBe('one'), {
      timeoutMs: 90_000,
    });
    const certs = world.objects(consumer.path, 'certificates');
    expect(statusOf(await certs.get({ namespace: 'default', name: 'd-0' }))).toBe('Available');

    const refused = await cli('migrate', '--workspace', consumer.path, '--resource', 'certificates', '--name', 'd-1', '--to', 'picky');
    expect(refused.code, refused.stderr).toBe(0);
    await eventually(async () => {
      const a = await world.assignmentOf(consumer, 'certificates', 'd-1');
      const condition = a?.status?.conditions?.find((c) => c.type === 'MoveRequested');
      expect(condition).toMatchObject({ status: 'False', reason: 'Refused' });
      expect(condition?.message).toContain('does not end with "picky.test"');
      expect(a?.status?.acceptAPIName).toBe('two');
    });
  });
});

/** Opt-in rebalancing: a new provider takes its share, make-before-break and paced, and then nothing moves. */
describe('rebalancing onto a new provider (--rebalance)', () => {
  let world: BrokerWorld;
  let consumer: ReadyWorkspace;
  let broker: BrokerProcess;
  const OBJECTS = 12;

  beforeAll(async () => {
    world = await BrokerWorld.create('rebalance', (await kcpEnv()).endpoint);
    [, , consumer] = await Promise.all([
      world.provider('old', ['certificates']),
      world.provider('new', ['certificates']),
      world.consumer('consumer', ['certificates']),
    ]);
    await world.accept('old', 'old', { api: 'certificates' });
    broker = new BrokerProcess(inject('kcp').kubeconfig, world.paths, {
      RB_REBALANCE: 'true',
      // A provider takes load once Ready for min(1 minute, interval): 20 s here.
      RB_REBALANCE_INTERVAL: '20s',
      RB_MAX_CONCURRENT_MIGRATIONS_PER_PROVIDER: '2',
    });
    await broker.start();
    await world.waitAcceptAPIReady('old', 'old');
  });

  afterAll(async () => {
    await broker?.stop('SIGKILL');
    await world?.cleanup();
  });

  it('moves half the objects to a provider that appears, never more than the budget at once, no consumer losing Available; then stays still', async () => {
    const certs = world.objects(consumer.path, 'certificates');
    await Promise.all(
      Array.from({ length: OBJECTS }, (_, i) => certs.create(world.newObject('certificates', `r-${i}`, { fqdn: `r-${i}.example.org` }))),
    );
    await eventually(
      async () =>
        expect((await certs.list({ namespace: 'default' })).items.filter((c) => statusOf(c) === 'Available')).toHaveLength(OBJECTS),
      { timeoutMs: 120_000 },
    );
    const migrations = new ResourceClient<Migration>({
      endpoint: world.endpoint,
      baseUrl: world.endpoint.workspaceUrl(world.paths.coordination),
      gvr: MIGRATION_GVR,
    });
    const served = async (): Promise<Record<string, number>> => byAcceptAPI((await world.assignments().list()).items);
    expect(await served()).toEqual({ old: OBJECTS });

    await world.accept('new', 'new', { api: 'certificates' });
    let peak = 0;
    const unavailable: string[] = [];
    const deadline = Date.now() + 300_000;
    for (;;) {
      const [inFlight, all, counts] = await Promise.all([migrations.list(), certs.list({ namespace: 'default' }), served()]);
      peak = Math.max(peak, inFlight.items.filter((m) => m.status?.state !== 'CutoverCompleted').length);
      for (const c of all.items as KubeObject[]) if (statusOf(c) !== 'Available') unavailable.push(`${c.metadata.name}: ${statusOf(c)}`);
      if (counts['new'] === OBJECTS / 2 && inFlight.items.length === 0) break;
      if (Date.now() > deadline) throw new Error(`rebalance not done: ${JSON.stringify(counts)}`);
      await sleep(300);
    }
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(2);
    expect(unavailable).toEqual([]);
    expect(await served()).toEqual({ old: OBJECTS / 2, new: OBJECTS / 2 });

    // Balanced: nothing moves any more.
    await sleep(10_000);
    expect((await migrations.list()).items).toEqual([]);
    expect(await served()).toEqual({ old: OBJECTS / 2, new: OBJECTS / 2 });
    const started = (await world.events(consumer.path)).filter((e) => e['reason'] === 'MigrationStarted');
    expect(started).toHaveLength(OBJECTS / 2);
    expect(String(started[0]?.['message'])).toContain('rebalancing: provider');
  }, 600_000);
});
