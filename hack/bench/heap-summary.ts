/**
 * Where a V8 heap snapshot's memory is: self sizes summed by node type (strings, code, arrays...)
 * and, for objects, by constructor name. Used by `make bench --heap-snapshot`; also on its own:
 *   node hack/bench/heap-summary.ts <file.heapsnapshot>
 */
import { readFile } from 'node:fs/promises';

/** The parts of the .heapsnapshot format read here (nodes are a flat array, `node_fields` per node). */
export type HeapSnapshot = {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
};

export type HeapSummary = {
  totalBytes: number;
  byType: [string, number][];
  /** Objects ('object' nodes) by constructor name, largest first. */
  byConstructor: [string, number][];
};

const sortedDesc = (m: Map<string, number>): [string, number][] => [...m].sort((a, b) => b[1] - a[1]);

export const summarizeHeapSnapshot = (heap: HeapSnapshot): HeapSummary => {
  const fields = heap.snapshot.meta.node_fields;
  const width = fields.length;
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [number, number, number];
  const typeNames = heap.snapshot.meta.node_types[0];
  const byType = new Map<string, number>();
  const byConstructor = new Map<string, number>();
  let totalBytes = 0;
  for (let i = 0; i < heap.nodes.length; i += width) {
    const type = typeNames[heap.nodes[i + typeAt]!] ?? 'unknown';
    const size = heap.nodes[i + sizeAt]!;
    totalBytes += size;
    byType.set(type, (byType.get(type) ?? 0) + size);
    if (type === 'object') {
      const name = heap.strings[heap.nodes[i + nameAt]!] ?? '?';
      byConstructor.set(name, (byConstructor.get(name) ?? 0) + size);
    }
  }
  return { totalBytes, byType: sortedDesc(byType), byConstructor: sortedDesc(byConstructor) };
};

const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

export const formatHeapSummary = (summary: HeapSummary, top = 15): string =>
  [
    `heap snapshot: ${mib(summary.totalBytes)} in live objects`,
    '  by kind:',
    ...summary.byType.slice(0, top).map(([type, size]) => `    ${mib(size).padStart(10)}  ${type}`),
    '  objects by constructor:',
    ...summary.byConstructor.slice(0, top).map(([name, size]) => `    ${mib(size).padStart(10)}  ${name}`),
    '',
  ].join('\n');

if (import.meta.main) {
  const file = process.argv[2];
  if (!file) throw new Error('usage: node hack/bench/heap-summary.ts <file.heapsnapshot>');
  process.stdout.write(formatHeapSummary(summarizeHeapSnapshot(JSON.parse(await readFile(file, 'utf8')) as HeapSnapshot), 25));
}
