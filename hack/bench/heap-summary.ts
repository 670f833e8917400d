/**
 * Where a V8 heap snapshot's memory is: self sizes summed by node type (strings, code, arrays...)
 * and, for objects, by constructor name. Used by `make bench --heap-snapshot`; also on its own:
 *   node hack/bench/heap-summary.ts <file.heapsnapshot>
 */
import { readFile } from 'node:fs/promises';

/** The parts of the .heapsnapshot format read here (nodes are a flat array, `node_fields` per node). */
export type HeapSnapshot = {
  snapshot: {
    meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields?: string[]; edge_types?: [string[], ...unknown[]] };
  };
  nodes: number[];
  strings: string[];
  /** Flat too: each node's `edge_count` edges follow the previous node's. */
  edges?: number[];
};

export type HeapSummary = {
  totalBytes: number;
  byType: [string, number][];
  /** Objects ('object' nodes) by constructor name, largest first. */
  byConstructor: [string, number][];
  /** Informer stores by informer name, retained bytes, largest first (`retainedByInformer`). */
  informerStores: [string, number][];
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
  const informerStores = heap.edges ? retainedByInformer(heap) : [];
  return { totalBytes, byType: sortedDesc(byType), byConstructor: sortedDesc(byConstructor), informerStores };
};

/**
 * What each informer's store keeps alive: the retained size of its ObjectStore (what would be
 * freed with it, strings shared with other stores counted where they are dominated), by the
 * informer's name, largest first. Dominators by the iterative algorithm of Cooper, Harvey and
 * Kennedy over a reverse postorder from the root; weak edges hold nothing.
 */
export const retainedByInformer = (heap: HeapSnapshot): [string, number][] => {
  const { node_fields: fields, edge_fields: edgeFields = [], edge_types: edgeTypes = [[]] } = heap.snapshot.meta;
  const edges = heap.edges ?? [];
  const width = fields.length;
  const edgeWidth = edgeFields.length;
  const [typeAt, nameAt, sizeAt, countAt] = ['type', 'name', 'self_size', 'edge_count'].map((f) => fields.indexOf(f)) as [
    number,
    number,
    number,
    number,
  ];
  const [edgeTypeAt, edgeNameAt, toAt] = ['type', 'name_or_index', 'to_node'].map((f) => edgeFields.indexOf(f)) as [number, number, number];
  const weak = edgeTypes[0].indexOf('weak');
  const count = heap.nodes.length / width;
  const firstEdge = new Int32Array(count + 1);
  for (let i = 0; i < count; i++) firstEdge[i + 1] = firstEdge[i]! + heap.nodes[i * width + countAt]! * edgeWidth;
  const targets = (i: number): number[] => {
    const out: number[] = [];
    for (let e = firstEdge[i]!; e < firstEdge[i + 1]!; e += edgeWidth)
      if (edges[e + edgeTypeAt] !== weak) out.push(edges[e + toAt]! / width);
    return out;
  };
  // Postorder from the root (node 0), without recursion: heaps are deep.
  const order = new Int32Array(count).fill(-1);
  const postorder: number[] = [];
  const seen = new Uint8Array(count);
  const stack: [number, number[]][] = [[0, targets(0)]];
  seen[0] = 1;
  while (stack.length > 0) {
    const top = stack.at(-1)!;
    const next = top[1].pop();
    if (next === undefined) {
      order[top[0]] = postorder.length;
      postorder.push(top[0]);
      stack.pop();
    } else if (!seen[next]) {
      seen[next] = 1;
      stack.push([next, targets(next)]);
    }
  }
  const predecessors: number[][] = Array.from({ length: count }, () => []);
  for (const i of postorder) for (const j of targets(i)) predecessors[j]!.push(i);
  const idom = new Int32Array(count).fill(-1);
  idom[0] = 0;
  const intersect = (a: number, b: number): number => {
    while (a !== b) {
      while (order[a]! < order[b]!) a = idom[a]!;
      while (order[b]! < order[a]!) b = idom[b]!;
    }
    return a;
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (let k = postorder.length - 2; k >= 0; k--) {
      const v = postorder[k]!;
      let dominator = -1;
      for (const p of predecessors[v]!) if (idom[p] !== -1) dominator = dominator === -1 ? p : intersect(p, dominator);
      if (dominator !== -1 && idom[v] !== dominator) {
        idom[v] = dominator;
        changed = true;
      }
    }
  }
  const retained = new Float64Array(count);
  for (let i = 0; i < count; i++) retained[i] = heap.nodes[i * width + sizeAt]!;
  for (const v of postorder) if (v !== 0) retained[idom[v]!]! += retained[v]!;
  const nameOf = (i: number): string => heap.strings[heap.nodes[i * width + nameAt]!] ?? '';
  const property = (i: number, name: string): number | undefined => {
    for (let e = firstEdge[i]!; e < firstEdge[i + 1]!; e += edgeWidth)
      if (heap.strings[edges[e + edgeNameAt]!] === name && edgeTypes[0][edges[e + edgeTypeAt]!] === 'property')
        return edges[e + toAt]! / width;
    return undefined;
  };
  const objectType = heap.snapshot.meta.node_types[0].indexOf('object');
  const rows: [string, number][] = [];
  for (let i = 0; i < count; i++) {
    if (heap.nodes[i * width + typeAt] !== objectType || nameOf(i) !== 'Informer') continue;
    const name = property(i, 'name');
    const store = property(i, 'store');
    if (name !== undefined && store !== undefined && seen[store]) rows.push([nameOf(name), retained[store]!]);
  }
  return rows.sort((a, b) => b[1] - a[1]);
};

const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

export const formatHeapSummary = (summary: HeapSummary, top = 15): string =>
  [
    `heap snapshot: ${mib(summary.totalBytes)} in live objects`,
    '  by kind:',
    ...summary.byType.slice(0, top).map(([type, size]) => `    ${mib(size).padStart(10)}  ${type}`),
    '  objects by constructor:',
    ...summary.byConstructor.slice(0, top).map(([name, size]) => `    ${mib(size).padStart(10)}  ${name}`),
    '  informer stores (retained):',
    ...summary.informerStores.slice(0, top).map(([name, size]) => `    ${mib(size).padStart(10)}  ${name}`),
    '',
  ].join('\n');

if (import.meta.main) {
  const file = process.argv[2];
  if (!file) throw new Error('usage: node hack/bench/heap-summary.ts <file.heapsnapshot>');
  process.stdout.write(formatHeapSummary(summarizeHeapSnapshot(JSON.parse(await readFile(file, 'utf8')) as HeapSnapshot), 25));
}
