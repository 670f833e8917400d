// Over 350 lines on purpose: the flag table of every command, and the run command's start and
// shutdown order (lease, fence, probes, broker, graceful stop) in one place.
import { readFileSync } from 'node:fs';
import { Broker } from '../broker/broker.ts';
import { preflight } from '../broker/preflight.ts';
import { KcpEndpoint } from '../kcp-client-ts/endpoint.ts';
import { installFetchGlobals } from '../kcp-client-ts/undici-parts.ts';
import { serverAccess } from '../kcp-client-ts/workspace-access.ts';
import { createLogger, type Logger } from '../logging.ts';
import type { Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { LeaseLock } from '../leader/lease-lock.ts';
import { BrokerMetrics } from '../observability/metrics.ts';
import { startProbeServer } from '../observability/server.ts';
import { COMMANDS, commonSettings, explainSettings, parseFlags, requiredFlag, runSettings, usage, UsageError } from './flags.ts';

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

/** Network failures (no answer at all, as opposed to an HTTP error) by their Node/undici code. */
const UNREACHABLE =
  /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE|UND_ERR_(?!ABORTED)\w+|ERR_TLS_\w+|\w*CERT\w*|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN)$/;

/** One line for a failed command: a network failure names the server and what to check, not "fetch failed". */
const failureOf = (err: unknown, endpoint: KcpEndpoint): string => {
  const causes: unknown[] = [err];
  for (let e = err; e instanceof Error && e.cause !== undefined && causes.length < 5; e = e.cause) causes.push(e.cause);
  const network = causes.find(
    (c): c is Error & { code: string } => c instanceof Error && UNREACHABLE.test(String((c as { code?: unknown }).code)),
  );
  if (network) return `cannot reach kcp at ${endpoint.serverOrigin} (${network.message}): is it running, and is --kubeconfig right?`;
  const cause = err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : '';
  return `${err instanceof Error ? err.message : String(err)}${cause}`;
};

