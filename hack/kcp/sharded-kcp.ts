/**
 * A sharded kcp on 127.0.0.1, the topology of kcp's `cmd/sharded-test-server` written anew:
 * a cache server, shards `root`, `shard-1` (, `shard-2`, ...) and a kcp-front-proxy in front of
 * them. Users and the broker talk to the front-proxy (`kubeconfig`), which routes
 * `/clusters/<path>` to the shard that holds the logical cluster; each shard also has a direct
 * admin kubeconfig for debugging (`shards[i].kubeconfig`).
 *
 * Authentication is the token file of LocalKcp (TOKENS) on every component, plus three tokens
 * only the components use (see `internalTokens`). The front-proxy forwards the user it
 * authenticated to a shard in X-Remote-User/X-Remote-Group headers, with a client certificate
 * of a request-header CA the shards trust. One serving CA signs every server certificate.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { freePorts, kcpBinary, kcpCacheDir, LocalKcp, TOKENS } from './local-kcp.ts';
import { serviceAccountKeys, TestCA } from './pki.ts';

export type ShardedKcpOptions = {
  /** Where every component keeps its data; a fresh temporary folder when omitted. */
  rootDirectory?: string;
  /** How many shards: `root` plus `shard-1` ... (default 2). */
  shards?: number;
  /** Echo the components' log lines to stderr instead of only to their log files. */
  verbose?: boolean;
  /** For the whole start (default 180 s: two kcp shards on a 2-core machine). */
  readyTimeoutMs?: number;
  /** More `kcp start` flags for every shard. */
  extraShardArgs?: string[];
  /** Every component in its own process group (see LocalKcpOptions.detached). */
  detached?: boolean;
};

/** One shard as a test or a developer sees it. */
export type ShardInfo = {
  /** The Shard object's name, also its `name` label (what a Workspace's spec.location selects). */
  name: string;
  /** `https://127.0.0.1:<port>`, the shard's own API (its Shard spec.baseURL). */
  origin: string;
  /** Token-admin kubeconfig talking to this shard directly (contexts root, base). */
  kubeconfig: string;
  rootDirectory: string;
  /** `kcp start`'s own admin.kubeconfig (contexts root, base, shard-base, system:admin). */
  adminKubeconfig: string;
};

/** The cache server and the front-proxy binaries (hack/kcp-build.sh builds them beside kcp). */
export const cacheServerBinary = (): string => process.env['KCP_CACHE_SERVER_BIN'] ?? join(kcpCacheDir(), 'cache-server');
export const frontProxyBinary = (): string => process.env['KCP_FRONT_PROXY_BIN'] ?? join(kcpCacheDir(), 'kcp-front-proxy');

/** How many shards `make run` and hack/start-kcp.ts start: RB_KCP_SHARDS, default 1 (one plain kcp). */
export const shardsFromEnv = (): number => {
  const value = process.env['RB_KCP_SHARDS'] ?? '1';
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`RB_KCP_SHARDS must be a whole number >= 1, got ${value}`);
  return n;
};

/** One plain kcp (LocalKcp) for 1 shard, else a ShardedKcp of `shards` shards; both start() and stop() alike. */
export const localKcp = (
  shards: number,
  options: { rootDirectory?: string; verbose?: boolean; detached?: boolean } = {},
): LocalKcp | ShardedKcp => (shards > 1 ? new ShardedKcp({ ...options, shards }) : new LocalKcp(options));

/** The name kcp gives shard `i` here (and kcp's sharded-test-server too). */
export const shardName = (i: number): string => (i === 0 ? 'root' : `shard-${i}`);

const TOKEN_GROUPS = {
  /** Shards other than root towards the root shard (--root-shard-kubeconfig-file, context shard-base). */
  rootShardAdmin: { user: 'kcp-shard-admin', groups: ['system:masters'] },
  /** The front-proxy's identity towards shards (its --root-kubeconfig, --shards-kubeconfig). */
  frontProxy: { user: 'kcp-front-proxy', groups: ['system:masters'] },
  /** Shard to shard, directly: the workspace scheduler creating a LogicalCluster on another shard. */
  logicalClusterAdmin: { user: 'logical-cluster-admin', groups: ['system:kcp:logical-cluster-admin'] },
  /** Shard to shard through the front-proxy: workspace initialization, endpoint-slice URLs. */
  externalLogicalClusterAdmin: { user: 'external-logical-cluster-admin', groups: ['system:kcp:external-logical-cluster-admin'] },
} as const;

