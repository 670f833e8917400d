import { describe, expect, it } from 'vitest';
import { COORD } from '../../../test/fakes/sync-world.ts';
import type { Migration } from '../../apis/types.ts';
import { CLUSTER_ANNOTATION } from '../../kcp-client-ts/types.ts';
import { ObjectStore } from '../../runtime/store.ts';
import { MigrationBudget, STALE_MIGRATION_MS } from './budget.ts';

const migration = (name: string, from: string, to: string, state?: string): Migration =>
  ({
    metadata: { name, annotations: { [CLUSTER_ANNOTATION]: COORD } },
    spec: { from: { providerCluster: from }, to: { providerCluster: to } },
    ...(state ? { status: { state } } : {}),
  }) as unknown as Migration;

describe('MigrationBudget', () => {
  it('counts each move against the provider it leaves and the one it enters, and the total', () => {
    const migrations = new ObjectStore<Migration>();
    const budget = new MigrationBudget({ migrations, coordinationCluster: COORD, limits: { total: 3, perProvider: 2 } });
    expect(budget.admit('m1', 'a', 'hostile')).toEqual({ admitted: true });
    expect(budget.admit('m2', 'b', 'hostile')).toEqual({ admitted: true });
    // A destination that never finishes holds at most its share: moves elsewhere go on.
    expect(budget.admit('m3', 'c', 'hostile')).toMatchObject({ admitted: false, reason: expect.stringContaining('provider hostile') });
    expect(budget.admit('m3', 'c', 'd')).toEqual({ admitted: true });
    expect(budget.room('e')).toMatchObject({ ok: false, reason: expect.stringContaining('--max-concurrent-migrations)') });
    // Ended (released, or completed in the cache): room again.
    budget.release('m1');
    migrations.upsert(migration('m2', 'b', 'hostile', 'CutoverCompleted'));
    expect(budget.inFlight().total).toBe(1);
    expect(budget.room('e')).toEqual({ ok: true });
  });

  it('stops counting a migration in flight for longer than STALE_MIGRATION_MS', () => {
    let now = Date.parse('2026-11-26T12:00:00Z');
    const migrations = new ObjectStore<Migration>();
    const budget = new MigrationBudget({ migrations, coordinationCluster: COORD, limits: { total: 1, perProvider: 1 }, now: () => now });
    const stuck = migration('stuck', 'a', 'hostile', 'CutoverInProgress');
    stuck.metadata.creationTimestamp = new Date(now).toISOString();
    migrations.upsert(stuck);
    expect(budget.room('b').ok).toBe(false);
    now += STALE_MIGRATION_MS + 1;
    expect(budget.room('b')).toEqual({ ok: true });
  });
});
