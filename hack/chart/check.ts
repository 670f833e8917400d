// `make chart`: helm lint, and `helm template` validated offline against the Kubernetes API
// schemas (kubeconform, strict), for the default values and every file in deploy/chart/ci/.
// Also checks that the broker accepts the flags the chart renders, and that the chart refuses
// values that cannot work. Exits non-zero with the failing command's output.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { parseFlags, runSettings } from '../../src/cli/flags.ts';
import { schemaLocation, writeCrdSchemas, writeOpenApiSchemas } from './kube-schemas.ts';

const root = join(import.meta.dirname, '..', '..');
const chart = join(root, 'deploy', 'chart');
const [toolsDir, openapiDir, serviceMonitorCrd] = execFileSync(join(root, 'hack', 'chart-tools.sh'), { encoding: 'utf8' })
  .trim()
  .split('\n') as [string, string, string];
const helm = join(toolsDir, 'helm');
const kubeconform = join(toolsDir, 'kubeconform');

// Schemas are written once per tools folder (it names the pinned versions) and generator version.
const generator = createHash('sha256')
  .update(readFileSync(join(import.meta.dirname, 'kube-schemas.ts')))
  .digest('hex')
  .slice(0, 12);
const schemas = join(toolsDir, `schemas-${generator}`);
if (!existsSync(schemas)) {
  const partial = `${schemas}.partial`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  const kube = writeOpenApiSchemas(openapiDir, partial);
  const kinds = kube.written + writeCrdSchemas(serviceMonitorCrd, partial, kube.objectMeta);
  renameSync(partial, schemas);
  console.log(`wrote ${kinds} JSON schemas into ${schemas}`);
}

const run = (cmd: string, args: string[], input?: string): string => {
  const result = spawnSync(cmd, args, { encoding: 'utf8', ...(input !== undefined ? { input } : {}) });
  if (result.status !== 0) {
    console.error(`${cmd} ${args.join(' ')} failed:\n${result.stdout}${result.stderr}`);
    process.exit(1);
  }
  return result.stdout;
};

type Rendered = {
  kind?: string;
  spec?: {
    strategy?: { type?: string };
    template?: { spec?: { terminationGracePeriodSeconds?: number; containers?: { args?: string[] }[] } };
  };
};

const cases: [string, string[]][] = [
  ['defaults (with a Secret named)', ['--set', 'kcp.existingSecret=kcp-kubeconfig']],
  ...readdirSync(join(chart, 'ci'))
    .filter((f) => f.endsWith('.yaml'))
    .map((f): [string, string[]] => [`ci/${f}`, ['--values', join(chart, 'ci', f)]]),
];
for (const [name, values] of cases) {
  run(helm, ['lint', '--strict', chart, ...values]);
  const manifests = run(helm, ['template', 'rb', chart, '--namespace', 'resource-broker', ...values]);
  console.log(
    run(kubeconform, ['-strict', '-summary', '-schema-location', schemaLocation(schemas), '-output', 'text', '-'], manifests).trim(),
    `(${name})`,
  );
  const deployment = parseAllDocuments(manifests)
    .map((d) => d.toJSON() as Rendered)
    .find((d) => d?.kind === 'Deployment');
  const [command, ...flags] = deployment?.spec?.template?.spec?.containers?.[0]?.args ?? [];
  if (command !== 'run') throw new Error(`${name}: the Deployment does not run "resource-broker run"`);
  // The broker's own parser: every flag the chart renders exists and has a valid value.
  const settings = runSettings(parseFlags('run', flags));
  // The kubelet waits longer than the broker's own bound on stopping (src/cli/main.ts), so the Lease is released.
  const bound = settings.gracefulShutdownSeconds + (settings.leaderElect ? settings.renewDeadlineSeconds : 0) + 5;
  const grace = deployment?.spec?.template?.spec?.terminationGracePeriodSeconds ?? 30;
  if (grace <= bound) throw new Error(`${name}: terminationGracePeriodSeconds ${grace} is not above the broker's stop bound ${bound} s`);
  // Without the Lease nothing fences an old and a new pod: they must never run together.
  if (!settings.leaderElect && deployment?.spec?.strategy?.type !== 'Recreate')
    throw new Error(`${name}: without leader election the Deployment must use the Recreate strategy`);
}

// Values that cannot work are refused at install time, with a message naming what to set.
for (const [name, values, expected] of [
  ['no kubeconfig', [], 'set kcp.existingSecret'],
  ['two leaders', ['--set', 'kcp.existingSecret=k', '--set', 'leaderElection.enabled=false'], 'leaderElection.enabled'],
] as const) {
  const result = spawnSync(helm, ['template', 'rb', chart, ...values], { encoding: 'utf8' });
  if (result.status === 0 || !result.stderr.includes(expected)) {
    console.error(`helm template with ${name} should fail naming "${expected}", got: ${result.status} ${result.stderr}`);
    process.exit(1);
  }
}
// A ServiceMonitor's metadata is checked as ObjectMeta (labels are strings).
const numericLabel = run(helm, [
  'template',
  'rb',
  chart,
  '--set',
  'kcp.existingSecret=k',
  '--set',
  'serviceMonitor.enabled=true',
  '--set',
  'serviceMonitor.labels.tier=1',
]);
const badLabel = spawnSync(kubeconform, ['-strict', '-schema-location', schemaLocation(schemas), '-'], {
  input: numericLabel,
  encoding: 'utf8',
});
if (badLabel.status === 0) {
  console.error(`kubeconform accepted a ServiceMonitor label that is a number: ${badLabel.stdout}`);
  process.exit(1);
}
// The schemas are strict, so a field Kubernetes does not know fails (the check is not vacuous).
const unknownField = run(helm, ['template', 'rb', chart, '--set', 'kcp.existingSecret=k', '--set', 'podSecurityContext.bogus=1']);
const refused = spawnSync(kubeconform, ['-strict', '-schema-location', schemaLocation(schemas), '-'], {
  input: unknownField,
  encoding: 'utf8',
});
if (refused.status === 0 || !refused.stdout.includes("additional properties 'bogus' not allowed")) {
  console.error(`kubeconform accepted an unknown field: ${refused.stdout}${refused.stderr}`);
  process.exit(1);
}
console.log('chart: lint, schemas, broker flags and refused values all pass');
