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

  it('finds what a store alone keeps when objects form a cycle reached from elsewhere too, and skips an informer nothing reaches', () => {
    // root -> informer -> store -> a; root -> other -> b; a <-> b. Neither a nor b is the store's
    // alone (b is reached without it, and a through b). An informer nothing reaches is no one's.
    // One pass over the graph without iterating to a fixed point gets this wrong in one of the
    // two orders of the root's edges.
    for (const rootEdges of [
      ['informer', 'other'],
      ['other', 'informer'],
    ]) {
      const graph = snapshotOf(
        {
          root: ['hidden', '', 0],
          informer: ['object', 'Informer', 1],
          name: ['string', 'consumer', 1],
          store: ['object', 'ObjectStore', 10],
          other: ['object', 'Other', 1],
          a: ['object', 'A', 100],
          b: ['object', 'B', 100],
          lost: ['object', 'Informer', 1],
          lostName: ['string', 'lost', 1],
          lostStore: ['object', 'ObjectStore', 10],
        },
        [
          ...rootEdges.map((to) => ['root', 'element', to] as const),
          ['informer', 'name', 'name'],
          ['informer', 'store', 'store'],
          ['store', 'a', 'a'],
          ['other', 'b', 'b'],
          ['a', 'b', 'b'],
          ['b', 'a', 'a'],
          ['lost', 'name', 'lostName'],
          ['lost', 'store', 'lostStore'],
        ],
      );
      expect(retainedByInformer(graph), `root edges ${rootEdges.join(', ')}`).toEqual([['consumer', 10]]);
    }
  });
});

/** A snapshot from named nodes ([type, name, self size]) and edges ([from, property name or 'element', to]). */
const snapshotOf = (nodes: Record<string, [string, string, number]>, edges: (readonly [string, string, string])[]): HeapSnapshot => {
  const ids = Object.keys(nodes);
  const strings = [...new Set([...Object.values(nodes).map((n) => n[1]), ...edges.map((e) => e[1])])];
  const nodeTypes = ['hidden', 'object', 'string'];
  const width = 5;
  return {
    snapshot: {
      meta: {
        node_fields: ['type', 'name', 'id', 'self_size', 'edge_count'],
        node_types: [nodeTypes],
        edge_fields: ['type', 'name_or_index', 'to_node'],
        edge_types: [['property', 'element', 'weak']],
      },
    },
    strings,
    nodes: ids.flatMap((id, i) => {
      const [type, name, size] = nodes[id]!;
      return [nodeTypes.indexOf(type), strings.indexOf(name), i, size, edges.filter((e) => e[0] === id).length];
    }),
    edges: ids.flatMap((id) =>
      edges
        .filter((e) => e[0] === id)
        .flatMap(([, name, to]) =>
          name === 'element' ? [1, 0, ids.indexOf(to) * width] : [0, strings.indexOf(name), ids.indexOf(to) * width],
        ),
    ),
  };
};
