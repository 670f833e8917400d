import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { KCP_VERSION } from './version.ts';

/** Identities of the token file every local kcp starts with. */
export const TOKENS = {
  admin: { token: 'admin-token', user: 'kcp-admin', groups: ['system:kcp:admin'] },
  broker: { token: 'broker-token', user: 'resource-broker', groups: ['broker'] },
  userA: { token: 'user-a-token', user: 'user-a', groups: ['consumers'] },
  userB: { token: 'user-b-token', user: 'user-b', groups: ['consumers'] },
} as const;

export const kcpCacheDir = (): string =>
  join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'resource-broker', `kcp-${KCP_VERSION}`);

export const kcpBinary = (): string => process.env['KCP_BIN'] ?? join(kcpCacheDir(), 'kcp');

export type LocalKcpOptions = {
  /** Where kcp keeps etcd and its kubeconfig; a fresh temporary folder when omitted. */
  rootDirectory?: string;
  /** Echo kcp's own log lines to stderr instead of only to `<root>/kcp.log`. */
  verbose?: boolean;
  readyTimeoutMs?: number;
  /** More `kcp start` flags, e.g. a short `--etcd-compaction-interval` for a test. */
  extraArgs?: string[];
  /**
   * Its own process group, out of reach of the terminal's Ctrl-C: `make run` stops kcp itself,
   * after the broker has released its lease (else the release fails with a WARN).
   */
  detached?: boolean;
};

/**
 * A real kcp server on 127.0.0.1 with free ports, a fresh root directory and a token file;
 * `start()` returns when the tenancy API answers, `stop()` leaves nothing running.
 */
export class LocalKcp {
  readonly #options: LocalKcpOptions;
  #process: ChildProcess | undefined;
  #exited: Promise<void> | undefined;
  #ownsRoot = false;
  rootDirectory = '';
  port = 0;

  constructor(options: LocalKcpOptions = {}) {
    this.#options = options;
  }

  get serverOrigin(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  /** kcp's admin kubeconfig (contexts root, base, system:admin). */
  get adminKubeconfig(): string {
    return join(this.rootDirectory, 'admin.kubeconfig');
  }

  /** A kubeconfig for the token-file admin (stable across restarts), context `root`. */
  get kubeconfig(): string {
    return join(this.rootDirectory, 'token-admin.kubeconfig');
  }

  async caData(): Promise<string> {
    const text = await readFile(this.adminKubeconfig, 'utf8');
    const match = /certificate-authority-data:\s*(\S+)/.exec(text);
    if (!match?.[1]) throw new Error(`${this.adminKubeconfig}: no certificate-authority-data`);
    return Buffer.from(match[1], 'base64').toString('utf8');
  }

  async start(): Promise<void> {
    const binary = kcpBinary();
    if (!existsSync(binary)) throw new Error(`kcp binary not found at ${binary}: run \`make kcp\` first`);
    this.#ownsRoot = !this.#options.rootDirectory;
    this.rootDirectory = this.#options.rootDirectory ?? (await mkdtemp(join(tmpdir(), 'kcp-')));
    await mkdir(this.rootDirectory, { recursive: true });
    const [securePort, etcdClient, etcdPeer] = await freePorts(3);
    this.port = securePort!;
    const tokenFile = join(this.rootDirectory, 'tokens.csv');
    await writeFile(
      tokenFile,
      Object.values(TOKENS)
        .map((t) => `${t.token},${t.user},${t.user},"${t.groups.join(',')}"\n`)
        .join(''),
    );
    const log = createWriteStream(join(this.rootDirectory, 'kcp.log'));
    const child = spawn(
      binary,
      [
        'start',
        `--root-directory=${this.rootDirectory}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${securePort}`,
        `--embedded-etcd-client-port=${etcdClient}`,
        `--embedded-etcd-peer-port=${etcdPeer}`,
        `--token-auth-file=${tokenFile}`,
        ...(this.#options.extraArgs ?? []),
      ],
      {
        env: { ...process.env, UNSAFE_E2E_HACK_DISABLE_ETCD_FSYNC: 'true' },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: this.#options.detached === true,
      },
    );
    this.#process = child;
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    if (this.#options.verbose) child.stderr?.pipe(process.stderr);
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    try {
      await this.#waitReady(this.#options.readyTimeoutMs ?? 90_000);
      await this.#writeTokenKubeconfig();
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    const child = this.#process;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killed = await Promise.race([this.#exited!.then(() => true), sleep(5_000).then(() => false)]);
      if (!killed) {
        child.kill('SIGKILL');
        await this.#exited;
      }
    }
    this.#process = undefined;
    if (this.#ownsRoot && this.rootDirectory) await rm(this.rootDirectory, { recursive: true, force: true });
  }

  async #waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const dispatcher = new Agent({ connect: { rejectUnauthorized: false } });
    const headers = { authorization: `Bearer ${TOKENS.admin.token}` };
    let last = 'not started';
    try {
      for (const path of ['/readyz', '/clusters/root/apis/tenancy.kcp.io/v1alpha1/workspaces']) {
        while (true) {
          if (this.#process?.exitCode !== null && this.#process?.exitCode !== undefined) {
            throw new Error(`kcp exited with code ${this.#process.exitCode}; see ${join(this.rootDirectory, 'kcp.log')}`);
          }
          if (Date.now() > deadline)
            throw new Error(`kcp not ready after ${timeoutMs} ms (${path}: ${last}); see ${join(this.rootDirectory, 'kcp.log')}`);
          try {
            const res = await request(`${this.serverOrigin}${path}`, { dispatcher, headers });
            await res.body.text();
            if (res.statusCode === 200 && existsSync(this.adminKubeconfig)) break;
            last = `HTTP ${res.statusCode}`;
          } catch (err) {
            last = err instanceof Error ? err.message : String(err);
          }
          await sleep(250);
        }
      }
    } finally {
      await dispatcher.close();
    }
  }

  async #writeTokenKubeconfig(): Promise<void> {
    const ca = Buffer.from(await this.caData()).toString('base64');
    const contexts = ['root', 'base'];
    const text = [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      `- name: root\n  cluster:\n    server: ${this.serverOrigin}/clusters/root\n    certificate-authority-data: ${ca}`,
      `- name: base\n  cluster:\n    server: ${this.serverOrigin}\n    certificate-authority-data: ${ca}`,
      'users:',
      `- name: admin\n  user:\n    token: ${TOKENS.admin.token}`,
      'contexts:',
      ...contexts.map((c) => `- name: ${c}\n  context:\n    cluster: ${c}\n    user: admin`),
      'current-context: root',
      '',
    ].join('\n');
    await writeFile(this.kubeconfig, text, { mode: 0o600 });
  }
}

/** `count` distinct ports free on 127.0.0.1 right now (bound, read, released). */
export const freePorts = async (count: number): Promise<number[]> => {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
};
