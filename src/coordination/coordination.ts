import { conditionTrue } from '../apis/conditions.ts';
import { relatedOwnerOf } from '../apis/names.ts';
import {
  ASSIGNMENT_GVR,
  MIGRATION_GVR,
  MIGRATIONCONFIGURATION_GVR,
  STAGINGWORKSPACE_GVR,
  type AcceptAPILoad,
  type Assignment,
  type Migration,
  type MigrationConfiguration,
  type StagingWorkspace,
} from '../apis/types.ts';
import type { KcpEndpoint } from '../kcp-client-ts/endpoint.ts';
import { ResourceClient, type ObjectClient } from '../kcp-client-ts/resources.ts';
import type { Logger } from '../logging.ts';
import type { Informer } from '../runtime/informer.ts';
import type { InformerScope } from '../runtime/informer-scope.ts';
import type { ObjectStore } from '../runtime/store.ts';

const ASSIGNMENT_BY_STAGING = 'stagingWorkspace';
const ASSIGNMENT_BY_ACCEPTAPI = 'acceptAPI';
const MIGRATION_BY_STAGING = 'stagingWorkspace';
const MIGRATION_IN_FLIGHT_OUT_OF = 'inFlightOutOf';
const STAGING_BY_CLUSTER = 'cluster';
const ASSIGNMENT_BY_RELATED_OWNER = 'relatedOwner';
const ASSIGNMENTS_PER_STAGING_RESOURCE = 'perStagingResource';

/** A staging workspace and a resource (group and resource, as its view claims them), as a tally value. */
const stagingResource = (stagingWorkspace: string, gvr: { group?: string; resource: string }): string =>
  JSON.stringify([stagingWorkspace, gvr.group ?? '', gvr.resource]);

/** One kind of coordination object: its cache and the client that writes it. */
export type CoordinationKind<T extends Assignment | StagingWorkspace | Migration | MigrationConfiguration> = {
  store: ObjectStore<T>;
  client: ObjectClient<T>;
};

/** Whether a Migration is still moving its object: neither cut over nor failed. */
export const migrationInFlight = (m: Migration): boolean => m.status?.state !== 'CutoverCompleted' && m.status?.state !== 'Failed';

/**
 * The broker's own records in the coordination workspace (Assignments, StagingWorkspaces,
 * Migrations, MigrationConfigurations): lookups by name and by the indexes controllers need,
 * over caches, plus the clients that write them. Built over stores and clients rather than
 * informers, so reconciler unit tests hand in in-memory ones.
 */
export class Coordination {
  readonly cluster: string;
  readonly assignments: CoordinationKind<Assignment>;
  readonly stagingWorkspaces: CoordinationKind<StagingWorkspace>;
  readonly migrations: CoordinationKind<Migration>;
  readonly configurations: CoordinationKind<MigrationConfiguration>;

  constructor(options: {
    cluster: string;
    assignments: CoordinationKind<Assignment>;
    stagingWorkspaces: CoordinationKind<StagingWorkspace>;
    migrations: CoordinationKind<Migration>;
    configurations: CoordinationKind<MigrationConfiguration>;
  }) {
    this.cluster = options.cluster;
    this.assignments = options.assignments;
    this.stagingWorkspaces = options.stagingWorkspaces;
    this.migrations = options.migrations;
    this.configurations = options.configurations;
    this.assignments.store.addIndex(ASSIGNMENT_BY_STAGING, (a) => (a.status?.stagingWorkspace ? [a.status.stagingWorkspace] : []));
    this.assignments.store.addIndex(ASSIGNMENT_BY_ACCEPTAPI, (a) =>
      a.status?.acceptAPIName ? [`${a.status.providerCluster}/${a.status.acceptAPIName}`] : [],
    );
    this.assignments.store.addIndex(ASSIGNMENT_BY_RELATED_OWNER, (a) => [
      relatedOwnerOf(a.spec.consumerCluster, a.spec.gvr, a.spec.namespace ?? '', a.spec.name),
    ]);
    this.assignments.store.addTally(ASSIGNMENTS_PER_STAGING_RESOURCE, (a) =>
      a.status?.stagingWorkspace ? stagingResource(a.status.stagingWorkspace, a.spec.gvr) : undefined,
    );
    this.stagingWorkspaces.store.addIndex(STAGING_BY_CLUSTER, (w) => (w.status?.clusterName ? [w.status.clusterName] : []));
    // A rolled-back migration no longer holds its destination.
    this.migrations.store.addIndex(MIGRATION_IN_FLIGHT_OUT_OF, (m) =>
      migrationInFlight(m) ? [`${m.spec.from.providerCluster}/${m.spec.from.acceptAPIName}`] : [],
    );
    this.migrations.store.addIndex(MIGRATION_BY_STAGING, (m) =>
      m.status?.state === 'Failed' && conditionTrue(m.status.conditions, 'RolledBack')
        ? [m.spec.fromStagingWorkspace]
        : [m.spec.fromStagingWorkspace, m.spec.stagingWorkspace],
    );
  }

