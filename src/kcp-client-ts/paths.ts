import type { GroupVersionResource } from './types.ts';

/**
 * URL building for kcp. A "cluster base" is the URL under which a normal Kubernetes API is
 * served: `<server>/clusters/<workspace path or logical cluster>` for a workspace,
 * `<virtual workspace url>/clusters/<logical cluster or *>` inside a virtual workspace.
 */
export const workspaceBase = (serverOrigin: string, workspace: string): string => `${trimSlash(serverOrigin)}/clusters/${workspace}`;

export const virtualWorkspaceBase = (virtualWorkspaceUrl: string, cluster: string): string =>
  `${trimSlash(virtualWorkspaceUrl)}/clusters/${cluster}`;

export type ResourcePathOptions = { namespace?: string | undefined; name?: string | undefined; subresource?: string | undefined };

/** Path of a collection, an object or a subresource below a cluster base. */
export const resourcePath = (gvr: GroupVersionResource, options: ResourcePathOptions = {}): string => {
  const groupVersion = gvr.group === '' ? `/api/${gvr.version}` : `/apis/${gvr.group}/${gvr.version}`;
  const namespace = options.namespace ? `/namespaces/${encodeURIComponent(options.namespace)}` : '';
  const name = options.name ? `/${encodeURIComponent(options.name)}` : '';
  const subresource = options.name && options.subresource ? `/${options.subresource}` : '';
  return `${groupVersion}${namespace}/${gvr.resource}${name}${subresource}`;
};

/** Appends query parameters, skipping undefined values. */
export const withQuery = (url: string, query: Record<string, string | number | boolean | undefined>): string => {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined) params.set(key, String(value));
  }
  const text = params.toString();
  return text === '' ? url : `${url}${url.includes('?') ? '&' : '?'}${text}`;
};

/**
 * The resource a request URL addresses (`secrets`, `certificates/status`), for metrics: read after
 * the first `/clusters/<cluster>/` (workspace or virtual workspace) from `api/<version>` or
 * `apis/<group>/<version>`, past `namespaces/<name>`. `discovery` for the API lists, `other` for
 * anything else.
 */
export const resourceOfUrl = (url: string): string => {
  let path: string;
  try {
    path = new URL(url).pathname;
  } catch {
    path = url.split('?')[0] ?? '';
  }
  const parts = path.split('/').filter(Boolean);
  const clusters = parts.indexOf('clusters');
  let rest = clusters >= 0 ? parts.slice(clusters + 2) : parts;
  if (rest[0] === 'api') rest = rest.slice(2);
  else if (rest[0] === 'apis') rest = rest.slice(3);
  else return 'other';
  // namespaces/<name>/<resource>...; `namespaces` and `namespaces/<name>` are the namespaces resource.
  if (rest[0] === 'namespaces' && rest.length > 2) rest = rest.slice(2);
  const [resource, , subresource] = rest;
  if (!resource) return 'discovery';
  return subresource ? `${resource}/${subresource}` : resource;
};

const trimSlash = (url: string): string => url.replace(/\/+$/, '');
