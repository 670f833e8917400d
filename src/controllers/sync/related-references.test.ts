import { describe, expect, it } from 'vitest';
import { CLUSTER_ANNOTATION } from '../../kcp-client-ts/types.ts';
import { referencesOfCopy, RelatedReferences } from './related-references.ts';

const copyNaming = (...names: string[]) => ({
  metadata: { name: 'app', namespace: 'team', annotations: { [CLUSTER_ANNOTATION]: 'ws1' } },
  status: {
    relatedResources: Object.fromEntries(names.map((name, i) => [`r${i}`, { name, gvk: { group: '', version: 'v1', kind: 'Secret' } }])),
  },
});

describe('RelatedReferences', () => {
  it('counts the copies naming each Secret, and says which no copy names any more', () => {
    const refs = new RelatedReferences();
    const a = referencesOfCopy(copyNaming('tls', 'db'));
    const b = referencesOfCopy(copyNaming('tls'));
    expect(a).toEqual(['ws1/Secret/team/tls', 'ws1/Secret/team/db']);
    refs.add(a);
    refs.add(b);
    expect(refs.remove(a)).toEqual(['ws1/Secret/team/db']);
    expect(refs.keeps('ws1/Secret/team/tls')).toBe(true);
    expect(refs.keeps('ws1/Secret/team/db')).toBe(false);
    expect(refs.remove(b)).toEqual(['ws1/Secret/team/tls']);
    expect(refs.remove(b)).toEqual([]); // more removals than additions change nothing
  });

  it('keeps everything while a copies cache lists, until the last one has', () => {
    const refs = new RelatedReferences();
    const first = {};
    const second = {};
    refs.warm(first);
    refs.warm(second);
    expect(refs.keeps('ws1/Secret/team/anything')).toBe(true);
    expect(refs.cool(first)).toBe(false);
    expect(refs.keeps('ws1/Secret/team/anything')).toBe(true);
    expect(refs.cool(second)).toBe(true);
    expect(refs.cool(second)).toBe(false); // once
    expect(refs.keeps('ws1/Secret/team/anything')).toBe(false);
  });
});
