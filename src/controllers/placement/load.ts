import type { Assignment, Migration } from '../../apis/types.ts';
import { gvrString, type GroupVersionResource } from '../../kcp-client-ts/types.ts';
import type { ObjectStore } from '../../runtime/store.ts';
import { acceptAPIKey, assignmentsByProvider } from './placement.ts';

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
  readonly #migrations: ObjectStore<Migration> | undefined;
  readonly #placing = new Map<string, { provider: string; acceptAPIName: string; since: number; from?: string }>();
  readonly #counts = new Map<string, { revisions: string; load: Map<string, number> }>();

  constructor(options: {
    assignments: ObjectStore<Assignment>;
    /** Migrations in flight count against their destination's capacity. */
    migrations?: ObjectStore<Migration>;
    coordinationCluster: string;
    gvr: GroupVersionResource;
    ttlMs?: number;
    now?: () => number;
  }) {
    this.#assignments = options.assignments;
    this.#migrations = options.migrations;
    this.#cluster = options.coordinationCluster;
    this.#gvr = options.gvr;
    this.#ttlMs = options.ttlMs ?? PLACING_TTL_MS;
    this.#now = options.now ?? Date.now;
  }

  /**
   * A count over the caches, computed again only when the Assignments or Migrations changed:
   * placement and rebalancing ask on every reconcile, and a scan of 10,000 Assignments each time
   * would make a burst quadratic.
   */
  #memo(name: string, compute: () => Map<string, number>): Map<string, number> {
    const revisions = `${this.#assignments.revision}/${this.#migrations?.revision ?? 0}`;
    const cached = this.#counts.get(name);
    if (cached?.revisions === revisions) return new Map(cached.load);
    const load = compute();
    this.#counts.set(name, { revisions, load });
    return new Map(load);
  }

  /** Current Assignments per provider for this resource, the ones being placed included. */
  byProvider(): Map<string, number> {
    const load = this.#memo('byProvider', () => assignmentsByProvider(this.#assignments.list(), this.#gvr));
    for (const { provider } of this.#pending()) load.set(provider, (load.get(provider) ?? 0) + 1);
    return load;
  }

  /**
   * Objects per AcceptAPI (`<provider cluster>/<name>`) for capacity: its Assignments, the
   * Migrations moving objects to it, and what this process is placing there.
   */
  byAcceptAPI(): Map<string, number> {
    const add = (load: Map<string, number>, provider: string, name: string): void => {
      const key = acceptAPIKey(provider, name);
      load.set(key, (load.get(key) ?? 0) + 1);
    };
    const load = this.#memo('byAcceptAPI', () => {
      const counted = new Map<string, number>();
      for (const a of this.#assignments.list()) {
        if (gvrString(a.spec.gvr) !== gvrString(this.#gvr)) continue;
        add(counted, a.status?.providerCluster ?? a.spec.providerCluster, a.status?.acceptAPIName ?? a.spec.acceptAPIName);
      }
      for (const m of this.#migrations?.list() ?? []) {
        if (m.status?.state === 'CutoverCompleted' || m.status?.state === 'Failed') continue;
        const a = this.#assignments.get({ cluster: this.#cluster, namespace: '', name: m.spec.assignment });
        if (a && gvrString(a.spec.gvr) === gvrString(this.#gvr)) add(counted, m.spec.to.providerCluster, m.spec.to.acceptAPIName);
      }
      return counted;
    });
    for (const { provider, acceptAPIName } of this.#pending()) add(load, provider, acceptAPIName);
    return load;
  }

  /**
   * Objects per provider once every move in flight has completed: where Assignments serve now,
   * minus what is moving out, plus what is moving in (and what this process is placing or moving
   * that the caches do not show yet). Rebalancing compares these, so the moves it starts never
   * overshoot the balance; capacity counts a move on both sides instead (byAcceptAPI).
   */
  projectedByProvider(): Map<string, number> {
    const load = this.#memo('projected', () => {
      const counted = assignmentsByProvider(this.#assignments.list(), this.#gvr);
      for (const m of this.#migrations?.list() ?? []) {
        if (m.status?.state === 'CutoverCompleted' || m.status?.state === 'Failed') continue;
        const a = this.#assignments.get({ cluster: this.#cluster, namespace: '', name: m.spec.assignment });
        if (!a || gvrString(a.spec.gvr) !== gvrString(this.#gvr)) continue;
        // Cut over already (the Assignment's status names the destination, the Migration not yet
        // marked done): the Assignment counts where it is, once.
        if (a.status?.providerCluster === m.spec.to.providerCluster) continue;
        counted.set(m.spec.from.providerCluster, (counted.get(m.spec.from.providerCluster) ?? 0) - 1);
        counted.set(m.spec.to.providerCluster, (counted.get(m.spec.to.providerCluster) ?? 0) + 1);
      }
      return counted;
    });
    for (const { provider, from } of this.#pending()) {
      load.set(provider, (load.get(provider) ?? 0) + 1);
      if (from !== undefined) load.set(from, (load.get(from) ?? 0) - 1);
    }
    return load;
  }

  /** Placements and moves this process started that the caches do not show yet (expired ones dropped). */
  *#pending(): Generator<{ provider: string; acceptAPIName: string; from?: string }> {
    for (const [name, entry] of this.#placing) {
      const settled =
        this.#now() - entry.since > this.#ttlMs ||
        this.#assignments.get({ cluster: this.#cluster, namespace: '', name }) ||
        this.#migrations?.get({ cluster: this.#cluster, namespace: '', name });
      if (settled) this.#placing.delete(name);
      else yield entry;
    }
  }

  /**
   * Counts an Assignment (or a Migration, by its name, with the provider it moves `from`) from now
   * on: call in the same tick the load was read in.
   */
  placing(name: string, provider: string, acceptAPIName: string, from?: string): void {
    this.#placing.set(name, { provider, acceptAPIName, since: this.#now(), ...(from !== undefined ? { from } : {}) });
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
