import { BROKER_NODE_FLAGS, brokerProcessEnv } from '../../src/cli/node-flags.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BrokerPaths } from '../../src/apis/paths.ts';

const CLI = join(import.meta.dirname, '..', '..', 'bin', 'resource-broker.js');

export const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

/** Runs the CLI to completion; returns its exit code and output. */
export const runCli = (args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });

/** A CLI command against a BrokerWorld's workspaces: the kubeconfig and every workspace path flag, then `flags`. */
export const runCliFor = (kubeconfig: string, paths: BrokerPaths, command: string, ...flags: string[]) =>
  runCli([
    command,
    '--kubeconfig',
    kubeconfig,
    '--home',
    paths.home,
    '--coordination',
    paths.coordination,
    '--staging-root',
    paths.stagingRoot,
    '--verification-root',
    paths.verificationRoot,
    '--compute',
    paths.compute,
    ...flags,
  ]);

/** Every broker started in this test file (vitest runs each file in its own module graph). */
const started: BrokerProcess[] = [];

/** The last lines each broker of this test file logged, for a failed test's report. */
export const brokerLogTails = (lines: number): string =>
  started
    .map((p, i) => `--- broker ${i} (pid ${p.child?.pid ?? '?'}), last ${lines} log lines\n${p.logs.slice(-lines).join('\n')}`)
    .join('\n');

/** `resource-broker run` as a child process against a BrokerWorld's workspaces. */
export class BrokerProcess {
  child: ChildProcess | undefined;
  readonly logs: string[] = [];
  probePort = 0;
  metricsPort = 0;
  readonly #env: Record<string, string>;

  constructor(kubeconfig: string, paths: BrokerPaths, env: Record<string, string> = {}) {
    this.#env = {
      RB_KUBECONFIG: kubeconfig,
      RB_HOME_WORKSPACE: paths.home,
      RB_COORDINATION_WORKSPACE: paths.coordination,
      RB_STAGING_ROOT: paths.stagingRoot,
      RB_VERIFICATION_ROOT: paths.verificationRoot,
      RB_COMPUTE_WORKSPACE: paths.compute,
      RB_LOG_FORMAT: 'json',
      RB_LOG_LEVEL: 'info',
      ...env,
    };
  }

  async start(): Promise<void> {
    started.push(this);
    this.probePort = await freePort();
    this.metricsPort = await freePort();
    // A broker that does not stop is asked for a diagnostic report first (its JavaScript stack,
    // taken even while the event loop is busy), so a hang says where it hangs.
    this.#reports = mkdtempSync(join(tmpdir(), 'broker-report-'));
    this.child = spawn(
      process.execPath,
      [...BROKER_NODE_FLAGS, '--report-on-signal', '--report-signal=SIGUSR2', `--report-directory=${this.#reports}`, CLI, 'run'],
      {
        env: {
          ...brokerProcessEnv(),
          ...process.env,
          ...this.#env,
          RB_HEALTH_PROBE_BIND_ADDRESS: `127.0.0.1:${this.probePort}`,
          RB_METRICS_BIND_ADDRESS: `127.0.0.1:${this.metricsPort}`,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    for (const stream of [this.child.stdout!, this.child.stderr!])
      stream.on('data', (d: Buffer) => this.logs.push(...d.toString().split('\n').filter(Boolean)));
  }

  /** HTTP status of /readyz, or 0 while nothing listens. */
  async readyz(): Promise<number> {
    try {
      return (await fetch(`http://127.0.0.1:${this.probePort}/readyz`)).status;
    } catch {
      return 0;
    }
  }

  /** Whether this replica leads and serves: Ready, and leader_election_master_status 1 (a standby is Ready too). */
  async serving(): Promise<boolean> {
    return (await this.readyz()) === 200 && (await this.metric('leader_election_master_status').catch(() => undefined)) === 1;
  }

  async metric(name: string): Promise<number | undefined> {
    const text = await (await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`)).text();
    const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
    return match ? Number(match[1]) : undefined;
  }

  hasLog(msg: string): boolean {
    return this.logs.some((l) => l.includes(`"msg":"${msg}"`));
  }

  /**
   * Sends a signal and resolves with the exit code (null: ended by a signal). A process still
   * running after `timeoutMs` is killed and its last log lines printed, so a hang shows why.
   */
  #reports = '';

  /** The JavaScript stack and pending handles of the newest diagnostic report, if one was written. */
  #report(): string {
    try {
      const file = readdirSync(this.#reports)
        .filter((f) => f.endsWith('.json'))
        .sort()
        .at(-1);
      if (!file) return 'no diagnostic report was written';
      const report = JSON.parse(readFileSync(join(this.#reports, file), 'utf8')) as {
        javascriptStack?: { message?: string; stack?: string[] };
        libuv?: { type: string; is_active?: boolean }[];
      };
      const handles = (report.libuv ?? []).filter((h) => h.is_active).map((h) => h.type);
      return `diagnostic report ${file}: JavaScript stack:\n${(report.javascriptStack?.stack ?? []).join('\n')}\nactive handles: ${handles.join(', ')}`;
    } catch (err) {
      return `diagnostic report unreadable: ${String(err)}`;
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 60_000): Promise<number | null | 'timeout'> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill(signal);
    const timer = setTimeout(() => {
      console.error(
        `broker pid ${child.pid} still running ${timeoutMs} ms after ${signal}; last log lines:\n${this.logs.slice(-40).join('\n')}`,
      );
      child.kill('SIGUSR2');
      void sleep(3_000).then(() => {
        console.error(this.#report());
        child.kill('SIGKILL');
      });
    }, timeoutMs);
    const code = await exited;
    clearTimeout(timer);
    return child.signalCode === 'SIGKILL' && signal !== 'SIGKILL' ? 'timeout' : code;
  }
}
