import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Assignment, Migration } from '../apis/types.ts';
import type { InformerScope } from '../runtime/informer-scope.ts';
import type { WorkQueue } from '../runtime/workqueue.ts';

const countBy = <T>(items: T[], keyOf: (item: T) => string): Map<string, number> => {
  const counts = new Map<string, number>();
  for (const item of items) {
    const key = keyOf(item);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
};

/** The broker's Prometheus metrics; one instance per process. */
export class BrokerMetrics {
  readonly registry = new Registry();
  readonly kcpRequests = new Counter({
    name: 'resource_broker_kcp_requests_total',
    help: 'Requests sent to kcp, by verb (WATCH for watch streams) and target (lease: leader election; api: everything else).',
    labelNames: ['verb', 'target'],
    registers: [this.registry],
  });

  onRequest(verb: string, url: string): void {
    this.kcpRequests.inc({ verb, target: url.includes('/coordination.k8s.io/') ? 'lease' : 'api' });
  }
  readonly reconciles = new Counter({
    name: 'resource_broker_reconcile_total',
    help: 'Reconciles by controller queue and result.',
    labelNames: ['controller', 'result'],
    registers: [this.registry],
  });
  readonly reconcileSeconds = new Histogram({
    name: 'resource_broker_reconcile_duration_seconds',
    help: 'Reconcile duration by controller queue.',
    labelNames: ['controller'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly isLeader = new Gauge({
    name: 'resource_broker_leader',
    help: '1 while this replica holds the leader lease.',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'resource_broker_' });
  }

  /** Gauges read at scrape time from the running queues and informers. */
  observe(source: {
    queues: () => WorkQueue[];
    informers: () => InformerScope | undefined;
    /** Assignments and Migrations as cached (empty before the broker leads). */
    coordination: () => { assignments: Assignment[]; migrations: Migration[] };
  }): void {
    new Gauge({
      name: 'resource_broker_objects',
      help: 'Brokered objects by the provider (logical cluster) serving them.',
      labelNames: ['provider'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [provider, n] of countBy(source.coordination().assignments, (a) => a.status?.providerCluster ?? 'unplaced'))
          this.set({ provider }, n);
      },
    });
    new Gauge({
      name: 'resource_broker_migrations',
      help: 'Migrations by state.',
      labelNames: ['state'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [state, n] of countBy(source.coordination().migrations, (m) => m.status?.state ?? 'Pending')) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'resource_broker_workqueue_depth',
      help: 'Keys waiting in each work queue.',
      labelNames: ['queue'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const q of source.queues()) this.set({ queue: q.name }, q.depth);
      },
    });
    new Gauge({
      name: 'resource_broker_watch_restarts',
      help: 'Watch reopenings per informer since it started.',
      labelNames: ['informer'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const s of source.informers()?.stats() ?? []) this.set({ informer: s.name }, s.watchRestarts);
      },
    });
    new Gauge({
      name: 'resource_broker_watches',
      help: 'Watches open on kcp: one per informer and shard of its virtual workspace.',
      registers: [this.registry],
      collect() {
        this.set((source.informers()?.stats() ?? []).reduce((sum, s) => sum + s.watches, 0));
      },
    });
    new Gauge({
      name: 'resource_broker_watch_seconds_since_last_event',
      help: 'Seconds since each informer last saw an event or bookmark.',
      labelNames: ['informer'],
      registers: [this.registry],
      collect() {
        this.reset();
        const now = Date.now();
        for (const s of source.informers()?.stats() ?? []) if (s.lastEventAt) this.set({ informer: s.name }, (now - s.lastEventAt) / 1000);
      },
    });
  }

  onReconciled(controller: string, outcome: { ok: boolean; durationMs: number }): void {
    this.reconciles.inc({ controller, result: outcome.ok ? 'success' : 'error' });
    this.reconcileSeconds.observe({ controller }, outcome.durationMs / 1000);
  }
}
