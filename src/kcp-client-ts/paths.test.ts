import { describe, expect, it } from 'vitest';
import { resourcePath, virtualWorkspaceBase, withQuery, workspaceBase } from './paths.ts';

describe('kcp URL building', () => {
  it('addresses workspaces and virtual-workspace clusters', () => {
    expect(workspaceBase('https://127.0.0.1:6443/', 'root:platform')).toBe('https://127.0.0.1:6443/clusters/root:platform');
    expect(virtualWorkspaceBase('https://127.0.0.1:6443/services/apiexport/abc/certs', '*')).toBe(
      'https://127.0.0.1:6443/services/apiexport/abc/certs/clusters/*',
    );
  });

  it('builds core and group paths, namespaced and cluster-scoped, with subresources', () => {
    expect(resourcePath({ group: '', version: 'v1', resource: 'secrets' }, { namespace: 'ns', name: 's' })).toBe(
      '/api/v1/namespaces/ns/secrets/s',
    );
    expect(resourcePath({ group: 'a.io', version: 'v1', resource: 'zones' }, { name: 'z', subresource: 'status' })).toBe(
      '/apis/a.io/v1/zones/z/status',
    );
    expect(resourcePath({ group: 'a.io', version: 'v1', resource: 'zones' })).toBe('/apis/a.io/v1/zones');
  });

  it('skips undefined query values', () => {
    expect(withQuery('/x', { watch: true, resourceVersion: undefined, limit: 5 })).toBe('/x?watch=true&limit=5');
    expect(withQuery('/x?a=1', { b: 'c' })).toBe('/x?a=1&b=c');
  });
});
