import { describe, expect, it } from 'vitest';
import { formatHeapSummary, type HeapSnapshot, retainedByInformer, summarizeHeapSnapshot } from './heap-summary.ts';

// Two fields per node as V8 writes them, in another order than type/name/self_size on purpose.
const heap: HeapSnapshot = {
  snapshot: { meta: { node_fields: ['self_size', 'type', 'name', 'id'], node_types: [['hidden', 'object', 'string', 'code']] } },
  strings: ['Map', 'Informer', 'x'],
  // self_size, type, name, id
  nodes: [100, 1, 0, 1, 300, 1, 1, 2, 50, 1, 0, 3, 1000, 2, 2, 4, 7, 3, 2, 5],
};

describe('heap snapshot summary', () => {
  it('sums self sizes by kind and objects by constructor, largest first', () => {
    const summary = summarizeHeapSnapshot(heap);
    expect(summary.totalBytes).toBe(1457);
    expect(summary.byType).toEqual([
      ['string', 1000],
      ['object', 450],
      ['code', 7],
    ]);
    expect(summary.byConstructor).toEqual([
      ['Informer', 300],
      ['Map', 150],
    ]);
    expect(formatHeapSummary(summary)).toContain('Informer');
    expect(summary.informerStores).toEqual([]);
  });

  it("gives each informer's store what it alone keeps alive, through nested objects and shared strings", () => {
    // root -> informer A -> store A -> map A -> {objA1, objA2}; objA1 and objB both -> shared string.
    // root -> informer B -> store B -> objB; a weak edge from the root to objA2 holds nothing.
    const names = ['', 'Informer', 'ObjectStore', 'Map', 'Object', 'shared', 'consumer', 'staging', 'name', 'store', 'x', 'y'];
    const node = (type: number, name: number, size: number, edgeCount: number) => [type, name, 0, size, edgeCount];
    // type: 0 hidden, 1 object, 2 string; name: index into strings
    const nodes = [
      node(0, 0, 0, 3), // 0 root
      node(1, 1, 10, 2), // 1 informer A
      node(2, 6, 1, 0), // 2 string "consumer"
      node(1, 2, 20, 1), // 3 store A
      node(1, 3, 30, 2), // 4 map A
      node(1, 4, 100, 1), // 5 objA1
      node(1, 4, 200, 0), // 6 objA2
      node(2, 5, 1000, 0), // 7 shared string
      node(1, 1, 10, 2), // 8 informer B
      node(2, 7, 1, 0), // 9 string "staging"
      node(1, 2, 20, 1), // 10 store B
      node(1, 4, 50, 1), // 11 objB
    ].flat();
    const W = 5;
    const edge = (type: number, name: number, to: number) => [type, name, to * W];
    // edge types: 0 property, 1 element, 2 weak
    const edges = [
      edge(1, 0, 1),
      edge(1, 1, 8),
      edge(2, 2, 6), // root
      edge(0, 8, 2),
      edge(0, 9, 3), // informer A: name, store
      edge(0, 10, 4), // store A -> map
      edge(1, 0, 5),
      edge(1, 1, 6), // map -> objects
      edge(0, 11, 7), // objA1 -> shared
      edge(0, 8, 9),
      edge(0, 9, 10), // informer B
      edge(0, 10, 11), // store B -> objB
      edge(0, 11, 7), // objB -> shared
    ].flat();
    const graph: HeapSnapshot = {
      snapshot: {
        meta: {
          node_fields: ['type', 'name', 'id', 'self_size', 'edge_count'],
          node_types: [['hidden', 'object', 'string']],
          edge_fields: ['type', 'name_or_index', 'to_node'],
          edge_types: [['property', 'element', 'weak']],
        },
      },
      strings: names,
      nodes,
      edges,
    };
    // A: store 20 + map 30 + objA1 100 + objA2 200 (the shared string is dominated by the root); B: 20 + 50.
    expect(retainedByInformer(graph)).toEqual([
      ['consumer', 350],
      ['staging', 70],
    ]);
  });
});
