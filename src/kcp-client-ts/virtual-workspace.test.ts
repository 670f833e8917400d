import { describe, expect, it } from 'vitest';
import { KcpEndpoint } from './endpoint.ts';
import { UnroutableClusterError, VirtualWorkspace } from './virtual-workspace.ts';

const SHARD_A = 'https://127.0.0.1:6443/services/apiexport/root/certs';
const SHARD_B = 'https://127.0.0.1:6444/services/apiexport/root/certs';

describe('VirtualWorkspace', () => {
  const endpoint = new KcpEndpoint({ serverOrigin: 'https://127.0.0.1:6443' });

  it('sends a cluster to the only shard when there is one, and refuses to guess among several', () => {
    const vw = new VirtualWorkspace(endpoint, 'certs');
    vw.update([SHARD_A]);
    expect(vw.client('c1', { group: '', version: 'v1', resource: 'secrets' }).baseUrl).toBe(`${SHARD_A}/clusters/c1`);
    vw.update([SHARD_A, SHARD_B]);
    expect(() => vw.clusterUrl('c1')).toThrow(UnroutableClusterError);
    vw.learn('c1', SHARD_B);
    expect(vw.clusterUrl('c1')).toBe(`${SHARD_B}/clusters/c1`);
  });

  it('forgets routes to a shard that left the slice and never guesses such a cluster is elsewhere, until it is seen again', () => {
    const vw = new VirtualWorkspace(endpoint, 'certs');
    let changes = 0;
    vw.onChange(() => changes++);
    expect(vw.update([SHARD_B, SHARD_A, SHARD_A, ''])).toBe(true);
    expect(vw.update([SHARD_A, `${SHARD_B}/`])).toBe(false);
    expect(changes).toBe(1);
    vw.learn('c1', SHARD_B);
    vw.learn('c2', 'https://elsewhere/services/apiexport/root/certs');
    expect(vw.urlOf('c2')).toBeUndefined();
    vw.update([SHARD_A]);
    expect(changes).toBe(2);
    // c1's shard left: it is out of reach, not on the remaining shard; a cluster never seen is.
    expect(vw.urlOf('c1')).toBeUndefined();
    expect(vw.urlOf('c3')).toBe(SHARD_A);
    vw.learn('c1', SHARD_A);
    expect(vw.urlOf('c1')).toBe(SHARD_A);
  });

  it('takes only https URLs without credentials, in one spelling', () => {
    const vw = new VirtualWorkspace(endpoint, 'certs');
    vw.update([
      'http://127.0.0.1:6443/services/apiexport/root/certs',
      'https://user:secret@127.0.0.1:6443/services/apiexport/root/certs',
      'not a url',
      `${SHARD_A}//`,
      `${SHARD_A}?x=1`,
    ]);
    expect(vw.urls).toEqual([SHARD_A]);
  });

  it('gives informers one source per shard, the same objects for a shard that stays', () => {
    const vw = new VirtualWorkspace(endpoint, 'certs');
    const source = vw.wildcard({ group: 'example.platform-mesh.io', version: 'v1alpha1', resource: 'certificates' });
    vw.update([SHARD_A]);
    const first = source.current();
    expect([...first.keys()]).toEqual([SHARD_A]);
    vw.update([SHARD_A, SHARD_B]);
    const second = source.current();
    expect([...second.keys()]).toEqual([SHARD_A, SHARD_B]);
    expect(second.get(SHARD_A)).toBe(first.get(SHARD_A));
    expect(source.id).toBe('vw:certs/certificates.v1alpha1.example.platform-mesh.io');
  });
});
