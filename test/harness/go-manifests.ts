import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { KubeObject } from '../../src/kcp-client-ts/types.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'go-project');

/**
 * A manifest in a shape the Go project publishes: the project's own fixture, or, with
 * RB_UPSTREAM_EXAMPLES set, the Go project's published file of that name, read unchanged.
 */
export const goManifest = <T extends KubeObject>(fixture: string, upstreamFile: string): T => {
  const upstream = process.env['RB_UPSTREAM_EXAMPLES'];
  const path = upstream ? join(upstream, upstreamFile) : join(FIXTURES, fixture);
  if (!existsSync(path)) throw new Error(`${path} is missing (RB_UPSTREAM_EXAMPLES=${upstream ?? ''})`);
  return parse(readFileSync(path, 'utf8')) as T;
};

type CrdVersion = {
  name: string;
  served: boolean;
  storage: boolean;
  schema?: { openAPIV3Schema?: unknown };
  [field: string]: unknown;
};
type CrdSpec = { group: string; names: { plural: string }; scope: string; versions: CrdVersion[]; conversion?: unknown };

/**
 * What `kubectl kcp crd snapshot --prefix <prefix>` makes of a CustomResourceDefinition (the Go
 * project's run.bash publishes its example APIs that way): an APIResourceSchema
 * `<prefix>.<plural>.<group>` with the CRD's group, names, scope and versions, each version's
 * `schema.openAPIV3Schema` as its `schema`.
 */
export const crdSnapshot = (crd: KubeObject, prefix: string): KubeObject => {
  const spec = crd['spec'] as CrdSpec;
  return {
    apiVersion: 'apis.kcp.io/v1alpha1',
    kind: 'APIResourceSchema',
    metadata: { name: `${prefix}.${spec.names.plural}.${spec.group}` },
    spec: {
      conversion: spec.conversion ?? { strategy: 'None' },
      group: spec.group,
      names: spec.names,
      scope: spec.scope,
      versions: spec.versions.map(({ schema, ...version }) => ({ ...version, schema: schema?.openAPIV3Schema ?? {} })),
    },
  };
};
