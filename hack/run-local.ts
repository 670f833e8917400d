/**
 * `make run`: a local kcp on 127.0.0.1, the broker's workspaces and APIs bootstrapped (with
 * the example APIs), and `resource-broker run` against it, until Ctrl-C.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { kcpCacheDir, LocalKcp } from './kcp/local-kcp.ts';

const root = join(import.meta.dirname, '..');
const cli = join(root, 'bin', 'resource-broker.js');
const kcp = new LocalKcp();
console.error('starting kcp (first start takes ~30 s)...');
await kcp.start();
const env = { ...process.env, RB_KUBECONFIG: kcp.kubeconfig };
const bootstrapped = await new Promise<number>((resolve) =>
  spawn(process.execPath, [cli, 'bootstrap', '--examples'], { env, stdio: 'inherit' }).on('exit', (code) => resolve(code ?? 1)),
);
if (bootstrapped !== 0) {
  await kcp.stop();
  process.exit(bootstrapped);
}
const broker = spawn(process.execPath, [cli, 'run'], { env, stdio: 'inherit' });
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
let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  broker.kill('SIGTERM');
  await new Promise((resolve) => (broker.exitCode !== null ? resolve(undefined) : broker.once('exit', resolve)));
  await kcp.stop();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
broker.on('exit', (code) => {
  if (!stopping) {
    console.error(`resource-broker exited with code ${code}`);
    void kcp.stop().then(() => process.exit(code ?? 1));
  }
});
