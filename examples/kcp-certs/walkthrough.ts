/**
 * `make example`: the kcp-certs walkthrough end to end on a local kcp, with kubectl and the kcp
 * plugins where a person would use them. Fails (exit 1) when any step does not hold.
 */
import { execFile as execFileCallback, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Informer } from '../../src/runtime/informer.ts';
import { KcpEndpoint } from '../../src/kcp-client-ts/endpoint.ts';
import { ResourceClient } from '../../src/kcp-client-ts/resources.ts';
import { Applier } from '../../src/kcp-client-ts/apply.ts';
import { Workspaces } from '../../src/kcp-client-ts/workspaces.ts';
import { APIEXPORTS_DIR, loadManifests } from '../../src/broker/manifests.ts';
import type { KubeObject } from '../../src/kcp-client-ts/types.ts';
import { kcpCacheDir, LocalKcp } from '../../hack/kcp/local-kcp.ts';
import { startCaProvider } from './ca-provider.ts';

// Asynchronous on purpose: a blocked event loop would stop draining kcp's log pipe and stall kcp.
const execFile = promisify(execFileCallback);
const here = import.meta.dirname;
const root = join(here, '..', '..');
const step = (text: string): void => void console.log(`\n==> ${text}`);

const kcp = new LocalKcp();
const children: ReturnType<typeof spawn>[] = [];
const providers: { stop(): Promise<void> }[] = [];
let failed = false;
try {
  step('start kcp on 127.0.0.1');
  await kcp.start();
  const env = { ...process.env, KUBECONFIG: kcp.kubeconfig, PATH: `${kcpCacheDir()}:${process.env['PATH']}` };
  const kubectl = async (...args: string[]): Promise<string> => {
    console.log(`$ kubectl ${args.join(' ')}`);
    const { stdout } = await execFile('kubectl', args, { env, encoding: 'utf8' });
    if (stdout.trim()) console.log(stdout.trim());
    return stdout;
  };
  const at = (workspace: string): string[] => ['--server', `${kcp.serverOrigin}/clusters/${workspace}`];
  const endpoint = await KcpEndpoint.fromKubeconfig({ path: kcp.kubeconfig });
  const workspaces = new Workspaces({ endpoint });

  step('platform: bootstrap the broker and publish the certificates API from root:platform');
  await execFile(process.execPath, [join(root, 'bin', 'resource-broker.js'), 'bootstrap', '--examples', '--log-level', 'warn'], {
    env: { ...env, RB_KUBECONFIG: kcp.kubeconfig },
  });
  const broker = spawn(
    process.execPath,
    [
      join(root, 'bin', 'resource-broker.js'),
      'run',
      '--log-level',
      'warn',
      '--metrics-bind-address',
      'off',
      '--health-probe-bind-address',
      'off',
    ],
    {
      env: { ...env, RB_KUBECONFIG: kcp.kubeconfig },
      stdio: 'inherit',
    },
  );
  children.push(broker);

  for (const ca of ['internalca', 'externalca']) {
    step(`provider ${ca}: serve certificates, bind acceptapis, accept its domain`);
    await workspaces.ensure('root', ca);
    const applier = new Applier({ endpoint });
    for (const obj of await loadManifests(join(APIEXPORTS_DIR, 'examples'))) {
      if (obj.metadata.name === 'certificates' || obj.metadata.name === 'v1alpha1-3.certificates.example.platform-mesh.io')
        await applier.apply(`root:${ca}`, obj);
    }
    await kubectl('kcp', 'bind', 'apiexport', 'root:platform:acceptapis', '--accept-all-permission-claims', ...at(`root:${ca}`));
    await kubectl('apply', '-f', join(here, `${ca}-acceptapi.yaml`), ...at(`root:${ca}`));
    providers.push(await startCaProvider({ endpoint, workspace: `root:${ca}`, caName: ca }));
  }

  step('consumer: bind the certificates API and ask for app.internal.corp');
  await workspaces.ensure('root', 'consumer');
  await kubectl('kcp', 'bind', 'apiexport', 'root:platform:certificates', '--accept-all-permission-claims', ...at('root:consumer'));
  await kubectl('apply', '-f', join(here, 'certificate.yaml'), ...at('root:consumer'));

  const secrets = new ResourceClient({
    endpoint,
    baseUrl: endpoint.workspaceUrl('root:consumer'),
    gvr: { group: '', version: 'v1', resource: 'secrets' },
  });
  const deletions: string[] = [];
  const watch = new Informer<KubeObject>({ name: 'consumer secrets', source: secrets });
  watch.onEvent((e) => {
    if (e.type === 'deleted' && e.object.metadata.name === 'app-credentials') deletions.push(new Date().toISOString());
  });
  const stopWatch = new AbortController();
  void watch.run(stopWatch.signal);
  await watch.waitForSync();

  const dir = mkdtempSync(join(tmpdir(), 'kcp-certs-'));
  const waitForCertificate = async (cn: string, issuer: string): Promise<void> => {
    const deadline = Date.now() + 120_000;
    let last = 'no Secret yet';
    while (Date.now() < deadline) {
      const secret = watch.store.list((s) => s.metadata.namespace === 'default' && s.metadata.name === 'app-credentials')[0];
      const crt = (secret?.['data'] as Record<string, string> | undefined)?.['tls.crt'];
      if (crt) {
        const file = join(dir, 'tls.crt');
        writeFileSync(file, Buffer.from(crt, 'base64'));
        const { stdout: subject } = await execFile('openssl', ['x509', '-in', file, '-noout', '-subject', '-issuer'], { encoding: 'utf8' });
        last = subject.trim().replace(/\n/g, '; ');
        if (subject.includes(`CN = ${cn}`) && subject.includes(`issuer=CN = ${issuer}`)) {
          console.log(`$ openssl x509 -in tls.crt -noout -subject -issuer\n${subject.trim()}`);
          return;
        }
      }
      await sleep(250);
    }
    throw new Error(`Secret app-credentials never held a certificate for CN=${cn} from ${issuer} (last: ${last})`);
  };

  step('the consumer gets a Secret whose certificate has CN=app.internal.corp, issued by internalca');
  await waitForCertificate('app.internal.corp', 'internalca');
  await kubectl('get', 'certificates', '-n', 'default', ...at('root:consumer'));

  step('the consumer moves to app.corp.com: make-before-break to externalca');
  await kubectl(
    'patch',
    'certificate',
    'app',
    '-n',
    'default',
    '--type',
    'merge',
    '-p',
    '{"spec":{"fqdn":"app.corp.com"}}',
    ...at('root:consumer'),
  );
  await waitForCertificate('app.corp.com', 'externalca');
  await kubectl('get', 'certificates', '-n', 'default', ...at('root:consumer'));
  stopWatch.abort();
  if (deletions.length > 0) throw new Error(`the consumer's Secret disappeared during the move (${deletions.join(', ')})`);
  console.log('\nkcp-certs walkthrough: every step held (the Secret never disappeared).');
  await endpoint.close();
} catch (err) {
  failed = true;
  console.error(`\nkcp-certs walkthrough FAILED: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  const started = Date.now();
  for (const p of providers) await p.stop();
  for (const child of children) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  await kcp.stop();
  console.log(`stopped the providers, the broker and kcp in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
process.exit(failed ? 1 : 0);
