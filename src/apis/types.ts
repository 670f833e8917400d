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

/** Beyond the Go project: what an AcceptAPI serves and what is moving off it, as the broker reports in its status. */
export type AcceptAPILoad = {
  /** Objects it serves (Assignments naming it in status). */
  servedObjects: number;
  /** Migrations in flight (not cut over or failed) moving objects off it. */
  migrationsOut: number;
};

export type AcceptAPI = KubeObject & {
  spec: {
    gvr: GroupVersionResource;
    /** Optional in the schema only for the standalone generation's annotation: read it through apiExportNameOf. */
    apiExportName?: string;
    filters?: AcceptAPIFilter[];
    priority?: number;
    /** Beyond the Go project: the most objects this AcceptAPI takes (absent: no limit); the excess moves. */
    capacity?: number;
    /** Beyond: takes no new objects; the ones it serves stay. */
    cordoned?: boolean;
    /** Beyond: takes no new objects and moves the ones it serves to other providers, at the migration budget's pace. */
    draining?: boolean;
  };
  status?: {
    conditions?: Condition[];
    /** The verification workspace's name, as the Go project records it. */
    verificationWorkspace?: string;
    /** Beyond the Go project: its full workspace path. */
    verificationWorkspacePath?: string;
  } & Partial<AcceptAPILoad>;
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
  status?: {
    state?: MigrationState;
    stage?: string;
    /** When the current stage began: its timeoutSeconds counts from here. */
    stageStartTime?: string;
    /** The MigrationConfiguration whose stages run (none: straight to cutover). */
    configuration?: string;
    /** Generation of the consumer object a Failed migration gave up on; a new spec retries. */
    failedGeneration?: number;
    /**
     * What stages deployed to compute, recorded before deploying; an entry goes once its object is
     * deleted (after its stage's success is recorded, or when the migration ends), even if the
     * MigrationConfiguration changed or is gone.
     */
    stageObjects?: StageObjectRef[];
    /** The MigrationConfiguration as it was when the migration failed; changing it retries. */
    failedConfiguration?: ConfigurationVersion;
    conditions?: Condition[];
  };
};

export type GroupVersionKind = { group: string; version: string; kind: string };

/** An object a migration stage deployed to the compute workspace. */
export type StageObjectRef = { stage: string; apiVersion: string; kind: string; namespace?: string; name: string };

/** Which MigrationConfiguration, as of which edit: a delete and re-create changes the uid. */
export type ConfigurationVersion = { uid: string; generation: number };

export type MigrationStage = {
  name: string;
  /** CEL over `from` and `to`: all true before the stage deploys anything. */
  preconditions?: string[];
  /** Manifests deployed to the compute workspace as `<migration>-<key>`; strings may hold `${CEL}`. */
  templates?: Record<string, Record<string, unknown>>;
  /** CEL over `from`, `to` and each template key: all true completes the stage. */
  successConditions?: string[];
  /** Beyond the Go project: any true fails the migration. */
  failureConditions?: string[];
  /** Success moves the Migration from InitialInProgress to InitialCompleted. */
  progress?: boolean;
  /** Beyond the Go project: the stage fails when it has not succeeded after this long. */
  timeoutSeconds?: number;
  /** Namespace in the compute workspace for this stage's objects (default `default`). */
  namespace?: string;
};

export type MigrationConfiguration = KubeObject & {
  spec: { from: GroupVersionKind; to: GroupVersionKind; stages?: MigrationStage[] };
};

/** What brokered objects carry in status, by the providers' convention. */
export type RelatedResource = { namespace?: string; name: string; gvk: { group: string; version: string; kind: string } };

export const ACCEPTAPI_GVR: GroupVersionResource = { group: 'broker.platform-mesh.io', version: 'v1alpha1', resource: 'acceptapis' };
export const ASSIGNMENT_GVR: GroupVersionResource = {
  group: 'coord.broker.platform-mesh.io',
  version: 'v1alpha1',
  resource: 'assignments',
};
export const MIGRATION_GVR: GroupVersionResource = { group: 'coord.broker.platform-mesh.io', version: 'v1alpha1', resource: 'migrations' };
export const MIGRATIONCONFIGURATION_GVR: GroupVersionResource = {
  group: 'coord.broker.platform-mesh.io',
  version: 'v1alpha1',
  resource: 'migrationconfigurations',
};
export const STAGINGWORKSPACE_GVR: GroupVersionResource = {
  group: 'coord.broker.platform-mesh.io',
  version: 'v1alpha1',
  resource: 'stagingworkspaces',
};

/** A brokered resource, discovered from an APIExport in the home workspace. */
export type BrokeredApi = {
  group: string;
  version: string;
  resource: string;
  kind: string;
  namespaced: boolean;
  /** The brokered APIExport in the home workspace (e.g. `certificates`). */
  exportName: string;
};
