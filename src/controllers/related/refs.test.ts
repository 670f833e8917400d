import { describe, expect, it } from 'vitest';
import { MAX_RELATED, relatedRefs } from './refs.ts';

const gvk = (group: string, kind: string) => ({ group, version: 'v1', kind });

describe('relatedRefs', () => {
  it('reads Secrets and ConfigMaps in the object namespace, core group spelled "" or "core"', () => {
    const staging = {
      metadata: { name: 'app', namespace: 'team' },
      status: {
        relatedResources: {
          secret: { name: 'app-tls', gvk: gvk('core', 'Secret') },
          cm: { namespace: 'team', name: 'c', gvk: gvk('', 'ConfigMap') },
        },
      },
    };
    expect(relatedRefs(staging, 'team')).toEqual({
      refs: [
        { key: 'secret', kind: 'Secret', namespace: 'team', name: 'app-tls' },
        { key: 'cm', kind: 'ConfigMap', namespace: 'team', name: 'c' },
      ],
      refused: [],
    });
  });

  it('refuses other kinds, other namespaces, system namespaces, empty and invalid names, saying why', () => {
    const staging = {
      metadata: { name: 'app' },
      status: {
        relatedResources: {
          db: { name: 'x', gvk: gvk('db.io', 'Database') },
          prod: { namespace: 'prod', name: 'db-password', gvk: gvk('', 'Secret') },
          sys: { namespace: 'kube-system', name: 'x', gvk: gvk('', 'Secret') },
          empty: { name: '', gvk: gvk('', 'Secret') },
          slash: { name: 'a/b', gvk: gvk('', 'Secret') },
          upper: { name: 'Secret', gvk: gvk('', 'ConfigMap') },
        },
      },
    };
    const { refs, refused } = relatedRefs(staging, 'team');
    expect(refs).toEqual([]);
    expect(refused).toEqual([
      { key: 'db', reason: 'only core Secrets and ConfigMaps are mirrored' },
      { key: 'prod', reason: 'namespace "prod" is not the object\'s namespace "team"' },
      { key: 'sys', reason: 'namespace "kube-system" is not the object\'s namespace "team"' },
      { key: 'empty', reason: 'name is empty' },
      { key: 'slash', reason: 'name is not a valid object name' },
      { key: 'upper', reason: 'name is not a valid object name' },
    ]);
    expect(
      relatedRefs({ metadata: {}, status: { relatedResources: { s: { name: 'x', gvk: gvk('', 'Secret') } } } }, 'kube-system').refused,
    ).toEqual([{ key: 's', reason: 'namespace "kube-system" is a system namespace' }]);
  });

  it('survives a relatedResources that is not a map', () => {
    expect(relatedRefs({ metadata: {}, status: { relatedResources: ['x'] } }, 'team').refs).toEqual([]);
    expect(relatedRefs({ metadata: {}, status: { relatedResources: 'x' } }, 'team').refs).toEqual([]);
  });

  it('mirrors at most MAX_RELATED entries and refuses the rest, saying why', () => {
    const relatedResources = Object.fromEntries(
      Array.from({ length: MAX_RELATED + 3 }, (_, i) => [`s${i}`, { name: `s${i}`, gvk: gvk('', 'Secret') }]),
    );
    const { refs, refused } = relatedRefs({ metadata: {}, status: { relatedResources } }, 'team');
    expect(refs).toHaveLength(MAX_RELATED);
    expect(refused).toEqual([32, 33, 34].map((i) => ({ key: `s${i}`, reason: `more than ${MAX_RELATED} related resources` })));
  });
});
