// Over 350 lines on purpose: the flag table of every command, and the run command's start and
// shutdown order (lease, fence, probes, broker, graceful stop) in one place.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { readFileSync } from 'node:fs';
import { Broker } from '../broker/broker.ts';
import { preflight } from '../broker/preflight.ts';
import { explain, formatExplanation } from './explain.ts';
import { bootstrap } from '../broker/bootstrap.ts';
import { DEFAULT_PATHS, type BrokerPaths } from '../apis/paths.ts';
import { KcpEndpoint } from '../kcp-client-ts/endpoint.ts';
import { serverAccess } from '../kcp-client-ts/workspace-access.ts';
import type { ShardSelector } from '../kcp-client-ts/workspaces.ts';
import { createLogger, type LogFormat, type Logger } from '../logging.ts';
import type { Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { LeaseLock } from '../leader/lease-lock.ts';
import { BrokerMetrics } from '../observability/metrics.ts';
import { parseAddress, startProbeServer } from '../observability/server.ts';

type Option = { type: 'string' | 'boolean'; env: string; default?: string; help: string };

/** Every flag also reads an environment variable; flags win. */
const COMMON: Record<string, Option> = {
  kubeconfig: { type: 'string', env: 'RB_KUBECONFIG', help: 'kubeconfig of the kcp server (default: $KUBECONFIG or ~/.kube/config)' },
  context: { type: 'string', env: 'RB_CONTEXT', help: 'kubeconfig context (default: current)' },
  home: {
    type: 'string',
    env: 'RB_HOME_WORKSPACE',
    default: DEFAULT_PATHS.home,
    help: 'home workspace: the acceptapis and brokered APIExports',
  },
  'acceptapi-export': {
    type: 'string',
    env: 'RB_ACCEPTAPI_EXPORT',
    default: DEFAULT_PATHS.acceptAPIExport,
    help: 'name of the AcceptAPI APIExport (and its endpoint slice)',
  },
  coordination: {
    type: 'string',
    env: 'RB_COORDINATION_WORKSPACE',
    default: DEFAULT_PATHS.coordination,
    help: 'coordination workspace: Assignments, StagingWorkspaces, Lease',
  },
  'staging-root': { type: 'string', env: 'RB_STAGING_ROOT', default: DEFAULT_PATHS.stagingRoot, help: 'parent of the staging workspaces' },
  'verification-root': {
    type: 'string',
    env: 'RB_VERIFICATION_ROOT',
    default: DEFAULT_PATHS.verificationRoot,
    help: 'parent of the verification workspaces',
  },
  compute: { type: 'string', env: 'RB_COMPUTE_WORKSPACE', default: DEFAULT_PATHS.compute, help: 'workspace where migration stages deploy' },
  'log-level': { type: 'string', env: 'RB_LOG_LEVEL', default: 'info', help: 'trace, debug, info, warn, error' },
  'log-format': { type: 'string', env: 'RB_LOG_FORMAT', default: 'auto', help: 'json, pretty, or auto (pretty on a terminal)' },
  help: { type: 'boolean', env: '', help: 'show this help' },
};

const COMMANDS: Record<string, { summary: string; options: Record<string, Option> }> = {
  run: {
    summary: 'run the broker against kcp',
    options: {
      ...COMMON,
      'metrics-bind-address': {
        type: 'string',
        env: 'RB_METRICS_BIND_ADDRESS',
        default: '127.0.0.1:8080',
        help: 'host:port of /metrics, or "off"',
      },
      'health-probe-bind-address': {
        type: 'string',
        env: 'RB_HEALTH_PROBE_BIND_ADDRESS',
        default: '127.0.0.1:8081',
        help: 'host:port of /healthz and /readyz, or "off"',
      },
      'leader-elect': {
        type: 'string',
        env: 'RB_LEADER_ELECT',
        default: 'true',
        help: 'true: only the replica holding the Lease in the coordination workspace acts',
      },
      'leader-elect-lease-duration': {
        type: 'string',
        env: 'RB_LEADER_ELECT_LEASE_DURATION',
        default: '15',
        help: 'seconds a lease is valid without renewal',
      },
      'leader-elect-renew-deadline': {
        type: 'string',
        env: 'RB_LEADER_ELECT_RENEW_DEADLINE',
        default: '10',
        help: 'seconds the leader retries renewing before it gives up leading',
      },
      'leader-elect-retry-period': {
        type: 'string',
        env: 'RB_LEADER_ELECT_RETRY_PERIOD',
        default: '2',
        help: 'seconds between lease attempts',
      },
      'compute-kubeconfig': {
        type: 'string',
        env: 'RB_COMPUTE_KUBECONFIG',
        help: 'kubeconfig of the cluster migration stages deploy to (any Kubernetes API, so a stage can run a batch/v1 Job); default: the --compute workspace of kcp',
      },
      'staging-shard-selector': {
        type: 'string',
        env: 'RB_STAGING_SHARD_SELECTOR',
        help: 'shard labels (name=shard-1[,key=value]) that staging workspaces are scheduled to on a sharded kcp; default: any shard',
      },
      'verification-shard-selector': {
        type: 'string',
        env: 'RB_VERIFICATION_SHARD_SELECTOR',
        help: 'shard labels (name=shard-1[,key=value]) that verification workspaces are scheduled to; default: any shard',
      },
      'graceful-shutdown-timeout': {
        type: 'string',
        env: 'RB_GRACEFUL_SHUTDOWN_TIMEOUT',
        default: '30',
        help: 'seconds in-flight reconciles get to finish after SIGTERM; then exit 1',
      },
    },
  },
  bootstrap: {
    summary: 'create the broker workspaces and apply its APIs (idempotent)',
    options: {
      ...COMMON,
      examples: { type: 'boolean', env: 'RB_BOOTSTRAP_EXAMPLES', help: 'also publish the example APIs (certificates, vms, dnszones)' },
    },
  },
  explain: {
    summary: 'explain one consumer object: AcceptAPIs considered and why, its Assignment and Migration',
    options: {
      ...COMMON,
      workspace: { type: 'string', env: '', help: 'the consumer workspace path (required), e.g. root:team-a' },
      resource: {
        type: 'string',
        env: '',
        help: 'the brokered resource as plural.group (required), e.g. certificates.example.platform-mesh.io',
      },
      namespace: { type: 'string', env: '', help: 'namespace of a namespaced object' },
      name: { type: 'string', env: '', help: 'name of the object (required)' },
      output: { type: 'string', env: '', default: 'text', help: 'text or json' },
    },
  },
  version: { summary: 'print the version', options: { help: COMMON['help']! } },
};

const usage = (command?: string): string => {
  if (!command) {
    return [
      'Usage: resource-broker <command> [flags]',
      '',
      'Commands:',
      ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`),
      '',
      'Run `resource-broker <command> --help` for its flags.',
    ].join('\n');
  }
  const { summary, options } = COMMANDS[command]!;
  return [
    `Usage: resource-broker ${command} [flags]`,
    '',
    summary,
    '',
    'Flags:',
    ...Object.entries(options).map(
      ([name, o]) => `  --${name.padEnd(20)} ${o.help}${o.default ? ` (default ${o.default})` : ''}${o.env ? ` [$${o.env}]` : ''}`,
    ),
  ].join('\n');
};

class UsageError extends Error {}

/** `key=value[,key=value]` (the Shards' labels) as a workspace location selector; none when unset or empty. */
const shardSelectorOf = (flag: string, value: unknown): ShardSelector | undefined => {
  const text = typeof value === 'string' ? value.trim() : '';
  if (text === '') return undefined;
  const matchLabels: Record<string, string> = {};
  for (const pair of text.split(',')) {
    const [key, labelValue, ...rest] = pair.split('=').map((p) => p.trim());
    if (!key || labelValue === undefined || rest.length > 0 || !/^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$/.test(key))
      throw new UsageError(`${flag} must be key=value[,key=value], e.g. name=shard-1, not "${text}"`);
    matchLabels[key] = labelValue;
  }
  return { matchLabels };
};

const parse = (command: string, argv: string[]): Record<string, string | boolean | undefined> => {
  const spec = COMMANDS[command]!.options;
  const config: ParseArgsConfig = {
    args: argv,
    strict: true,
    allowPositionals: false,
    options: Object.fromEntries(Object.entries(spec).map(([k, o]) => [k, { type: o.type }])),
  };
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs(config).values as Record<string, string | boolean | undefined>;
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  for (const [name, o] of Object.entries(spec)) {
    if (values[name] !== undefined) continue;
    const fromEnv = o.env ? process.env[o.env] : undefined;
    if (fromEnv !== undefined) values[name] = o.type === 'boolean' ? fromEnv === 'true' || fromEnv === '1' : fromEnv;
    else if (o.default !== undefined) values[name] = o.default;
  }
  const format = values['log-format'];
  if (format !== undefined && !['json', 'pretty', 'auto'].includes(String(format)))
    throw new UsageError(`--log-format must be json, pretty or auto, not "${format}"`);
  return values;
};

const parseBoolean = (value: unknown, flag: string): boolean => {
  if (value === 'true' || value === true) return true;
  if (value === 'false' || value === false) return false;
  throw new UsageError(`${flag} must be true or false, not "${String(value)}"`);
};

const parsePositive = (value: unknown, flag: string): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number of seconds, not "${String(value)}"`);
  return n;
};

const pathsFrom = (values: Record<string, string | boolean | undefined>): BrokerPaths => ({
  home: String(values['home']),
  acceptAPIExport: String(values['acceptapi-export']),
  coordination: String(values['coordination']),
  stagingRoot: String(values['staging-root']),
  verificationRoot: String(values['verification-root']),
  compute: String(values['compute']),
});

/**
 * Test mode (RB_TEST_EXIT_AFTER_WRITES=N): the process exits, as if killed, right after the
 * server accepted its Nth write. The crash-at-every-write e2e test restarts it after each N.
 */
const crashAfterWrites = (logger: Logger): { onWrite: (method: string, url: string) => void } | undefined => {
  const limit = Number(process.env['RB_TEST_EXIT_AFTER_WRITES'] ?? '');
  if (!Number.isInteger(limit) || limit <= 0) return undefined;
  let writes = 0;
  return {
    onWrite: (method, url) => {
      writes++;
      if (writes < limit) return;
      logger.warn({ writes, method, url }, 'test mode: exiting after this write');
      process.exit(86);
    },
  };
};

const version = (): string =>
  (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export const main = async (argv: string[]): Promise<number> => {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    console.log(usage());
    return command ? 0 : 2;
  }
  if (!COMMANDS[command]) {
    console.error(`resource-broker: unknown command "${command}"\n\n${usage()}`);
    return 2;
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parse(command, rest);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`resource-broker ${command}: ${err.message}. See \`resource-broker ${command} --help\`.`);
      return 2;
    }
    throw err;
  }
  if (values['help']) {
    console.log(usage(command));
    return 0;
  }
  if (command === 'version') {
    console.log(version());
    return 0;
  }
  const logger = createLogger({ level: String(values['log-level']), format: String(values['log-format']) as LogFormat });
  const metrics = new BrokerMetrics();
  for (const flag of ['metrics-bind-address', 'health-probe-bind-address']) {
    const value = values[flag];
    if (typeof value === 'string' && value !== 'off') {
      try {
        parseAddress(value, `--${flag}`);
      } catch (err) {
        console.error(`resource-broker ${command}: ${(err as Error).message}. See \`resource-broker ${command} --help\`.`);
        return 2;
      }
    }
  }
  let endpoint: KcpEndpoint;
  try {
    endpoint = await KcpEndpoint.fromKubeconfig({
      path: values['kubeconfig'] as string | undefined,
      context: values['context'] as string | undefined,
      onRequest: (verb, url) => metrics.onRequest(verb, url),
    });
  } catch (err) {
    console.error(`resource-broker ${command}: cannot load kubeconfig: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  const paths = pathsFrom(values);
  const servers: Server[] = [];
  try {
    if (command === 'explain') {
      for (const flag of ['workspace', 'resource', 'name']) if (!values[flag]) throw new UsageError(`--${flag} is required`);
      if (values['output'] !== 'text' && values['output'] !== 'json')
        throw new UsageError(`--output must be text or json, not "${String(values['output'])}"`);
      const explanation = await explain({
        endpoint,
        paths,
        workspace: String(values['workspace']),
        resource: String(values['resource']),
        ...(values['namespace'] ? { namespace: String(values['namespace']) } : {}),
        name: String(values['name']),
      });
      console.log(values['output'] === 'json' ? JSON.stringify(explanation, null, 2) : formatExplanation(explanation));
      return 0;
    }
    if (command === 'bootstrap') {
      await bootstrap({ endpoint, paths, logger, examples: values['examples'] === true });
      logger.info({ home: paths.home }, 'bootstrap complete');
      return 0;
    }
    const leaderElect = parseBoolean(values['leader-elect'], '--leader-elect');
    const locations = {
      staging: shardSelectorOf('--staging-shard-selector', values['staging-shard-selector']),
      verification: shardSelectorOf('--verification-shard-selector', values['verification-shard-selector']),
    };
    await preflight(endpoint, paths);
    const seconds = (flag: string): number => parsePositive(values[flag], `--${flag}`);
    if (leaderElect && seconds('leader-elect-renew-deadline') >= seconds('leader-elect-lease-duration')) {
      throw new UsageError(
        '--leader-elect-renew-deadline must be shorter than --leader-elect-lease-duration (a leader stops writing at its renew deadline, before others may take the lease)',
      );
    }
    const lock = leaderElect
      ? new LeaseLock({
          endpoint,
          workspace: paths.coordination,
          identity: `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
          leaseDurationSeconds: seconds('leader-elect-lease-duration'),
          renewDeadlineSeconds: seconds('leader-elect-renew-deadline'),
          retryPeriodSeconds: seconds('leader-elect-retry-period'),
          logger,
        })
      : undefined;
    // Every write the broker sends passes the lease's fence: none before this replica leads, none
    // once it has lost (or may have lost) the lease. The lease lock itself uses the unfenced endpoint.
    const brokerEndpoint = endpoint.fenced({
      ...(lock ? { writeFence: lock.fence, writeDeadline: lock.writeDeadline } : {}),
      ...(crashAfterWrites(logger) ?? {}),
    });
    // Stage objects go to another cluster when one is named; its writes pass the same fence.
    const computeKubeconfig = values['compute-kubeconfig'] as string | undefined;
    const compute = computeKubeconfig
      ? serverAccess(
          (await KcpEndpoint.fromKubeconfig({ path: computeKubeconfig, onRequest: (verb, url) => metrics.onRequest(verb, url) })).fenced({
            ...(lock ? { writeFence: lock.fence, writeDeadline: lock.writeDeadline } : {}),
          }),
        )
      : undefined;
    const broker = new Broker({
      endpoint: brokerEndpoint,
      paths,
      ...(compute ? { compute } : {}),
      locations,
      logger,
      onReconciled: (queue, outcome) => metrics.onReconciled(queue, outcome),
    });
    metrics.observe({ queues: () => broker.queues, informers: () => broker.informers, coordination: () => broker.coordination() });
    const ready = (): boolean => (lock ? lock.leading : true) && broker.ready;
    for (const [flag, server] of [
      ['metrics-bind-address', { registry: metrics.registry }],
      ['health-probe-bind-address', { ready }],
    ] as const) {
      const address = String(values[flag]);
      if (address === 'off') continue;
      servers.push(await startProbeServer({ address, flag: `--${flag}`, ...server }));
      logger.info({ address, serves: flag === 'metrics-bind-address' ? '/metrics' : '/healthz /readyz' }, 'listening');
    }
    const shutdown = new AbortController();
    // What a stopping broker waits for, for the log line when it takes too long.
    let shutdownPhase: 'starting' | 'running' | 'stopping controllers' | 'waiting for lease renewal' | 'releasing lease' = 'starting';
    let exitCode = 0;
    const onSignal = (signal: string): void => {
      if (shutdown.signal.aborted) return;
      logger.info({ signal }, 'shutting down');
      shutdown.abort(new Error(signal));
    };
    // Whatever hangs (a request kcp never answers, a stream that ignores its abort), a stopping
    // broker exits within its grace period plus the lease release: the kubelet would kill it
    // anyway, and a hung replica keeps its watches and its lease.
    shutdown.signal.addEventListener(
      'abort',
      () => {
        const boundMs = seconds('graceful-shutdown-timeout') * 1000 + (lock ? seconds('leader-elect-renew-deadline') * 1000 : 0) + 5_000;
        setTimeout(() => {
          logger.error({ boundMs, phase: shutdownPhase }, 'shutdown did not finish in time, exiting');
          process.exit(1);
        }, boundMs).unref();
      },
      { once: true },
    );
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
    if (lock) {
      try {
        await lock.acquire(shutdown.signal);
      } catch {
        logger.info('stopped before becoming leader');
        return 0;
      }
      metrics.isLeader.set(1);
    }
    // Renewal runs from the moment the lease is held, also while the broker starts (a slow start
    // must not let the lease lapse while this replica acts).
    const renewal = lock?.keepRenewing(shutdown.signal).catch((err: unknown) => {
      // Another replica may act now: the fence already refuses writes; stop.
      logger.error({ err }, 'lost the leader lease, stopping');
      metrics.isLeader.set(0);
      exitCode = 1;
      shutdown.abort(err);
    });
    const stopping = new Promise<void>((resolve) => {
      if (shutdown.signal.aborted) resolve();
      else shutdown.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    // A signal or a lost lease during start stops the start too (broker.stop ends its caches).
    await Promise.race([broker.start(), stopping]);
    if (!shutdown.signal.aborted) shutdownPhase = 'running';
    await stopping;
    shutdownPhase = 'stopping controllers';
    const gracePeriodMs = seconds('graceful-shutdown-timeout') * 1000;
    const stopped = await Promise.race([broker.stop().then(() => true), sleep(gracePeriodMs, false, { ref: false })]);
    if (!stopped) {
      // The reconciles' signals are aborted; whatever still runs is stuck on kcp. Say what, and go.
      logger.error(
        { gracePeriodMs, inFlight: broker.queues.flatMap((q) => q.inFlightKeys().map((key) => `${q.name} ${key}`)) },
        'graceful shutdown timed out',
      );
      exitCode = 1;
    }
    shutdownPhase = 'waiting for lease renewal';
    await renewal;
    shutdownPhase = 'releasing lease';
    // Writes still stuck in flight must not meet the next leader's: then the lease runs out instead.
    if (lock && stopped) await lock.release();
    logger.info('stopped');
    return exitCode;
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`resource-broker ${command}: ${err.message}. See \`resource-broker ${command} --help\`.`);
      return 2;
    }
    const cause = err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : '';
    console.error(`resource-broker ${command}: ${err instanceof Error ? err.message : String(err)}${cause}`);
    return 1;
  } finally {
    for (const server of servers) server.close();
    // Not for `run`: closing undici's HTTP/2 client while a best-effort request (an Event) is
    // still in flight emits an error on that stream nobody can listen to, which crashed a broker
    // after "stopped" (exit 1). The process ends anyway: the timer below, or no handle left.
    if (command !== 'run') await endpoint.close();
  }
};

process.exitCode = await main(process.argv.slice(2));
// Everything is closed by now; a handle left open (a socket kcp keeps half-open) must not keep a
// stopped broker alive.
setTimeout(() => process.exit(), 2_000).unref();
