/**
 * `make bench`: the broker at scale against a real kcp. Starts kcp, a platform with 2
 * providers and 10 consumers, the broker as a child process, then measures
 *   - create -> staging copy latency, per object (seen through the providers' virtual workspaces)
 *   - provider status change -> consumer status latency (seen through the brokered virtual workspace)
 *   - throughput, broker RSS, and kcp writes per minute while nothing changes
 *   - a migration of half the objects: destination Available -> consumer served by it (cutover),
 *     and the longest time any consumer saw its object not Available (the gap; target 0)
 * and, in the same run, the floor: a minimal relay that copies status on each watch event, and
 * kcp's raw create rate (a bare client). Also: kcp requests per object by verb, open watches and
 * requests per minute at rest, and with --heap-snapshot=<file> a heap snapshot at rest summarized
 * by kind; then drains of the provider serving everything at each of --drain-budgets (per-provider
 * migration budgets, default 5,20): drain time, peak migrations in flight, consumer-visible gap.
 * Flags: --objects, --consumers, --shards (a sharded kcp, consumers spread over it),
 * --concurrency, --idle-seconds, --from-source (the TypeScript source instead of the compiled build).
 * Prints a human summary, then one JSON object as the last line.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Informer } from '../../src/runtime/informer.ts';
import { KcpEndpoint } from '../../src/kcp-client-ts/endpoint.ts';
import { VirtualWorkspace } from '../../src/kcp-client-ts/virtual-workspace.ts';
import { createKcpClient, unwrap } from '../../src/kcp-client-ts/typed-client.ts';
import { clusterOf, type KubeObject } from '../../src/kcp-client-ts/types.ts';
import { BrokerWorld, GVR } from '../../test/harness/broker-world.ts';
import { MIGRATION_GVR } from '../../src/apis/types.ts';
import { TestProvider } from '../../examples/test-provider/provider.ts';
import { eventually } from '../../test/harness/eventually.ts';
import { localKcp, ShardedKcp } from '../kcp/sharded-kcp.ts';
import { BROKER_NODE_FLAGS, BROKER_THREAD_ENV, brokerMallocEnv } from '../../src/cli/node-flags.ts';
import { allocatorOf, anonymousMemoryOf, fileMemoryOf } from './memory-maps.ts';
import { formatHeapSummary, type HeapSnapshot, summarizeHeapSnapshot } from './heap-summary.ts';
import { shardSelector } from '../../test/harness/sharded-env.ts';
import type { ReadyWorkspace, ShardSelector } from '../../src/kcp-client-ts/workspaces.ts';

const { values } = parseArgs({
  allowNegative: true,
  options: {
    objects: { type: 'string', default: process.env['BENCH_OBJECTS'] ?? '1000' },
    consumers: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '16' },
    'idle-seconds': { type: 'string', default: '30' },
    shards: { type: 'string', default: '1' },
    'heap-snapshot': { type: 'string' },
    /** `--no-malloc-env`: glibc's malloc defaults instead of the shipped settings. */
    'malloc-env': { type: 'boolean', default: true },
    'broker-env': { type: 'string', default: '' },
    'from-source': { type: 'boolean', default: false },
    'drain-budgets': { type: 'string', default: '5,20' },
    /** `--no-migration` skips the migration (and so the drains): a scale run's set-up is long enough. */
    migration: { type: 'boolean', default: true },
    /** V8/Node flags for the broker process, to choose heap settings by measurement (default: what the image runs with). */
    'broker-node-flags': { type: 'string', default: BROKER_NODE_FLAGS.join(' ') },
  },
});
/** `--broker-env 'A=1 B=2'`: each pair split at its first `=`; anything else is refused. */
const brokerEnv = (flag: string): Record<string, string> =>
  Object.fromEntries(
    flag
      .split(' ')
      .filter(Boolean)
      .map((pair) => {
        const at = pair.indexOf('=');
        if (at <= 0) throw new Error(`--broker-env: "${pair}" is not NAME=value`);
        return [pair.slice(0, at), pair.slice(at + 1)];
      }),
  );
/** Per-provider migration budgets to drain a provider at, one drain each ("" for none). */
const MIGRATION = values.migration !== false;
const DRAIN_BUDGETS = MIGRATION ? (values['drain-budgets'] ?? '').split(',').filter(Boolean).map(Number) : [];
if (DRAIN_BUDGETS.some((b) => !Number.isInteger(b) || b < 1))
  throw new Error(`--drain-budgets: whole numbers >= 1, not ${values['drain-budgets']}`);
const HEAP_SNAPSHOT = values['heap-snapshot'];
const SHARDS = Number(values.shards);
const N = Number(values.objects);
const CONSUMERS = Number(values.consumers);
const CONCURRENCY = Number(values.concurrency);
const IDLE_SECONDS = Number(values['idle-seconds']);
const CERTS = GVR.certificates;
const root = join(import.meta.dirname, '..', '..');
const log = (msg: string): void => void process.stderr.write(`[bench] ${msg}\n`);

