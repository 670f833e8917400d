/**
 * `make example`: runs the README's walkthrough as written. Starts `make run` (hack/run-local.ts:
 * a local kcp, bootstrap, the broker), waits for the environment file it writes, then feeds
 * every ```sh example block of README.md, in order, to one bash (as a person types them into
 * one terminal), with `set -euo pipefail` so any failing command fails the walkthrough. Exits 1
 * when a block fails or the whole run exceeds its time bound.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const root = join(import.meta.dirname, '..');
const ENV_FILE = join(root, '.tools', 'env.sh');
const TIMEOUT_MS = 10 * 60_000;

/** The ```sh example blocks of a Markdown text, in order. */
const exampleBlocks = (markdown: string): string[] => [...markdown.matchAll(/^```sh example\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);

/** Resolves with the exit code; kills the child's process group after `ms`. */
const exitOf = (child: ChildProcess, ms: number): Promise<number> =>
  new Promise((resolve) => {
    const timer = setTimeout(() => {
      console.error(`\nREADME walkthrough: no end after ${ms / 1000} s, stopping it`);
      killGroup(child, 'SIGKILL');
    }, ms);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? (signal ? 128 : 1));
    });
  });

const killGroup = (child: ChildProcess, signal: NodeJS.Signals): void => {
  try {
    if (child.pid) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
};

const blocks = exampleBlocks(readFileSync(join(root, 'README.md'), 'utf8'));
if (blocks.length === 0) {
  console.error('README.md has no ```sh example blocks');
  process.exit(1);
}

rmSync(ENV_FILE, { force: true });
// Its own process group, as in a second terminal: stopped with SIGTERM (it stops the broker, then kcp).
const platform = spawn(process.execPath, [join(root, 'hack', 'run-local.ts')], {
  cwd: root,
  env: { ...process.env, RB_LOG_LEVEL: process.env['RB_LOG_LEVEL'] ?? 'error' },
  stdio: ['ignore', 'inherit', 'inherit'],
  detached: true,
});
let status = 1;
let walkthrough: ChildProcess | undefined;
let stopping: Promise<void> | undefined;
/** Stops the README's processes (its group: the providers it left running) and make run (which stops the broker, then kcp). */
const stopAll = (): Promise<void> =>
  (stopping ??= (async () => {
    if (walkthrough) killGroup(walkthrough, 'SIGTERM');
    const stopped = new Promise((resolve) => (platform.exitCode !== null ? resolve(undefined) : platform.once('exit', resolve)));
    // Only make run itself: it stops the broker gracefully (lease released), then kcp in its own group.
    platform.kill('SIGTERM');
    await Promise.race([stopped, sleep(60_000)]);
    killGroup(platform, 'SIGKILL');
  })());
// Ctrl-C or a CI timeout: nothing may be left running.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void stopAll().then(() => process.exit(130)));
try {
  const started = Date.now();
  while (!existsSync(ENV_FILE)) {
    if (platform.exitCode !== null) throw new Error(`make run exited with ${platform.exitCode} before it was ready`);
    if (Date.now() - started > 5 * 60_000) throw new Error('make run did not write .tools/env.sh within 5 minutes');
    await sleep(250);
  }
  const script = blocks.map((block, i) => `echo; echo "==> README block ${i + 1} of ${blocks.length}"\n${block}`).join('\n');
  // A clean environment, as a new terminal has: nothing of this process's kubeconfig or PATH.
  const { HOME, USER, TERM, LANG, TMPDIR } = process.env;
  const env = Object.fromEntries(
    Object.entries({ HOME, USER, TERM, LANG, TMPDIR, PATH: '/usr/local/bin:/usr/bin:/bin' }).filter(([, v]) => v !== undefined),
  );
  walkthrough = spawn('bash', ['--noprofile', '--norc', '-xeuo', 'pipefail', '-c', script], {
    cwd: root,
    env,
    stdio: ['ignore', 'inherit', 'inherit'],
    detached: true, // its background jobs (the providers) are stopped with its group
  });
  status = await exitOf(walkthrough, TIMEOUT_MS);
  console.log(status === 0 ? `\nREADME walkthrough: all ${blocks.length} blocks ran` : `\nREADME walkthrough FAILED (exit ${status})`);
} catch (err) {
  console.error(`\nREADME walkthrough FAILED: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  await stopAll();
}
process.exit(status);
