import { describe, expect, it } from 'vitest';
import type { InformerScope, InformerStats } from '../runtime/informer-scope.ts';
import { WorkQueue } from '../runtime/workqueue.ts';
import type { Assignment, Migration } from '../apis/types.ts';
import { BrokerMetrics } from './metrics.ts';

const sampleOf = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('BrokerMetrics', () => {
  it('serves the controller-runtime and workqueue families from what a queue does', async () => {
    const metrics = new BrokerMetrics();
    const attempts = new Map<string, number>();
    const queue = new WorkQueue({
      name: 'sync-certs',
      backoff: { initialMs: 1, maxMs: 1 },
      reconcile: async (key) => {
        const n = (attempts.get(key) ?? 0) + 1;
        attempts.set(key, n);
        if (key === 'flaky' && n === 1) throw new Error('kcp said no');
        return key === 'poll' && n === 1 ? { requeueAfterMs: 1 } : undefined;
      },
    });
    queue.observe((event) => metrics.onQueueEvent(queue.name, event));
    metrics.observe({ queues: () => [queue], informers: () => undefined, coordination: () => ({ assignments: [], migrations: [] }) });
    queue.start();
    for (const key of ['ok', 'flaky', 'poll']) queue.add(key);
    await new Promise((r) => setTimeout(r, 50));
    await queue.idle();
    const text = await metrics.registry.metrics();
    const c = 'controller="sync-certs"';
    // ok; flaky fails once, then succeeds; poll asks to be requeued once, then succeeds: 5 reconciles.
    expect(sampleOf(text, `controller_runtime_reconcile_total{${c},result="success"}`)).toBe(3);
    expect(sampleOf(text, `controller_runtime_reconcile_total{${c},result="error"}`)).toBe(1);
    expect(sampleOf(text, `controller_runtime_reconcile_errors_total{${c}}`)).toBe(1);
    expect(sampleOf(text, `controller_runtime_reconcile_total{${c},result="requeue_after"}`)).toBe(1);
    expect(sampleOf(text, `workqueue_retries_total{name="sync-certs",${c}}`)).toBe(1);
    expect(sampleOf(text, `workqueue_adds_total{name="sync-certs",${c}}`)).toBe(5);
    expect(sampleOf(text, `workqueue_queue_duration_seconds_count{name="sync-certs",${c}}`)).toBe(5);
    expect(sampleOf(text, `controller_runtime_reconcile_time_seconds_count{${c}}`)).toBe(5);
    expect(sampleOf(text, `workqueue_depth{name="sync-certs",${c}}`)).toBe(0);
    expect(sampleOf(text, `controller_runtime_max_concurrent_reconciles{${c}}`)).toBe(4);
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
    await queue.shutdown();
  });

  it('shows drain and rebalance progress per AcceptAPI: objects served, migrations out in flight', async () => {
    const metrics = new BrokerMetrics();
    const assignment = (provider: string, acceptAPIName: string) =>
      ({ status: { providerCluster: provider, acceptAPIName } }) as unknown as Assignment;
    const migration = (provider: string, acceptAPIName: string, state?: string) =>
      ({ spec: { from: { providerCluster: provider, acceptAPIName } }, ...(state ? { status: { state } } : {}) }) as unknown as Migration;
    metrics.observe({
      queues: () => [],
      informers: () => undefined,
      coordination: () => ({
        assignments: [assignment('p1', 'old'), assignment('p1', 'old'), assignment('p2', 'new'), {} as Assignment],
        migrations: [migration('p1', 'old'), migration('p1', 'old', 'CutoverCompleted'), migration('p1', 'old', 'StagesInProgress')],
      }),
    });
    const text = await metrics.registry.metrics();
    expect(sampleOf(text, 'resource_broker_acceptapi_objects{provider="p1",acceptapi="old"}')).toBe(2);
    expect(sampleOf(text, 'resource_broker_acceptapi_objects{provider="p2",acceptapi="new"}')).toBe(1);
    expect(sampleOf(text, 'resource_broker_acceptapi_migrations_out{provider="p1",acceptapi="old"}')).toBe(2);
  });

  it('counts kcp answers by code, method and host, and leadership by lease', async () => {
    const metrics = new BrokerMetrics();
    metrics.onResponse('POST', 'https://127.0.0.1:6443/clusters/root/api/v1/namespaces', '201');
    metrics.onResponse('WATCH', 'https://127.0.0.1:6443/clusters/root/api/v1/secrets?watch=true', '200');
    metrics.onResponse('GET', 'https://127.0.0.1:6443/clusters/root/api/v1/secrets', '<error>');
    metrics.setLeader('resource-broker', true);
    const text = await metrics.registry.metrics();
    expect(sampleOf(text, 'rest_client_requests_total{code="201",method="POST",host="127.0.0.1:6443"}')).toBe(1);
    expect(sampleOf(text, 'rest_client_requests_total{code="200",method="GET",host="127.0.0.1:6443"}')).toBe(1);
    expect(sampleOf(text, 'rest_client_requests_total{code="<error>",method="GET",host="127.0.0.1:6443"}')).toBe(1);
    expect(sampleOf(text, 'leader_election_master_status{name="resource-broker"}')).toBe(1);
  });

  it('labels informers by family, not by staging workspace, and never lets the restart counter go down', async () => {
    const metrics = new BrokerMetrics();
    let stats: InformerStats[] = [];
    const stat = (name: string, family: string, watchRestarts: number): InformerStats => ({
      name,
      family,
      synced: true,
      lastEventAt: Date.now() - 5_000,
      watchRestarts,
      watches: 1,
      objects: watchRestarts * 10,
    });
    const scope = { stats: () => stats } satisfies Pick<InformerScope, 'stats'>;
    metrics.observe({
      queues: () => [],
      informers: () => scope as unknown as InformerScope,
      coordination: () => ({ assignments: [], migrations: [] }),
    });
    stats = [stat('staging ws1 secrets', 'staging secrets', 2), stat('staging ws2 secrets', 'staging secrets', 3)];
    let text = await metrics.registry.metrics();
    expect(sampleOf(text, 'resource_broker_watch_restarts_total{informer="staging secrets"}')).toBe(5);
    expect(text).not.toContain('ws1');
    expect(sampleOf(text, 'resource_broker_watches')).toBe(2);
    expect(sampleOf(text, 'resource_broker_cached_objects{informer="staging secrets"}')).toBe(50);
    // ws2 is gone (its count with it), ws1 restarted once more: the counter only grows.
    stats = [stat('staging ws1 secrets', 'staging secrets', 3)];
    text = await metrics.registry.metrics();
    expect(sampleOf(text, 'resource_broker_watch_restarts_total{informer="staging secrets"}')).toBe(5);
    stats = [stat('staging ws1 secrets', 'staging secrets', 5)];
    text = await metrics.registry.metrics();
    expect(sampleOf(text, 'resource_broker_watch_restarts_total{informer="staging secrets"}')).toBe(7);
    expect(sampleOf(text, 'resource_broker_watch_seconds_since_last_event{informer="staging secrets"}')).toBeGreaterThanOrEqual(5);
  });
});
