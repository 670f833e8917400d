import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AcceptAPIFilter } from '../../src/apis/types.ts';
import { ApiError } from '../../src/kcp-client-ts/errors.ts';
import type { ReadyWorkspace } from '../../src/kcp-client-ts/workspaces.ts';
import { eventually } from '../harness/eventually.ts';
import { BrokerWorld, statusOf } from '../harness/broker-world.ts';
import { kcpEnv } from '../harness/kcp-env.ts';

/** The error kcp answers to creating an AcceptAPI with these filters (fails the test if it accepts). */
const refusal = async (world: BrokerWorld, name: string, filters: AcceptAPIFilter[]): Promise<ApiError> => {
  try {
    await world.accept('evil', name, { api: 'certificates', filters });
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error(`kcp accepted AcceptAPI ${name}`);
};

// Issue "Trust boundaries", item 6: providers and consumers are untrusted, and their input must
// cost the broker a bounded amount. The schema refuses oversized AcceptAPIs; a regex that would
// backtrack for ever in JS RegExp runs in RE2 in linear time, so other tenants are not delayed.
describe('Adversarial providers and consumers: bounded costs', () => {
  let world: BrokerWorld;
  let victim: ReadyWorkspace;
  let neighbour: ReadyWorkspace;
  let evil: ReadyWorkspace;

  beforeAll(async () => {
    world = await BrokerWorld.create('bounds', (await kcpEnv()).endpoint);
    [evil, , victim, neighbour] = await Promise.all([
      world.provider('evil', ['certificates']),
      world.provider('honest', ['vms']),
      world.consumer('victim', ['certificates']),
      world.consumer('neighbour', ['vms']),
    ]);
    await Promise.all([
      // A plausible filter: names made of a's. JS RegExp backtracks exponentially on 'a'*n + '!'.
      world.accept('evil', 'regex', { api: 'certificates', filters: [{ key: 'fqdn', expression: "self.fqdn.matches('^(a+)+$')" }] }),
      world.accept('honest', 'vms', { api: 'vms' }),
    ]);
    await world.startBroker();
    await Promise.all([world.waitAcceptAPIReady('evil', 'regex'), world.waitAcceptAPIReady('honest', 'vms')]);
  });

  afterAll(async () => {
    await world?.cleanup();
  });

  it('kcp refuses an AcceptAPI with 33 filters, naming spec.filters', async () => {
    const err = await refusal(
      world,
      'too-many',
      Array.from({ length: 33 }, (_, i) => ({ key: `k${i}`, prefix: 'x' })),
    );
    expect(err.status).toBe(422);
    expect(err.message).toContain('spec.filters');
    expect(err.message).toMatch(/at most 32 items/);
  });

  it('kcp refuses a 5000-character expression, naming spec.filters[0].expression', async () => {
    const err = await refusal(world, 'too-long', [{ key: 'fqdn', expression: `self.fqdn == "${'a'.repeat(5_000)}"` }]);
    expect(err.status).toBe(422);
    expect(err.message).toContain('spec.filters[0].expression');
    expect(err.message).toMatch(/at most 1024|longer than 1024|more than 1024/);
  });

  it('kcp refuses boundary.min > boundary.max, and over-long values', async () => {
    const range = await refusal(world, 'bad-range', [{ key: 'memory', boundary: { min: 10, max: 1 } }]);
    expect(range.message).toContain('boundary.min must not be greater than boundary.max');
    const values = await refusal(world, 'many-values', [{ key: 'fqdn', valueIn: Array.from({ length: 257 }, (_, i) => `v${i}`) }]);
    expect(values.message).toContain('spec.filters[0].valueIn');
    expect((await world.acceptAPIs('evil').list()).items.map((a) => a.metadata.name)).toEqual(['regex']);
  });

  it('a crafted value against a backtracking regex gets NoMatchingProvider at once, and other tenants are still served', async () => {
    const crafted = `${'a'.repeat(50_000)}!`;
    await world.objects(victim.path, 'certificates').create(world.newObject('certificates', 'crafted', { fqdn: crafted }));
    await world.objects(neighbour.path, 'vms').create(world.newObject('vms', 'served', { arch: 'arm64', memory: 512 }));

    // The neighbour's object goes all the way: placed, synced, status back in its workspace. With
    // JS RegExp the broker's event loop would be stuck in the match and this would never happen.
    await eventually(
      async () =>
        expect(statusOf(await world.objects(neighbour.path, 'vms').get({ namespace: 'default', name: 'served' }))).toBe('Available'),
      { timeoutMs: 60_000 },
    );

    // The crafted object: a clear NoMatchingProvider naming the filter, no Assignment.
    const event = await eventually(async () => {
      const found = (await world.events(victim.path)).find(
        (e) => (e['involvedObject'] as { name?: string }).name === 'crafted' && e['reason'] === 'NoMatchingProvider',
      );
      if (!found) throw new Error('no NoMatchingProvider event for crafted yet');
      return found;
    });
    const message = String(event['message']);
    expect(message).toContain('regex');
    expect(message).toContain('spec.filters[0].expression (key "fqdn"): expression "self.fqdn.matches(\'^(a+)+$\')" is "false"');
    expect(message.length).toBeLessThan(2_000);
    expect(await world.assignmentOf(victim, 'certificates', 'crafted')).toBeUndefined();

    // The filter still works for values it should accept.
    await world.objects(victim.path, 'certificates').create(world.newObject('certificates', 'plain', { fqdn: 'aaaa' }));
    await eventually(async () =>
      expect((await world.assignmentOf(victim, 'certificates', 'plain'))?.spec.providerCluster).toBe(evil.cluster),
    );
  });
});
