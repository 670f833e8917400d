// Turns Kubernetes OpenAPI v3 documents and CRDs into the standalone, strict JSON schemas
// kubeconform reads from a folder, one file per kind and version: `kind_group_version.json`
// (group "v1" for the core group, as kubeconform names it). Offline: the documents come from
// the kubernetes module the kcp build already downloads, the ServiceMonitor CRD from the
// prometheus-operator module, both through the Go module proxy.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

type Schema = { [key: string]: unknown };
type Gvk = { group: string; version: string; kind: string };

/** The file kubeconform looks for with the location template `{{ .ResourceKind }}_{{ .Group }}_{{ .ResourceAPIVersion }}.json`. */
export const schemaFileName = ({ group, version, kind }: Gvk): string => `${kind.toLowerCase()}_${group || version}_${version}.json`;

/** The template to pass as `-schema-location` for a folder written by `writeSchemas`. */
export const schemaLocation = (dir: string): string => join(dir, '{{ .ResourceKind }}_{{ .Group }}_{{ .ResourceAPIVersion }}.json');

const isObject = (v: unknown): v is Schema => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Rewrites one schema node for JSON Schema: references into `#/$defs/`, OpenAPI's `nullable`
 * into a null type, and (strict) no properties beyond the declared ones where an object
 * declares properties and does not keep unknown fields.
 */
const convert = (node: unknown): unknown => {
  if (Array.isArray(node)) return node.map(convert);
  if (!isObject(node)) return node;
  const out: Schema = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === '$ref' && typeof value === 'string') out[key] = value.replace('#/components/schemas/', '#/$defs/');
    else if (key === 'properties' && isObject(value))
      out[key] = Object.fromEntries(Object.entries(value).map(([name, s]) => [name, convert(s)]));
    else out[key] = convert(value);
  }
  if (out['nullable'] === true && typeof out['type'] === 'string') out['type'] = [out['type'], 'null'];
  if (isObject(out['properties']) && out['additionalProperties'] === undefined && out['x-kubernetes-preserve-unknown-fields'] !== true)
    out['additionalProperties'] = false;
  return out;
};

/** Every `#/components/schemas/` name `root` reaches, itself included. */
const closure = (root: string, all: Record<string, Schema>): Set<string> => {
  const seen = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item);
      return;
    }
    if (!isObject(node)) return;
    const ref = node['$ref'];
    if (typeof ref === 'string' && ref.startsWith('#/components/schemas/')) {
      const name = ref.slice('#/components/schemas/'.length);
      if (!seen.has(name) && all[name]) {
        seen.add(name);
        visit(all[name]);
      }
    }
    for (const value of Object.values(node)) visit(value);
  };
  seen.add(root);
  visit(all[root]);
  return seen;
};

const OBJECT_META = 'io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta';

/** ObjectMeta's schema with what it references, for the `metadata` of custom resources. */
type ObjectMetaSchema = { defs: Record<string, unknown> };

/**
 * Writes a schema per kind found in Kubernetes' OpenAPI v3 documents (`api/openapi-spec/v3`);
 * returns how many, and ObjectMeta's schema for `writeCrdSchemas`.
 */
export const writeOpenApiSchemas = (openapiDir: string, outDir: string): { written: number; objectMeta: ObjectMetaSchema } => {
  mkdirSync(outDir, { recursive: true });
  let written = 0;
  let objectMeta: ObjectMetaSchema | undefined;
  for (const file of readdirSync(openapiDir).filter((f) => f.endsWith('_openapi.json'))) {
    const doc = JSON.parse(readFileSync(join(openapiDir, file), 'utf8')) as { components?: { schemas?: Record<string, Schema> } };
    const all = doc.components?.schemas ?? {};
    if (!objectMeta && all[OBJECT_META])
      objectMeta = { defs: Object.fromEntries([...closure(OBJECT_META, all)].map((n) => [n, convert(all[n])])) };
    for (const [name, schema] of Object.entries(all)) {
      const gvks = (schema['x-kubernetes-group-version-kind'] as Gvk[] | undefined) ?? [];
      // Only top-level kinds (with apiVersion and kind), not option types that share a GVK.
      if (gvks.length !== 1 || !isObject(schema['properties']) || !('metadata' in schema['properties'])) continue;
      const defs = Object.fromEntries([...closure(name, all)].map((n) => [n, convert(all[n])]));
      writeFileSync(join(outDir, schemaFileName(gvks[0]!)), JSON.stringify({ ...(convert(schema) as Schema), $defs: defs }));
      written++;
    }
  }
  if (!objectMeta) throw new Error(`no ${OBJECT_META} schema in ${openapiDir}`);
  return { written, objectMeta };
};

/** Writes a schema per served version of each CustomResourceDefinition in `crdFile`, its metadata checked as ObjectMeta; returns how many. */
export const writeCrdSchemas = (crdFile: string, outDir: string, objectMeta: ObjectMetaSchema): number => {
  mkdirSync(outDir, { recursive: true });
  let written = 0;
  for (const doc of parseAllDocuments(readFileSync(crdFile, 'utf8'))) {
    const crd = doc.toJSON() as {
      kind?: string;
      spec?: { group: string; names: { kind: string }; versions: { name: string; schema?: { openAPIV3Schema?: Schema } }[] };
    };
    if (crd?.kind !== 'CustomResourceDefinition' || !crd.spec) continue;
    for (const version of crd.spec.versions) {
      const schema = version.schema?.openAPIV3Schema;
      if (!schema) continue;
      const gvk = { group: crd.spec.group, version: version.name, kind: crd.spec.names.kind };
      // A CRD's schema says only `metadata: {type: object}`; the API server checks ObjectMeta.
      const converted = convert(schema) as Schema;
      const properties = { ...(converted['properties'] as Schema), metadata: { $ref: `#/$defs/${OBJECT_META}` } };
      writeFileSync(join(outDir, schemaFileName(gvk)), JSON.stringify({ ...converted, properties, $defs: objectMeta.defs }));
      written++;
    }
  }
  return written;
};
