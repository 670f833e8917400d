import 'vitest';
import type { TestProject } from 'vitest/node';
import { LocalKcp } from '../../hack/kcp/local-kcp.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    kcp: { kubeconfig: string; serverOrigin: string; rootDirectory: string };
  }
}

/** Starts one real kcp for the e2e run (or uses KCP_KUBECONFIG's) and stops it afterwards. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const reuse = process.env['KCP_KUBECONFIG'];
  if (reuse) {
    // A kcp the developer already runs (hack/start-kcp.ts): faster iteration, same tests.
    project.provide('kcp', { kubeconfig: reuse, serverOrigin: '', rootDirectory: '' });
    return async () => undefined;
  }
  const kcp = new LocalKcp({ verbose: process.env['KCP_VERBOSE'] === '1' });
  const started = Date.now();
  await kcp.start();
  process.stderr.write(`kcp ready on ${kcp.serverOrigin} in ${Date.now() - started} ms (root ${kcp.rootDirectory})\n`);
  project.provide('kcp', { kubeconfig: kcp.kubeconfig, serverOrigin: kcp.serverOrigin, rootDirectory: kcp.rootDirectory });
  return async () => {
    await kcp.stop();
  };
}
