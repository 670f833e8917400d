/**
 * The broker as the non-admin identity `resource-broker` (token file of hack/kcp), holding only what
 * deploy/kcp-permissions grants: the grants a platform admin and each provider apply, and a
 * kubeconfig for that identity. Shared by the single-kcp and the sharded least-privilege tests.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TOKENS } from '../../hack/kcp/local-kcp.ts';
import { loadManifestFile } from '../../src/broker/manifests.ts';
import { Applier } from '../../src/kcp-client-ts/apply.ts';
import type { ReadyWorkspace } from '../../src/kcp-client-ts/workspaces.ts';
import type { BrokerWorld } from './broker-world.ts';
import { uniqueName } from './names.ts';

const PERMISSIONS_DIR = join(import.meta.dirname, '..', '..', 'deploy', 'kcp-permissions');

/** Applies deploy/kcp-permissions where its README says: the platform's workspaces, then each provider's. */
export const grantBrokerPermissions = async (world: BrokerWorld, providers: ReadyWorkspace[]): Promise<void> => {
  const applier = new Applier({ endpoint: world.endpoint });
  const grant = async (file: string, workspace: string): Promise<void> => {
    for (const obj of await loadManifestFile(join(PERMISSIONS_DIR, file))) await applier.apply(workspace, obj);
  };
  await grant('root.yaml', 'root');
  await grant('home.yaml', world.paths.home);
  await grant('coordination.yaml', world.paths.coordination);
  await grant('workspace-parent.yaml', world.paths.stagingRoot);
  await grant('staging-views.yaml', world.paths.stagingRoot);
  await grant('workspace-parent.yaml', world.paths.verificationRoot);
  await grant('compute.yaml', world.paths.compute);
  for (const p of providers) await grant('provider.yaml', p.path);
};

/** A copy of the admin kubeconfig that authenticates as the broker's identity instead (same servers). */
export const brokerKubeconfigFrom = async (adminKubeconfig: string): Promise<string> => {
  const admin = await readFile(adminKubeconfig, 'utf8');
  if (!admin.includes(TOKENS.admin.token)) throw new Error(`${adminKubeconfig} does not hold the admin token`);
  const path = join(tmpdir(), `${uniqueName('broker')}.kubeconfig`);
  await writeFile(path, admin.replaceAll(TOKENS.admin.token, TOKENS.broker.token), { mode: 0o600 });
  return path;
};
