import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { compileCel } from '../cel/cel.ts';
import { toCel } from '../cel/values.ts';
import { APIEXPORTS_DIR } from './manifests.ts';

/** The parts of an OpenAPI v3 schema this test reads. */
type Schema = {
  description?: unknown;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  maxItems?: number;
  maxLength?: number;
  'x-kubernetes-validations'?: { rule: string; message?: string }[];
};

type Manifest = {
  kind?: string;
  spec?: { names?: { plural?: string }; versions?: { name: string; schema?: Schema & { openAPIV3Schema?: Schema } }[] };
};

const REPO_DIR = join(APIEXPORTS_DIR, '..');

/** The broker's own APIs (`kubectl explain` must describe them): every file of these folders. */
const API_FILES = ['broker', 'coordination'].flatMap((folder) =>
  readdirSync(join(APIEXPORTS_DIR, folder))
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => `${folder}/${f}`),
);

/** The text of one of API_FILES. */
const readApiFile = (file: string): string => readFileSync(join(APIEXPORTS_DIR, file), 'utf8');

/** Fields of every object that Kubernetes describes itself: skipped at the top level only. */
const STANDARD_FIELDS = new Set(['apiVersion', 'kind', 'metadata']);

/** Every object of a YAML text, parsed with the `yaml` package as the broker's bootstrap does. */
const objectsOf = (name: string, text: string): Manifest[] =>
  parseAllDocuments(text).flatMap((doc) => {
    if (doc.errors.length > 0) throw new Error(`${name}: ${doc.errors[0]!.message}`);
    const obj = doc.toJS() as Manifest | null;
    return obj ? [obj] : [];
  });

/** The schema of every version of every APIResourceSchema and CRD of a file, by `<plural>` (`<plural>@<version>` when several). */
const schemasOf = (file: string, text: string): Map<string, Schema> => {
  const schemas = new Map<string, Schema>();
  for (const obj of objectsOf(file, text)) {
    if (obj.kind !== 'APIResourceSchema' && obj.kind !== 'CustomResourceDefinition') continue;
    const versions = obj.spec?.versions ?? [];
    for (const version of versions) {
      const name = `${obj.spec?.names?.plural ?? file}${versions.length > 1 ? `@${version.name}` : ''}`;
      const schema = obj.kind === 'APIResourceSchema' ? version.schema : version.schema?.openAPIV3Schema;
      if (!schema) throw new Error(`${file}: ${name} has no schema`);
      schemas.set(name, schema);
    }
  }
  return schemas;
};

const apiSchema = (file: string, name: string): Schema => {
  const schema = schemasOf(file, readApiFile(file)).get(name);
  if (!schema) throw new Error(`${file} has no schema ${name}`);
  return schema;
};

/**
 * Paths of the schema nodes without a description: the schema itself, its properties at every
 * depth (`assignments.spec.gvr.group`), array items (`...conditions[]`) and additionalProperties
 * (`...templates.*`); apiVersion, kind and metadata of the object are skipped.
 */
const undescribed = (schema: Schema, path: string, top = true): string[] => {
  const missing = typeof schema.description === 'string' && schema.description.trim() !== '' ? [] : [path];
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    if (top && STANDARD_FIELDS.has(name)) continue;
    missing.push(...undescribed(property, `${path}.${name}`, false));
  }
  if (schema.items) missing.push(...undescribed(schema.items, `${path}[]`, false));
  if (typeof schema.additionalProperties === 'object') missing.push(...undescribed(schema.additionalProperties, `${path}.*`, false));
  return missing;
};

/** The validation rule of a schema node whose message names `field`. */
const ruleNaming = (schema: Schema | undefined, field: string): { rule: string; message?: string } | undefined =>
  schema?.['x-kubernetes-validations']?.find((v) => v.message?.includes(field));

/**
 * Evaluates a validation rule with the broker's CEL (cel-js, not the API server's): enough to
 * tell what the rule accepts, on the shapes the schema allows.
 */
const holds = (rule: string, self: unknown): unknown => compileCel(rule)({ self: toCel(self) });