/** One started process of the topology: cache, a shard, or the front-proxy. */
class Component {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logPath: string;
  readonly exited: Promise<void>;

  constructor(name: string, child: ChildProcess, logPath: string) {
    this.name = name;
    this.child = child;
    this.logPath = logPath;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const done = await Promise.race([this.exited.then(() => true), sleep(5_000).then(() => false)]);
    if (!done) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}

/**
 * Starts the topology; `start()` returns when the front-proxy routes to the root workspace and
 * every Shard object is registered, `stop()` leaves nothing running.
 */
export class ShardedKcp {
  readonly #options: ShardedKcpOptions;
  readonly #components: Component[] = [];
  #ownsRoot = false;
  #caPem = '';
  #killOnExit: (() => void) | undefined;
  #stopped = false;
  rootDirectory = '';
  /** The front-proxy's port. */
  port = 0;
  shards: ShardInfo[] = [];
  /** Milliseconds `start()` took, per step and in total (for reports). */
  timings: Record<string, number> = {};

  constructor(options: ShardedKcpOptions = {}) {
    this.#options = options;
  }

  /** The front-proxy: what users and the broker connect to. */
  get serverOrigin(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  /** Token-admin kubeconfig through the front-proxy (contexts root, base), like LocalKcp's. */
  get kubeconfig(): string {
    return join(this.rootDirectory, 'token-admin.kubeconfig');
  }

  get shardNames(): string[] {
    return this.shards.map((s) => s.name);
  }

  /** The serving CA (PEM) of every component. */
  async caData(): Promise<string> {
    return this.#caPem;
  }

  /** Resident memory (KiB) of each running component, from /proc. */
  rssKiB(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const c of this.#components) {
      if (!c.running || !c.child.pid) continue;
      try {
        const status = readFileSync(`/proc/${c.child.pid}/status`, 'utf8');
        out[c.name] = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      } catch {
        // exited meanwhile
      }
    }
    return out;
  }

