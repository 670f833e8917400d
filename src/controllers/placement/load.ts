import type { Assignment, Migration } from '../../apis/types.ts';
import type { GroupVersionResource } from '../../kcp-client-ts/types.ts';
import type { ObjectStore } from '../../runtime/store.ts';
import { acceptAPIKey } from './placement.ts';

/** How long an Assignment being placed counts as load before the cache shows it. */
const PLACING_TTL_MS = 30_000;

/** The Assignment store's tally of where Assignments serve (`placedAt`), shared by every resource's PlacementLoad. */
const PLACED_TALLY = 'placedAt';

/**
 * Where an Assignment counts: its resource, then the provider and AcceptAPI of its status, or of
 * its spec's decision before that. As JSON, so no value (the API puts no pattern on them) can
 * shift the fields and count as another provider.
 */
const placedAt = (a: Assignment): string =>
  JSON.stringify([
    ...resourceOf(a.spec.gvr),
    a.status?.providerCluster ?? a.spec.providerCluster,
    a.status?.acceptAPIName ?? a.spec.acceptAPIName,
  ]);

const resourceOf = (gvr: GroupVersionResource): [string, string, string] => [gvr.group ?? '', gvr.version, gvr.resource];

/**
 * The load placement spreads by: Assignments per provider as cached (a tally the Assignment store
 * keeps), plus the ones this process is creating that the cache does not show yet. Without the
 * second part a burst of objects, placed before any of their Assignments come back through the
 * watch, would all see the same load and land wherever the tie-break sends each, instead of
 * spreading. An entry the cache never shows (the Assignment deleted at once) stops counting after
 * a TTL.
 */
export class PlacementLoad {
  readonly #assignments: ObjectStore<Assignment>;
  readonly #cluster: string;
  readonly #gvr: GroupVersionResource;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #migrations: ObjectStore<Migration> | undefined;
  readonly #placing = new Map<string, { provider: string; acceptAPIName: string; since: number; from?: string }>();
  readonly #moves = { revisions: '', incoming: new Map<string, number>(), projected: new Map<string, number>() };

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
    this.#assignments.addTally(PLACED_TALLY, placedAt);
  }

  /** Assignments of this resource per provider and AcceptAPI, from the store's tally: no scan, however many there are. */
  *#placed(): Generator<{ provider: string; acceptAPIName: string; count: number }> {
    const [group, version, resource] = resourceOf(this.#gvr);
    for (const [at, count] of this.#assignments.tally(PLACED_TALLY)) {
      const fields = JSON.parse(at) as string[];
      if (fields[0] !== group || fields[1] !== version || fields[2] !== resource) continue;
      yield { provider: fields[3] ?? '', acceptAPIName: fields[4] ?? '', count };
    }
  }

  /**
   * What the Migrations in flight add: objects moving to each AcceptAPI (`incoming`, for capacity)
   * and the change to each provider's count once they complete (`projected`). Computed again only
   * when the Migrations or Assignments changed; Migrations are few next to Assignments.
   */
  #inFlight(): { incoming: ReadonlyMap<string, number>; projected: ReadonlyMap<string, number> } {
    const revisions = `${this.#assignments.revision}/${this.#migrations?.revision ?? 0}`;
    if (this.#moves.revisions === revisions) return this.#moves;
    const incoming = new Map<string, number>();
    const projected = new Map<string, number>();
    const resource = resourceOf(this.#gvr).join('/');
    for (const m of this.#migrations?.list() ?? []) {
      if (m.status?.state === 'CutoverCompleted' || m.status?.state === 'Failed') continue;
      const a = this.#assignments.get({ cluster: this.#cluster, namespace: '', name: m.spec.assignment });
      if (!a || resourceOf(a.spec.gvr).join('/') !== resource) continue;
      add(incoming, acceptAPIKey(m.spec.to.providerCluster, m.spec.to.acceptAPIName), 1);
      // Cut over already (the Assignment's status names the destination, the Migration not yet
      // marked done): the Assignment counts where it is, once.
      if (a.status?.providerCluster === m.spec.to.providerCluster) continue;
      add(projected, m.spec.from.providerCluster, -1);
      add(projected, m.spec.to.providerCluster, 1);
    }
    Object.assign(this.#moves, { revisions, incoming, projected });
    return this.#moves;
  }

  /** Current Assignments per provider for this resource, the ones being placed included. */
  byProvider(): Map<string, number> {
    const load = new Map<string, number>();
    for (const { provider, count } of this.#placed()) add(load, provider, count);
    for (const { provider } of this.#pending()) add(load, provider, 1);
    return load;
  }

  /**
   * Objects per AcceptAPI (`<provider cluster>/<name>`) for capacity: its Assignments, the
   * Migrations moving objects to it, and what this process is placing there.
   */
  byAcceptAPI(): Map<string, number> {
    const load = new Map<string, number>();
    for (const { provider, acceptAPIName, count } of this.#placed()) add(load, acceptAPIKey(provider, acceptAPIName), count);
    for (const [key, count] of this.#inFlight().incoming) add(load, key, count);
    for (const { provider, acceptAPIName } of this.#pending()) add(load, acceptAPIKey(provider, acceptAPIName), 1);
    return load;
  }

  /**
   * Objects per provider once every move in flight has completed: where Assignments serve now,
   * minus what is moving out, plus what is moving in (and what this process is placing or moving
   * that the caches do not show yet). Rebalancing compares these, so the moves it starts never
   * overshoot the balance; capacity counts a move on both sides instead (byAcceptAPI).
   */
  projectedByProvider(): Map<string, number> {
    const load = new Map<string, number>();
    for (const { provider, count } of this.#placed()) add(load, provider, count);
    for (const [provider, change] of this.#inFlight().projected) add(load, provider, change);
    for (const { provider, from } of this.#pending()) {
      add(load, provider, 1);
      if (from !== undefined) add(load, from, -1);
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

const add = (load: Map<string, number>, key: string, by: number): void => void load.set(key, (load.get(key) ?? 0) + by);
