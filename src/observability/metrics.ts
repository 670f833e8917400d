import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Assignment, Migration } from '../apis/types.ts';
import { migrationInFlight } from '../coordination/coordination.ts';
import { resourceOfUrl } from '../kcp-client-ts/paths.ts';
import type { InformerScope, InformerStats } from '../runtime/informer-scope.ts';
import type { QueueEvent, WorkQueue } from '../runtime/workqueue.ts';

const sumBy = <T>(items: T[], keyOf: (item: T) => string, amountOf: (item: T) => number): Map<string, number> => {
  const sums = new Map<string, number>();
  for (const item of items) sums.set(keyOf(item), (sums.get(keyOf(item)) ?? 0) + amountOf(item));
  return sums;
};

/** The most distinct resources `resource_broker_kcp_requests_total` names; the rest count as `other`. */
const MAX_REQUEST_RESOURCES = 64;

/** controller-runtime's reconcile-time buckets (seconds), trimmed. */
const RECONCILE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** client-go's workqueue buckets: 10 ns to 10 s by factors of 10. */
const QUEUE_BUCKETS = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10];

/**
 * The broker's Prometheus metrics; one instance per process. Beside its own families
 * (`resource_broker_*`), it serves the ones every controller dashboard reads: controller-runtime's
 * reconcile metrics, client-go's workqueue and REST client metrics, leader election status, and
 * the process and Node.js defaults, all with few label values (one per controller, informer
 * family, kcp host).
 */
