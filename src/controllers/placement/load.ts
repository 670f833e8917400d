import type { Assignment } from '../../apis/types.ts';
import type { GroupVersionResource } from '../../kcp-client-ts/types.ts';
import type { ObjectStore } from '../../runtime/store.ts';
import { assignmentsByProvider } from './placement.ts';

/** How long an Assignment being placed counts as load before the cache shows it. */
const PLACING_TTL_MS = 30_000;

/**
 * The load placement spreads by: Assignments per provider as cached, plus the ones this process
 * is creating that the cache does not show yet. Without the second part a burst of objects,
 * placed before any of their Assignments come back through the watch, would all see the same
 * load and land wherever the tie-break sends each, instead of spreading. An entry the cache never
 * shows (the Assignment deleted at once) stops counting after a TTL.
 */
export class PlacementLoad {
  readonly #assignments: ObjectStore<Assignment>;
  readonly #cluster: string;
  readonly #gvr: GroupVersionResource;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #placing = new Map<string, { provider: string; since: number }>();

  constructor(options: {
    assignments: ObjectStore<Assignment>;
    coordinationCluster: string;
    gvr: GroupVersionResource;
    ttlMs?: number;
    now?: () => number;
  }) {
    this.#assignments = options.assignments;
    this.#cluster = options.coordinationCluster;
    this.#gvr = options.gvr;
    this.#ttlMs = options.ttlMs ?? PLACING_TTL_MS;
    this.#now = options.now ?? Date.now;
  }

  /** Current Assignments per provider for this resource, the ones being placed included. */
  byProvider(): Map<string, number> {
    const load = assignmentsByProvider(this.#assignments.list(), this.#gvr);
    for (const [name, { provider, since }] of this.#placing) {
      const settled = this.#now() - since > this.#ttlMs || this.#assignments.get({ cluster: this.#cluster, namespace: '', name });
      if (settled) this.#placing.delete(name);
      else load.set(provider, (load.get(provider) ?? 0) + 1);
    }
    return load;
  }

  /** Counts an Assignment from now on: call in the same tick the load was read in. */
  placing(assignmentName: string, provider: string): void {
    this.#placing.set(assignmentName, { provider, since: this.#now() });
  }

  /** The Assignment was not created after all. */
  abandoned(assignmentName: string): void {
    this.#placing.delete(assignmentName);
  }

  /** Entries still counted (tests). */
  get pending(): number {
    return this.#placing.size;
  }
}
