import { afterEach, describe, expect, it } from 'vitest';
import { bindAddressOf, durationSeconds, explainSettings, parseFlags, runSettings, UsageError } from './flags.ts';

const run = (...argv: string[]): ReturnType<typeof runSettings> => runSettings(parseFlags('run', argv));
const usageErrorOf = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error('expected a UsageError');
};

describe('run flags, as controller-runtime operators take them', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  it('has safe defaults: loopback probes, leader election on, Go durations', () => {
    const s = run();
    expect(s.metricsAddress).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(s.probeAddress).toEqual({ host: '127.0.0.1', port: 8081 });
    expect(s.leaderElect).toBe(true);
    expect([s.leaseDurationSeconds, s.renewDeadlineSeconds, s.retryPeriodSeconds, s.gracefulShutdownSeconds]).toEqual([15, 10, 2, 30]);
  });

  it('takes :8080 for every interface and 0 for no listener', () => {
    expect(run('--metrics-bind-address=:8080').metricsAddress).toEqual({ host: undefined, port: 8080 });
    expect(run('--metrics-bind-address', '0').metricsAddress).toBeUndefined();
    expect(run('--health-probe-bind-address=0').probeAddress).toBeUndefined();
    expect(bindAddressOf('[::1]:9090', '--x')).toEqual({ host: '::1', port: 9090 });
    expect(usageErrorOf(() => run('--metrics-bind-address=8080'))).toBe(
      '--metrics-bind-address must be host:port (127.0.0.1:8080), :port (every interface) or 0 (none), not "8080"',
    );
    expect(usageErrorOf(() => run('--health-probe-bind-address=127.0.0.1:99999'))).toContain('--health-probe-bind-address');
  });

  it('takes bare booleans and --flag=false, on the command line and from the environment', () => {
    expect(run('--leader-elect').leaderElect).toBe(true);
    expect(run('--leader-elect=false').leaderElect).toBe(false);
    process.env['RB_LEADER_ELECT'] = '0';
    expect(run().leaderElect).toBe(false);
    expect(run('--leader-elect=true').leaderElect).toBe(true);
    process.env['RB_LEADER_ELECT'] = 'maybe';
    expect(usageErrorOf(() => run())).toBe('$RB_LEADER_ELECT must be true or false, not "maybe"');
    expect(usageErrorOf(() => run('--leader-elect=yes'))).toBe('--leader-elect must be true or false, not "yes"');
  });

  it('reads Go durations and bare seconds, and refuses anything else', () => {
    expect(durationSeconds('15s', '--x')).toBe(15);
    expect(durationSeconds('1m30s', '--x')).toBe(90);
    expect(durationSeconds('1h', '--x')).toBe(3600);
    expect(durationSeconds('1500ms', '--x')).toBe(1.5);
    expect(durationSeconds('4', '--x')).toBe(4);
    expect(run('--leader-elect-lease-duration=1m', '--leader-elect-renew-deadline=40s').leaseDurationSeconds).toBe(60);
    for (const bad of ['abc', '-1s', '0s', '0', '1d', '10 s', ''])
      expect(usageErrorOf(() => durationSeconds(bad, '--x'))).toContain('--x must be a positive duration');
    expect(usageErrorOf(() => run('--leader-elect-renew-deadline=15s'))).toContain(
      '--leader-elect-renew-deadline must be shorter than --leader-elect-lease-duration',
    );
    // Node timers cannot wait longer than 2^31 - 1 ms; the Lease holds whole seconds.
    expect(usageErrorOf(() => durationSeconds('600h', '--x'))).toBe('--x must be at most 2147483s (24 days), not "600h"');
    expect(usageErrorOf(() => run('--leader-elect-lease-duration=1500ms', '--leader-elect-renew-deadline=1s'))).toContain(
      '--leader-elect-lease-duration must be whole seconds',
    );
    // Without leader election the lease timings do not matter.
    expect(run('--leader-elect=false', '--leader-elect-renew-deadline=1m').leaderElect).toBe(false);
  });

  it('refuses unknown log levels and formats, and unknown flags, with the flag named', () => {
    expect(usageErrorOf(() => run('--log-level=verbose'))).toBe(
      '--log-level must be one of trace, debug, info, warn, error, fatal, silent, not "verbose"',
    );
    expect(usageErrorOf(() => run('--log-format', 'xml'))).toBe('--log-format must be json, pretty or auto, not "xml"');
    expect(usageErrorOf(() => run('--no-such-flag'))).toContain("'--no-such-flag'");
    expect(usageErrorOf(() => run('--staging-shard-selector=shard-1'))).toContain('--staging-shard-selector must be key=value');
  });

  it('takes the migration budget as whole positive numbers, 10 and 3 by default', () => {
    expect(run().migrationBudget).toEqual({ total: 10, perProvider: 3 });
    process.env['RB_MAX_CONCURRENT_MIGRATIONS_PER_PROVIDER'] = '1';
    expect(run('--max-concurrent-migrations=50').migrationBudget).toEqual({ total: 50, perProvider: 1 });
    for (const bad of ['0', '-1', '1.5', 'ten', ''])
      expect(usageErrorOf(() => run(`--max-concurrent-migrations=${bad}`))).toBe(
        `--max-concurrent-migrations must be a whole number from 1 to 999999, not "${bad}"`,
      );
  });

  it('rebalances only with --rebalance: tolerance 1 and interval 10m by default, both checked', () => {
    expect(run().rebalance).toBeUndefined();
    expect(run('--rebalance-tolerance=5').rebalance).toBeUndefined();
    expect(run('--rebalance').rebalance).toEqual({ tolerance: 1, intervalMs: 600_000 });
    process.env['RB_REBALANCE_INTERVAL'] = '90s';
    expect(run('--rebalance', '--rebalance-tolerance=3').rebalance).toEqual({ tolerance: 3, intervalMs: 90_000 });
    expect(usageErrorOf(() => run('--rebalance', '--rebalance-tolerance=0'))).toBe(
      '--rebalance-tolerance must be a whole number from 1 to 999999, not "0"',
    );
    expect(usageErrorOf(() => run('--rebalance', '--rebalance-interval=soon'))).toContain(
      '--rebalance-interval must be a positive duration',
    );
  });
});

describe('explain flags', () => {
  it('names each missing required flag before anything else is read', () => {
    expect(usageErrorOf(() => explainSettings(parseFlags('explain', ['--kubeconfig', '/nonexistent'])))).toBe('--workspace is required');
    expect(usageErrorOf(() => explainSettings(parseFlags('explain', ['--workspace', 'root:a', '--resource', 'x.y'])))).toBe(
      '--name is required',
    );
    expect(
      usageErrorOf(() =>
        explainSettings(parseFlags('explain', ['--workspace', 'root:a', '--resource', 'x.y', '--name', 'a', '--output', 'yaml'])),
      ),
    ).toBe('--output must be text or json, not "yaml"');
    const s = explainSettings(parseFlags('explain', ['--workspace', 'root:a', '--resource', 'x.y', '--name', 'a', '--namespace', 'ns']));
    expect([s.workspace, s.resource, s.namespace, s.name, s.output]).toEqual(['root:a', 'x.y', 'ns', 'a', 'text']);
  });
});
