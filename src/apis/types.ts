import type { GroupVersionResource, KubeObject } from '../kcp-client-ts/types.ts';

/** metav1.Condition */
export type Condition = {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
};

export type AcceptAPIFilter = {
  key: string;
  valueIn?: string[];
  boundary?: { min?: number; max?: number };
  suffix?: string;
  prefix?: string;
  expression?: string;
};

export type AcceptAPI = KubeObject & {
  spec: {
    gvr: GroupVersionResource;
    apiExportName: string;
    filters?: AcceptAPIFilter[];
    priority?: number;
  };
  status?: { conditions?: Condition[]; verificationWorkspace?: string };
};

export type PlacementCandidate = {
  acceptAPI: string;
  providerCluster: string;
  matched: boolean;
  reason: string;
};

export type AssignmentPhase = 'Pending' | 'Bound' | 'Terminating';

export type Assignment = KubeObject & {
  spec: {
    consumerCluster: string;
    gvr: GroupVersionResource;
    namespace?: string;
    name: string;
    providerCluster: string;
    acceptAPIName: string;
  };
  status?: {
    providerCluster?: string;
    acceptAPIName?: string;
    apiExportName?: string;
    stagingWorkspace?: string;
    phase?: AssignmentPhase;
    conditions?: Condition[];
    placement?: { winner: string; reason: string; candidates: PlacementCandidate[] };
  };
};

export type StagingWorkspacePhase = 'Pending' | 'Ready' | 'Terminating';

export type StagingWorkspace = KubeObject & {
  spec: { consumerCluster: string; providerCluster: string; apiExportName: string };
  status?: { phase?: StagingWorkspacePhase; clusterName?: string; conditions?: Condition[] };
};

export type MigrationState = 'Pending' | 'InitialInProgress' | 'InitialCompleted' | 'CutoverInProgress' | 'CutoverCompleted' | 'Failed';

export type MigrationEndpoint = {
  gvk: { group: string; version: string; kind: string };
  providerCluster: string;
  acceptAPIName: string;
  apiExportName: string;
};

export type Migration = KubeObject & {
  spec: {
    assignment: string;
    name: string;
    namespace?: string;
    fromStagingWorkspace: string;
    stagingWorkspace: string;
    from: MigrationEndpoint;
    to: MigrationEndpoint;
  };
  status?: { state?: MigrationState; stage?: string; conditions?: Condition[] };
};

/** What brokered objects carry in status, by the providers' convention. */
export type RelatedResource = { namespace?: string; name: string; gvk: { group: string; version: string; kind: string } };

export const ACCEPTAPI_GVR: GroupVersionResource = { group: 'broker.platform-mesh.io', version: 'v1alpha1', resource: 'acceptapis' };
export const ASSIGNMENT_GVR: GroupVersionResource = { group: 'coord.broker.platform-mesh.io', version: 'v1alpha1', resource: 'assignments' };
export const MIGRATION_GVR: GroupVersionResource = { group: 'coord.broker.platform-mesh.io', version: 'v1alpha1', resource: 'migrations' };
export const STAGINGWORKSPACE_GVR: GroupVersionResource = { group: 'coord.broker.platform-mesh.io', version: 'v1alpha1', resource: 'stagingworkspaces' };
