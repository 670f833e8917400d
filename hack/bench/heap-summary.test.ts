import { describe, expect, it } from 'vitest';
import { formatHeapSummary, type HeapSnapshot, summarizeHeapSnapshot } from './heap-summary.ts';

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
  });
});
