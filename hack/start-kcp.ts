/**
 * Starts a local kcp on 127.0.0.1 and keeps it running until Ctrl-C (for development and
 * `make run`). Prints the kubeconfig to use.
 *
 * `--shards N` (or RB_KCP_SHARDS=N), N >= 2: a sharded kcp instead (hack/kcp/sharded-kcp.ts):
 * a cache server, shards root, shard-1, ... and a kcp-front-proxy; the printed kubeconfig talks
 * to the front-proxy, and each shard's own kubeconfig is printed for debugging.
 */
import { parseArgs } from 'node:util';
import { localKcp, ShardedKcp, shardsFromEnv } from './kcp/sharded-kcp.ts';

const { values } = parseArgs({
  options: {
    root: { type: 'string' },
    verbose: { type: 'boolean', default: false },
    shards: { type: 'string' },
  },
});
const shards = values.shards === undefined ? shardsFromEnv() : Number(values.shards);
if (!Number.isInteger(shards) || shards < 1) throw new Error(`--shards must be a whole number >= 1, got ${values.shards}`);
const kcp = localKcp(shards, { ...(values.root ? { rootDirectory: values.root } : {}), verbose: values.verbose });
// Installed before the start: a Ctrl-C while kcp starts must stop it too, not orphan it.
const stop = async (): Promise<void> => {
  await kcp.stop();
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
await kcp.start();
console.log(`kcp is ready on ${kcp.serverOrigin}\n  export KUBECONFIG=${kcp.kubeconfig}`);
if (kcp instanceof ShardedKcp) {
  console.log(`front-proxy on ${kcp.serverOrigin}, started in ${kcp.timings['total']} ms; shards (direct, for debugging):`);
  for (const s of kcp.shards) console.log(`  ${s.name}: ${s.origin}  KUBECONFIG=${s.kubeconfig}`);
}
setInterval(() => undefined, 1 << 30);
