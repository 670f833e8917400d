import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildGraph, describe as describeGraph, findCycles, importsOf, layerViolations, nodeOf, readSources } from './check-imports.ts';

const script = path.join(import.meta.dirname, 'check-imports.ts');

/** broker -> controllers/sync -> broker, plus edges that are not part of the cycle. */
const cyclic = new Map([
  ['logging.ts', `export const log = 1;\n`],
  [
    'broker/broker.ts',
    `import { log } from '../logging.ts';\nimport { Sync } from '../controllers/sync/controller.ts';\nexport const b = [log, Sync];\n`,
  ],
  ['broker/context.ts', `export type Context = { name: string };\n`],
  [
    'controllers/sync/controller.ts',
    `// header\n\nimport type { Context } from '../../broker/context.ts';\nexport class Sync { c?: Context }\n`,
  ],
  ['controllers/sync/mapping.ts', `export * from './controller.ts';\n`],
]);

/** The same without the import back from controllers/sync to broker; a re-export adds an edge. */
const acyclic = new Map([
  ['logging.ts', `export const log = 1;\n`],
  [
    'broker/broker.ts',
    `import { log } from '../logging.ts';\nimport { Sync } from '../controllers/sync/controller.ts';\nexport const b = [log, Sync];\n`,
  ],
  [
    'controllers/sync/controller.ts',
    `import { readFileSync } from 'node:fs';\nexport { log } from '../../logging.ts';\nexport class Sync { r = readFileSync }\n`,
  ],
  ['controllers/placement/placement.ts', `export const p = import('../../broker/broker.ts');\n`],
]);

describe('check-imports', () => {
  it('names a file by its top-level folder, controllers/<name>, or the top-level file itself', () => {
    expect(nodeOf('broker/broker.ts')).toBe('broker');
    expect(nodeOf('kcp-client-ts/generated/core-v1.ts')).toBe('kcp-client-ts');
    expect(nodeOf('controllers/sync/mapping.ts')).toBe('controllers/sync');
    expect(nodeOf('controllers/index.ts')).toBe('controllers');
    expect(nodeOf('logging.ts')).toBe('logging.ts');
  });

  it('reads static imports, type imports and re-exports with their lines', () => {
    const text = `import a from './a.ts';\nimport type { B } from '../b.ts';\n\nexport { c } from './c.ts';\nexport * as d from './d.ts';\nconst e = await import('./e.ts');\nexport const f = 1;\n`;
    expect(importsOf('x.ts', text)).toEqual([
      { specifier: './a.ts', line: 1 },
      { specifier: '../b.ts', line: 2 },
      { specifier: './c.ts', line: 4 },
      { specifier: './d.ts', line: 5 },
    ]);
  });

  it('finds a cycle and names each edge with an example import', () => {
    const graph = buildGraph(cyclic);
    expect([...graph.nodes].sort()).toEqual(['broker', 'controllers/sync', 'logging.ts']);
    const cycles = findCycles(graph);
    expect(cycles).toEqual([['broker', 'controllers/sync', 'broker']]);
    expect(describeGraph(graph, cycles)).toEqual([
      'import graph: 3 folders, 3 edges, 1 cycle(s):',
      '  broker -> controllers/sync -> broker',
      '    broker -> controllers/sync: src/broker/broker.ts:2',
      '    controllers/sync -> broker: src/controllers/sync/controller.ts:3',
    ]);
  });

  it('reports no cycles when imports only go one way (dynamic imports do not count)', () => {
    const graph = buildGraph(acyclic);
    expect(findCycles(graph)).toEqual([]);
    expect(describeGraph(graph, [])).toEqual(['import graph: 4 folders, 3 edges, no cycles']);
  });

  it('lists every elementary cycle once, starting at its smallest node', () => {
    const files = new Map([
      ['a/x.ts', `import '../b/x.ts';\nimport '../c/x.ts';\n`],
      ['b/x.ts', `import '../a/x.ts';\nimport '../c/x.ts';\n`],
      ['c/x.ts', `import '../a/x.ts';\n`],
    ]);
    expect(findCycles(buildGraph(files))).toEqual([
      ['a', 'b', 'a'],
      ['a', 'b', 'c', 'a'],
      ['a', 'c', 'a'],
    ]);
  });

  describe('on a directory', () => {
    let dir: string | undefined;
    afterEach(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
      dir = undefined;
    });

    const write = (files: Map<string, string>): string => {
      dir = mkdtempSync(path.join(tmpdir(), 'check-imports-'));
      for (const [file, text] of files) {
        mkdirSync(path.join(dir, path.dirname(file)), { recursive: true });
        writeFileSync(path.join(dir, file), text);
      }
      return dir;
    };

    it('reads every .ts file with a /-separated relative path', () => {
      const src = write(cyclic);
      expect([...readSources(src).keys()].sort()).toEqual([...cyclic.keys()].sort());
    });

    it('fails with the cycle printed when run on a tree with a cycle', () => {
      const src = write(cyclic);
      const run = spawnSync(process.execPath, [script, src], { encoding: 'utf8' });
      expect(run.status).toBe(1);
      expect(run.stderr).toContain('  broker -> controllers/sync -> broker\n');
      expect(run.stderr).toMatch(/controllers\/sync -> broker: .*controllers\/sync\/controller\.ts:3/);
    });

    it('succeeds with the summary when run on a tree without cycles', () => {
      const src = write(acyclic);
      const run = spawnSync(process.execPath, [script, src], { encoding: 'utf8' });
      expect(run.status).toBe(0);
      expect(run.stdout).toBe('import graph: 4 folders, 3 edges, no cycles\n');
    });
  });
});

describe('layerViolations', () => {
  it('names an import that points up a layer, and a folder without a layer', () => {
    const graph = buildGraph(
      new Map([
        ['runtime/queue.ts', `import { Sync } from '../controllers/sync/controller.ts';\nexport const q = Sync;\n`],
        ['controllers/sync/controller.ts', `import { p } from '../placement/placement.ts';\nexport class Sync { p = p }\n`],
        ['controllers/placement/placement.ts', `export const p = 1;\n`],
        ['misc/x.ts', `export const x = 1;\n`],
      ]),
    );
    expect(layerViolations(graph)).toEqual([
      'misc has no layer: add it to LAYERS in hack/check-imports.ts',
      'runtime (layer 2) imports controllers/sync (layer 4): runtime/queue.ts:1',
    ]);
  });

  it('accepts imports that point down, and controllers using one another', () => {
    const graph = buildGraph(
      new Map([
        ['broker/broker.ts', `import { Sync } from '../controllers/sync/controller.ts';\nexport const b = Sync;\n`],
        [
          'controllers/sync/controller.ts',
          `import { p } from '../placement/placement.ts';\nimport { q } from '../../runtime/queue.ts';\nexport class Sync { p = p; q = q }\n`,
        ],
        ['controllers/placement/placement.ts', `export const p = 1;\n`],
        ['runtime/queue.ts', `export const q = 1;\n`],
      ]),
    );
    expect(layerViolations(graph)).toEqual([]);
  });
});
