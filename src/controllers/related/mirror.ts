import { MANAGED_BY_LABEL, MANAGER, OWNER_UID_ANNOTATION, SOURCE_HASH_ANNOTATION } from '../../apis/names.ts';
import { isAlreadyExists, isConflict, isNotFound, isRefusedObject } from '../../kcp-client-ts/errors.ts';
import type { ObjectClient } from '../../kcp-client-ts/resources.ts';
import type { KubeObject } from '../../kcp-client-ts/types.ts';
import { byCodeUnit } from '../../apis/order.ts';
import { contentHashOf, copiedKeys, isIntactCopyOf, relatedPayload } from './digest.ts';

export type RelatedKind = 'Secret' | 'ConfigMap';

/**
 * A Secret or ConfigMap a staging copy publishes in `status.relatedResources`, as the broker
 * knows it: where it is, the hash of its content (from the digest cache), and how to read it
 * whole when a copy must be written.
 */
export type RelatedSource = {
  kind: RelatedKind;
  namespace: string;
  name: string;
  contentHash: string;
  read(signal: AbortSignal): Promise<KubeObject | undefined>;
};

/**
 * Who a set of copies belongs to: labels that select them (and only them) in the target, plus
 * the uid of the owning object when it is known. Both are checked before a copy is updated or
 * deleted, so an object of the same name that someone else made is never touched.
 */
export type MirrorOwner = { labels: Record<string, string>; uid?: string | undefined };

const hasOwnerLabels = (obj: KubeObject, owner: MirrorOwner): boolean =>
  Object.entries(owner.labels).every(([k, v]) => obj.metadata.labels?.[k] === v);

/**
 * A copy the broker made for an earlier object of the same identity (deleted and made again
 * with a new uid before the broker saw it go): the owner labels match, the recorded uid does
 * not. It is removed (with preconditions) so the current object's copy can take its place.
 */
export const isEarlierIncarnation = (obj: KubeObject, owner: MirrorOwner): boolean => {
  const recorded = obj.metadata.annotations?.[OWNER_UID_ANNOTATION];
  return owner.uid !== undefined && recorded !== undefined && recorded !== owner.uid && hasOwnerLabels(obj, owner);
};

export const isOwnedBy = (obj: KubeObject, owner: MirrorOwner): boolean =>
  Object.entries(owner.labels).every(([k, v]) => obj.metadata.labels?.[k] === v) &&
  (owner.uid === undefined || obj.metadata.annotations?.[OWNER_UID_ANNOTATION] === owner.uid);

/** Where copies go: a workspace's Secrets and ConfigMaps, as cached or read. */
export type MirrorTarget = {
  client(kind: RelatedKind): ObjectClient;
  /** The object of that name in the target, if any (whoever made it). */
  find(kind: RelatedKind, namespace: string, name: string, signal: AbortSignal): Promise<KubeObject | undefined>;
  /** The copies carrying the owner's labels in the target. */
  labelled(kind: RelatedKind, labels: Record<string, string>, signal: AbortSignal): Promise<KubeObject[]>;
};

/** A name in the target someone else holds: nothing was written to it. */
export type MirrorConflict = { kind: RelatedKind; namespace: string; name: string };

export type MirrorResult = {
  conflicts: MirrorConflict[];
  /** Copies of this owner that are no longer wanted and were deleted (or are being). */
  deleted: number;
};

/** The copy of `source` (read whole) at `at`, labelled and annotated with its owner and the hash of its content. */
export const mirrorCopyOf = (source: KubeObject, at: { namespace: string; name: string }, owner: MirrorOwner): KubeObject => ({
  apiVersion: 'v1',
  kind: source.kind,
  metadata: {
    name: at.name,
    namespace: at.namespace,
    labels: { ...copiedKeys(source.metadata.labels), ...owner.labels, [MANAGED_BY_LABEL]: MANAGER },
    annotations: {
      ...copiedKeys(source.metadata.annotations),
      ...(owner.uid ? { [OWNER_UID_ANNOTATION]: owner.uid } : {}),
      [SOURCE_HASH_ANNOTATION]: contentHashOf(source),
    },
  },
  ...relatedPayload(source),
});

