// The flags of every command, parsed and validated the way controller-runtime operators do:
// `:8080` and `0` for bind addresses, bare booleans, Go durations. Every bad value is a one-line
// UsageError (exit 2) before any connection is made.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DEFAULT_PATHS, type BrokerPaths } from '../apis/paths.ts';
import type { ShardSelector } from '../kcp-client-ts/workspaces.ts';
import type { LogFormat } from '../logging.ts';

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
  'log-level': { type: 'string', env: 'RB_LOG_LEVEL', default: 'info', help: 'trace, debug, info, warn, error, fatal or silent' },
  'log-format': { type: 'string', env: 'RB_LOG_FORMAT', default: 'auto', help: 'json, pretty, or auto (pretty on a terminal)' },
  help: { type: 'boolean', env: '', help: 'show this help' },
};

/** The flags of cordon, uncordon and drain: which AcceptAPI, in which provider workspace. */
const ACCEPTAPI_TARGET: Record<string, Option> = {
  ...COMMON,
  workspace: { type: 'string', env: '', help: "the provider's workspace path (required), e.g. root:internalca" },
  acceptapi: { type: 'string', env: '', help: 'name of the AcceptAPI (required)' },
};

export const COMMANDS: Record<string, { summary: string; options: Record<string, Option> }> = {
  run: {
    summary: 'run the broker against kcp',
    options: {
      ...COMMON,
      'metrics-bind-address': {
        type: 'string',
        env: 'RB_METRICS_BIND_ADDRESS',
        default: '127.0.0.1:8080',
        help: 'host:port of /metrics (":8080" for every interface), or "0" to serve none',
      },
      'health-probe-bind-address': {
        type: 'string',
        env: 'RB_HEALTH_PROBE_BIND_ADDRESS',
        default: '127.0.0.1:8081',
        help: 'host:port of /healthz and /readyz (":8081" for every interface), or "0" to serve none',
      },
      'leader-elect': {
        type: 'boolean',
        env: 'RB_LEADER_ELECT',
        default: 'true',
        help: 'only the replica holding the Lease in the coordination workspace acts (--leader-elect=false: this one always acts)',
      },
      'leader-elect-lease-duration': {
        type: 'string',
        env: 'RB_LEADER_ELECT_LEASE_DURATION',
        default: '15s',
        help: 'how long a lease is valid without renewal (a duration: 15s, 1m; a bare number is seconds)',
      },
      'leader-elect-renew-deadline': {
        type: 'string',
        env: 'RB_LEADER_ELECT_RENEW_DEADLINE',
        default: '10s',
        help: 'how long the leader retries renewing before it gives up leading',
      },
      'leader-elect-retry-period': {
        type: 'string',
        env: 'RB_LEADER_ELECT_RETRY_PERIOD',
        default: '2s',
        help: 'time between lease attempts',
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
        default: '30s',
        help: 'how long in-flight reconciles get to finish after SIGTERM; then exit 1',
      },
      'max-concurrent-migrations': {
        type: 'string',
        env: 'RB_MAX_CONCURRENT_MIGRATIONS',
        default: '10',
        help: 'moves the platform starts (drain, capacity, requested moves) in flight at once, overall',
      },
      'max-concurrent-migrations-per-provider': {
        type: 'string',
        env: 'RB_MAX_CONCURRENT_MIGRATIONS_PER_PROVIDER',
        default: '3',
        help: 'such moves in flight out of any one provider',
      },
      rebalance: {
        type: 'boolean',
        env: 'RB_REBALANCE',
        help: 'move objects from the most loaded providers to less loaded ones (a new provider takes its share), at the migration budget',
      },
      'rebalance-tolerance': {
        type: 'string',
        env: 'RB_REBALANCE_TOLERANCE',
        default: '1',
        help: 'with --rebalance: how many more objects one provider may serve than another before objects move',
      },
      'rebalance-interval': {
        type: 'string',
        env: 'RB_REBALANCE_INTERVAL',
        default: '10m',
        help: 'with --rebalance: an object that moved less than this long ago is not moved to rebalance',
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
  cordon: {
    summary: 'an AcceptAPI takes no new objects (spec.cordoned); the ones it serves stay',
    options: ACCEPTAPI_TARGET,
  },
  uncordon: {
    summary: 'an AcceptAPI takes new objects again, and stops draining',
    options: ACCEPTAPI_TARGET,
  },
  drain: {
    summary: 'an AcceptAPI takes no new objects and its objects move to other providers, at the migration budget',
    options: ACCEPTAPI_TARGET,
  },
  migrate: {
    summary: 'move one consumer object to the AcceptAPI named by --to (refused, with the reason, if it does not accept it)',
    options: {
      ...COMMON,
      workspace: { type: 'string', env: '', help: 'the consumer workspace path (required)' },
      resource: { type: 'string', env: '', help: 'the brokered resource (required), e.g. certificate' },
      namespace: { type: 'string', env: '', help: 'namespace of a namespaced object (default "default")' },
      name: { type: 'string', env: '', help: 'name of the object (required)' },
      to: { type: 'string', env: '', help: 'the target AcceptAPI (required): <name> or <provider cluster>/<name>' },
    },
  },
  uninstall: {
    summary: 'take the broker out of kcp: remove its finalizers (stop every replica first); --purge also deletes what it made',
    options: {
      ...COMMON,
      purge: {
        type: 'boolean',
        env: '',
        help: 'also delete the staging and verification workspaces (providers deprovision what was placed), the coordination records, and the related copies in consumer workspaces',
      },
      'dry-run': { type: 'boolean', env: '', help: 'print what would be done, change nothing' },
    },
  },
  version: { summary: 'print the version', options: { help: COMMON['help']! } },
};

/** A bad flag or flag value: printed on one line, exit 2. */
export class UsageError extends Error {}

export const usage = (command?: string): string => {
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

type Values = Record<string, string | boolean | undefined>;

const TRUE = new Set(['true', '1', 't', 'TRUE', 'True']);
const FALSE = new Set(['false', '0', 'f', 'FALSE', 'False']);

/** A boolean as Go's flag package reads one (`--x`, `--x=false`, `RB_X=0`). */
const booleanOf = (value: string, flag: string): boolean => {
  if (TRUE.has(value)) return true;
  if (FALSE.has(value)) return false;
  throw new UsageError(`${flag} must be true or false, not "${value}"`);
};

/**
 * Parses a command's flags: `--flag value`, `--flag=value`, bare booleans and `--bool=false`;
 * unset flags from their environment variable, then their default.
 */
export const parseFlags = (command: string, argv: string[]): Values => {
  const spec = COMMANDS[command]!.options;
  // node:util parseArgs refuses `--bool=false`; Go's flag package (and so every operator) takes it.
  const explicitBooleans: Values = {};
  const args = argv.filter((arg) => {
    const match = /^--([^=]+)=(.*)$/.exec(arg);
    if (!match || spec[match[1]!]?.type !== 'boolean') return true;
    explicitBooleans[match[1]!] = booleanOf(match[2]!, `--${match[1]}`);
    return false;
  });
  const config: ParseArgsConfig = {
    args,
    strict: true,
    allowPositionals: false,
    options: Object.fromEntries(Object.entries(spec).map(([k, o]) => [k, { type: o.type }])),
  };
  let values: Values;
  try {
    values = { ...(parseArgs(config).values as Values), ...explicitBooleans };
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  for (const [name, o] of Object.entries(spec)) {
    if (values[name] !== undefined) continue;
    const fromEnv = o.env ? process.env[o.env] : undefined;
    const raw = fromEnv ?? o.default;
    if (raw === undefined) continue;
    values[name] = o.type === 'boolean' ? booleanOf(raw, fromEnv !== undefined ? `$${o.env}` : `--${name}`) : raw;
  }
  return values;
};

const MAX_DURATION_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

const UNIT_SECONDS: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };

/** Seconds of a Go duration (`15s`, `1m30s`, `500ms`) or a bare number of seconds; must be positive. */
export const durationSeconds = (value: string, flag: string): number => {
  const text = value.trim();
  let seconds = Number.NaN;
  if (/^\d+(\.\d+)?$/.test(text)) seconds = Number(text);
  else if (/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(text)) {
    seconds = 0;
    for (const [, n, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) seconds += Number(n) * UNIT_SECONDS[unit!]!;
  }
  if (!Number.isFinite(seconds) || seconds <= 0)
    throw new UsageError(`${flag} must be a positive duration such as 15s or 1m30s, not "${value}"`);
  // Node timers fire at once beyond 2^31 - 1 ms: a longer wait would become a tight loop.
  if (seconds > MAX_DURATION_SECONDS) throw new UsageError(`${flag} must be at most ${MAX_DURATION_SECONDS}s (24 days), not "${value}"`);
  return seconds;
};

/** Where a probe server listens; undefined for "0" (controller-runtime's "serve none") and "off". */
export type BindAddress = { host: string | undefined; port: number };

/** `host:port`, `:port` (every interface), `[::1]:port`, or `0`/`off` for none. */
export const bindAddressOf = (value: string, flag: string): BindAddress | undefined => {
  if (value === '0' || value === 'off') return undefined;
  const at = value.lastIndexOf(':');
  const rawHost = value.slice(0, Math.max(0, at));
  const port = Number(value.slice(at + 1));
  const host = rawHost.startsWith('[') && rawHost.endsWith(']') ? rawHost.slice(1, -1) : rawHost;
  if (at < 0 || value.slice(at + 1) === '' || !Number.isInteger(port) || port < 0 || port > 65535 || /[\s/]/.test(host))
    throw new UsageError(`${flag} must be host:port (127.0.0.1:8080), :port (every interface) or 0 (none), not "${value}"`);
  return { host: host === '' ? undefined : host, port };
};

/** `key=value[,key=value]` (the Shards' labels) as a workspace location selector; none when unset or empty. */
export const shardSelectorOf = (flag: string, value: unknown): ShardSelector | undefined => {
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

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
const LOG_FORMATS = ['json', 'pretty', 'auto'] as const satisfies readonly LogFormat[];

/** What every command shares once its flags are valid. */
export type CommonSettings = {
  kubeconfig: string | undefined;
  context: string | undefined;
  paths: BrokerPaths;
  logLevel: (typeof LOG_LEVELS)[number];
  logFormat: LogFormat;
};

export type RunSettings = CommonSettings & {
  metricsAddress: BindAddress | undefined;
  probeAddress: BindAddress | undefined;
  leaderElect: boolean;
  leaseDurationSeconds: number;
  renewDeadlineSeconds: number;
  retryPeriodSeconds: number;
  gracefulShutdownSeconds: number;
  migrationBudget: { total: number; perProvider: number };
  /** Off unless --rebalance. */
  rebalance: { tolerance: number; intervalMs: number } | undefined;
  computeKubeconfig: string | undefined;
  locations: { staging: ShardSelector | undefined; verification: ShardSelector | undefined };
};

export type ExplainSettings = CommonSettings & {
  workspace: string;
  resource: string;
  namespace: string | undefined;
  name: string;
  output: 'text' | 'json';
};

const stringOf = (values: Values, flag: string): string | undefined => {
  const value = values[flag];
  return typeof value === 'string' && value !== '' ? value : undefined;
};

export const commonSettings = (values: Values): CommonSettings => {
  const level = String(values['log-level']);
  if (!(LOG_LEVELS as readonly string[]).includes(level))
    throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, not "${level}"`);
  const format = String(values['log-format']);
  if (!(LOG_FORMATS as readonly string[]).includes(format))
    throw new UsageError(`--log-format must be json, pretty or auto, not "${format}"`);
  return {
    kubeconfig: stringOf(values, 'kubeconfig'),
    context: stringOf(values, 'context'),
    paths: {
      home: String(values['home']),
      acceptAPIExport: String(values['acceptapi-export']),
      coordination: String(values['coordination']),
      stagingRoot: String(values['staging-root']),
      verificationRoot: String(values['verification-root']),
      compute: String(values['compute']),
    },
    logLevel: level as CommonSettings['logLevel'],
    logFormat: format as LogFormat,
  };
};

const positiveInteger = (values: Values, flag: string): number => {
  const raw = String(values[flag]);
  if (!/^[1-9]\d{0,5}$/.test(raw)) throw new UsageError(`--${flag} must be a whole number from 1 to 999999, not "${raw}"`);
  return Number(raw);
};

export const runSettings = (values: Values): RunSettings => {
  const duration = (flag: string): number => durationSeconds(String(values[flag]), `--${flag}`);
  const settings: RunSettings = {
    ...commonSettings(values),
    metricsAddress: bindAddressOf(String(values['metrics-bind-address']), '--metrics-bind-address'),
    probeAddress: bindAddressOf(String(values['health-probe-bind-address']), '--health-probe-bind-address'),
    leaderElect: values['leader-elect'] === true,
    leaseDurationSeconds: duration('leader-elect-lease-duration'),
    renewDeadlineSeconds: duration('leader-elect-renew-deadline'),
    retryPeriodSeconds: duration('leader-elect-retry-period'),
    gracefulShutdownSeconds: duration('graceful-shutdown-timeout'),
    migrationBudget: {
      total: positiveInteger(values, 'max-concurrent-migrations'),
      perProvider: positiveInteger(values, 'max-concurrent-migrations-per-provider'),
    },
    rebalance:
      values['rebalance'] === true
        ? { tolerance: positiveInteger(values, 'rebalance-tolerance'), intervalMs: duration('rebalance-interval') * 1000 }
        : undefined,
    computeKubeconfig: stringOf(values, 'compute-kubeconfig'),
    locations: {
      staging: shardSelectorOf('--staging-shard-selector', values['staging-shard-selector']),
      verification: shardSelectorOf('--verification-shard-selector', values['verification-shard-selector']),
    },
  };
  // The Lease stores whole seconds (an int32).
  if (settings.leaderElect && !Number.isInteger(settings.leaseDurationSeconds))
    throw new UsageError(
      `--leader-elect-lease-duration must be whole seconds (the Lease stores seconds), not "${String(values['leader-elect-lease-duration'])}"`,
    );
  if (settings.leaderElect && settings.renewDeadlineSeconds >= settings.leaseDurationSeconds) {
    throw new UsageError(
      '--leader-elect-renew-deadline must be shorter than --leader-elect-lease-duration (a leader stops writing at its renew deadline, before others may take the lease)',
    );
  }
  return settings;
};

/** A flag's value, or a UsageError naming it. */
export const requiredFlag = (values: Values, flag: string): string => {
  const value = stringOf(values, flag);
  if (value === undefined || value === '') throw new UsageError(`--${flag} is required`);
  return value;
};

export const explainSettings = (values: Values): ExplainSettings => {
  const common = commonSettings(values);
  const required = (flag: string): string => requiredFlag(values, flag);
  const output = String(values['output']);
  if (output !== 'text' && output !== 'json') throw new UsageError(`--output must be text or json, not "${output}"`);
  return {
    ...common,
    workspace: required('workspace'),
    resource: required('resource'),
    name: required('name'),
    namespace: stringOf(values, 'namespace'),
    output,
  };
};
