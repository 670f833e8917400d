import { createHash } from 'node:crypto';
import { conditionTrue } from '../../apis/conditions.ts';
import { apiExportNameOf } from '../../apis/names.ts';
import { byCodeUnit } from '../../apis/order.ts';
import type { AcceptAPI, Assignment, PlacementCandidate } from '../../apis/types.ts';
import { clusterOf, type GroupVersionResource } from '../../kcp-client-ts/types.ts';
import { evaluateFilters } from '../acceptapi/filters.ts';

export type PlacementInput = {
  gvr: GroupVersionResource;
  /** The consumer object's spec. */
  spec: unknown;
  /** Identifies the object for the stable tie-break. */
  objectId: string;
  acceptAPIs: AcceptAPI[];
  /** Current Assignments for this GVR per provider cluster. */
  assignmentsByProvider: ReadonlyMap<string, number>;
  /** Providers to leave out (a migration's origin). */
  exclude?: { providerCluster: string; acceptAPIName: string } | undefined;
  /** Objects per AcceptAPI (acceptAPIKey), for spec.capacity; absent: capacities are not checked. */
  loadByAcceptAPI?: ReadonlyMap<string, number> | undefined;
  /** Only this AcceptAPI may win (a platform admin's move); the others are recorded as not asked for. */
  only?: { providerCluster?: string; acceptAPIName: string } | undefined;
};

export type PlacementDecision = {
  winner: { acceptAPI: AcceptAPI; providerCluster: string; acceptAPIName: string; apiExportName: string } | undefined;
  reason: string;
  candidates: PlacementCandidate[];
};

/** Current Assignments per serving provider for one resource: the load that spreads placement. */
export const assignmentsByProvider = (assignments: Assignment[], gvr: GroupVersionResource): Map<string, number> => {
  const load = new Map<string, number>();
  for (const a of assignments) {
    if (!sameGvr(a.spec.gvr, gvr)) continue;
    const provider = a.status?.providerCluster ?? a.spec.providerCluster;
    load.set(provider, (load.get(provider) ?? 0) + 1);
  }
  return load;
};

/** The key of an AcceptAPI in load maps: its provider's logical cluster and its name. */
export const acceptAPIKey = (providerCluster: string, name: string): string => `${providerCluster}/${name}`;

/** One line per AcceptAPI considered, for Events and messages. */
export const describeCandidates = (decision: PlacementDecision): string =>
  decision.candidates.map((c) => `${c.acceptAPI} (${c.providerCluster}): ${c.reason}`).join('; ');

const sameGvr = (a: GroupVersionResource, b: GroupVersionResource): boolean =>
  (a.group ?? '') === (b.group ?? '') && a.version === b.version && a.resource === b.resource;

const tieBreak = (objectId: string, providerCluster: string, name: string): string =>
  createHash('sha256').update(`${objectId}\u0000${providerCluster}\u0000${name}`).digest('hex');

/**
 * Picks the provider for an object: Ready AcceptAPIs for its GVR whose filters all pass; then
 * highest priority, fewest current Assignments, and a stable hash of object and candidate.
 * Records every AcceptAPI considered and why it did or did not qualify.
 */
export const placeObject = (input: PlacementInput): PlacementDecision => {
  const candidates: PlacementCandidate[] = [];
  const qualified: { acceptAPI: AcceptAPI; providerCluster: string; name: string; apiExportName: string }[] = [];
  for (const acceptAPI of input.acceptAPIs) {
    if (!sameGvr(acceptAPI.spec.gvr, input.gvr)) continue;
    const providerCluster = clusterOf(acceptAPI);
    const name = acceptAPI.metadata.name ?? '';
    const record = (matched: boolean, reason: string): void => void candidates.push({ acceptAPI: name, providerCluster, matched, reason });
    if (input.exclude && input.exclude.providerCluster === providerCluster && input.exclude.acceptAPIName === name) {
      record(false, 'current provider, excluded');
      continue;
    }
    if (
      input.only &&
      (input.only.acceptAPIName !== name || (input.only.providerCluster && input.only.providerCluster !== providerCluster))
    ) {
      record(false, 'not the AcceptAPI the move asks for');
      continue;
    }
    if (acceptAPI.metadata.deletionTimestamp) {
      record(false, 'being deleted');
      continue;
    }
    if (acceptAPI.spec.draining) {
      record(false, 'draining: takes no new objects (spec.draining)');
      continue;
    }
    if (acceptAPI.spec.cordoned) {
      record(false, 'cordoned: takes no new objects (spec.cordoned)');
      continue;
    }
    const { capacity } = acceptAPI.spec;
    if (input.loadByAcceptAPI && typeof capacity === 'number') {
      const load = input.loadByAcceptAPI.get(acceptAPIKey(providerCluster, name)) ?? 0;
      if (load >= capacity) {
        record(false, `full (capacity ${capacity}, spec.capacity)`);
        continue;
      }
    }
    if (!conditionTrue(acceptAPI.status?.conditions, 'Ready')) {
      const ready = acceptAPI.status?.conditions?.find((c) => c.type === 'Ready');
      record(false, `not Ready${ready?.message ? `: ${ready.message}` : ''}`);
      continue;
    }
    // Ready was judged on an earlier spec: one that names no export since cannot get a staging workspace.
    const apiExportName = apiExportNameOf(acceptAPI);
    if (!apiExportName) {
      record(false, 'names no APIExport (spec.apiExportName)');
      continue;
    }
    const verdict = evaluateFilters(acceptAPI.spec.filters, input.spec);
    if (!verdict.pass) {
      record(false, verdict.reason);
      continue;
    }
    record(true, 'all filters pass');
    qualified.push({ acceptAPI, providerCluster, name, apiExportName });
  }
  if (qualified.length === 0) {
    return {
      winner: undefined,
      reason: candidates.length === 0 ? `no AcceptAPI for ${input.gvr.resource}.${input.gvr.group}` : 'no AcceptAPI matches',
      candidates,
    };
  }
  const priority = (a: AcceptAPI): number => a.spec.priority ?? 0;
  const load = (cluster: string): number => input.assignmentsByProvider.get(cluster) ?? 0;
  qualified.sort(
    (a, b) =>
      priority(b.acceptAPI) - priority(a.acceptAPI) ||
      load(a.providerCluster) - load(b.providerCluster) ||
      byCodeUnit(tieBreak(input.objectId, a.providerCluster, a.name), tieBreak(input.objectId, b.providerCluster, b.name)),
  );
  const [best, second] = qualified;
  let reason = 'only matching AcceptAPI';
  if (second) {
    if (priority(best!.acceptAPI) !== priority(second.acceptAPI))
      reason = `highest priority (${priority(best!.acceptAPI)} > ${priority(second.acceptAPI)})`;
    else if (load(best!.providerCluster) !== load(second.providerCluster))
      reason = `fewest assignments (${load(best!.providerCluster)} < ${load(second.providerCluster)})`;
    else reason = 'equal priority and load: stable hash';
  }
  const winner = {
    acceptAPI: best!.acceptAPI,
    providerCluster: best!.providerCluster,
    acceptAPIName: best!.name,
    apiExportName: best!.apiExportName,
  };
  return { winner, reason, candidates };
};