export class BrokerMetrics {
  readonly registry = new Registry();
  /** The resource label values of kcp requests so far (at most MAX_REQUEST_RESOURCES). */
  readonly #requestResources = new Set<string>();
  readonly kcpRequests = new Counter({
    name: 'resource_broker_kcp_requests_total',
    help: 'Requests sent to kcp, by verb (WATCH for watch streams), target (lease: leader election; api: everything else) and resource (e.g. secrets, certificates/status).',
    labelNames: ['verb', 'target', 'resource'],
    registers: [this.registry],
  });
  readonly restRequests = new Counter({
    name: 'rest_client_requests_total',
    help: 'Number of HTTP requests to kcp, partitioned by status code, method, and host.',
    labelNames: ['code', 'method', 'host'],
    registers: [this.registry],
  });
  readonly #reconciles = new Counter({
    name: 'controller_runtime_reconcile_total',
    help: 'Total number of reconciliations per controller',
    labelNames: ['controller', 'result'],
    registers: [this.registry],
  });
  readonly #reconcileErrors = new Counter({
    name: 'controller_runtime_reconcile_errors_total',
    help: 'Total number of reconciliation errors per controller',
    labelNames: ['controller'],
    registers: [this.registry],
  });
  readonly #reconcileTime = new Histogram({
    name: 'controller_runtime_reconcile_time_seconds',
    help: 'Length of time per reconciliation per controller',
    labelNames: ['controller'],
    buckets: RECONCILE_BUCKETS,
    registers: [this.registry],
  });
  readonly #adds = new Counter({
    name: 'workqueue_adds_total',
    help: 'Total number of adds handled by workqueue',
    labelNames: ['name', 'controller'],
    registers: [this.registry],
  });
  readonly #retries = new Counter({
    name: 'workqueue_retries_total',
    help: 'Total number of retries handled by workqueue',
    labelNames: ['name', 'controller'],
    registers: [this.registry],
  });
  readonly #queueDuration = new Histogram({
    name: 'workqueue_queue_duration_seconds',
    help: 'How long in seconds an item stays in workqueue before being requested',
    labelNames: ['name', 'controller'],
    buckets: QUEUE_BUCKETS,
    registers: [this.registry],
  });
  readonly #workDuration = new Histogram({
    name: 'workqueue_work_duration_seconds',
    help: 'How long in seconds processing an item from workqueue takes',
    labelNames: ['name', 'controller'],
    buckets: QUEUE_BUCKETS,
    registers: [this.registry],
  });
  readonly #leading = new Gauge({
    name: 'leader_election_master_status',
    help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master.',
    labelNames: ['name'],
    registers: [this.registry],
  });
  readonly #isLeader = new Gauge({
    name: 'resource_broker_leader',
    help: '1 while this replica holds the leader lease.',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  onRequest(verb: string, url: string): void {
    const resource = resourceOfUrl(url);
    // Resources come from kcp's APIs, a few dozen; a cap keeps a URL parsed wrong from growing the label set.
    if (!this.#requestResources.has(resource) && this.#requestResources.size < MAX_REQUEST_RESOURCES) this.#requestResources.add(resource);
    this.kcpRequests.inc({
      verb,
      target: url.includes('/coordination.k8s.io/') ? 'lease' : 'api',
      resource: this.#requestResources.has(resource) ? resource : 'other',
    });
  }

  /** A kcp answer (or `<error>`), counted by code, method and host as client-go counts it. */
  onResponse(verb: string, url: string, code: string): void {
    let host = '';
    try {
      host = new URL(url).host;
    } catch {
      // not a URL: counted without a host
    }
    this.restRequests.inc({ code, method: verb === 'WATCH' ? 'GET' : verb, host });
  }

  setLeader(lease: string, leading: boolean): void {
    this.#leading.set({ name: lease }, leading ? 1 : 0);
    this.#isLeader.set(leading ? 1 : 0);
  }

  /** One queue event of `controller` (the queue has the controller's name). */
  onQueueEvent(controller: string, event: QueueEvent): void {
    const labels = { name: controller, controller };
    switch (event.type) {
      case 'added':
        this.#adds.inc(labels);
        return;
      case 'retried':
        this.#retries.inc(labels);
        return;
      case 'started':
        this.#queueDuration.observe(labels, event.waitedMs / 1000);
        return;
      case 'reconciled':
        this.#reconciles.inc({ controller, result: event.result });
        if (event.result === 'error') this.#reconcileErrors.inc({ controller });
        this.#reconcileTime.observe({ controller }, event.durationMs / 1000);
        this.#workDuration.observe(labels, event.durationMs / 1000);
        return;
    }
  }

  /** Gauges read at scrape time from the running queues and informers. */
  observe(source: {
    queues: () => WorkQueue[];
    informers: () => InformerScope | undefined;
    /** Assignments and Migrations as cached (empty before the broker leads). */
    coordination: () => { assignments: Assignment[]; migrations: Migration[] };
    /** Consumer objects with no Assignment, by brokered resource. */
    pending?: () => { resource: string; count: number }[];
  }): void {
    const registers = [this.registry];
    const perQueue = (name: string, help: string, amountOf: (q: WorkQueue) => number, labelNames = ['name', 'controller']): void => {
      new Gauge({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          for (const q of source.queues())
            this.set(labelNames.length === 1 ? { controller: q.name } : { name: q.name, controller: q.name }, amountOf(q));
        },
      });
    };
    perQueue('workqueue_depth', 'Current depth of workqueue', (q) => q.depth);
    perQueue(
      'workqueue_unfinished_work_seconds',
      "How many seconds of work has been done that is in progress and hasn't been observed by work_duration.",
      (q) => q.runningForMs().reduce((sum, ms) => sum + ms, 0) / 1000,
    );
    perQueue(
      'workqueue_longest_running_processor_seconds',
      'How many seconds has the longest running processor for workqueue been running.',
      (q) => Math.max(0, ...q.runningForMs()) / 1000,
    );
    perQueue('controller_runtime_active_workers', 'Number of currently used workers per controller', (q) => q.active, ['controller']);
    perQueue(
      'controller_runtime_max_concurrent_reconciles',
      'Maximum number of concurrent reconciles per controller',
      (q) => q.concurrency,
      ['controller'],
    );
    new Gauge({
      name: 'resource_broker_objects',
      help: 'Brokered objects by the provider (logical cluster) serving them.',
      labelNames: ['provider'],
      registers,
      collect() {
        this.reset();
        for (const [provider, n] of sumBy(
          source.coordination().assignments,
          (a) => a.status?.providerCluster ?? 'unplaced',
          () => 1,
        ))
          this.set({ provider }, n);
      },
    });
    // Drain, capacity and rebalance progress: what each AcceptAPI serves and what is moving out of it.
    const perAcceptAPI = <T>(
      name: string,
      help: string,
      itemsOf: () => T[],
      servedBy: (item: T) => [provider: string, acceptapi: string],
    ): void => {
      new Gauge({
        name,
        help,
        labelNames: ['provider', 'acceptapi'],
        registers,
        collect() {
          this.reset();
          // A logical cluster name has no '/', so the pair survives the join.
          for (const [key, n] of sumBy(
            itemsOf(),
            (item) => servedBy(item).join('/'),
            () => 1,
          )) {
            const [provider, acceptapi] = key.split('/') as [string, string];
            this.set({ provider, acceptapi }, n);
          }
        },
      });
    };
    perAcceptAPI(
      'resource_broker_acceptapi_objects',
      'Brokered objects by the AcceptAPI serving them (provider logical cluster and name).',
      () => source.coordination().assignments.filter((a) => a.status?.providerCluster && a.status.acceptAPIName),
      (a) => [a.status!.providerCluster!, a.status!.acceptAPIName!],
    );
    perAcceptAPI(
      'resource_broker_acceptapi_migrations_out',
      'Migrations in flight (not yet cut over or failed) out of each AcceptAPI.',
      () => source.coordination().migrations.filter(migrationInFlight),
      (m) => [m.spec.from.providerCluster, m.spec.from.acceptAPIName],
    );
    new Gauge({
      name: 'resource_broker_pending_objects',
      help: 'Consumer objects no provider serves yet (no Assignment): none accepts them, or placement is under way.',
      labelNames: ['resource'],
      registers,
      collect() {
        this.reset();
        for (const { resource, count } of source.pending?.() ?? []) this.set({ resource }, count);
      },
    });
    new Gauge({
      name: 'resource_broker_migrations',
      help: 'Migrations by state.',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        for (const [state, n] of sumBy(
          source.coordination().migrations,
          (m) => m.status?.state ?? 'Pending',
          () => 1,
        ))
          this.set({ state }, n);
      },
    });
    const stats = (): InformerStats[] => source.informers()?.stats() ?? [];
    // Restarts are counted per informer, and an informer's count goes with its workspace: the
    // counter adds what the live ones gained since the last scrape, so it never goes down.
    const restartsSeen = new Map<string, number>();
    new Counter({
      name: 'resource_broker_watch_restarts_total',
      help: 'Watch reopenings, by informer family (the staging ones summed over staging workspaces).',
      labelNames: ['informer'],
      registers,
      collect() {
        for (const [family, total] of sumBy(
          stats(),
          (s) => s.family,
          (s) => s.watchRestarts,
        )) {
          const gained = total - (restartsSeen.get(family) ?? 0);
          if (gained > 0) this.inc({ informer: family }, gained);
          restartsSeen.set(family, total);
        }
      },
    });
    new Gauge({
      name: 'resource_broker_watches',
      help: 'Watches open on kcp: one per informer and shard of its virtual workspace.',
      registers,
      collect() {
        this.set(stats().reduce((sum, s) => sum + s.watches, 0));
      },
    });
    new Gauge({
      name: 'resource_broker_cached_objects',
      help: 'Objects held in informer caches, by informer family (the staging ones summed over staging views).',
      labelNames: ['informer'],
      registers,
      collect() {
        this.reset();
        for (const [informer, n] of sumBy(
          stats(),
          (s) => s.family,
          (s) => s.objects,
        ))
          this.set({ informer }, n);
      },
    });
    new Gauge({
      name: 'resource_broker_watch_seconds_since_last_event',
      help: 'Seconds since an informer last saw an event or bookmark: the stalest of each informer family.',
      labelNames: ['informer'],
      registers,
      collect() {
        this.reset();
        const now = Date.now();
        const stalest = new Map<string, number>();
        for (const s of stats())
          if (s.lastEventAt) stalest.set(s.family, Math.max(stalest.get(s.family) ?? 0, (now - s.lastEventAt) / 1000));
        for (const [informer, seconds] of stalest) this.set({ informer }, seconds);
      },
    });
  }
}
