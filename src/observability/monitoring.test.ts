import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BrokerMetrics } from './metrics.ts';

const deploy = (file: string): string => readFileSync(new URL(`../../deploy/${file}`, import.meta.url), 'utf8');
const FAMILY = /\b(?:controller_runtime|workqueue|rest_client|leader_election|resource_broker|process|nodejs)_[a-z0-9_]+/g;

/** Metric names an expression text refers to, histogram series mapped to their family. */
const namesIn = (text: string): Set<string> =>
  new Set([...text.matchAll(FAMILY)].map(([name]) => name.replace(/_(bucket|count|sum)$/, '')));

describe('the shipped dashboard and alert rules', () => {
  it('refer only to metrics the broker serves', async () => {
    const metrics = new BrokerMetrics();
    metrics.observe({ queues: () => [], informers: () => undefined, coordination: () => ({ assignments: [], migrations: [] }) });
    const served = new Set((await metrics.registry.getMetricsAsJSON()).map((m) => m.name));
    const dashboard = JSON.parse(deploy('grafana/resource-broker.json')) as { panels: { targets: { expr: string }[] }[] };
    const used = new Set([
      ...dashboard.panels.flatMap((p) => p.targets.flatMap((t) => [...namesIn(t.expr)])),
      ...namesIn(deploy('prometheus/alerts.yaml')),
    ]);
    expect(used.size).toBeGreaterThan(10);
    expect([...used].filter((name) => !served.has(name))).toEqual([]);
  });

  it('select the broker job in every query: other operators serve the same families', () => {
    const dashboard = JSON.parse(deploy('grafana/resource-broker.json')) as { panels: { targets: { expr: string }[] }[] };
    const rules = [...deploy('prometheus/alerts.yaml').matchAll(/expr: (\|\n(?:\s{10}.*\n)+|.*)/g)].map(([, expr]) => expr!);
    const unscoped = (expr: string): string[] =>
      [...expr.matchAll(new RegExp(`${FAMILY.source}(\\{[^}]*\\})?`, 'g'))]
        .filter(([, selector]) => !selector?.includes('job='))
        .map(([m]) => m);
    expect(rules.length).toBe(8);
    expect(rules.flatMap(unscoped)).toEqual([]);
    expect(dashboard.panels.flatMap((p) => p.targets.flatMap((t) => unscoped(t.expr)))).toEqual([]);
  });
});
