/**
 * `make lint` part: the folder-level import graph of src/ must have no cycles. A node is a
 * top-level folder under src/ (`broker`, `cache`, ...), except that each src/controllers/<name>
 * is its own node, and a top-level file such as src/logging.ts is a node named by the file.
 * Edges come from relative static imports and re-exports (`import ... from`, `import type ...
 * from`, `export ... from`). Prints every cycle as `a -> b -> a` with one example import per
 * edge and exits 1, else prints `import graph: N folders, M edges, no cycles`.
 *
 * It also checks that imports point down the layers in LAYERS (README "Layout"): a folder may
 * import only folders of a lower layer, except that controllers may use one another (without
 * cycles). A folder missing from LAYERS is an error too, so a new one gets a place.
 *
 * Usage: node hack/check-imports.ts [srcDir]   (default: the repository's src/)
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';

/** One import that makes an edge: the importing file (relative to src/) and its 1-based line. */
export interface ImportSite {
  file: string;
  line: number;
}

export interface ImportGraph {
  nodes: Set<string>;
  /** from -> to -> the first import (by file, then line) that makes the edge. */
  edges: Map<string, Map<string, ImportSite>>;
}

/** Layers of src/, lowest first: what each may import is below it. */
export const LAYERS: Record<string, number> = {
  'logging.ts': 0,
  // A top-level file's test is its own node here; it sits just above what it tests.
  'logging.test.ts': 1,
  'kcp-client-ts': 0,
  cel: 0,
  apis: 1,
  runtime: 2,
  leader: 2,
  coordination: 3,
  controllers: 4,
  broker: 5,
  observability: 5,
  cli: 6,
};

const layerOf = (node: string): number | undefined => LAYERS[node.startsWith('controllers/') ? 'controllers' : node];

/** Edges that point up or sideways across LAYERS, and nodes LAYERS does not place. */
export const layerViolations = (graph: ImportGraph, layers: Record<string, number> = LAYERS): string[] => {
  const rank = (node: string): number | undefined => (layers === LAYERS ? layerOf(node) : layers[node]);
  const problems: string[] = [];
  for (const node of [...graph.nodes].sort())
    if (rank(node) === undefined) problems.push(`${node} has no layer: add it to LAYERS in hack/check-imports.ts`);
  for (const [from, out] of graph.edges) {
    for (const [to, site] of out) {
      const a = rank(from);
      const b = rank(to);
      if (a === undefined || b === undefined) continue;
      const bothControllers = from.startsWith('controllers/') && to.startsWith('controllers/');
      if (b > a || (b === a && !bothControllers))
        problems.push(`${from} (layer ${a}) imports ${to} (layer ${b}): ${site.file}:${site.line}`);
    }
  }
  return problems;
};

/** The graph node of a file, given its path relative to src/ with `/` separators. */
export const nodeOf = (file: string): string => {
  const parts = file.split('/');
  if (parts.length === 1) return file;
  if (parts[0] === 'controllers' && parts.length > 2) return `controllers/${parts[1]}`;
  return parts[0]!;
};

/** The module specifiers of a file's static imports and re-exports, with their 1-based lines. */
export const importsOf = (fileName: string, text: string): Array<{ specifier: string; line: number }> => {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const found: Array<{ specifier: string; line: number }> = [];
  for (const statement of source.statements) {
    if (!ts.isImportDeclaration(statement) && !ts.isExportDeclaration(statement)) continue;
    const specifier = statement.moduleSpecifier;
    if (!specifier || !ts.isStringLiteral(specifier)) continue;
    found.push({ specifier: specifier.text, line: source.getLineAndCharacterOfPosition(statement.getStart(source)).line + 1 });
  }
  return found;
};

/** The folder graph of the given sources (path relative to src/ with `/` separators -> text). */
export const buildGraph = (files: ReadonlyMap<string, string>): ImportGraph => {
  const nodes = new Set<string>();
  const edges = new Map<string, Map<string, ImportSite>>();
  for (const file of [...files.keys()].sort()) {
    const from = nodeOf(file);
    nodes.add(from);
    for (const { specifier, line } of importsOf(file, files.get(file)!)) {
      if (!specifier.startsWith('./') && !specifier.startsWith('../')) continue;
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier));
      if (target.startsWith('../')) continue; // outside src/
      const to = nodeOf(target);
      nodes.add(to);
      if (to === from) continue;
      const out = edges.get(from) ?? new Map<string, ImportSite>();
      edges.set(from, out);
      if (!out.has(to)) out.set(to, { file, line });
    }
  }
  return { nodes, edges };
};

/**
 * Every elementary cycle, each as its nodes with the first repeated at the end, starting at
 * its smallest node; sorted. The graph is a dozen nodes, so plain enumeration is enough.
 */
export const findCycles = (graph: ImportGraph): string[][] => {
  const order = [...graph.nodes].sort();
  const cycles: string[][] = [];
  for (const start of order) {
    const stack = [start];
    const onStack = new Set(stack);
    const visit = (node: string): void => {
      for (const next of [...(graph.edges.get(node)?.keys() ?? [])].sort()) {
        if (next === start) cycles.push([...stack, start]);
        else if (next > start && !onStack.has(next)) {
          stack.push(next);
          onStack.add(next);
          visit(next);
          onStack.delete(next);
          stack.pop();
        }
      }
    };
    visit(start);
  }
  return cycles;
};

const edgeCount = (graph: ImportGraph): number => [...graph.edges.values()].reduce((n, out) => n + out.size, 0);

/** The lines to print: the cycles with one example import per edge, or the one-line summary. */
export const describe = (graph: ImportGraph, cycles: string[][], srcLabel = 'src'): string[] => {
  if (cycles.length === 0) return [`import graph: ${graph.nodes.size} folders, ${edgeCount(graph)} edges, no cycles`];
  const lines = [`import graph: ${graph.nodes.size} folders, ${edgeCount(graph)} edges, ${cycles.length} cycle(s):`];
  for (const cycle of cycles) {
    lines.push(`  ${cycle.join(' -> ')}`);
    for (let i = 0; i + 1 < cycle.length; i++) {
      const site = graph.edges.get(cycle[i]!)!.get(cycle[i + 1]!)!;
      lines.push(`    ${cycle[i]} -> ${cycle[i + 1]}: ${srcLabel}/${site.file}:${site.line}`);
    }
  }
  return lines;
};

/** Every .ts file under srcDir, keyed by its path relative to srcDir with `/` separators. */
export const readSources = (srcDir: string): Map<string, string> => {
  const files = new Map<string, string>();
  for (const entry of readdirSync(srcDir, { recursive: true, encoding: 'utf8' })) {
    if (!entry.endsWith('.ts')) continue;
    files.set(entry.split(path.sep).join('/'), readFileSync(path.join(srcDir, entry), 'utf8'));
  }
  return files;
};

const main = (): void => {
  const srcDir = process.argv[2] ?? path.join(import.meta.dirname, '..', 'src');
  const graph = buildGraph(readSources(srcDir));
  const cycles = findCycles(graph);
  const lines = describe(graph, cycles, path.relative(process.cwd(), srcDir) || '.');
  const violations = layerViolations(graph);
  if (cycles.length > 0 || violations.length > 0) {
    console.error([...lines, ...violations].join('\n'));
    process.exit(1);
  }
  console.log(lines.join('\n'));
};

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) main();