/** Every object of a kind in the repository's example and fixture manifests (the Go project's, applied unchanged). */
const manifestsOfKind = (kind: string): { file: string; spec: Record<string, unknown> }[] =>
  ['examples', 'test/fixtures/go-project'].flatMap((folder) =>
    readdirSync(join(REPO_DIR, folder), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.yaml'))
      .flatMap((f) => {
        const path = join(REPO_DIR, folder, f);
        return objectsOf(path, readFileSync(path, 'utf8'))
          .filter((obj) => obj.kind === kind)
          .map((obj) => ({ file: relative(REPO_DIR, path), spec: obj.spec as Record<string, unknown> }));
      }),
  );

describe("the broker's API schemas", () => {
  it.each(API_FILES)('%s describes every field, for kubectl explain', (file) => {
    const schemas = schemasOf(file, readApiFile(file));
    expect(schemas.size, `${file} holds no APIResourceSchema or CRD`).toBeGreaterThan(0);
    expect([...schemas].flatMap(([name, schema]) => undescribed(schema, name))).toEqual([]);
  });

  describe('AcceptAPI', () => {
    const filters = apiSchema('broker/acceptapis.yaml', 'acceptapis').properties?.['spec']?.properties?.['filters'];
    const matcherRule = ruleNaming(filters?.items, 'spec.filters');

    it('refuses a filter without a matcher (a key alone passes every object), and allows any combination', () => {
      expect(matcherRule, 'x-kubernetes-validations of spec.filters[] with a message naming spec.filters').toBeDefined();
      const rule = matcherRule!.rule;
      expect(holds(rule, { key: 'fqdn' })).toBe(false);
      for (const matcher of [
        { valueIn: ['eu-west'] },
        { valueIn: [] },
        { boundary: { min: 1 } },
        { suffix: '.corp.com' },
        { prefix: 'app.' },
        { expression: 'self.fqdn != ""' },
        { suffix: '.corp.com', prefix: 'app.', valueIn: ['app.corp.com'], boundary: { max: 3 }, expression: 'true' },
      ])
        expect(holds(rule, { key: 'fqdn', ...matcher }), JSON.stringify(matcher)).toBe(true);
    });

    it('keeps boundary.min <= boundary.max', () => {
      const rule = ruleNaming(filters?.items?.properties?.['boundary'], 'boundary.min')?.rule;
      expect(rule).toBeDefined();
      expect([{ min: 1, max: 2 }, { min: 2, max: 2 }, { min: 5 }, { max: 5 }, {}].map((b) => holds(rule!, b))).toEqual([
        true,
        true,
        true,
        true,
        true,
      ]);
      expect(holds(rule!, { min: 3, max: 2 })).toBe(false);
    });

    it("accepts the examples' and the Go project's AcceptAPIs", () => {
      const acceptAPIs = manifestsOfKind('AcceptAPI');
      expect(acceptAPIs.length).toBeGreaterThan(0);
      for (const { file, spec } of acceptAPIs)
        for (const filter of (spec['filters'] ?? []) as unknown[]) expect(holds(matcherRule!.rule, filter), file).toBe(true);
    });
  });

  describe('MigrationConfiguration', () => {
    const stages = apiSchema('coordination/migrationconfigurations.yaml', 'migrationconfigurations').properties?.['spec']?.properties?.[
      'stages'
    ];
    const uniqueRule = ruleNaming(stages, 'spec.stages');

    it('refuses two stages of the same name', () => {
      expect(uniqueRule, 'x-kubernetes-validations of spec.stages with a message naming spec.stages').toBeDefined();
      const rule = uniqueRule!.rule;
      expect(holds(rule, [])).toBe(true);
      expect(holds(rule, [{ name: 'dump' }, { name: 'restore' }])).toBe(true);
      expect(holds(rule, [{ name: 'dump' }, { name: 'restore' }, { name: 'dump' }])).toBe(false);
    });

    it('bounds what the rule iterates, so that the CEL cost estimate stays low', () => {
      expect(stages?.maxItems).toBe(32);
      expect(stages?.items?.properties?.['name']?.maxLength).toBe(63);
    });

    it("accepts the Go project's MigrationConfiguration", () => {
      const configurations = manifestsOfKind('MigrationConfiguration');
      expect(configurations.length).toBeGreaterThan(0);
      for (const { file, spec } of configurations) expect(holds(uniqueRule!.rule, spec['stages'] ?? []), file).toBe(true);
    });
  });
});
