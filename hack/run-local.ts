/**
 * `make run`: a local kcp on 127.0.0.1, the broker's workspaces and APIs bootstrapped (with
 * the example APIs), and `resource-broker run` against it, until Ctrl-C.
 *
 * RB_KCP_SHARDS=2 (opt-in): a sharded kcp instead (cache server, shards root and shard-1,
 * front-proxy; hack/kcp/sharded-kcp.ts); the broker talks to the front-proxy.
 */
import { BROKER_NODE_FLAGS, brokerProcessEnv } from '../src/cli/node-flags.ts';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { kcpCacheDir } from './kcp/local-kcp.ts';
import { localKcp, ShardedKcp, shardsFromEnv } from './kcp/sharded-kcp.ts';

const root = join(import.meta.dirname, '..');
const cli = join(root, 'bin', 'resource-broker.js');
// kcp out of the terminal's process group: Ctrl-C reaches the broker (and this script), and kcp
// stops only after the broker has released its lease.
const kcp = localKcp(shardsFromEnv(), { detached: true });
let broker: ChildProcess | undefined;
let stopping = false;
// Installed before kcp starts: a Ctrl-C during the start must stop kcp too, not orphan it.
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  if (broker) {
    const running = broker;
    running.kill('SIGTERM');
    await new Promise((resolve) => (running.exitCode !== null ? resolve(undefined) : running.once('exit', resolve)));
  }
  await kcp.stop();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
// kcp runs in its own process group: a closed terminal must stop it too.
process.on('SIGHUP', stop);
console.error(kcp instanceof ShardedKcp ? 'starting a sharded kcp (takes ~45 s)...' : 'starting kcp (first start takes ~30 s)...');
await kcp.start();
if (kcp instanceof ShardedKcp) {
  console.error(
    `front-proxy on ${kcp.serverOrigin}; shards: ${kcp.shards.map((s) => `${s.name} ${s.origin} (KUBECONFIG=${s.kubeconfig})`).join(', ')}`,
  );
}
const env = { ...process.env, RB_KUBECONFIG: kcp.kubeconfig };
const bootstrapped = await new Promise<number>((resolve) =>
  spawn(process.execPath, [cli, 'bootstrap', '--examples'], { env, stdio: 'inherit' }).on('exit', (code) => resolve(code ?? 1)),
);
if (bootstrapped !== 0) {
  await kcp.stop();
  process.exit(bootstrapped);
}
broker = spawn(process.execPath, [...BROKER_NODE_FLAGS, cli, 'run'], { env: { ...brokerProcessEnv(), ...env }, stdio: 'inherit' });
const envFile = writeShellEnvironment(kcp.kubeconfig, kcp.serverOrigin);
console.error(`
resource-broker is running against kcp on ${kcp.serverOrigin}.

In another terminal (README "Walkthrough" goes on from here):
  source ${relative(process.cwd(), envFile) || envFile}     # KUBECONFIG, $KCP, and PATH with resource-broker, the kubectl plugins and Node 24
  kubectl get apiexports --server $KCP/clusters/root:platform

Ctrl-C stops the broker and kcp.
`);
broker.on('exit', (code) => {
  if (!stopping) {
    console.error(`resource-broker exited with code ${code}`);
    void kcp.stop().then(() => process.exit(code ?? 1));
  }
});

/**
 * Writes `.tools/env.sh` for another terminal: the kubeconfig, `$KCP` (the server's origin) and a
 * PATH that finds `resource-broker`, the kcp kubectl plugins and this Node 24 before anything
 * else. Also writes the `resource-broker` and `kubectl-broker` (kubectl plugin) launchers that PATH finds. Returns the env file's path.
 */
function writeShellEnvironment(kubeconfig: string, origin: string): string {
  const bin = join(root, '.tools', 'bin');
  mkdirSync(bin, { recursive: true });
  for (const [command, script] of [
    ['resource-broker', cli],
    ['kubectl-broker', join(root, 'bin', 'kubectl-broker.js')],
  ]) {
    const launcher = join(bin, command!);
    writeFileSync(launcher, `#!/bin/sh\nexec ${shellQuote(process.execPath)} ${shellQuote(script!)} "$@"\n`);
    chmodSync(launcher, 0o755);
  }
  const file = join(root, '.tools', 'env.sh');
  writeFileSync(
    file,
    [
      '# Written by `make run` for the kcp it started; source it in another terminal.',
      `export KUBECONFIG=${shellQuote(kubeconfig)}`,
      `export KCP=${shellQuote(origin)}`,
      `export PATH=${shellQuote(`${bin}:${dirname(process.execPath)}:${kcpCacheDir()}`)}:"$PATH"`,
      '',
    ].join('\n'),
  );
  return file;
}

/** A POSIX shell word for any string: single quotes, each ' written as '\''. */
function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}
