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
