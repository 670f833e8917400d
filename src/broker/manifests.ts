import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { KubeObject } from '../kcp-client-ts/types.ts';

/** The repository's `apiexports/` folder, wherever the broker runs from (src/ or dist/). */
export const APIEXPORTS_DIR = join(import.meta.dirname, '..', '..', 'apiexports');

/** Every object of every YAML file in a folder, in file order. */
export const loadManifests = async (folder: string): Promise<KubeObject[]> => {
  const files = (await readdir(folder)).filter((f) => f.endsWith('.yaml')).sort();
  const objects: KubeObject[] = [];
  for (const file of files) {
    // Plain YAML on purpose: client-node's loadAllYaml maps objects onto its typed models and
    // renames fields it knows (enum -> _enum, x-kubernetes-* -> camelCase).
    for (const doc of parseAllDocuments(await readFile(join(folder, file), 'utf8'))) {
      if (doc.errors.length > 0) throw new Error(`${join(folder, file)}: ${doc.errors[0]!.message}`);
      const obj = doc.toJS() as KubeObject | null;
      if (obj) objects.push(obj);
    }
  }
  return objects;
};