/** Flags a command cannot run without (explain's are checked by explainSettings). */
const REQUIRED_FLAGS: Record<string, string[]> = {
  cordon: ['workspace', 'acceptapi'],
  uncordon: ['workspace', 'acceptapi'],
  drain: ['workspace', 'acceptapi'],
  migrate: ['workspace', 'resource', 'name', 'to'],
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
  // One undici in the process, before the first request (see installFetchGlobals).
  installFetchGlobals();
  // Every flag is checked before anything connects: a bad value is one line and exit 2.
  let settings: ReturnType<typeof commonSettings>;
  let run: ReturnType<typeof runSettings> | undefined;
  let explained: ReturnType<typeof explainSettings> | undefined;
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseFlags(command, rest);
    if (values['help']) {
      console.log(usage(command));
      return 0;
    }
    if (command === 'version') {
      console.log(version());
      return 0;
    }
    if (command === 'run') settings = run = runSettings(values);
    else if (command === 'explain') settings = explained = explainSettings(values);
    else settings = commonSettings(values);
    // Checked before anything connects, as every other flag.
    for (const flag of REQUIRED_FLAGS[command] ?? []) requiredFlag(values, flag);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`resource-broker ${command}: ${err.message}. See \`resource-broker ${command} --help\`.`);
      return 2;
    }
    throw err;
  }
  const logger = createLogger({ level: settings.logLevel, format: settings.logFormat });
  const metrics = new BrokerMetrics();
  let endpoint: KcpEndpoint;
  try {
    endpoint = await KcpEndpoint.fromKubeconfig({
      path: settings.kubeconfig,
      context: settings.context,
      // `run` lives long: it does not keep the kubeconfig library loaded (kcp-client-ts/kubeconfig.ts).
      isolated: command === 'run',
      onRequest: (verb, url) => metrics.onRequest(verb, url),
      onResponse: (verb, url, code) => metrics.onResponse(verb, url, code),
    });
  } catch (err) {
    console.error(`resource-broker ${command}: cannot load kubeconfig: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  const { paths } = settings;
  const servers: Server[] = [];
  try {
    // The one-shot commands load their modules when run: `run` never holds their code (nor the
    // YAML parser bootstrap needs) in memory.
    if (explained) {
      const { explain, formatExplanation } = await import('./explain.ts');
      const explanation = await explain({
        endpoint,
        paths,
        workspace: explained.workspace,
        resource: explained.resource,
        ...(explained.namespace ? { namespace: explained.namespace } : {}),
        name: explained.name,
      });
      console.log(explained.output === 'json' ? JSON.stringify(explanation, null, 2) : formatExplanation(explanation));
      return 0;
    }
    if (command === 'cordon' || command === 'uncordon' || command === 'drain') {
      const { changeAcceptAPI } = await import('./operations.ts');
      console.log(await changeAcceptAPI(endpoint, command, requiredFlag(values, 'workspace'), requiredFlag(values, 'acceptapi')));
      return 0;
    }
    if (command === 'migrate') {
      const target = {
        workspace: requiredFlag(values, 'workspace'),
        resource: requiredFlag(values, 'resource'),
        namespace: typeof values['namespace'] === 'string' ? values['namespace'] : undefined,
        name: requiredFlag(values, 'name'),
        to: requiredFlag(values, 'to'),
      };
      const { requestMove } = await import('./operations.ts');
      console.log(await requestMove(endpoint, paths, target));
      return 0;
    }
    if (command === 'uninstall') {
      const dryRun = values['dry-run'] === true;
      const purge = values['purge'] === true;
      const { uninstall } = await import('../broker/uninstall.ts');
      const done = await uninstall({ endpoint, paths, purge, dryRun, logger, report: (line) => console.log(line) });
      console.log(
        `${dryRun ? 'dry run: would remove' : 'removed'} ${done.finalizersRemoved} finalizers` +
          (purge
            ? `, delete ${done.relatedCopiesDeleted} related copies, ${done.recordsDeleted} records and ${done.workspacesDeleted.length} workspaces`
            : ''),
      );
      if (done.left.length === 0) return 0;
      console.error(`left (run again, or remove by hand):\n${done.left.map((l) => `  ${l}`).join('\n')}`);
      return 1;
    }
    if (!run) {
      const { bootstrap } = await import('../broker/bootstrap.ts');
      await bootstrap({ endpoint, paths, logger, examples: values['examples'] === true });
      logger.info({ home: paths.home }, 'bootstrap complete');
      return 0;
    }
    await preflight(endpoint, paths);
    const lock = run.leaderElect
      ? new LeaseLock({
          endpoint,
          workspace: paths.coordination,
          identity: `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
          leaseDurationSeconds: run.leaseDurationSeconds,
          renewDeadlineSeconds: run.renewDeadlineSeconds,
          retryPeriodSeconds: run.retryPeriodSeconds,
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
    const { computeKubeconfig } = run;
    const compute = computeKubeconfig
      ? serverAccess(
          (
            await KcpEndpoint.fromKubeconfig({
              path: computeKubeconfig,
              isolated: true,
              onRequest: (verb, url) => metrics.onRequest(verb, url),
              onResponse: (verb, url, code) => metrics.onResponse(verb, url, code),
            })
          ).fenced({
            ...(lock ? { writeFence: lock.fence, writeDeadline: lock.writeDeadline } : {}),
          }),
        )
      : undefined;
    const broker = new Broker({
      endpoint: brokerEndpoint,
      paths,
      ...(compute ? { compute } : {}),
      locations: run.locations,
      migrationBudget: run.migrationBudget,
      ...(run.rebalance ? { rebalance: run.rebalance } : {}),
      logger,
      onQueueEvent: (controller, event) => metrics.onQueueEvent(controller, event),
    });
    metrics.observe({
      queues: () => broker.queues,
      informers: () => broker.informers,
      coordination: () => broker.coordination(),
      pending: () => broker.pendingObjects(),
    });
    // A standby is Ready while it reaches the Lease: a rolling update can then replace the leader
    // (leadership is the leader_election_master_status metric). The leader is Ready once it serves.
    const ready = (): boolean => (lock && !lock.leading ? lock.inContact : broker.ready);
    for (const [address, serves, server] of [
      [run.metricsAddress, '/metrics', { registry: metrics.registry }],
      [run.probeAddress, '/healthz /readyz', { ready }],
    ] as const) {
      if (!address) continue;
      servers.push(await startProbeServer({ address, ...server }));
      logger.info({ address: `${address.host ?? ''}:${address.port}`, serves }, 'listening');
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
        const boundMs = (run.gracefulShutdownSeconds + (lock ? run.renewDeadlineSeconds : 0)) * 1000 + 5_000;
        setTimeout(() => {
          logger.error({ boundMs, phase: shutdownPhase }, 'shutdown did not finish in time, exiting');
          process.exit(1);
        }, boundMs).unref();
      },
      { once: true },
    );
    // `on`, not `once`: a second signal (a process group and its parent both passing one on)
    // must not kill the broker before it has released its lease.
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    process.on('SIGINT', () => onSignal('SIGINT'));
    if (lock) {
      metrics.setLeader(lock.name, false);
      try {
        await lock.acquire(shutdown.signal);
      } catch {
        logger.info('stopped before becoming leader');
        return 0;
      }
      metrics.setLeader(lock.name, true);
    }
    // Renewal runs from the moment the lease is held, also while the broker starts (a slow start
    // must not let the lease lapse while this replica acts).
    const renewal = lock?.keepRenewing(shutdown.signal).catch((err: unknown) => {
      // Another replica may act now: the fence already refuses writes; stop.
      logger.error({ err }, 'lost the leader lease, stopping');
      metrics.setLeader(lock!.name, false);
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
    const gracePeriodMs = run.gracefulShutdownSeconds * 1000;
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
    console.error(`resource-broker ${command}: ${failureOf(err, endpoint)}`);
    return 1;
  } finally {
    for (const server of servers) server.close();
    // Not for `run`: closing undici's HTTP/2 client while a best-effort request (an Event) is
    // still in flight emits an error on that stream nobody can listen to, which crashed a broker
    // after "stopped" (exit 1). The process ends anyway: the timer below, or no handle left.
    if (command !== 'run') await endpoint.close();
  }
};
