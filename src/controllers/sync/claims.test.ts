import { describe, expect, it } from 'vitest';
import { MemoryApi } from '../../../test/fakes/memory-api.ts';
import { APIBINDINGS } from '../../../test/fakes/sync-world.ts';
import type { KubeObject } from '../../kcp-client-ts/types.ts';
import { bindingClaimsOf, ConsumerBindings, consumerClaimsOf, sameClaims, unclaimedOf } from './claims.ts';

describe('consumerClaimsOf', () => {
  it('takes core claims that grant what the broker does, in a fixed order', () => {
    const claimed = consumerClaimsOf([
      { group: '', resource: 'events', verbs: ['*'] },
      { group: '', resource: 'namespaces', verbs: ['get', 'list', 'watch', 'create'] },
      { resource: 'secrets', verbs: ['get', 'list', 'watch', 'create', 'update', 'delete', 'patch'] },
    ]);
    expect(claimed).toEqual(['secrets', 'events']);
    expect(unclaimedOf(claimed)).toEqual(['configmaps']);
  });

  it('ignores a claim without the verbs the broker needs, of another group, or of another export', () => {
    expect(
      consumerClaimsOf([
        { group: '', resource: 'secrets', verbs: ['get', 'list', 'watch'] },
        { group: 'example.io', resource: 'configmaps', verbs: ['*'] },
        { group: '', resource: 'events', verbs: ['*'], identityHash: 'abc' },
      ]),
    ).toEqual([]);
    expect(consumerClaimsOf(undefined)).toEqual([]);
  });

  it('compares claim sets regardless of the order the export lists them in', () => {
    const a = consumerClaimsOf([
      { resource: 'configmaps', verbs: ['*'] },
      { resource: 'secrets', verbs: ['*'] },
    ]);
    const b = consumerClaimsOf([
      { resource: 'secrets', verbs: ['*'] },
      { resource: 'configmaps', verbs: ['*'] },
    ]);
    expect(sameClaims(a, b)).toBe(true);
    expect(sameClaims(a, ['secrets'])).toBe(false);
  });
});

describe('ConsumerBindings', () => {
  const binding = (resources: string[], extra: Record<string, unknown> = {}): KubeObject => ({
    apiVersion: 'apis.kcp.io/v1alpha2',
    kind: 'APIBinding',
    metadata: { name: 'certificates' },
    spec: { reference: { export: { path: 'root:platform', name: 'certificates' } } },
    status: {
      ...extra,
      appliedPermissionClaims: resources.map((resource) => ({ group: '', resource, verbs: ['*'], selector: { matchAll: true } })),
    },
  });

  it("answers per workspace from the binding's applied claims, and does not know a workspace whose binding it has not seen", () => {
    const api = new MemoryApi();
    api.put('consumer-a', APIBINDINGS, binding(['secrets', 'namespaces']));
    api.put('consumer-b', APIBINDINGS, binding(['events', 'configmaps', 'secrets']));
    const bindings = new ConsumerBindings(api.informer(APIBINDINGS, { transform: bindingClaimsOf }));
    expect(bindings.accepted('consumer-a')).toEqual(['secrets']);
    expect(bindings.accepted('consumer-b')).toEqual(['secrets', 'configmaps', 'events']);
    expect(bindings.accepted('consumer-c')).toBeUndefined();
  });

  it('keeps only identity and applied claims of a binding, and tells which events change what a workspace accepted', () => {
    const api = new MemoryApi();
    const informer = api.informer(APIBINDINGS, { transform: bindingClaimsOf });
    new ConsumerBindings(informer);
    api.put('consumer-a', APIBINDINGS, binding(['secrets'], { conditions: [{ type: 'Ready', status: 'True' }] }));
    const before = informer.store.list()[0]!;
    expect(before['spec']).toBeUndefined();
    expect(before['status']).toEqual({ appliedPermissionClaims: [{ group: '', resource: 'secrets', verbs: ['*'], identityHash: '' }] });
    api.put('consumer-a', APIBINDINGS, binding(['secrets'], { phase: 'Bound' }));
    const same = informer.store.list()[0]!;
    api.put('consumer-a', APIBINDINGS, binding(['secrets', 'configmaps']));
    const more = informer.store.list()[0]!;
    expect(ConsumerBindings.changed({ type: 'updated', object: same, old: before })).toBe(false);
    expect(ConsumerBindings.changed({ type: 'updated', object: more, old: same })).toBe(true);
    expect(ConsumerBindings.changed({ type: 'added', object: before })).toBe(true);
    expect(ConsumerBindings.changed({ type: 'deleted', object: before })).toBe(false);
  });
});