  async start(): Promise<void> {
    const count = this.#options.shards ?? 2;
    if (!Number.isInteger(count) || count < 2) throw new Error(`ShardedKcp needs at least 2 shards, got ${count}`);
    for (const binary of [kcpBinary(), cacheServerBinary(), frontProxyBinary()]) {
      if (!existsSync(binary)) throw new Error(`${binary} not found: run \`make kcp\` (hack/kcp-build.sh) first`);
    }
    this.#stopped = false;
    const started = Date.now();
    const deadline = started + (this.#options.readyTimeoutMs ?? 180_000);
    this.#ownsRoot = !this.#options.rootDirectory;
    this.rootDirectory = this.#options.rootDirectory ?? (await mkdtemp(join(tmpdir(), 'kcp-sharded-')));
    this.#killOnExit = () => {
      for (const c of this.#components) if (c.running) c.child.kill('SIGKILL');
    };
    process.once('exit', this.#killOnExit);
    try {
      await this.#start(count, deadline);
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.timings['total'] = Date.now() - started;
  }

  async #start(count: number, deadline: number): Promise<void> {
    const dir = (...parts: string[]): string => join(this.rootDirectory, ...parts);
    for (const d of ['pki', 'cache', 'front-proxy', ...Array.from({ length: count }, (_, i) => shardName(i))]) {
      await mkdir(dir(d), { recursive: true });
    }
    const ports = await freePorts(3 + 3 * count + 1);
    const [cachePort, cacheEtcdClient, cacheEtcdPeer] = ports;
    this.port = ports.at(-1)!;
    const shardPorts = Array.from({ length: count }, (_, i) => ports.slice(3 + 3 * i, 6 + 3 * i) as [number, number, number]);
    this.shards = shardPorts.map(([port], i) => ({
      name: shardName(i),
      origin: `https://127.0.0.1:${port}`,
      kubeconfig: dir(shardName(i), 'token-admin.kubeconfig'),
      rootDirectory: dir(shardName(i)),
      adminKubeconfig: dir(shardName(i), 'admin.kubeconfig'),
    }));
    const rootShard = this.shards[0]!;

    // Key material and configuration, all before any process starts.
    let t = Date.now();
    const servingCA = await TestCA.create('kcp-serving-ca');
    const requestHeaderCA = await TestCA.create('kcp-front-proxy-requestheader-ca');
    this.#caPem = servingCA.certPem;
    const pki = {
      servingCA: dir('pki', 'serving-ca.crt'),
      requestHeaderCA: dir('pki', 'requestheader-ca.crt'),
      proxyClientCert: dir('pki', 'requestheader.crt'),
      proxyClientKey: dir('pki', 'requestheader.key'),
      saPrivate: dir('pki', 'service-account.key'),
      saPublic: dir('pki', 'service-account.pub'),
      tokens: dir('pki', 'tokens.csv'),
    };
    await writeFile(pki.servingCA, servingCA.certPem);
    await writeFile(pki.requestHeaderCA, requestHeaderCA.certPem);
    const proxyClient = await requestHeaderCA.clientCert('kcp-front-proxy');
    await writeFile(pki.proxyClientCert, proxyClient.cert);
    await writeFile(pki.proxyClientKey, proxyClient.key, { mode: 0o600 });
    const sa = serviceAccountKeys();
    await writeFile(pki.saPrivate, sa.privateKey, { mode: 0o600 });
    await writeFile(pki.saPublic, sa.publicKey);
    const serving = async (component: string): Promise<{ cert: string; key: string }> => {
      const pair = await servingCA.serverCert(component);
      const files = { cert: dir(component, 'serving.crt'), key: dir(component, 'serving.key') };
      await writeFile(files.cert, pair.cert);
      await writeFile(files.key, pair.key, { mode: 0o600 });
      return files;
    };

    // Fresh component tokens every start: only these processes read them.
    type Identity = { token: string; user: string; groups: readonly string[] };
    const token = (who: keyof typeof TOKEN_GROUPS): Identity => ({ ...TOKEN_GROUPS[who], token: randomBytes(16).toString('hex') });
    const internal = {
      rootShardAdmin: token('rootShardAdmin'),
      frontProxy: token('frontProxy'),
      logicalClusterAdmin: token('logicalClusterAdmin'),
      externalLogicalClusterAdmin: token('externalLogicalClusterAdmin'),
    };
    await writeFile(
      pki.tokens,
      [...Object.values(TOKENS), ...Object.values(internal)]
        .map((t) => `${t.token},${t.user},${t.user},"${t.groups.join(',')}"\n`)
        .join(''),
      { mode: 0o600 },
    );
    const kubeconfigFile = (path: string, server: string, token: string | undefined, current: 'root' | 'base' = 'base'): Promise<void> =>
      writeFile(path, tokenKubeconfig(server, servingCA.certPem, token, current), { mode: 0o600 });
    const cacheKubeconfig = dir('cache', 'cache.kubeconfig');
    await kubeconfigFile(cacheKubeconfig, `https://127.0.0.1:${cachePort}`, undefined);
    // Not root's own admin.kubeconfig (what kcp's sharded-test-server passes): that one only
    // exists once root has started, and after a restart it names root's previous port.
    const rootShardKubeconfig = dir('pki', 'root-shard.kubeconfig');
    await kubeconfigFile(rootShardKubeconfig, rootShard.origin, internal.rootShardAdmin.token);
    const lcaKubeconfig = dir('pki', 'logical-cluster-admin.kubeconfig');
    await kubeconfigFile(lcaKubeconfig, rootShard.origin, internal.logicalClusterAdmin.token);
    const elcaKubeconfig = dir('pki', 'external-logical-cluster-admin.kubeconfig');
    await kubeconfigFile(elcaKubeconfig, this.serverOrigin, internal.externalLogicalClusterAdmin.token);
    await kubeconfigFile(this.kubeconfig, this.serverOrigin, TOKENS.admin.token, 'root');
    for (const s of this.shards) await kubeconfigFile(s.kubeconfig, s.origin, TOKENS.admin.token, 'root');
    const proxyRootKubeconfig = dir('front-proxy', 'root.kubeconfig');
    await kubeconfigFile(proxyRootKubeconfig, rootShard.origin, internal.frontProxy.token);
    // The server is replaced by each Shard's spec.baseURL; only TLS and credentials matter.
    const proxyShardsKubeconfig = dir('front-proxy', 'shards.kubeconfig');
    await kubeconfigFile(proxyShardsKubeconfig, rootShard.origin, internal.frontProxy.token);
    const mappingFile = dir('front-proxy', 'mapping.yaml');
    const mapping = (path: string): string =>
      [
        `- path: ${path}`,
        `  backend: ${rootShard.origin}`,
        `  backend_server_ca: ${pki.servingCA}`,
        `  proxy_client_cert: ${pki.proxyClientCert}`,
        `  proxy_client_key: ${pki.proxyClientKey}`,
        `  extra_header_prefix: X-Remote-Extra-`,
      ].join('\n');
    // /clusters/ is routed by the front-proxy's index of logical clusters to the owning shard;
    // the backend is only its fallback. /services/ (virtual workspaces) goes to the root shard,
    // as in kcp's sharded-test-server; endpoint slices name each shard's own URL anyway.
    await writeFile(mappingFile, `${mapping('/services/')}\n${mapping('/clusters/')}\n`);
    this.timings['pki'] = Date.now() - t;

    const ready = new Agent({ connect: { ca: servingCA.certPem } });
    try {
      // Cache server: no authentication of its own (kcp v0.30 disables it), loopback only.
      t = Date.now();
      const cacheTls = await serving('cache');
      this.#spawn('cache', cacheServerBinary(), dir('cache'), [
        `--root-directory=${dir('cache')}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${cachePort}`,
        `--embedded-etcd-client-port=${cacheEtcdClient}`,
        `--embedded-etcd-peer-port=${cacheEtcdPeer}`,
        `--tls-cert-file=${cacheTls.cert}`,
        `--tls-private-key-file=${cacheTls.key}`,
      ]);
      await this.#waitHttp(ready, 'cache', `https://127.0.0.1:${cachePort}/readyz`, undefined, deadline);
      this.timings['cache'] = Date.now() - t;

      // Shards, all at once: the others retry until root answers (to read kcp's APIExport
      // identities and to register their Shard object in root).
      t = Date.now();
      for (const [i, s] of this.shards.entries()) {
        const [securePort, etcdClient, etcdPeer] = shardPorts[i]!;
        const tls = await serving(s.name);
        this.#spawn(s.name, kcpBinary(), s.rootDirectory, [
          'start',
          `--root-directory=${s.rootDirectory}`,
          '--bind-address=127.0.0.1',
          `--secure-port=${securePort}`,
          `--embedded-etcd-client-port=${etcdClient}`,
          `--embedded-etcd-peer-port=${etcdPeer}`,
          `--shard-name=${s.name}`,
          `--shard-base-url=${s.origin}`,
          `--shard-external-url=${this.serverOrigin}`,
          `--cache-kubeconfig=${cacheKubeconfig}`,
          ...(i > 0 ? [`--root-shard-kubeconfig-file=${rootShardKubeconfig}`] : []),
          `--tls-cert-file=${tls.cert}`,
          `--tls-private-key-file=${tls.key}`,
          `--token-auth-file=${pki.tokens}`,
          `--requestheader-client-ca-file=${pki.requestHeaderCA}`,
          '--requestheader-username-headers=X-Remote-User',
          '--requestheader-group-headers=X-Remote-Group',
          '--requestheader-extra-headers-prefix=X-Remote-Extra-',
          `--service-account-key-file=${pki.saPublic}`,
          `--service-account-private-key-file=${pki.saPrivate}`,
          `--service-account-signing-key-file=${pki.saPrivate}`,
          '--service-account-lookup=false',
          `--logical-cluster-admin-kubeconfig=${lcaKubeconfig}`,
          `--external-logical-cluster-admin-kubeconfig=${elcaKubeconfig}`,
          ...(this.#options.extraShardArgs ?? []),
        ]);
      }
      for (const s of this.shards) {
        await this.#waitHttp(ready, s.name, `${s.origin}/readyz`, TOKENS.admin.token, deadline);
        this.timings[`shard ${s.name}`] = Date.now() - t;
      }
      // Every Shard is registered in root before the front-proxy starts indexing them.
      for (const s of this.shards) {
        await this.#waitHttp(
          ready,
          'root',
          `${rootShard.origin}/clusters/root/apis/core.kcp.io/v1alpha1/shards/${s.name}`,
          internal.frontProxy.token,
          deadline,
        );
      }

