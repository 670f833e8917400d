import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { KubeObject } from '../kcp-client-ts/types.ts';

/** The repository's `apiexports/` folder, wherever the broker runs from (src/ or dist/). */
export const APIEXPORTS_DIR = join(import.meta.dirname, '..', '..', 'apiexports');

/** Every object of one YAML file, in order. */
export const loadManifestFile = async (path: string): Promise<KubeObject[]> => {
  const objects: KubeObject[] = [];
  // Plain YAML on purpose: client-node's loadAllYaml maps objects onto its typed models and
  // renames fields it knows (enum -> _enum, x-kubernetes-* -> camelCase).
  for (const doc of parseAllDocuments(await readFile(path, 'utf8'))) {
    if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors[0]!.message}`);
    const obj = doc.toJS() as KubeObject | null;
    if (obj) objects.push(obj);
  }
  return objects;
};

/** Every object of every YAML file in a folder, in file order. */
export const loadManifests = async (folder: string): Promise<KubeObject[]> => {
  const files = (await readdir(folder)).filter((f) => f.endsWith('.yaml')).sort();
  const objects: KubeObject[] = [];
  for (const file of files) objects.push(...(await loadManifestFile(join(folder, file))));
  return objects;
};
