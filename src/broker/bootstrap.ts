import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Applier } from '../kcp-client-ts/apply.ts';
import type { KcpEndpoint } from '../kcp-client-ts/endpoint.ts';
import type { KubeObject } from '../kcp-client-ts/types.ts';
import { Workspaces } from '../kcp-client-ts/workspaces.ts';
import type { Logger } from '../logging.ts';
import { splitPath, type BrokerPaths } from '../apis/paths.ts';
import { APIEXPORTS_DIR, loadManifests } from './manifests.ts';

export type BootstrapOptions = {
  endpoint: KcpEndpoint;
  paths: BrokerPaths;
  logger: Logger;
  /** Also publish the example brokered APIs (certificates, vms, dnszones) from the home workspace. */
  examples?: boolean;
};

/**
 * Creates the home, coordination, staging, verification and compute workspaces and applies the
 * broker's APIs to them. Idempotent: running it again changes nothing.
 */
export const bootstrap = async (options: BootstrapOptions): Promise<void> => {
  const { endpoint, paths, logger } = options;
  const workspaces = new Workspaces({ endpoint });
  for (const path of [paths.home, paths.coordination, paths.stagingRoot, paths.verificationRoot, paths.compute]) {
    const { parent, name } = splitPath(path);
    await workspaces.ensure(parent, name);
    logger.info({ workspace: path }, 'workspace ready');
  }
  const applier = new Applier({ endpoint });
  const apply = async (workspace: string, objects: KubeObject[]): Promise<void> => {
    for (const obj of objects) {
      const { changed } = await applier.apply(workspace, obj);
      logger.info({ workspace, kind: obj.kind, name: obj.metadata.name, changed }, 'applied');
    }
  };
  await apply(paths.home, await loadManifests(join(APIEXPORTS_DIR, 'broker')));
  if (options.examples ?? true) await apply(paths.home, await loadManifests(join(APIEXPORTS_DIR, 'examples')));
  const crds = await loadManifests(join(APIEXPORTS_DIR, 'coordination'));
  await apply(paths.coordination, crds);
  await waitForResources(
    endpoint,
    paths.coordination,
    'coord.broker.platform-mesh.io/v1alpha1',
    crds.map((c) => (c['spec'] as { names: { plural: string } }).names.plural),
  );
};

/** CRDs are served a moment after they are created: wait until discovery lists them. */
const waitForResources = async (endpoint: KcpEndpoint, workspace: string, groupVersion: string, plurals: string[]): Promise<void> => {
  const deadline = Date.now() + 60_000;
  while (true) {
    try {
      const list = await endpoint.json<{ resources: { name: string }[] }>({
        method: 'GET',
        url: `${endpoint.workspaceUrl(workspace)}/apis/${groupVersion}`,
      });
      if (plurals.every((p) => list.resources.some((r) => r.name === p))) return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline) throw new Error(`${workspace}: ${groupVersion} ${plurals.join(', ')} not served after 60 s`);
    await sleep(200);
  }
};
