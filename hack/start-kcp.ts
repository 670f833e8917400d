/**
 * Starts a local kcp on 127.0.0.1 and keeps it running until Ctrl-C (for development and
 * `make run`). Prints the kubeconfig to use.
 */
import { parseArgs } from 'node:util';
import { LocalKcp } from './kcp/local-kcp.ts';

const { values } = parseArgs({ options: { root: { type: 'string' }, verbose: { type: 'boolean', default: false } } });
const kcp = new LocalKcp({ ...(values.root ? { rootDirectory: values.root } : {}), verbose: values.verbose });
await kcp.start();
console.log(`kcp is ready on ${kcp.serverOrigin}\n  export KUBECONFIG=${kcp.kubeconfig}`);
const stop = async (): Promise<void> => {
  await kcp.stop();
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
setInterval(() => undefined, 1 << 30);
