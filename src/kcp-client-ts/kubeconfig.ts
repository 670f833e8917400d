/**
 * Reading a kubeconfig: the server, TLS material and credentials of its current (or a named)
 * context, resolved by @kubernetes/client-node (exec plugins, token files, client certificates).
 *
 * Why a child process can do it: loading @kubernetes/client-node adds about 85 MiB to a Node
 * process's RSS for good (its generated API models load with it, and the memory is not given
 * back to the OS even when the loading thread ends). The broker reads its kubeconfig once at start
 * (as before: credentials are not refreshed), so a long-running command reads it in a short-lived
 * child (`isolated`) and never loads the library itself.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export type KubeconfigTarget = { path?: string | undefined; context?: string | undefined };

/** What a kubeconfig context resolves to; PEM text for the TLS material. */
export type ServerCredentials = {
  server: string;
  ca?: string;
  cert?: string;
  key?: string;
  token?: string;
  insecureSkipTLSVerify: boolean;
};

const pem = (value: Buffer | string | undefined): string | undefined => (value === undefined ? undefined : String(value));

/** Resolves the context in this process (loads @kubernetes/client-node here). */
export const readKubeconfig = async ({ path, context }: KubeconfigTarget): Promise<ServerCredentials> => {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const config = new KubeConfig();
  if (path) config.loadFromFile(path);
  else config.loadFromDefault();
  if (context) config.setCurrentContext(context);
  const cluster = config.getCurrentCluster();
  if (!cluster) throw new Error(`kubeconfig ${path ?? '(default)'}: no cluster for context ${config.getCurrentContext()}`);
  const tls: { ca?: Buffer | string; cert?: Buffer | string; key?: Buffer | string; headers?: Record<string, string> } = {};
  await config.applyToHTTPSOptions(tls);
  const authorization = tls.headers?.['Authorization'] ?? tls.headers?.['authorization'];
  const token = authorization?.replace(/^Bearer\s+/i, '');
  const [ca, cert, key] = [pem(tls.ca), pem(tls.cert), pem(tls.key)];
  return {
    server: cluster.server,
    insecureSkipTLSVerify: cluster.skipTLSVerify ?? false,
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    ...(token ? { token } : {}),
  };
};

type ChildAnswer = { credentials: ServerCredentials } | { error: string };

const THIS_FILE = fileURLToPath(import.meta.url);

/**
 * Resolves the context in a child Node process running this file (see the file comment). The
 * answer comes over the IPC channel, not stdout: anything the child or a NODE_OPTIONS flag prints
 * (--trace-gc, a preload's banner) cannot corrupt it. stdout and stderr are the caller's, so what
 * the library or an exec plugin says shows; no execArgv is passed on (an --inspect port would clash).
 */
export const readKubeconfigIsolated = (target: KubeconfigTarget): Promise<ServerCredentials> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [THIS_FILE, JSON.stringify(target)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let answer: ChildAnswer | undefined;
    child.on('message', (message) => {
      answer = message as ChildAnswer;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (!answer) reject(new Error(`reading the kubeconfig in a child process failed (exit ${signal ?? code}) without an answer`));
      else if ('error' in answer) reject(new Error(answer.error));
      else resolve(answer.credentials);
    });
  });

// The child: one target as JSON in argv, one answer over IPC. (argv, not import.meta.main: Node
// before 24.2 lacks it.)
if (process.argv[1] === THIS_FILE && process.send) {
  const answer = await readKubeconfig(JSON.parse(process.argv[2] ?? '{}') as KubeconfigTarget).then(
    (credentials): ChildAnswer => ({ credentials }),
    (err: unknown): ChildAnswer => ({ error: err instanceof Error ? err.message : String(err) }),
  );
  process.send(answer, () => process.disconnect());
}
