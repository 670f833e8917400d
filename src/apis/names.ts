import { createHash } from 'node:crypto';
import type { APIExportObject } from '../kcp-client-ts/bindings.ts';
import { gvrString, type GroupVersionResource } from '../kcp-client-ts/types.ts';
import type { AcceptAPI, Assignment } from './types.ts';

/** API groups, labels, annotations and finalizers the broker owns. */
export const BROKER_GROUP = 'broker.platform-mesh.io';

export const FINALIZER = `${BROKER_GROUP}/finalizer`;
/** On staging copies, as the Go project writes them: the consumer object's logical cluster... */
export const CONSUMER_CLUSTER_ANNOTATION = `${BROKER_GROUP}/consumer-cluster`;
/** ...and its name alone (its namespace is the copy's own). */
export const CONSUMER_NAME_ANNOTATION = `${BROKER_GROUP}/consumer-name`;
/**
 * On AcceptAPIs of the Go project's standalone generation: the APIExport serving the resource,
 * before `spec.apiExportName` existed. Read when that field is absent; deprecated.
 */
export const APIEXPORT_NAME_ANNOTATION = `${BROKER_GROUP}/kcp-apiexport-name`;
/** On related copies in a consumer workspace: which brokered object they came with. */
export const OWNER_LABEL = `${BROKER_GROUP}/owner`;
/**
 * On related copies: the uid of the consumer object they belong to. Checked (with the owner
 * label) before every update and delete, so the broker never touches an object it did not make
 * for that consumer object, whatever a provider names in its status.
 */
export const OWNER_UID_ANNOTATION = `${BROKER_GROUP}/owner-uid`;
/**
 * On related copies: the hash of the source's content they were made from. With a hash of the
 * copy's own content it tells, without keeping any data in memory, whether a copy is current
 * and unaltered.
 */
export const SOURCE_HASH_ANNOTATION = `${BROKER_GROUP}/source-hash`;
/** On objects a migration stage deploys to the compute workspace. */
export const MIGRATION_NAME_LABEL = `${BROKER_GROUP}/migration-name`;
export const MIGRATION_STAGE_LABEL = `${BROKER_GROUP}/migration-stage`;
/**
 * On an Assignment (the coordination workspace, the platform's): a platform admin asks for the
 * object to move to the AcceptAPI it names (`<name>` or `<provider cluster>/<name>`). Removed
 * once the move starts; a refused move keeps it, with the reason in the MoveRequested condition.
 */
export const MOVE_TO_ANNOTATION = `${BROKER_GROUP}/move-to`;
/** On an Assignment: when its object last started to move (RFC 3339). Rebalancing leaves it alone for a while after. */
export const MOVED_AT_ANNOTATION = `${BROKER_GROUP}/moved-at`;
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGER = 'resource-broker';

/**
 * 20 hex characters (80 bits) of the SHA-256 of the parts: deterministic names for
 * coordination objects and workspaces, with collisions negligible at any realistic count.
 * Written out from the digest's first 10 bytes, not sliced from its 64-character hex: a slice
 * keeps the whole hex string alive wherever the name is kept (an index holds one per object).
 */
export const nameHash = (...parts: string[]): string => createHash('sha256').update(parts.join('\u0000')).digest().toString('hex', 0, 10);

/** The Assignment of one consumer object (coordination workspace, cluster-scoped). */
export const assignmentName = (consumerCluster: string, gvr: GroupVersionResource, namespace: string, name: string): string =>
  `assignment-${nameHash(consumerCluster, gvrString(gvr), namespace, name)}`;

/** The Migration of an Assignment: one at a time per object. */
export const migrationNameOf = (assignment: Assignment): string => (assignment.metadata.name ?? '').replace(/^assignment-/, 'migration-');

/** The staging workspace shared by a consumer workspace's objects on one provider's export. */
export const stagingWorkspaceName = (consumerCluster: string, providerCluster: string, apiExportName: string): string =>
  `staging-${nameHash(consumerCluster, providerCluster, apiExportName)}`;

/**
 * The broker's staging view of one API identity (a provider export's): an APIExport in the
 * staging root that claims that export's resources (and Secrets, ConfigMaps), bound in every
 * staging workspace of the export, so one wildcard watch per resource and shard sees them all.
 */
export const stagingViewName = (identityHash: string): string => `view-${nameHash(identityHash)}`;

/** Named as the broker names views (an export in the staging root labelled by hand is not one). */
export const isStagingView = (e: APIExportObject): boolean => {
  const identity = e.spec.permissionClaims?.find((c) => c.identityHash)?.identityHash;
  return identity !== undefined && e.metadata.name === stagingViewName(identity);
};

/** On a StagingWorkspace (coordination workspace): the staging view its workspace is bound to. */
export const STAGING_VIEW_ANNOTATION = `${BROKER_GROUP}/staging-view`;

/** The verification workspace of one provider's export, shared by its AcceptAPIs. */
export const verificationWorkspaceName = (providerCluster: string, apiExportName: string): string =>
  `verify-${nameHash(providerCluster, apiExportName)}`;

/** Value of the owner label on related copies in a consumer workspace: unique per consumer object. */
export const relatedOwnerOf = (consumerCluster: string, gvr: GroupVersionResource, namespace: string, name: string): string =>
  nameHash(consumerCluster, gvrString(gvr), namespace, name);

/**
 * On a migration's copies of related resources in the compute workspace (`from-`/`to-`), beside
 * the migration-name label its stage objects carry too: the mirror cleans up only its copies.
 */
export const RELATED_MIRROR_LABEL = `${BROKER_GROUP}/related-mirror`;

/**
 * The APIExport an AcceptAPI names: `spec.apiExportName`, else the deprecated annotation of the
 * standalone generation; undefined when neither is set (such an AcceptAPI is never Ready).
 */
export const apiExportNameOf = (acceptAPI: AcceptAPI): string | undefined =>
  acceptAPI.spec.apiExportName || acceptAPI.metadata.annotations?.[APIEXPORT_NAME_ANNOTATION] || undefined;
