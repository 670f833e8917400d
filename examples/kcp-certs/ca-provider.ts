/**
 * A certificate provider: serves the `certificates` APIExport from its workspace and issues a
 * real X.509 certificate from its own CA for each Certificate, into a Secret it publishes
 * through `status.relatedResources.secret`. Run one per provider workspace:
 *   node examples/kcp-certs/ca-provider.ts --kubeconfig K --workspace root:internalca --ca-name internalca
 */
import { parseArgs } from 'node:util';
import { TestProvider } from '../test-provider/provider.ts';
import { KcpEndpoint } from '../../src/kcp-client-ts/endpoint.ts';
import type { KubeObject } from '../../src/kcp-client-ts/types.ts';
import { createLogger } from '../../src/logging.ts';
import { CertificateAuthority } from './ca.ts';

/** A provider whose Secret holds tls.crt/tls.key/ca.crt for `spec.fqdn`, re-issued when the fqdn changes. */
export const startCaProvider = async (options: { endpoint: KcpEndpoint; workspace: string; caName: string }): Promise<TestProvider> => {
  const ca = await CertificateAuthority.create(options.caName);
  const provider = new TestProvider({
    endpoint: options.endpoint,
    workspace: options.workspace,
    exportName: 'certificates',
    gvr: { group: 'example.platform-mesh.io', version: 'v1alpha1', resource: 'certificates' },
    logger: createLogger({ level: 'warn', name: options.caName }),
    secretData: async (obj: KubeObject, current) => {
      const fqdn = (obj['spec'] as { fqdn: string }).fqdn;
      if (current?.['tls.crt'] && CertificateAuthority.subjectCN(current['tls.crt']) === fqdn && current['ca.crt'] === ca.certificatePem)
        return current;
      return ca.issue(fqdn);
    },
  });
  provider.start();
  return provider;
};

if (import.meta.main) {
  const { values } = parseArgs({
    options: { kubeconfig: { type: 'string' }, workspace: { type: 'string' }, 'ca-name': { type: 'string' } },
  });
  if (!values.workspace || !values['ca-name']) {
    console.error('usage: ca-provider.ts --kubeconfig K --workspace root:internalca --ca-name internalca');
    process.exit(2);
  }
  const endpoint = await KcpEndpoint.fromKubeconfig({ path: values.kubeconfig });
  const provider = await startCaProvider({ endpoint, workspace: values.workspace, caName: values['ca-name'] });
  console.error(`${values['ca-name']}: serving certificates from ${values.workspace}`);
  process.once('SIGTERM', () => void provider.stop().then(() => process.exit(0)));
  process.once('SIGINT', () => void provider.stop().then(() => process.exit(0)));
}
