import { describe, expect, it } from 'vitest';
import type { AcceptAPI } from '../../apis/types.ts';
import { assignmentsByProvider, placeObject } from './placement.ts';

const GVR = { group: 'example.platform-mesh.io', version: 'v1alpha1', resource: 'certificates' };
const ready = [{ type: 'Ready', status: 'True' as const, reason: 'Verified', message: '', lastTransitionTime: '' }];
const accept = (cluster: string, name: string, extra: Partial<AcceptAPI['spec']> = {}, isReady = true): AcceptAPI => ({
  metadata: { name, annotations: { 'kcp.io/cluster': cluster } },
  spec: { gvr: GVR, apiExportName: 'certs', ...extra },
  status: { conditions: isReady ? ready : [] },
});

describe('placeObject', () => {
  it('routes by filters and records why others failed', () => {
    const decision = placeObject({
      gvr: GVR,
      spec: { fqdn: 'app.internal.corp' },
      objectId: 'c|default|a',
      acceptAPIs: [
        accept('p1', 'internal', { filters: [{ key: 'fqdn', suffix: 'internal.corp' }] }),
        accept('p2', 'external', { filters: [{ key: 'fqdn', suffix: 'corp.com' }] }),
      ],
      assignmentsByProvider: new Map(),
    });
    expect(decision.winner?.providerCluster).toBe('p1');
    expect(decision.candidates.find((c) => c.providerCluster === 'p2')?.reason).toContain('does not end with "corp.com"');
  });

  it('never picks an AcceptAPI that is not Ready', () => {
    const decision = placeObject({
      gvr: GVR,
      spec: {},
      objectId: 'x',
      acceptAPIs: [accept('p1', 'a', {}, false)],
      assignmentsByProvider: new Map(),
    });
    expect(decision.winner).toBeUndefined();
    expect(decision.candidates[0]?.reason).toMatch(/^not Ready/);
  });

  it('takes the export from the standalone annotation, and never picks one still Ready from before it named none', () => {
    const annotated: AcceptAPI = {
      ...accept('p1', 'annotated', { apiExportName: undefined }),
      metadata: { name: 'annotated', annotations: { 'kcp.io/cluster': 'p1', 'broker.platform-mesh.io/kcp-apiexport-name': 'legacy' } },
    };
    const nameless = accept('p2', 'nameless', { apiExportName: undefined, priority: 10 });
    const decision = placeObject({
      gvr: GVR,
      spec: {},
      objectId: 'x',
      acceptAPIs: [annotated, nameless],
      assignmentsByProvider: new Map(),
    });
    expect(decision.winner).toMatchObject({ acceptAPIName: 'annotated', apiExportName: 'legacy' });
    expect(decision.candidates.find((c) => c.acceptAPI === 'nameless')?.reason).toContain('names no APIExport');
  });

  it('prefers higher priority, then fewer assignments, then a stable hash', () => {
    const apis = [accept('p1', 'a', { priority: 1 }), accept('p2', 'b', { priority: 5 })];
    expect(
      placeObject({ gvr: GVR, spec: {}, objectId: 'x', acceptAPIs: apis, assignmentsByProvider: new Map() }).winner?.providerCluster,
    ).toBe('p2');
    const equal = [accept('p1', 'a'), accept('p2', 'b')];
    const load = new Map([
      ['p1', 3],
      ['p2', 1],
    ]);
    expect(placeObject({ gvr: GVR, spec: {}, objectId: 'x', acceptAPIs: equal, assignmentsByProvider: load }).reason).toContain(
      'fewest assignments',
    );
    const first = placeObject({ gvr: GVR, spec: {}, objectId: 'obj-1', acceptAPIs: equal, assignmentsByProvider: new Map() });
    const again = placeObject({
      gvr: GVR,
      spec: {},
      objectId: 'obj-1',
      acceptAPIs: [...equal].reverse(),
      assignmentsByProvider: new Map(),
    });
    expect(again.winner?.providerCluster).toBe(first.winner?.providerCluster);
    const spread = new Set(
      Array.from(
        { length: 20 },
        (_, i) =>
          placeObject({ gvr: GVR, spec: {}, objectId: `o${i}`, acceptAPIs: equal, assignmentsByProvider: new Map() }).winner
            ?.providerCluster,
      ),
    );
    expect(spread.size).toBe(2);
  });

  it('excludes the current provider for a migration', () => {
    const decision = placeObject({
      gvr: GVR,
      spec: {},
      objectId: 'x',
      acceptAPIs: [accept('p1', 'a')],
      assignmentsByProvider: new Map(),
      exclude: { providerCluster: 'p1', acceptAPIName: 'a' },
    });
    expect(decision.winner).toBeUndefined();
  });

  it('counts Assignments per serving provider for one resource only', () => {
    const assignment = (provider: string, resource: string, serving?: string) => ({
      metadata: {},
      spec: { consumerCluster: 'c', gvr: { ...GVR, resource }, name: 'x', providerCluster: provider, acceptAPIName: 'a' },
      ...(serving ? { status: { providerCluster: serving } } : {}),
    });
    const load = assignmentsByProvider(
      [assignment('p1', 'certificates'), assignment('p2', 'certificates', 'p1'), assignment('p2', 'vms')],
      GVR,
    );
    expect([...load]).toEqual([['p1', 2]]);
  });
});
