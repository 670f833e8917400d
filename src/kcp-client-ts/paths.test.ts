import { describe, expect, it } from 'vitest';
import { resourceOfUrl, resourcePath, virtualWorkspaceBase, withQuery, workspaceBase } from './paths.ts';

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

  it('names the resource a request addresses, for metrics, whatever the object is called', () => {
    const server = 'https://127.0.0.1:6443';
    const vw = `${server}/services/apiexport/root:platform/certificates`;
    expect(resourceOfUrl(`${server}/clusters/root:c/api/v1/namespaces/default/secrets/api?x=1`)).toBe('secrets');
    expect(resourceOfUrl(`${server}/clusters/root:c/api/v1/namespaces/apis`)).toBe('namespaces');
    expect(resourceOfUrl(`${server}/clusters/root:c/api/v1/namespaces`)).toBe('namespaces');
    expect(resourceOfUrl(`${vw}/clusters/*/apis/example.platform-mesh.io/v1alpha1/certificates?watch=true`)).toBe('certificates');
    expect(resourceOfUrl(`${vw}/clusters/abc/apis/example.platform-mesh.io/v1alpha1/namespaces/ns/certificates/c/status`)).toBe(
      'certificates/status',
    );
    expect(resourceOfUrl(`${server}/clusters/root/apis/tenancy.kcp.io/v1alpha1/workspaces/clusters`)).toBe('workspaces');
    expect(resourceOfUrl(`${server}/clusters/root/apis`)).toBe('discovery');
    expect(resourceOfUrl(`${server}/healthz`)).toBe('other');
  });
});
