import { createHash } from 'node:crypto';

/** API groups, labels, annotations and finalizers the broker owns. */
export const BROKER_GROUP = 'broker.platform-mesh.io';

export const FINALIZER = `${BROKER_GROUP}/finalizer`;
export const CONSUMER_CLUSTER_ANNOTATION = `${BROKER_GROUP}/consumer-cluster`;
export const CONSUMER_NAME_ANNOTATION = `${BROKER_GROUP}/consumer-name`;
/** On related copies in a consumer workspace: which brokered object they came with. */
export const OWNER_LABEL = `${BROKER_GROUP}/owner`;
/** On objects a migration stage deploys to the compute workspace. */
export const MIGRATION_NAME_LABEL = `${BROKER_GROUP}/migration-name`;
export const MIGRATION_STAGE_LABEL = `${BROKER_GROUP}/migration-stage`;
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGER = 'resource-broker';

/**
 * 20 hex characters (80 bits) of the SHA-256 of the parts: deterministic names for
 * coordination objects and workspaces, with collisions negligible at any realistic count.
 */
export const nameHash = (...parts: string[]): string => createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 20);