type Percentiles = { p50: number; p95: number; p99: number };
const percentiles = (samples: number[]): Percentiles => {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => Math.round(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN);
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99) };
};

/** Runs `fn` over items with bounded parallelism. */
const pool = async <T>(items: T[], parallel: number, fn: (item: T) => Promise<void>): Promise<void> => {
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
};

const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

const objectId = (consumerCluster: string, name: string): string => `${consumerCluster}/${name}`;

/**
 * An export's virtual workspace with every shard's endpoint its slice lists, re-read every 2 s
 * (a shard joins when a workspace on it binds the export, e.g. a migration's new staging workspace).
 */
const virtualWorkspaceOf = async (endpoint: KcpEndpoint, workspace: string, name: string): Promise<VirtualWorkspace> => {
  const read = async (): Promise<string[]> => {
    const slice = unwrap(
      await createKcpClient(endpoint, endpoint.workspaceUrl(workspace)).GET('/apis/apis.kcp.io/v1alpha1/apiexportendpointslices/{name}', {
        params: { path: { name } },
      }),
    );
    return (slice.status?.endpoints ?? []).map((e) => e.url);
  };
  const urls = await eventually(
    async () => {
      const found = await read();
      if (found.length === 0) throw new Error(`slice ${name} in ${workspace} has no endpoint yet`);
      return found;
    },
    { timeoutMs: 120_000 },
  );
  const vw = new VirtualWorkspace(endpoint, `${workspace}/${name}`);
  vw.update(urls);
  setInterval(
    () =>
      void read().then(
        (found) => vw.update(found),
        () => undefined,
      ),
    2_000,
  ).unref();
  return vw;
};

/** The broker's kcp requests so far, by verb (lease renewals of leader election apart). */
type KcpRequests = { verb: string; target: string; resource: string; n: number }[];

/** The broker's kcp requests so far: `resource_broker_kcp_requests_total` by its labels. */
const kcpRequests = async (port: number): Promise<KcpRequests> => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return [...text.matchAll(/^resource_broker_kcp_requests_total\{([^}]*)\} ([0-9.e+]+)$/gm)].map((m) => {
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1]!, l[2]!]));
    return { verb: labels['verb'] ?? '', target: labels['target'] ?? '', resource: labels['resource'] ?? '', n: Number(m[2]) };
  });
};

/** Requests (lease renewals apart) by verb, or by `VERB resource` (e.g. `PUT certificates/status`). */
const requestsBy = async (port: number, keyOf: (r: KcpRequests[number]) => string): Promise<Record<string, number>> => {
  const counts: Record<string, number> = {};
  for (const r of await kcpRequests(port)) if (r.target !== 'lease') counts[keyOf(r)] = (counts[keyOf(r)] ?? 0) + r.n;
  return counts;
};
const byVerb = (r: KcpRequests[number]): string => r.verb;
const byVerbAndResource = (r: KcpRequests[number]): string => `${r.verb} ${r.resource}`;

/** What changed between two counts, per object. */
const perObject = (before: Record<string, number>, after: Record<string, number>, objects: number): Record<string, number> =>
  Object.fromEntries(
    Object.entries(after)
      .map(([key, n]) => [key, Math.round(((n - (before[key] ?? 0)) / objects) * 100) / 100] as const)
      .filter(([, n]) => n > 0)
      .sort(([a], [b]) => a.localeCompare(b)),
  );

/** What the broker's /metrics says now: open watches, memory, kcp requests by verb. */
const brokerMetrics = async (
  port: number,
): Promise<{ watches: number; heapUsedMiB: number; heapTotalMiB: number; externalMiB: number; requests: number }> => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const sum = (name: string): number =>
    [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'gm'))].reduce((total, m) => total + Number(m[1]), 0);
  const mib = (bytes: number): number => Math.round((bytes / 1024 / 1024) * 10) / 10;
  return {
    watches: sum('resource_broker_watches'),
    heapUsedMiB: mib(sum('nodejs_heap_size_used_bytes')),
    // What V8 holds from the system for its heap (used or not): the part of RSS the heap explains.
    heapTotalMiB: mib(sum('nodejs_heap_size_total_bytes')),
    externalMiB: mib(sum('nodejs_external_memory_bytes')),
    requests: sum('resource_broker_kcp_requests_total'),
  };
};

/**
 * The broker as it ships (compiled JavaScript, what the image runs), built into a directory
 * outside the repository so no stale dist/ is left for the tests; `--from-source` runs the
 * TypeScript source instead (Node strips the types; that costs memory the image does not pay).
 */
