/**
 * A sharded kcp for one e2e file (hack/kcp/sharded-kcp.ts): the file starts it in beforeAll and
 * stops it in afterAll; the run's single kcp (global-setup.ts) is not involved. Also: creating a
 * workspace on a named shard, and telling which shard a workspace landed on.

 */
import { createHash } from 'node:crypto';
import { ShardedKcp, type ShardedKcpOptions, type ShardInfo } from '../../hack/kcp/sharded-kcp.ts';
import { KcpEndpoint } from '../../src/kcp-client-ts/endpoint.ts';
import { type EnsureWorkspaceOptions, type ReadyWorkspace, type ShardSelector, Workspaces } from '../../src/kcp-client-ts/workspaces.ts';

export type ShardedEnv = {
  kcp: ShardedKcp;
  /** Admin (token file) through the front-proxy: what users and the broker see. */
  endpoint: KcpEndpoint;
  workspaces: Workspaces;
  /** Token-admin kubeconfig through the front-proxy (context root). */
  kubeconfig: string;
  shards: ShardInfo[];
  /** Admin straight to one shard, bypassing the front-proxy (for assertions and debugging). */
  shardEndpoint: (shard: string) => KcpEndpoint;
  stop: () => Promise<void>;
};

/** Starts cache server, shards and front-proxy; prints how long that took and the memory it uses. */
export const startShardedKcpForFile = async (options: ShardedKcpOptions = {}): Promise<ShardedEnv> => {
  const kcp = new ShardedKcp({ verbose: process.env['KCP_VERBOSE'] === '1', ...options });
  const started = Date.now();
  await kcp.start();
  const rss = kcp.rssKiB();
  const totalMiB = Math.round(Object.values(rss).reduce((a, b) => a + b, 0) / 1024);
  process.stderr.write(
    `sharded kcp ready in ${Date.now() - started} ms (${JSON.stringify(kcp.timings)}); front-proxy ${kcp.serverOrigin}, ` +
      `shards ${kcp.shards.map((s) => `${s.name}=${s.origin}`).join(' ')}; RSS ${totalMiB} MiB ${JSON.stringify(rss)} KiB; root ${kcp.rootDirectory}\n`,
  );
  const endpoint = await KcpEndpoint.fromKubeconfig({ path: kcp.kubeconfig });
  const direct = new Map<string, KcpEndpoint>();
  for (const s of kcp.shards) direct.set(s.name, await KcpEndpoint.fromKubeconfig({ path: s.kubeconfig }));
  return {
    kcp,
    endpoint,
    workspaces: new Workspaces({ endpoint }),
    kubeconfig: kcp.kubeconfig,
    shards: kcp.shards,
    shardEndpoint: (shard) => {
      const e = direct.get(shard);
      if (!e) throw new Error(`no shard ${shard} (have ${[...direct.keys()].join(', ')})`);
      return e;
    },
    stop: async () => {
      // A BrokerWorld on this endpoint closes it in its cleanup already.
      await Promise.allSettled([endpoint.close(), ...[...direct.values()].map((e) => e.close())]);
      await kcp.stop();
    },
  };
};

/** The selector that pins a workspace to one shard: kcp labels every Shard `name: <shard name>`. */
export const shardSelector = (shard: string): ShardSelector => ({ matchLabels: { name: shard } });

/** Creates `parent:name` on the named shard (spec.location) unless it exists, then waits until it is Ready. */
export const ensureWorkspaceOnShard = (
  endpoint: KcpEndpoint,
  parent: string,
  name: string,
  shard: string,
  options: EnsureWorkspaceOptions = {},
): Promise<ReadyWorkspace> => new Workspaces({ endpoint }).ensure(parent, name, { ...options, location: shardSelector(shard) });

/**
 * kcp's value of a scheduled Workspace's `internal.tenancy.kcp.io/shard` annotation for a shard:
 * the first 8 characters of base36(sha224(shard name)), lower case (kcp's ByBase36Sha224NameValue).
 */
export const shardNameHash = (shard: string): string => {
  const digest = createHash('sha224').update(shard).digest();
  let base36 = BigInt(`0x${digest.toString('hex')}`).toString(36);
  for (const byte of digest) {
    if (byte !== 0) break;
    base36 = `0${base36}`;
  }
  return base36.slice(0, 8);
};

/** Which of `shards` the workspace `parent:name` was scheduled to, from its shard annotation. */
export const shardOfWorkspace = async (
  endpoint: KcpEndpoint,
  parent: string,
  name: string,
  shards: string[],
): Promise<string | undefined> => {
  const ws = await new Workspaces({ endpoint }).get(parent, name);
  const hash = ws?.metadata?.annotations?.['internal.tenancy.kcp.io/shard'];
  return shards.find((s) => shardNameHash(s) === hash);
};
