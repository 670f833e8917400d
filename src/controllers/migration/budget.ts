import type { Migration } from '../../apis/types.ts';
import type { ObjectStore } from '../../runtime/store.ts';

/** Moves the platform starts (drain, capacity, a requested move) in flight at once, as a Deployment's maxSurge. */
export type MigrationBudgetLimits = { total: number; perProvider: number };

export const DEFAULT_MIGRATION_BUDGET: MigrationBudgetLimits = { total: 10, perProvider: 3 };

/** How long an admitted Migration counts before the cache shows it. */
const RESERVATION_TTL_MS = 30_000;

/**
 * A Migration in flight longer than this stops counting: a destination that never reports
 * Available (a slow or hostile provider) must not hold the platform's moves up for ever. The
 * Migration itself goes on waiting; only the pace allows others beside it.
 */
export const STALE_MIGRATION_MS = 15 * 60_000;

/**
 * The pace of the moves the platform starts: at most `total` Migrations in flight, and at most
 * `perProvider` out of any one provider. In flight are the cached Migrations not yet completed
 * or failed, plus the ones this process admitted that the cache does not show yet (so a burst of
 * reconciles cannot all pass the same count). Shared by every brokered resource's controller.
 * Moves an object's own change forces (its AcceptAPI no longer matches it, was deleted, is not
 * Ready) are not paced: the consumer or the provider asked for those.
 */
export class MigrationBudget {
  readonly limits: MigrationBudgetLimits;
  readonly #migrations: ObjectStore<Migration>;
  readonly #cluster: string;
  readonly #now: () => number;
  readonly #admitted = new Map<string, { from: string; to: string; since: number }>();

  constructor(options: {
    migrations: ObjectStore<Migration>;
    coordinationCluster: string;
    limits?: MigrationBudgetLimits;
    now?: () => number;
  }) {
    this.#migrations = options.migrations;
    this.#cluster = options.coordinationCluster;
    this.limits = options.limits ?? DEFAULT_MIGRATION_BUDGET;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Migrations in flight: overall, and by provider, each counted against both the provider it
   * moves out of and the one it moves into (a destination that never becomes Available holds at
   * most `perProvider` of the budget, not all of it).
   */
  inFlight(): { total: number; byProvider: Map<string, number> } {
    const byProvider = new Map<string, number>();
    let total = 0;
    const count = (from: string, to: string): void => {
      total++;
      byProvider.set(from, (byProvider.get(from) ?? 0) + 1);
      if (to !== from) byProvider.set(to, (byProvider.get(to) ?? 0) + 1);
    };
    for (const m of this.#migrations.list()) {
      if (m.status?.state === 'CutoverCompleted' || m.status?.state === 'Failed') continue;
      if (this.#now() - Date.parse(m.metadata.creationTimestamp ?? '') > STALE_MIGRATION_MS) continue;
      count(m.spec.from.providerCluster, m.spec.to.providerCluster);
    }
    for (const [name, { from, to, since }] of this.#admitted) {
      if (this.#now() - since > RESERVATION_TTL_MS || this.#migrations.get({ cluster: this.#cluster, namespace: '', name })) {
        this.#admitted.delete(name);
        continue;
      }
      count(from, to);
    }
    return { total, byProvider };
  }

  /** Whether one more move out of `from` fits now (a cheap check before choosing a destination). */
  room(from: string): { ok: true } | { ok: false; reason: string } {
    return this.#roomIn(this.inFlight(), from);
  }

  #roomIn({ total, byProvider }: ReturnType<MigrationBudget['inFlight']>, from: string): { ok: true } | { ok: false; reason: string } {
    if (total >= this.limits.total)
      return { ok: false, reason: `${total} migrations in flight, the most at once (--max-concurrent-migrations)` };
    const out = byProvider.get(from) ?? 0;
    if (out >= this.limits.perProvider)
      return {
        ok: false,
        reason: `${out} migrations of provider ${from} in flight, the most at once (--max-concurrent-migrations-per-provider)`,
      };
    return { ok: true };
  }

  /**
   * Admits one more Migration from `from` to `to` when the budget allows, counting it from now on;
   * otherwise says what it waits for. Call in the same tick as the Migration's create is sent.
   */
  admit(migrationName: string, from: string, to: string): { admitted: true } | { admitted: false; reason: string } {
    const inFlight = this.inFlight();
    const room = this.#roomIn(inFlight, from);
    if (!room.ok) return { admitted: false, reason: room.reason };
    const into = this.#roomIn(inFlight, to);
    if (!into.ok) return { admitted: false, reason: into.reason };
    this.#admitted.set(migrationName, { from, to, since: this.#now() });
    return { admitted: true };
  }

  /** The admitted Migration was not created after all, or has ended. */
  release(migrationName: string): void {
    this.#admitted.delete(migrationName);
  }
}