const temporary: string[] = [];
/** CPU time (user + system) a process has used so far, from /proc (in USER_HZ ticks, 100 a second on Linux). */
const cpuSecondsOf = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces: fields are counted after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
};

const brokerEntry = async (): Promise<string> => {
  if (values['from-source']) return join(root, 'bin', 'resource-broker.js');
  const out = await mkdtemp(join(tmpdir(), 'bench-broker-'));
  temporary.push(out);
  log(`compiling the broker into ${out}`);
  execFileSync(
    process.execPath,
    [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json'), '--outDir', join(out, 'dist')],
    {
      stdio: 'inherit',
    },
  );
  await mkdir(join(out, 'bin'));
  await copyFile(join(root, 'bin', 'resource-broker.js'), join(out, 'bin', 'resource-broker.js'));
  await copyFile(join(root, 'package.json'), join(out, 'package.json'));
  for (const shared of ['node_modules', 'apiexports']) await symlink(join(root, shared), join(out, shared));
  return join(out, 'bin', 'resource-broker.js');
};

const kcp = localKcp(SHARDS);
let broker: ChildProcess | undefined;
const stopBroker = async (): Promise<void> => {
  if (!broker || broker.exitCode !== null) return;
  const exited = new Promise((resolve) => broker!.once('exit', resolve));
  broker.kill('SIGTERM');
  await exited;
};

try {
  log(`starting kcp`);
  await kcp.start();
  const endpoint = await KcpEndpoint.fromKubeconfig({ path: kcp.kubeconfig });
  const world = await BrokerWorld.create('bench', endpoint);
  // On a sharded kcp, providers and consumers are spread over the shards (pinned, round robin).
  const shardNames = kcp instanceof ShardedKcp ? kcp.shardNames : [];
  const locationOf = (i: number): { location?: ShardSelector } =>
    shardNames.length > 0 ? { location: shardSelector(shardNames[i % shardNames.length]!) } : {};
  const providerNames = ['p1', 'p2'];
  await Promise.all(providerNames.map((p, i) => world.provider(p, ['certificates'], locationOf(i))));
  await Promise.all(providerNames.map((p) => world.accept(p, `certs-${p}`, { api: 'certificates' })));
  const setupStart = performance.now();
  const consumers: ReadyWorkspace[] = [];
  await pool(
    Array.from({ length: CONSUMERS }, (_, i) => i),
    CONCURRENCY,
    async (i) => {
      consumers[i] = await world.consumer(`consumer-${i}`, ['certificates'], locationOf(i));
      if ((i + 1) % 100 === 0) log(`${i + 1}/${CONSUMERS} consumer workspaces bound`);
    },
  );
  log(`${CONSUMERS} consumer workspaces in ${Math.round((performance.now() - setupStart) / 1000)} s`);

  const metricsPort = await freePort();
  const probePort = await freePort();
  // The shipped thread pool and malloc settings unless the bench's own environment sets them (to
  // compare others); --no-malloc-env leaves glibc's defaults.
  const env: NodeJS.ProcessEnv = {
    ...BROKER_THREAD_ENV,
    ...(values['malloc-env'] === false ? {} : brokerMallocEnv()),
    ...process.env,
    RB_KUBECONFIG: kcp.kubeconfig,
    RB_HOME_WORKSPACE: world.paths.home,
    RB_COORDINATION_WORKSPACE: world.paths.coordination,
    RB_STAGING_ROOT: world.paths.stagingRoot,
    RB_VERIFICATION_ROOT: world.paths.verificationRoot,
    RB_COMPUTE_WORKSPACE: world.paths.compute,
    RB_METRICS_BIND_ADDRESS: `127.0.0.1:${metricsPort}`,
    RB_HEALTH_PROBE_BIND_ADDRESS: `127.0.0.1:${probePort}`,
    RB_LOG_LEVEL: 'warn',
    RB_LOG_FORMAT: 'json',
    // --broker-env 'A=1 B=2': for the broker alone (e.g. an allocator tracer), not this process.
    ...brokerEnv(values['broker-env'] ?? ''),
  };
  const snapshotDir = HEAP_SNAPSHOT ? await mkdtemp(join(tmpdir(), 'bench-heap-')) : undefined;
  const nodeFlags = [
    ...(values['broker-node-flags'] ?? '').split(' ').filter(Boolean),
    ...(snapshotDir ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${snapshotDir}`] : []),
  ];
  const entry = await brokerEntry();
  const startBroker = async (extraEnv: Record<string, string> = {}): Promise<void> => {
    broker = spawn(process.execPath, [...nodeFlags, entry, 'run'], {
      env: { ...env, ...extraEnv },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    await eventually(
      async () => {
        const res = await fetch(`http://127.0.0.1:${probePort}/readyz`);
        if (res.status !== 200) throw new Error('broker not ready');
      },
      { timeoutMs: 60_000 },
    );
  };
  await startBroker();
  await Promise.all(providerNames.map((p) => world.waitAcceptAPIReady(p, `certs-${p}`)));
  const writes = async (): Promise<{ api: number; lease: number }> => {
    const requests = await kcpRequests(metricsPort);
    // Lease renewals (leader election) are counted apart: they are writes by design.
    const count = (target: string): number =>
      requests.filter((r) => r.target === target && ['POST', 'PUT', 'PATCH', 'DELETE'].includes(r.verb)).reduce((sum, r) => sum + r.n, 0);
    return { api: count('api'), lease: count('lease') };
  };

  // Warm-up: two objects per consumer, so every (consumer, provider) staging workspace exists
  // and the providers' virtual workspaces have endpoints before anything is timed.
  log('warm-up: staging workspaces for every consumer and provider');
  const warmUpStart = performance.now();
  await pool(consumers, CONCURRENCY, async (c) => {
    for (const i of [0, 1])
      await world.objects(c.path, 'certificates').create(world.newObject('certificates', `warm-${i}`, { fqdn: `warm-${i}.example.org` }));
  });
  const providerVws = await Promise.all(
    providerNames.map((p) => virtualWorkspaceOf(endpoint, world.providers.get(p)!.workspace.path, 'certificates')),
  );
  const consumerVw = await virtualWorkspaceOf(endpoint, world.paths.home, 'certificates');

  const stagingSeen = new Map<string, number>();
  const statusSeen = new Map<string, number>();
  let statusToken = '';
  const observers = new AbortController();
  const stagingObservers = providerVws.map((vw) => {
    const informer = new Informer<KubeObject>({
      name: 'bench staging',
      source: vw.wildcard(CERTS),
    });
    informer.onEvent((e) => {
      const consumer = e.object.metadata.annotations?.['broker.platform-mesh.io/consumer-cluster'];
      if (e.type === 'added' && consumer) stagingSeen.set(objectId(consumer, e.object.metadata.name ?? ''), performance.now());
    });
    void informer.run(observers.signal);
    return informer;
  });
  const consumerObserver = new Informer<KubeObject>({
    name: 'bench consumers',
    source: consumerVw.wildcard(CERTS),
  });
  consumerObserver.onEvent((e) => {
    const message = (e.object['status'] as { message?: string } | undefined)?.message;
    if (statusToken && message === statusToken) {
      const id = objectId(clusterOf(e.object), e.object.metadata.name ?? '');
      if (!statusSeen.has(id)) statusSeen.set(id, performance.now());
    }
  });
  void consumerObserver.run(observers.signal);
  await Promise.all([...stagingObservers.map((i) => i.waitForSync()), consumerObserver.waitForSync()]);
  const available = (): number =>
    consumerObserver.store.list((o) => (o['status'] as { status?: string } | undefined)?.status === 'Available').length;
  const warmUpProgress = setInterval(() => log(`warm-up: ${available()}/${consumers.length * 2} Available`), 30_000);
  // Each consumer needs a staging workspace per provider first: the bound grows with consumers.
  await eventually(
    () => {
      if (available() < consumers.length * 2) throw new Error('warm-up not done');
    },
    { timeoutMs: Math.max(180_000, consumers.length * 2 * 1_500), intervalMs: 1_000 },
  );
  clearInterval(warmUpProgress);
  const warmUpSeconds = Math.round((performance.now() - warmUpStart) / 1000);
  log(`warm-up done in ${warmUpSeconds} s`);

  const items = Array.from({ length: N }, (_, i) => ({ consumer: consumers[i % consumers.length]!, name: `obj-${i}` }));
  // kcp's own create rate on this machine, just before the burst (same kcp, same load): a bare
  // client creating N ConfigMaps across the same consumers with the same parallelism, for the
  // throughput ratio. The broker watches only labelled ConfigMaps; these carry no label.
  log(`kcp's raw create rate: ${N} ConfigMaps, ${CONCURRENCY} in flight`);
  const rawStart = performance.now();
  await pool(items, CONCURRENCY, async ({ consumer, name }) => {
    await world
      .inCluster(consumer.path, { group: '', version: 'v1', resource: 'configmaps' })
      .create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `raw-${name}`, namespace: 'default' }, data: { n: name } });
  });
  const rawCreatesPerSecond = Math.round((N / ((performance.now() - rawStart) / 1000)) * 10) / 10;

  // Phase 1: create N objects across the consumers.
  log(`creating ${N} objects across ${CONSUMERS} consumers (${CONCURRENCY} in flight)`);
  const created = new Map<string, number>();
  const requestsBeforeBurst = await requestsBy(metricsPort, byVerb);
  const requestsBeforeBurstByResource = await requestsBy(metricsPort, byVerbAndResource);
  const startAll = performance.now();
  const cpuBeforeBurst = cpuSecondsOf(broker!.pid!);
  await pool(items, CONCURRENCY, async ({ consumer, name }) => {
    created.set(objectId(consumer.cluster, name), performance.now());
    await world.objects(consumer.path, 'certificates').create(world.newObject('certificates', name, { fqdn: `${name}.example.org` }));
  });
  const progress = setInterval(
    () => log(`${available()}/${N + consumers.length * 2} Available, ${stagingSeen.size} staging copies seen`),
    10_000,
  );
  await eventually(
    () => {
      if (available() < N + consumers.length * 2) throw new Error(`${available()} available`);
    },
    // 10,000 objects over 10 consumers took 843 s here: the bound grows with the objects.
    { timeoutMs: Math.max(900_000, N * 200), intervalMs: 250 },
  );
  clearInterval(progress);
  const allAvailableMs = performance.now() - startAll;
  const brokerCpuSecondsBurst = Math.round((cpuSecondsOf(broker!.pid!) - cpuBeforeBurst) * 10) / 10;
  // Everything the broker asked of kcp while placing, copying and relaying the burst, per object.
  const requestsPerObject = perObject(requestsBeforeBurst, await requestsBy(metricsPort, byVerb), N);
  const requestsPerObjectByResource = perObject(requestsBeforeBurstByResource, await requestsBy(metricsPort, byVerbAndResource), N);
  const createToStaging = [...created].map(([id, t]) => (stagingSeen.get(id) ?? NaN) - t).filter((v) => !Number.isNaN(v));
  log(`all ${N} objects Available after ${Math.round(allAvailableMs)} ms`);

  // Idle: nothing changes; the broker should write nothing.
  for (const p of providerNames) for (const r of world.providers.get(p)!.runners) await r.stop();
  // The AcceptAPIs' load reports (every 15 s) catch up with the last placements first: a write
  // for a change made before the idle window is not an idle write.
  await sleep(18_000);
  const writesBefore = await writes();
  const restBefore = await brokerMetrics(metricsPort);
  log(`idle for ${IDLE_SECONDS} s`);
  await sleep(IDLE_SECONDS * 1000);
  const writesAfter = await writes();
  const atRest = await brokerMetrics(metricsPort);
  const idleWrites = writesAfter.api - writesBefore.api;
  const idleLeaseWrites = writesAfter.lease - writesBefore.lease;
  const running = broker!;
  const rss = readFileSync(`/proc/${running.pid}/status`, 'utf8');
  const statusMiB = (field: string): number => Math.round(Number(new RegExp(`${field}:\\s+(\\d+)`).exec(rss)?.[1] ?? 0) / 1024);
  const rssMiB = statusMiB('VmRSS');
  const peakRssMiB = statusMiB('VmHWM');
  // Anonymous memory is the broker's own (heaps, buffers); file-backed is the node binary's pages
  // it has touched: shared, clean, and dropped by the kernel first under pressure.
  const rssAnonMiB = statusMiB('RssAnon');
  const rssFileMiB = statusMiB('RssFile');
  const smaps = readFileSync(`/proc/${running.pid}/smaps`, 'utf8');
  const anonymousMemory = anonymousMemoryOf(smaps);
  const fileMemory = fileMemoryOf(smaps, readlinkSync(`/proc/${running.pid}/exe`));
  const allocator = allocatorOf(smaps);
  if (HEAP_SNAPSHOT && snapshotDir) {
    running.kill('SIGUSR2');
    const file = await eventually(
      async () => {
        const written = (await readdir(snapshotDir)).find((f) => f.endsWith('.heapsnapshot'));
        if (!written) throw new Error('no heap snapshot yet');
        // Written in one go but not atomically: wait until its size stops changing.
        const size = (await stat(join(snapshotDir, written))).size;
        await sleep(2_000);
        if ((await stat(join(snapshotDir, written))).size !== size || size === 0) throw new Error('heap snapshot still being written');
        return join(snapshotDir, written);
      },
      { timeoutMs: 120_000, intervalMs: 1_000 },
    );
    await rename(file, HEAP_SNAPSHOT).catch(async () => {
      await copyFile(file, HEAP_SNAPSHOT);
    });
    log(`heap snapshot at rest: ${HEAP_SNAPSHOT}`);
    // One JSON string: V8 cannot hold one over 512 MiB; a snapshot that large is summarized apart.
    if ((await stat(HEAP_SNAPSHOT)).size < 400 * 1024 * 1024)
      process.stderr.write(formatHeapSummary(summarizeHeapSnapshot(JSON.parse(await readFile(HEAP_SNAPSHOT, 'utf8')) as HeapSnapshot)));
    else log('heap snapshot too large to summarize here; open it in Chrome DevTools');
    await rm(snapshotDir, { recursive: true, force: true });
  }

  /** Changes every staging copy's status the way a provider would, and times its arrival at the consumer. */
  const statusRound = async (token: string): Promise<number[]> => {
    statusToken = token;
    statusSeen.clear();
    const written = new Map<string, number>();
    const copies = stagingObservers.flatMap((informer, i) =>
      informer.store.list((o) => o.metadata.name?.startsWith('obj-') ?? false).map((o) => ({ o, vw: providerVws[i]! })),
    );
    await pool(copies, CONCURRENCY, async ({ o, vw }) => {
      const client = vw.client(clusterOf(o), CERTS);
      const id = objectId(o.metadata.annotations?.['broker.platform-mesh.io/consumer-cluster'] ?? '', o.metadata.name ?? '');
      written.set(id, performance.now());
      await client.mergePatch(
        { namespace: o.metadata.namespace, name: o.metadata.name ?? '', subresource: 'status' },
        { status: { message: token } },
      );
    });
    await eventually(
      () => {
        if (statusSeen.size < written.size) throw new Error(`${statusSeen.size}/${written.size} statuses arrived`);
      },
      { timeoutMs: 600_000, intervalMs: 250 },
    );
    return [...written].map(([id, t]) => statusSeen.get(id)! - t);
  };

  log('status round through the broker');
  const cpuBeforeStatus = cpuSecondsOf(broker!.pid!);
  // Monotonic microseconds, the clock of a V8 CPU profile (`--broker-node-flags=--cpu-prof ...`),
  // so the round can be cut out of one.
  const roundStartUs = process.hrtime.bigint() / 1000n;
  const statusRoundStart = performance.now();
  const statusUp = await statusRound('bench-broker');
  const statusRoundSeconds = Math.round((performance.now() - statusRoundStart) / 100) / 10;
  const brokerCpuSecondsStatusRound = Math.round((cpuSecondsOf(broker!.pid!) - cpuBeforeStatus) * 10) / 10;
  log(
    `status round: ${statusRoundSeconds} s, broker CPU ${brokerCpuSecondsStatusRound} s, monotonic us ${roundStartUs}-${process.hrtime.bigint() / 1000n}`,
  );
  statusToken = '';

  // Migration: the first provider stops accepting; its objects move make-before-break to the other.
  log("migration: deleting the first provider's AcceptAPI");
  const runners = providerNames.map(
    (p) => new TestProvider({ endpoint, workspace: world.providers.get(p)!.workspace.path, exportName: 'certificates', gvr: CERTS }),
  );
  for (const r of runners) r.start();
  await eventually(
    () => {
      if (available() < N + consumers.length * 2) throw new Error('providers not settled');
    },
    { timeoutMs: 300_000, intervalMs: 250 },
  );
  await sleep(3_000);
  const toPath = world.providers.get(providerNames[1]!)!.workspace.path;
  const moving = new Set(
    stagingObservers[0]!.store
      .list((o) => MIGRATION && (o.metadata.name?.startsWith('obj-') ?? false))
      .map((o) => objectId(o.metadata.annotations?.['broker.platform-mesh.io/consumer-cluster'] ?? '', o.metadata.name ?? '')),
  );
  const destAvailable = new Map<string, number>();
  const served = new Map<string, number>();
  const notAvailableSince = new Map<string, number>();
  let consumerGapMs = 0;
  stagingObservers[1]!.onEvent((e) => {
    const id = objectId(e.object.metadata.annotations?.['broker.platform-mesh.io/consumer-cluster'] ?? '', e.object.metadata.name ?? '');
    if (moving.has(id) && !destAvailable.has(id) && (e.object['status'] as { status?: string } | undefined)?.status === 'Available')
      destAvailable.set(id, performance.now());
  });
  consumerObserver.onEvent((e) => {
    const id = objectId(clusterOf(e.object), e.object.metadata.name ?? '');
    if (!moving.has(id)) return;
    const now = performance.now();
    const isAvailable = (e.object['status'] as { status?: string } | undefined)?.status === 'Available';
    if (!isAvailable && !notAvailableSince.has(id)) notAvailableSince.set(id, now);
    if (isAvailable && notAvailableSince.has(id)) {
      consumerGapMs = Math.max(consumerGapMs, now - notAvailableSince.get(id)!);
      notAvailableSince.delete(id);
    }
  });
  const secretsObserver = new Informer<KubeObject>({
    name: 'bench consumer secrets',
    source: consumerVw.wildcard({ group: '', version: 'v1', resource: 'secrets' }),
    labelSelector: 'broker.platform-mesh.io/owner',
  });
  secretsObserver.onEvent((e) => {
    const name = (e.object.metadata.name ?? '').replace(/-credentials$/, '');
    const id = objectId(clusterOf(e.object), name);
    const issuer = Buffer.from((e.object['data'] as Record<string, string> | undefined)?.['issuer'] ?? '', 'base64').toString();
    if (moving.has(id) && !served.has(id) && issuer === toPath) served.set(id, performance.now());
  });
  void secretsObserver.run(observers.signal);
  await secretsObserver.waitForSync();
  if (MIGRATION) await world.acceptAPIs(providerNames[0]!).delete({ name: `certs-${providerNames[0]}` });
  const migrationStart = performance.now();
  await eventually(
    () => {
      if (served.size < moving.size) throw new Error(`${served.size}/${moving.size} served by the new provider`);
    },
    { timeoutMs: 1_200_000, intervalMs: 500 },
  );
  const migrationMs = performance.now() - migrationStart;
  const cutover = [...served].map(([id, t]) => t - (destAvailable.get(id) ?? NaN)).filter((v) => !Number.isNaN(v));
  for (const since of notAvailableSince.values()) consumerGapMs = Math.max(consumerGapMs, performance.now() - since);
  log(`${moving.size} objects migrated in ${Math.round(migrationMs)} ms; consumer-visible gap ${Math.round(consumerGapMs)} ms`);

  // Drains: the platform drains the provider serving everything, at each migration budget (the
  // broker restarted with it); the objects go back and forth between the two providers.
  const drains: { perProvider: number; objects: number; seconds: number; peakInFlight: number; consumerGapMs: number }[] = [];
  if (DRAIN_BUDGETS.length > 0) {
    await world.accept(providerNames[0]!, `certs-${providerNames[0]}`, { api: 'certificates' });
    await world.waitAcceptAPIReady(providerNames[0]!, `certs-${providerNames[0]}`);
    const coordination = world.inCluster(world.paths.coordination, MIGRATION_GVR);
    let [from, to] = [providerNames[1]!, providerNames[0]!];
    for (const perProvider of DRAIN_BUDGETS) {
      await stopBroker();
      await startBroker({
        RB_MAX_CONCURRENT_MIGRATIONS: String(Math.max(10, perProvider)),
        RB_MAX_CONCURRENT_MIGRATIONS_PER_PROVIDER: String(perProvider),
      });
      const fromCluster = world.providers.get(from)!.workspace.cluster;
      const toCluster = world.providers.get(to)!.workspace.cluster;
      const servedBy = async (cluster: string): Promise<number> =>
        (await world.assignments().list()).items.filter((a) => a.status?.providerCluster === cluster).length;
      const objects = await servedBy(fromCluster);
      let peakInFlight = 0;
      let gapMs = 0;
      const since = new Map<string, number>();
      log(`drain: ${objects} objects off ${from} with at most ${perProvider} migrations per provider in flight`);
      await world.acceptAPIs(from).mergePatch({ name: `certs-${from}` }, { spec: { draining: true } });
      const drainStart = performance.now();
      for (;;) {
        const now = performance.now();
        for (const o of consumerObserver.store.list()) {
          const id = objectId(clusterOf(o), o.metadata.name ?? '');
          const isAvailable = (o['status'] as { status?: string } | undefined)?.status === 'Available';
          if (!isAvailable && !since.has(id)) since.set(id, now);
          if (isAvailable && since.has(id)) {
            gapMs = Math.max(gapMs, now - since.get(id)!);
            since.delete(id);
          }
        }
        const inFlight = (await coordination.list()).items.filter(
          (m) => (m['status'] as { state?: string } | undefined)?.state !== 'CutoverCompleted',
        ).length;
        peakInFlight = Math.max(peakInFlight, inFlight);
        if (inFlight === 0 && (await servedBy(toCluster)) === objects && (await servedBy(fromCluster)) === 0) break;
        if (now - drainStart > 1_800_000) throw new Error(`drain at budget ${perProvider} not done after 30 min`);
        await sleep(250);
      }
      for (const start of since.values()) gapMs = Math.max(gapMs, performance.now() - start);
      const seconds = Math.round((performance.now() - drainStart) / 100) / 10;
      drains.push({ perProvider, objects, seconds, peakInFlight, consumerGapMs: Math.round(gapMs) });
      log(`drained ${objects} objects in ${seconds} s; peak ${peakInFlight} in flight; consumer-visible gap ${Math.round(gapMs)} ms`);
      await world.acceptAPIs(from).mergePatch({ name: `certs-${from}` }, { spec: { draining: null } });
      [from, to] = [to, from];
    }
  }
  for (const r of runners) await r.stop();
  await stopBroker();

  // The floor: the least any relay must do, status copied on each watch event.
  log('status round through the minimal relay (floor)');
  const relayAbort = new AbortController();
  // Any relay must retry a conflict (its copy of the consumer object was older than the server's),
  // with the object read again: a dropped update would leave the round waiting for a status that
  // never comes.
  const relayStatus = async (consumerCluster: string, copy: KubeObject): Promise<void> => {
    const client = consumerVw.client(consumerCluster, CERTS);
    const target = { namespace: copy.metadata.namespace ?? '', name: copy.metadata.name ?? '' };
    let consumer = consumerObserver.store.get({ cluster: consumerCluster, ...target });
    for (let attempt = 0; consumer && attempt < 20 && !relayAbort.signal.aborted; attempt++) {
      try {
        await client.updateStatus({ ...consumer, status: copy['status'] });
        return;
      } catch (err) {
        if ((err as { status?: number }).status !== 409 || attempt === 19) {
          log(`floor relay gave up on ${consumerCluster}/${target.name}: ${(err as Error).message}`);
          return;
        }
        await sleep(100);
        consumer = await client.get(target).catch(() => consumer);
      }
    }
  };
  for (const informer of stagingObservers) {
    informer.onEvent((e) => {
      if (relayAbort.signal.aborted || e.type === 'deleted') return;
      const consumerCluster = e.object.metadata.annotations?.['broker.platform-mesh.io/consumer-cluster'];
      if (!consumerCluster) return;
      const consumer = consumerObserver.store.get({
        cluster: consumerCluster,
        namespace: e.object.metadata.namespace ?? '',
        name: e.object.metadata.name ?? '',
      });
      if (!consumer || JSON.stringify(consumer['status']) === JSON.stringify(e.object['status'])) return;
      void relayStatus(consumerCluster, e.object);
    });
  }
  const floorStatusUp = await statusRound('bench-floor');
  relayAbort.abort();
  observers.abort();

  const result = {
    objects: N,
    consumers: CONSUMERS,
    providers: providerNames.length,
    createToStagingMs: percentiles(createToStaging),
    statusUpMs: percentiles(statusUp),
    floorStatusUpMs: percentiles(floorStatusUp),
    migratedObjects: moving.size,
    migrationSeconds: Math.round(migrationMs / 100) / 10,
    cutoverMs: percentiles(cutover),
    consumerGapMs: Math.round(consumerGapMs),
    drains,
    statusUpP99OverFloor: Math.round((percentiles(statusUp).p99 / percentiles(floorStatusUp).p99) * 100) / 100,
    objectsPerSecond: Math.round((N / (allAvailableMs / 1000)) * 10) / 10,
    rawCreatesPerSecond,
    brokerCpuSecondsBurst,
    statusRoundSeconds,
    brokerCpuSecondsStatusRound,
    throughputOverRawCreates: Math.round((N / (allAvailableMs / 1000) / rawCreatesPerSecond) * 100) / 100,
    requestsPerObject,
    requestsPerObjectByResource,
    rssMiB,
    rssAnonMiB,
    rssFileMiB,
    ...anonymousMemory,
    ...fileMemory,
    peakRssMiB,
    threadsAtRest: Number(/Threads:\s+(\d+)/.exec(rss)?.[1] ?? 0),
    heapUsedMiB: atRest.heapUsedMiB,
    heapTotalMiB: atRest.heapTotalMiB,
    externalMiB: atRest.externalMiB,
    openWatches: atRest.watches,
    stagingWorkspaces: (await world.stagingWorkspaces().list()).items.length,
    warmUpSeconds,
    requestsPerMinuteAtRest: Math.round(((atRest.requests - restBefore.requests) / IDLE_SECONDS) * 60 * 10) / 10,
    shards: SHARDS,
    idleWritesPerMinute: Math.round((idleWrites / IDLE_SECONDS) * 60 * 10) / 10,
    idleLeaseRenewalsPerMinute: Math.round((idleLeaseWrites / IDLE_SECONDS) * 60 * 10) / 10,
    idleWindowSeconds: IDLE_SECONDS,
    brokerBuild: values['from-source'] ? 'TypeScript source' : 'compiled (as shipped)',
    brokerNodeFlags: values['broker-node-flags'] ?? '',
    brokerMallocEnv: Object.fromEntries(
      Object.entries(env).filter(([k]) => k.startsWith('MALLOC_') || k === 'GLIBC_TUNABLES' || k === 'LD_PRELOAD'),
    ),
    brokerThreadPool: env['UV_THREADPOOL_SIZE'] ?? '4 (libuv default)',
    allocator,
    machine: { cpus: (await import('node:os')).cpus().length, node: process.version, kcp: (await import('../kcp/version.ts')).KCP_VERSION },
  };
  log(
    `create->staging p50/p95/p99 ${Object.values(result.createToStagingMs).join('/')} ms; status up ${Object.values(result.statusUpMs).join('/')} ms; floor ${Object.values(result.floorStatusUpMs).join('/')} ms`,
  );
  await endpoint.close();
  console.log(JSON.stringify(result));
} finally {
  await stopBroker();
  await kcp.stop();
  for (const dir of temporary) await rm(dir, { recursive: true, force: true });
}
