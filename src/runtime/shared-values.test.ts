import { describe, expect, it } from 'vitest';
import { StringTable } from './string-table.ts';

describe('StringTable', () => {
  it('leaves every value of an object as it was', () => {
    const table = new StringTable({ capacity: 16, longest: 64 });
    // As kcp would send it: `__proto__` an own key of the spec, as JSON.parse makes it.
    const text = `{"metadata":{"name":"a","uid":"u-1","resourceVersion":"7","annotations":{"kcp.io/cluster":"c1"},"finalizers":["f"]},"spec":{"list":["x",1,null,true,{"deep":"y"}],"long":"${'z'.repeat(100)}","__proto__":"p"}}`;
    const object = JSON.parse(text) as { spec: object };
    table.internValuesOf(object);
    expect(JSON.stringify(object)).toBe(text);
    expect(Object.getPrototypeOf(object.spec)).toBe(Object.prototype);
    expect(Object.hasOwn(object.spec, '__proto__')).toBe(true);
  });

  it('stays within its capacity, starting over when full, and keeps no long string or unique field', () => {
    const table = new StringTable({ capacity: 8, longest: 10 });
    for (let i = 0; i < 100; i++) {
      table.internValuesOf({ name: `n-${i}`, uid: `uid-${i}`, resourceVersion: `${i}`, note: 'x'.repeat(11) });
      expect(table.size).toBeLessThanOrEqual(8);
    }
    const fresh = new StringTable({ capacity: 8, longest: 10 });
    fresh.internValuesOf({ uid: 'u', resourceVersion: '1', note: 'x'.repeat(11), deep: [[['s']]] });
    expect(fresh.size).toBe(1);
  });

  it('leaves what is not a plain, writable object or array as it is, without throwing', () => {
    const table = new StringTable({ capacity: 64, longest: 64 });
    const frozen = Object.freeze({ name: 'frozen' });
    const readOnly = Object.defineProperty({}, 'name', { get: () => 'getter', enumerable: true });
    const buffer = Buffer.alloc(1024 * 1024);
    expect(() => table.internValuesOf({ frozen, buffer, date: new Date(0), map: new Map([['k', 'v']]) })).not.toThrow();
    expect(table.size).toBe(0);
    expect(() => table.internValuesOf([readOnly])).not.toThrow();
    expect(readOnly).toEqual({ name: 'getter' });
  });

  it('walks no deeper than a bound, so a hostile nesting depth costs nothing and throws nothing', () => {
    const depth = 100_000;
    const nested = JSON.parse(`${'{"a":'.repeat(depth)}"leaf"${'}'.repeat(depth)}`) as unknown;
    const table = new StringTable({ capacity: 8, longest: 10 });
    expect(() => table.internValuesOf(nested)).not.toThrow();
    expect(table.size).toBe(0);
  });
});
