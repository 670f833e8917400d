// `kubectl broker`: the kubectl plugin (an executable named kubectl-broker on PATH). It speaks
// kubectl's language (`explain certificate/app -n team`, the current context and workspace,
// --server, --context, --kubeconfig) and runs `resource-broker explain` with it.
import { KubeConfig } from '@kubernetes/client-node';
import { main } from './main.ts';

const USAGE = `kubectl broker: what the resource broker decided for an object, and why.

Usage:
  kubectl broker explain TYPE/NAME [-n NAMESPACE] [-o text|json]
  kubectl broker explain TYPE NAME ...

TYPE is a brokered resource as kubectl names it (certificate, certificates,
certificates.example.platform-mesh.io). The workspace is the current one (kubectl ws),
or the /clusters/<workspace> of --server.

Flags:
  -n, --namespace    namespace of the object (default: the context's, else "default")
  -o, --output       text or json
      --server       kcp URL of the consumer workspace, https://host/clusters/root:team
      --context      kubeconfig context; --kubeconfig: the kubeconfig file ($KUBECONFIG)
      --home, --coordination, --acceptapi-export: the broker's workspaces, when not the defaults
`;

/** kubectl's flags that take a value, with the explain flag each becomes ('' when only read here). */
const VALUE_FLAGS: Record<string, string> = {
  '-n': 'namespace',
  '--namespace': 'namespace',
  '-o': 'output',
  '--output': 'output',
  '--server': '',
  '-s': '',
  '--context': 'context',
  '--kubeconfig': 'kubeconfig',
  '--home': 'home',
  '--coordination': 'coordination',
  '--acceptapi-export': 'acceptapi-export',
};

class PluginUsageError extends Error {}

/** The workspace path in a kcp server URL (`https://host:6443/clusters/root:team` → `root:team`). */
export const workspaceOfServer = (server: string): string | undefined => {
  if (!URL.canParse(server)) throw new PluginUsageError(`the server "${server}" is not a URL`);
  const match = /\/clusters\/([^/]+)\/?$/.exec(new URL(server).pathname);
  return match?.[1];
};

/** `kubectl broker ...` arguments to `resource-broker explain` arguments. */
export const explainArgs = (
  argv: string[],
  kubeconfig: { currentServer?: string; currentNamespace?: string },
): { args: string[]; workspace: string } => {
  const [command, ...rest] = argv;
  if (command !== 'explain') throw new PluginUsageError(command ? `unknown command "${command}"` : 'a command is required');
  const flags = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    // --flag=value, -n=value, and kubectl's attached short form -nteam / -ojson.
    const short = /^-([nos])([^=].*)$/.exec(arg);
    const [flag, inline] = short
      ? [`-${short[1]}`, short[2]]
      : arg.startsWith('-') && arg.includes('=')
        ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
        : [arg];
    if (flag in VALUE_FLAGS) {
      const value = inline ?? rest[++i];
      if (value === undefined) throw new PluginUsageError(`${flag} needs a value`);
      flags.set(VALUE_FLAGS[flag] || flag.replace(/^-+/, ''), value);
    } else if (arg.startsWith('-')) throw new PluginUsageError(`unknown flag ${flag}`);
    else positional.push(arg);
  }
  const [type, name, extra] = positional[0]?.includes('/') ? [...positional[0].split('/'), positional[1]] : positional;
  if (!type || !name || extra !== undefined) throw new PluginUsageError('name one object: TYPE/NAME or TYPE NAME');
  const server = flags.get('server') ?? flags.get('s') ?? kubeconfig.currentServer;
  const workspace = server ? workspaceOfServer(server) : undefined;
  if (!workspace)
    throw new PluginUsageError(
      `no workspace: the server ${server ?? '(none)'} has no /clusters/<workspace>; enter one with "kubectl ws <workspace>" or pass --server`,
    );
  const namespace = flags.get('namespace') || kubeconfig.currentNamespace;
  const args = ['explain', '--workspace', workspace, '--resource', type, '--name', name];
  if (namespace) args.push('--namespace', namespace);
  for (const flag of ['output', 'context', 'kubeconfig', 'home', 'coordination', 'acceptapi-export']) {
    const value = flags.get(flag);
    if (value !== undefined) args.push(`--${flag}`, value);
  }
  return { args, workspace };
};

export const kubectlBroker = async (argv: string[]): Promise<number> => {
  if (argv.length === 0 || argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return argv.length === 0 ? 2 : 0;
  }
  try {
    // The kubeconfig is read here only for the current workspace and namespace; explain loads it again.
    const config = new KubeConfig();
    const file = argv.find((_, i) => argv[i - 1] === '--kubeconfig') ?? argv.find((a) => a.startsWith('--kubeconfig='))?.slice(13);
    if (file) config.loadFromFile(file);
    else config.loadFromDefault();
    const context = argv.find((_, i) => argv[i - 1] === '--context') ?? argv.find((a) => a.startsWith('--context='))?.slice(10);
    if (context) config.setCurrentContext(context);
    const { args } = explainArgs(argv, {
      currentServer: config.getCurrentCluster()?.server,
      currentNamespace: config.getContextObject(config.getCurrentContext())?.namespace,
    });
    return await main(args);
  } catch (err) {
    if (!(err instanceof PluginUsageError)) throw err;
    console.error(`kubectl broker: ${err.message}. See "kubectl broker --help".`);
    return 2;
  }
};
