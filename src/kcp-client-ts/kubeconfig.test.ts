import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readKubeconfig, readKubeconfigIsolated } from './kubeconfig.ts';

const CA = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';

const kubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: kcp
  cluster:
    server: https://127.0.0.1:6443/clusters/root
    certificate-authority-data: ${Buffer.from(CA).toString('base64')}
- name: other
  cluster:
    server: https://127.0.0.1:7443
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: admin-token
- name: broker
  user:
    token: broker-token
contexts:
- name: root
  context: {cluster: kcp, user: admin}
- name: elsewhere
  context: {cluster: other, user: broker}
current-context: root
`;

const write = async (text: string): Promise<string> => {
  const path = join(await mkdtemp(join(tmpdir(), 'kubeconfig-')), 'config');
  await writeFile(path, text);
  return path;
};

describe('reading a kubeconfig', () => {
  it('resolves the current context: server, CA as PEM, bearer token', async () => {
    const path = await write(kubeconfig);
    expect(await readKubeconfig({ path })).toEqual({
      server: 'https://127.0.0.1:6443/clusters/root',
      ca: CA,
      token: 'admin-token',
      insecureSkipTLSVerify: false,
    });
  });

  it('gives the same answer from a child process, for the current and a named context', async () => {
    const path = await write(kubeconfig);
    expect(await readKubeconfigIsolated({ path })).toEqual(await readKubeconfig({ path }));
    expect(await readKubeconfigIsolated({ path, context: 'elsewhere' })).toEqual({
      server: 'https://127.0.0.1:7443',
      token: 'broker-token',
      insecureSkipTLSVerify: true,
    });
  });

  it("passes the library's error through from the child: a missing file, an unknown context", async () => {
    const missing = join(tmpdir(), 'no-such-dir-rb', 'config');
    await expect(readKubeconfigIsolated({ path: missing })).rejects.toThrow(/no-such-dir-rb/);
    const path = await write(kubeconfig);
    await expect(readKubeconfigIsolated({ path, context: 'nope' })).rejects.toThrow(/nope/);
  });
});
