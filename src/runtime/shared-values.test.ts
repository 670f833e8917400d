import { describe, expect, it } from 'vitest';
import { SharedValues } from './shared-values.ts';

describe('SharedValues', () => {
  it('leaves every value of an object as it was', () => {
    const table = new SharedValues({ capacity: 16, longest: 64 });
    // As kcp would send it: `__proto__` an own key of the spec, as JSON.parse makes it.
    const text = `{"metadata":{"name":"a","uid":"u-1","resourceVersion":"7","annotations":{"kcp.io/cluster":"c1"},"finalizers":["f"]},"spec":{"list":["x",1,null,true,{"deep":"y"}],"long":"${'z'.repeat(100)}","__proto__":"p"}}`;
    const object = JSON.parse(text) as { spec: object };
    table.internValuesOf(object);
    expect(JSON.stringify(object)).toBe(text);
    expect(Object.getPrototypeOf(object.spec)).toBe(Object.prototype);
    expect(Object.hasOwn(object.spec, '__proto__')).toBe(true);
  });

  it('stays within its capacity, starting over when full, and keeps no long string or unique field', () => {
    const table = new SharedValues({ capacity: 8, longest: 10 });
    for (let i = 0; i < 100; i++) {
      table.internValuesOf({ name: `n-${i}`, uid: `uid-${i}`, resourceVersion: `${i}`, note: 'x'.repeat(11) });
      expect(table.size.strings).toBeLessThanOrEqual(8);
    }
    const fresh = new SharedValues({ capacity: 8, longest: 10 });
    fresh.internValuesOf({ uid: 'u', resourceVersion: '1', note: 'x'.repeat(11), deep: [[['s']]] });
    expect(fresh.size).toEqual({ strings: 1, leaves: 1 }); // 's', and the innermost list, a leaf
  });

  it('leaves what is not a plain, writable object or array as it is, without throwing', () => {
    const table = new SharedValues({ capacity: 64, longest: 64 });
    const frozen = Object.freeze({ name: 'frozen' });
    const readOnly = Object.defineProperty({}, 'name', { get: () => 'getter', enumerable: true });
    const buffer = Buffer.alloc(1024 * 1024);
    expect(() => table.internValuesOf({ frozen, buffer, date: new Date(0), map: new Map([['k', 'v']]) })).not.toThrow();
    expect(table.size).toEqual({ strings: 0, leaves: 0 });
    expect(() => table.internValuesOf([readOnly])).not.toThrow();
    expect(readOnly).toEqual({ name: 'getter' });
  });

  it('walks no deeper than a bound, so a hostile nesting depth costs nothing and throws nothing', () => {
    const depth = 100_000;
    const nested = JSON.parse(`${'{"a":'.repeat(depth)}"leaf"${'}'.repeat(depth)}`) as unknown;
    const table = new SharedValues({ capacity: 8, longest: 10 });
    expect(() => table.internValuesOf(nested)).not.toThrow();
    expect(table.size).toEqual({ strings: 0, leaves: 0 });
  });

  it('shares equal small leaves between objects, frozen, so a change attempted in place throws instead of reaching the others', () => {
    const table = new SharedValues({ capacity: 64, longest: 64 });
    const parse = (name: string): { metadata: { annotations: object; finalizers: string[] }; status: { ref: { gvk: object } } } =>
      JSON.parse(
        `{"metadata":{"name":"${name}","annotations":{"kcp.io/cluster":"c1"},"finalizers":["f"]},"status":{"ref":{"name":"${name}-s","gvk":{"group":"","kind":"Secret","version":"v1"}}}}`,
      );
    const [a, b] = [parse('a'), parse('b')];
    const textOfB = JSON.stringify(b);
    table.internValuesOf(a);
    table.internValuesOf(b);
    expect(JSON.stringify(b)).toBe(textOfB);
    expect(b.metadata.annotations).toBe(a.metadata.annotations);
    expect(b.metadata.finalizers).toBe(a.metadata.finalizers);
    expect(b.status.ref.gvk).toBe(a.status.ref.gvk);
    expect(b.status.ref).not.toBe(a.status.ref); // names differ
    expect(Object.isFrozen(b.status.ref.gvk)).toBe(true);
    expect(Object.isFrozen(b.status.ref)).toBe(false); // not a leaf: holds an object
    expect(() => b.metadata.finalizers.push('g')).toThrow(TypeError);
    expect(a.metadata.finalizers).toEqual(['f']);
  });

  it('does not share the object itself, leaves holding a uid, large ones, an object without a prototype, or through `__proto__`', () => {
    const table = new SharedValues({ capacity: 64, longest: 64 });
    const big = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`k${i}`, i]));
    const bare = Object.assign(Object.create(null) as object, { x: 1 });
    const make = (): Record<string, unknown> =>
      ({ owner: { uid: 'u', name: 'n' }, big: { ...big }, bare, plain: { x: 1 }, ...JSON.parse('{"__proto__":{"x":1}}') }) as Record<
        string,
        unknown
      >;
    const [first, second] = [make(), make()];
    table.internValuesOf(first);
    table.internValuesOf(second);
    expect(Object.isFrozen(first)).toBe(false);
    expect(second['owner']).not.toBe(first['owner']);
    expect(second['big']).not.toBe(first['big']);
    expect(second['plain']).toBe(first['plain']);
    expect(Object.getPrototypeOf(second['bare'])).toBe(null);
    expect(second['plain']).not.toBe(second['bare']);
    expect(Object.getPrototypeOf(second)).toBe(Object.prototype);
    expect(Object.hasOwn(second, '__proto__')).toBe(true);
  });

  it('keeps at most its capacity of leaves, starting over when full', () => {
    const table = new SharedValues({ capacity: 8, longest: 64 });
    for (let i = 0; i < 100; i++) {
      table.internValuesOf({ spec: { ref: { name: `n-${i}` } } });
      expect(table.size.leaves).toBeLessThanOrEqual(8);
    }
  });

  it('never shares a leaf whose JSON text hides a difference (-0, undefined), and bounds leaves by their text as well as their count', () => {
    const table = new SharedValues({ capacity: 4096, longest: 256 });
    const zero = { ref: { x: 0, y: 'a' } };
    const negative = { ref: JSON.parse('{"x":-0,"y":"a"}') as { x: number } };
    const missing = { ref: { k: 'v', extra: undefined } };
    const plain = { ref: { k: 'v' } };
    for (const o of [zero, negative, plain, missing]) table.internValuesOf(o);
    expect(negative.ref).not.toBe(zero.ref);
    expect(Object.is(negative.ref.x, -0)).toBe(true);
    expect(missing.ref).not.toBe(plain.ref);
    expect(Object.keys(missing.ref)).toEqual(['k', 'extra']);
    // Leaves of about 500 characters each: far fewer than the count allows fit the text budget.
    for (let i = 0; i < 2000; i++) table.internValuesOf({ spec: { a: `${i}-${'x'.repeat(240)}`, b: 'y'.repeat(240) } });
    expect(table.size.leaves).toBeLessThan(600);
  });
});
