import { describe, expect, it } from 'vitest';
import { NotReadyError } from '../../runtime/errors.ts';
import { evaluateFilters, validateFilters } from './filters.ts';

// Its own file: vitest gives each test file fresh modules, so the CEL engine is not loaded yet.
describe('the CEL engine, loaded on first use', () => {
  it('is not needed by filters without expressions; one with an expression waits for it, then evaluates', async () => {
    const plain = [{ key: 'region', valueIn: ['eu'] }];
    expect(validateFilters(plain)).toEqual([]);
    expect(evaluateFilters(plain, { region: 'us' })).toMatchObject({ pass: false });
    const cel = [{ key: 'size', expression: 'self.size >= 2' }];
    let waiting: unknown;
    try {
      evaluateFilters(cel, { size: 3 });
    } catch (err) {
      waiting = err;
    }
    // Not a verdict: a reconcile that meets it is retried once the engine is loaded.
    expect(waiting).toBeInstanceOf(NotReadyError);
    await (waiting as NotReadyError).ready;
    expect(evaluateFilters(cel, { size: 3 })).toEqual({ pass: true });
    expect(evaluateFilters(cel, { size: 1 })).toMatchObject({ pass: false });
    expect(validateFilters([{ key: 'size', expression: 'self.size >=' }])[0]?.message).toMatch(/expression does not compile/);
  });
});