      t = Date.now();
      const proxyTls = await serving('front-proxy');
      this.#spawn('front-proxy', frontProxyBinary(), dir('front-proxy'), [
        '--bind-address=127.0.0.1',
        `--secure-port=${this.port}`,
        `--root-directory=${dir('front-proxy')}`,
        `--mapping-file=${mappingFile}`,
        `--root-kubeconfig=${proxyRootKubeconfig}`,
        `--shards-kubeconfig=${proxyShardsKubeconfig}`,
        `--tls-cert-file=${proxyTls.cert}`,
        `--tls-private-key-file=${proxyTls.key}`,
        `--token-auth-file=${pki.tokens}`,
        `--service-account-key-file=${pki.saPublic}`,
        '--service-account-lookup=false',
      ]);
      await this.#waitHttp(ready, 'front-proxy', `${this.serverOrigin}/readyz`, TOKENS.admin.token, deadline);
      await this.#waitHttp(
        ready,
        'front-proxy',
        `${this.serverOrigin}/clusters/root/apis/tenancy.kcp.io/v1alpha1/workspaces`,
        TOKENS.admin.token,
        deadline,
      );
      this.timings['front-proxy'] = Date.now() - t;
    } finally {
      await ready.close();
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all([...this.#components].reverse().map((c) => c.stop()));
    this.#components.length = 0;
    if (this.#killOnExit) process.removeListener('exit', this.#killOnExit);
    this.#killOnExit = undefined;
    if (this.#ownsRoot && this.rootDirectory) await rm(this.rootDirectory, { recursive: true, force: true });
  }

  #spawn(name: string, binary: string, cwd: string, args: string[]): void {
    // stop() may have run while start() awaited: start nothing it would not stop.
    if (this.#stopped) throw new Error('sharded kcp stopped while starting');
    const logPath = join(cwd, `${name}.log`);
    const log = createWriteStream(logPath);
    const child = spawn(binary, args, {
      cwd,
      env: { ...process.env, UNSAFE_E2E_HACK_DISABLE_ETCD_FSYNC: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: this.#options.detached === true,
    });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    if (this.#options.verbose) child.stderr?.pipe(process.stderr);
    this.#components.push(new Component(name, child, logPath));
  }

  #checkAlive(): void {
    if (this.#stopped) throw new Error('sharded kcp stopped while starting');
    for (const c of this.#components) {
      if (!c.running) throw new Error(`${c.name} exited (code ${c.child.exitCode}, signal ${c.child.signalCode}); see ${c.logPath}`);
    }
  }

  async #waitHttp(dispatcher: Agent, component: string, url: string, token: string | undefined, deadline: number): Promise<void> {
    let last = 'not started';
    while (true) {
      this.#checkAlive();
      if (Date.now() > deadline) {
        const log = this.#components.find((c) => c.name === component)?.logPath;
        throw new Error(`${component} not ready in time (${url}: ${last}); see ${log}`);
      }
      try {
        const res = await request(url, { dispatcher, headers: token ? { authorization: `Bearer ${token}` } : {} });
        const body = await res.body.text();
        if (res.statusCode === 200) return;
        last = `HTTP ${res.statusCode} ${body.slice(0, 200)}`;
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
      await sleep(250);
    }
  }
}

/**
 * A kubeconfig with contexts `root` (`<server>/clusters/root`) and `base`, like LocalKcp's, and
 * `shard-base` (= base; what kcp reads from --root-shard-kubeconfig-file). The components' own
 * kubeconfigs use `base`: kcp's cluster-aware clients add `/clusters/<name>`.
 */
const tokenKubeconfig = (server: string, caPem: string, token: string | undefined, current: 'root' | 'base'): string => {
  const ca = Buffer.from(caPem).toString('base64');
  const contexts = ['root', 'base', 'shard-base'];
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: root\n  cluster:\n    server: ${server}/clusters/root\n    certificate-authority-data: ${ca}`,
    `- name: base\n  cluster:\n    server: ${server}\n    certificate-authority-data: ${ca}`,
    'users:',
    token ? `- name: admin\n  user:\n    token: ${token}` : '- name: admin\n  user: {}',
    'contexts:',
    ...contexts.map((c) => `- name: ${c}\n  context:\n    cluster: ${c === 'root' ? 'root' : 'base'}\n    user: admin`),
    `current-context: ${current}`,
    '',
  ].join('\n');
};
