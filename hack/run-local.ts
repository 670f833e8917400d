/**
 * `make run`: a local kcp on 127.0.0.1, the broker's workspaces and APIs bootstrapped (with
 * the example APIs), and `resource-broker run` against it, until Ctrl-C.
 *
 * RB_KCP_SHARDS=2 (opt-in): a sharded kcp instead (cache server, shards root and shard-1,
 * front-proxy; hack/kcp/sharded-kcp.ts); the broker talks to the front-proxy.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
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
broker = spawn(process.execPath, [cli, 'run'], { env, stdio: 'inherit' });
const plugins = kcpCacheDir();
console.error(`
resource-broker is running against kcp on ${kcp.serverOrigin}.

In another terminal:
  export KUBECONFIG=${kcp.kubeconfig} PATH=${plugins}:$PATH
  kubectl get apiexports --server ${kcp.serverOrigin}/clusters/root:platform
  # a provider: bind acceptapis, serve certificates, accept *.internal.corp
  # a consumer: kubectl kcp bind apiexport root:platform:certificates
  # see examples/ and README.md ("Walkthrough") for the full steps

Ctrl-C stops the broker and kcp.
`);
broker.on('exit', (code) => {
  if (!stopping) {
    console.error(`resource-broker exited with code ${code}`);
    void kcp.stop().then(() => process.exit(code ?? 1));
  }
});
