import { isDeepStrictEqual } from 'node:util';
import type { AcceptAPI, AcceptAPILoad } from './types.ts';

/** The load an AcceptAPI's status reports now (absent until the broker first wrote it). */
export const reportedLoad = (acceptAPI: AcceptAPI): Partial<AcceptAPILoad> => {
  const { servedObjects, migrationsOut } = acceptAPI.status ?? {};
  return {
    ...(servedObjects === undefined ? {} : { servedObjects }),
    ...(migrationsOut === undefined ? {} : { migrationsOut }),
  };
};

/** An AcceptAPI without what changes on every load report (the counts and the server's bookkeeping). */
const withoutLoad = (acceptAPI: AcceptAPI): unknown => {
  const { resourceVersion: _version, managedFields: _fields, ...metadata } = acceptAPI.metadata;
  const { servedObjects: _served, migrationsOut: _out, ...status } = acceptAPI.status ?? {};
  return { ...acceptAPI, metadata, status };
};

/**
 * Whether an update changed nothing but the reported load. Such an update comes from the broker's
 * own load report and changes no decision: placement, verification and rebalancing ignore it, or
 * each report would wake every object the AcceptAPI serves.
 */
export const onlyLoadChanged = (old: AcceptAPI, next: AcceptAPI): boolean => isDeepStrictEqual(withoutLoad(old), withoutLoad(next));
