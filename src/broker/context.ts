import type { Informer } from '../cache/informer.ts';
import type { InformerSet } from '../cache/informer-set.ts';
import type { AcceptAPI, Assignment, Migration, StagingWorkspace } from '../apis/types.ts';
import type { MigrationStages } from '../controllers/migration/stage-runner.ts';
import type { KcpEndpoint } from '../kcp-client-ts/endpoint.ts';
import type { ResourceClient } from '../kcp-client-ts/resources.ts';
import type { Workspaces } from '../kcp-client-ts/workspaces.ts';
import type { Logger } from '../logging.ts';
import type { BrokerPaths } from './config.ts';

/** A brokered resource, discovered from an APIExport in the home workspace. */
export type BrokeredApi = {
  group: string;
  version: string;
  resource: string;
  kind: string;
  namespaced: boolean;
  /** The brokered APIExport in the home workspace (e.g. `certificates`). */
  exportName: string;
  /** Its virtual workspace: consumers' objects and claimed resources. */
  virtualWorkspaceUrl: string;
};

/** What every controller shares: the kcp endpoint, the coordination caches, and who to notify. */
export type BrokerContext = {
  endpoint: KcpEndpoint;
  paths: BrokerPaths;
  logger: Logger;
  workspaces: Workspaces;
  informers: InformerSet;
  coordinationCluster: string;
  assignments: Informer<Assignment>;
  assignmentClient: ResourceClient<Assignment>;
  stagingWorkspaces: Informer<StagingWorkspace>;
  stagingWorkspaceClient: ResourceClient<StagingWorkspace>;
  migrations: Informer<Migration>;
  migrationClient: ResourceClient<Migration>;
  /** Runs MigrationConfiguration stages and removes what they deployed. */
  migrationStages: MigrationStages;
  /** AcceptAPIs of every provider (through the acceptapis virtual workspace), once it is known. */
  acceptAPIs: () => Informer<AcceptAPI> | undefined;
  /** Ask the sync controller of a resource to reconcile one consumer object. */
  enqueueConsumer: (gvrKey: string, consumerKey: string) => void;
  /** Ask the staging-workspace controller to reconcile one StagingWorkspace. */
  enqueueStagingWorkspace: (name: string) => void;
  /** Reports each reconcile (metrics). */
  onReconciled: (queue: string, outcome: { ok: boolean; durationMs: number }) => void;
};

/** Assignments by the StagingWorkspace serving them (status), for reference counting. */
export const ASSIGNMENT_BY_STAGING = 'stagingWorkspace';
/** Assignments by the AcceptAPI serving them (`<provider cluster>/<name>`), to re-check them when it changes. */
export const ASSIGNMENT_BY_ACCEPTAPI = 'acceptAPI';
/** Migrations by both StagingWorkspaces they use. */
export const MIGRATION_BY_STAGING = 'stagingWorkspace';
