import createClient, { type Client } from 'openapi-fetch';
import type { KcpEndpoint } from './endpoint.ts';
import { ApiError } from './errors.ts';
import type { components as ApisV1alpha1, paths as ApisV1alpha1Paths } from './generated/apis.kcp.io-v1alpha1.ts';
import type { components as ApisV1alpha2, paths as ApisV1alpha2Paths } from './generated/apis.kcp.io-v1alpha2.ts';
import type { components as CoordinationV1, paths as CoordinationV1Paths } from './generated/coordination.k8s.io-v1.ts';
import type { paths as CoreV1Paths } from './generated/core-v1.ts';
import type { paths as CoreKcpPaths } from './generated/core.kcp.io-v1alpha1.ts';
import type { components as Tenancy, paths as TenancyPaths } from './generated/tenancy.kcp.io-v1alpha1.ts';

/** Every path of the generated documents; all are relative to a cluster base URL. */
export type KcpPaths = ApisV1alpha1Paths & ApisV1alpha2Paths & TenancyPaths & CoreKcpPaths & CoreV1Paths & CoordinationV1Paths;
export type KcpClient = Client<KcpPaths>;

type ApisV1alpha1Schemas = ApisV1alpha1['schemas'];
type ApisV1alpha2Schemas = ApisV1alpha2['schemas'];

export type Workspace = Tenancy['schemas']['io.kcp.tenancy.v1alpha1.Workspace'];
export type APIResourceSchema = ApisV1alpha1Schemas['io.kcp.apis.v1alpha1.APIResourceSchema'];
export type APIExportEndpointSlice = ApisV1alpha1Schemas['io.kcp.apis.v1alpha1.APIExportEndpointSlice'];
export type APIExport = ApisV1alpha2Schemas['io.kcp.apis.v1alpha2.APIExport'];
export type APIBinding = ApisV1alpha2Schemas['io.kcp.apis.v1alpha2.APIBinding'];
export type Lease = CoordinationV1['schemas']['io.k8s.api.coordination.v1.Lease'];

/**
 * A typed client for kcp's own APIs under one cluster base URL (a workspace path such as
 * `root:platform`, a logical cluster name, or a virtual-workspace cluster).
 */
export const createKcpClient = (endpoint: KcpEndpoint, baseUrl: string): KcpClient =>
  createClient<KcpPaths>({ baseUrl, fetch: endpoint.fetch });

/** Turns an openapi-fetch answer into its data, or throws ApiError naming the request. */
export const unwrap = <T>(result: { data?: T; error?: unknown; response: Response }): T => {
  if (result.error !== undefined || !result.response.ok) {
    const status = result.error as { reason?: string; message?: string } | undefined;
    throw new ApiError({
      status: result.response.status,
      reason: status?.reason,
      message: status?.message ?? result.response.statusText,
      method: 'request',
      url: result.response.url,
    });
  }
  return result.data as T;
};