  #key(name: string): { cluster: string; namespace: string; name: string } {
    return { cluster: this.cluster, namespace: '', name };
  }

  assignment(name: string): Assignment | undefined {
    return this.assignments.store.get(this.#key(name));
  }

  stagingWorkspace(name: string | undefined): StagingWorkspace | undefined {
    return name ? this.stagingWorkspaces.store.get(this.#key(name)) : undefined;
  }

  /** The Assignment of the consumer object whose related copies carry `owner` in their owner label. */
  assignmentOfRelatedCopies(owner: string): Assignment | undefined {
    return this.assignments.store.byIndex(ASSIGNMENT_BY_RELATED_OWNER, owner)[0];
  }

  /** The StagingWorkspace whose logical cluster is `cluster`: what the broker recorded, not what a provider says. */
  stagingWorkspaceInCluster(cluster: string): StagingWorkspace | undefined {
    return this.stagingWorkspaces.store.byIndex(STAGING_BY_CLUSTER, cluster)[0];
  }

  migration(name: string): Migration | undefined {
    return this.migrations.store.get(this.#key(name));
  }

  /** Assignments whose status names the staging workspace (reference counting). */
  assignmentsIn(stagingWorkspace: string): Assignment[] {
    return this.assignments.store.byIndex(ASSIGNMENT_BY_STAGING, stagingWorkspace);
  }

  /** How many Assignments place objects of one resource (its group and resource) in a staging workspace. */
  assignmentsOfResourceIn(stagingWorkspace: string, gvr: { group?: string; resource: string }): number {
    return this.assignments.store.tally(ASSIGNMENTS_PER_STAGING_RESOURCE).get(stagingResource(stagingWorkspace, gvr)) ?? 0;
  }

  /** Assignments served by one AcceptAPI (`providerCluster`, `name`). */
  assignmentsServedBy(providerCluster: string, acceptAPIName: string): Assignment[] {
    return this.assignments.store.byIndex(ASSIGNMENT_BY_ACCEPTAPI, `${providerCluster}/${acceptAPIName}`);
  }

  /** What one AcceptAPI serves, and how many migrations move objects off it now (its status reports both). */
  acceptAPILoad(providerCluster: string, acceptAPIName: string): AcceptAPILoad {
    return {
      servedObjects: this.assignmentsServedBy(providerCluster, acceptAPIName).length,
      migrationsOut: this.migrations.store.byIndex(MIGRATION_IN_FLIGHT_OUT_OF, `${providerCluster}/${acceptAPIName}`).length,
    };
  }

  /** Migrations holding the staging workspace (as origin, or as a destination not rolled back). */
  migrationsIn(stagingWorkspace: string): Migration[] {
    return this.migrations.store.byIndex(MIGRATION_BY_STAGING, stagingWorkspace);
  }
}

/** The coordination caches of a running broker, in `scope`. */
export const watchCoordination = (options: {
  endpoint: KcpEndpoint;
  workspace: string;
  cluster: string;
  scope: InformerScope;
  logger: Logger;
}): {
  coordination: Coordination;
  informers: {
    assignments: Informer<Assignment>;
    stagingWorkspaces: Informer<StagingWorkspace>;
    migrations: Informer<Migration>;
    configurations: Informer<MigrationConfiguration>;
  };
} => {
  const { endpoint, scope, logger } = options;
  const baseUrl = endpoint.workspaceUrl(options.workspace);
  const assignmentClient = new ResourceClient<Assignment>({ endpoint, baseUrl, gvr: ASSIGNMENT_GVR });
  const stagingWorkspaceClient = new ResourceClient<StagingWorkspace>({ endpoint, baseUrl, gvr: STAGINGWORKSPACE_GVR });
  const migrationClient = new ResourceClient<Migration>({ endpoint, baseUrl, gvr: MIGRATION_GVR });
  const configurationClient = new ResourceClient<MigrationConfiguration>({ endpoint, baseUrl, gvr: MIGRATIONCONFIGURATION_GVR });
  const informers = {
    assignments: scope.informer(assignmentClient, { name: 'assignments', logger }),
    stagingWorkspaces: scope.informer(stagingWorkspaceClient, { name: 'stagingworkspaces', logger }),
    migrations: scope.informer(migrationClient, { name: 'migrations', logger }),
    configurations: scope.informer(configurationClient, { name: 'migrationconfigurations', logger }),
  };
  const coordination = new Coordination({
    cluster: options.cluster,
    assignments: { store: informers.assignments.store, client: assignmentClient },
    stagingWorkspaces: { store: informers.stagingWorkspaces.store, client: stagingWorkspaceClient },
    migrations: { store: informers.migrations.store, client: migrationClient },
    configurations: { store: informers.configurations.store, client: configurationClient },
  });
  return { coordination, informers };
};
