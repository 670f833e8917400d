import {
  ASSIGNMENT_GVR,
  MIGRATION_GVR,
  MIGRATIONCONFIGURATION_GVR,
  STAGINGWORKSPACE_GVR,
  type Assignment,
  type Migration,
  type MigrationConfiguration,
  type StagingWorkspace,
} from '../../src/apis/types.ts';
import { Coordination } from '../../src/coordination/coordination.ts';
import type { GroupVersionResource, KubeObject } from '../../src/kcp-client-ts/types.ts';
import type { Informer } from '../../src/runtime/informer.ts';
import type { MemoryApi } from './memory-api.ts';

export type CoordinationInformers = {
  assignments: Informer<Assignment>;
  stagingWorkspaces: Informer<StagingWorkspace>;
  migrations: Informer<Migration>;
  configurations: Informer<MigrationConfiguration>;
};

/** The coordination workspace `cluster` of a MemoryApi: its informers and the Coordination over them. */
export const memoryCoordination = (api: MemoryApi, cluster: string): { informers: CoordinationInformers; coordination: Coordination } => {
  const scope = { clusters: [cluster] };
  const informers: CoordinationInformers = {
    assignments: api.informer<Assignment>(ASSIGNMENT_GVR, scope),
    stagingWorkspaces: api.informer<StagingWorkspace>(STAGINGWORKSPACE_GVR, scope),
    migrations: api.informer<Migration>(MIGRATION_GVR, scope),
    configurations: api.informer<MigrationConfiguration>(MIGRATIONCONFIGURATION_GVR, scope),
  };
  const kind = <T extends KubeObject>(informer: Informer<T>, gvr: GroupVersionResource) => ({
    store: informer.store,
    client: api.client<T>(cluster, gvr),
  });
  const coordination = new Coordination({
    cluster,
    assignments: kind(informers.assignments, ASSIGNMENT_GVR),
    stagingWorkspaces: kind(informers.stagingWorkspaces, STAGINGWORKSPACE_GVR),
    migrations: kind(informers.migrations, MIGRATION_GVR),
    configurations: kind(informers.configurations, MIGRATIONCONFIGURATION_GVR),
  });
  return { informers, coordination };
};