/**
 * Makes the owner's copies in the target equal to `sources` (each placed where `placeOf` says):
 * creates what is missing, rewrites what differs, deletes the owner's copies nobody publishes any
 * more. The one mirroring both the consumer's related Secrets/ConfigMaps and a migration's
 * `from-`/`to-` copies in the compute workspace. A name held by an object the owner did not make
 * is a conflict: reported, never written or deleted. Updates carry the resourceVersion and
 * deletes the uid and resourceVersion of the copy that was checked, so the server refuses them
 * if the object changed hands in between.
 */
export const mirrorRelated = async (options: {
  sources: RelatedSource[];
  owner: MirrorOwner;
  target: MirrorTarget;
  placeOf: (source: RelatedSource) => { namespace: string; name: string };
  /**
   * Takes names in one order (kind, namespace, name) and stops at the first held by someone else,
   * for owners that compete for the same names (migrations' `from-`/`to-` mirrors): two of them
   * each holding a name the other waits for would wait for ever; in one order, one gets them all.
   */
  inOrderUntilConflict?: boolean;
  signal: AbortSignal;
}): Promise<MirrorResult> => {
  const { owner, target, signal } = options;
  const conflicts: MirrorConflict[] = [];
  const placed = options.sources.map((source) => ({ source, at: options.placeOf(source) }));
  const placeKey = (p: (typeof placed)[number]): string => `${p.source.kind}/${p.at.namespace}/${p.at.name}`;
  if (options.inOrderUntilConflict) placed.sort((a, b) => byCodeUnit(placeKey(a), placeKey(b)));
  // Everything placed is wanted, also past a conflict: what this owner holds stays its own.
  const wanted = new Set(placed.map(placeKey));
  for (const { source, at } of placed) {
    if (options.inOrderUntilConflict && conflicts.length > 0) break;
    const client = target.client(source.kind);
    let existing = await target.find(source.kind, at.namespace, at.name, signal);
    // Current and unaltered (checked on hashes, so no data is needed): nothing to do.
    if (existing && isOwnedBy(existing, owner) && isIntactCopyOf(existing, source.contentHash)) continue;
    const whole = await source.read(signal);
    if (!whole) continue; // gone since the cache saw it; its event brings the next pass
    // Read because the cache had no hash of it: the copy may be current all the same.
    if (existing && isOwnedBy(existing, owner) && isIntactCopyOf(existing, contentHashOf(whole))) continue;
    const desired = mirrorCopyOf(whole, at, owner);
    if (!existing) {
      try {
        await client.create(desired, signal);
        continue;
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
      }
      // The name is taken by an object the target's view did not show (someone else's, or a
      // cache that lags): read it to see whose it is.
      existing = await client.find({ namespace: at.namespace, name: at.name }, signal);
      if (!existing) continue; // gone again; the next pass creates it
    }
    if (!isOwnedBy(existing, owner)) {
      if (!isEarlierIncarnation(existing, owner)) conflicts.push({ kind: source.kind, ...at });
      continue; // an earlier incarnation's copy goes below; the next pass creates ours
    }
    const preconditions = { uid: existing.metadata.uid, resourceVersion: existing.metadata.resourceVersion };
    try {
      await client.update({ ...desired, metadata: { ...desired.metadata, ...preconditions } }, signal);
    } catch (err) {
      if (!isRefusedObject(err)) throw err;
      // A field that cannot change did (a Secret's type, data under `immutable: true`): the copy
      // is replaced, deleted here (only that object) and made again by the next pass.
      await client.delete({ namespace: at.namespace, name: at.name }, signal, preconditions).catch((e: unknown) => {
        if (!isConflict(e) && !isNotFound(e)) throw e;
      });
    }
  }
  let deleted = 0;
  for (const kind of ['Secret', 'ConfigMap'] as const) {
    for (const copy of await target.labelled(kind, owner.labels, signal)) {
      const namespace = copy.metadata.namespace ?? '';
      const name = copy.metadata.name ?? '';
      const stale = isEarlierIncarnation(copy, owner);
      if (!stale && (wanted.has(`${kind}/${namespace}/${name}`) || !isOwnedBy(copy, owner))) continue;
      deleted++;
      if (copy.metadata.deletionTimestamp) continue;
      try {
        await target
          .client(kind)
          .delete({ namespace, name }, signal, { uid: copy.metadata.uid, resourceVersion: copy.metadata.resourceVersion });
      } catch (err) {
        // Changed since it was read (or gone): the next pass looks again.
        if (!isConflict(err) && !isNotFound(err)) throw err;
      }
    }
  }
  return { conflicts, deleted };
};
