import type { APIBinding, APIExport } from './typed-client.ts';
import type { GroupVersionResource, KubeObject } from './types.ts';

export const APIBINDINGS: GroupVersionResource = { group: 'apis.kcp.io', version: 'v1alpha2', resource: 'apibindings' };
export const APIEXPORTS: GroupVersionResource = { group: 'apis.kcp.io', version: 'v1alpha2', resource: 'apiexports' };

/** An APIExport as a KubeObject (for ResourceClient and informers). */
export type APIExportObject = APIExport & KubeObject;

/** An APIBinding as a KubeObject (for ResourceClient and informers). */
export type APIBindingObject = APIBinding & KubeObject;

type PermissionClaims = NonNullable<APIBinding['spec']['permissionClaims']>;

/** The body of an APIBinding (named after the export) to an export in another workspace. */
export const apiBindingTo = (
  exportRef: { path: string; name: string },
  options: { labels?: Record<string, string>; permissionClaims?: PermissionClaims } = {},
): APIBindingObject => ({
  apiVersion: 'apis.kcp.io/v1alpha2',
  kind: 'APIBinding',
  metadata: { name: exportRef.name, ...(options.labels ? { labels: options.labels } : {}) },
  spec: { reference: { export: exportRef }, ...(options.permissionClaims ? { permissionClaims: options.permissionClaims } : {}) },
});
