/**
 * Shares equal values between the objects informers keep. JSON.parse makes every value afresh,
 * so what thousands of cached objects have in common is held thousands of times:
 * - strings: cluster ids, namespaces, annotation values, timestamps, condition texts (about a
 *   third of a small object's heap, measured);
 * - small leaf objects and arrays, whose values are all strings, numbers, booleans or null: a
 *   `gvk`, a `kcp.io/cluster` annotation map, a finalizer list, a placement candidate (about
 *   0.5 KiB per brokered object at 2,000 objects, measured).
 *
 * Strings are immutable, so sharing them changes nothing a reader can see. A shared leaf is
 * frozen: cached objects are read, never changed in place (every write builds a new object), and
 * a change attempted anyway throws instead of reaching every object that shares the leaf.
 *
 * Bounded both ways: strings longer than `longest` and leaves whose text is longer than
 * MAX_LEAF_TEXT are left alone, and a table that is full (by count, and leaves by their text too)
 * starts over, so values unique to one object
 * (names) cost at most one table's worth, and a common value is shared again from its next
 * sighting.
 */
export class SharedValues {
  readonly #strings = new Map<string, string>();
  readonly #leaves = new Map<string, object>();
  #leafText = 0;
  readonly #capacity: number;
  readonly #longest: number;

  constructor(options: { capacity: number; longest: number }) {
    this.#capacity = options.capacity;
    this.#longest = options.longest;
  }

  /** Strings and leaves held (tests). */
  get size(): { strings: number; leaves: number } {
    return { strings: this.#strings.size, leaves: this.#leaves.size };
  }

  intern(value: string): string {
    if (value.length > this.#longest) return value;
    const shared = this.#strings.get(value);
    if (shared !== undefined) return shared;
    if (this.#strings.size >= this.#capacity) this.#strings.clear();
    this.#strings.set(value, value);
    return value;
  }

  /**
   * Replaces, in place, the string values and leaf objects of a parsed object by shared ones
   * (never the object itself). Not below `MAX_DEPTH` (an object nested deeper is a consumer's
   * choice, not worth a deep walk), and not the values of `uid` and `resourceVersion`, which are
   * unique to one object and would only churn the table (a leaf holding one is not shared
   * either). Only plain objects and arrays that can be written, as JSON.parse makes them: a
   * transform's Buffer, frozen or class-made output is left as it is.
   *
   * One table for every tenant: a consumer whose objects are full of unique short values clears
   * it more often, which costs the others their sharing (never more memory than without the
   * table) and costs no more CPU than one walk per event, about a third of its JSON.parse. Equal
   * values shared between tenants are equal values: nothing one tenant wrote reaches another's
   * object that was not already there.
   */
  internValuesOf(value: unknown): void {
    try {
      this.#walk(value, 0);
    } catch {
      // A property that cannot be written (an accessor a transform made): the rest stays as it is.
    }
  }

  /** Whether `value` is a leaf now (all its values primitives): its parent may then share it. */
  #walk(value: unknown, depth: number): boolean {
    if (depth > MAX_DEPTH || !isPlainWritable(value)) return false;
    let leaf = true;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const item: unknown = value[i];
        if (typeof item === 'string') value[i] = this.intern(item);
        else if (typeof item === 'object' && item !== null) {
          leaf = false;
          if (this.#walk(item, depth + 1)) value[i] = this.#share(item);
        }
      }
      return leaf && value.length <= LEAF_FIELDS;
    }
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record);
    for (const key of keys) {
      const item = record[key];
      if (typeof item === 'string') {
        if (UNIQUE_OR_SPECIAL.has(key)) leaf = false;
        else record[key] = this.intern(item);
      } else if (typeof item === 'object' && item !== null) {
        leaf = false;
        // Never assigned to `__proto__`: that would set the prototype, not the property.
        if (this.#walk(item, depth + 1) && key !== '__proto__') record[key] = this.#share(item);
      }
    }
    return leaf && keys.length <= LEAF_FIELDS;
  }

  /** The shared, frozen copy of a leaf equal to this one (this one, frozen, the first time). */
  #share(leaf: object): object {
    const array = Array.isArray(leaf);
    // Only what JSON.parse makes: an object without a prototype must not become one with it.
    if (Object.getPrototypeOf(leaf) !== (array ? Array.prototype : Object.prototype)) return leaf;
    // Sized before it is written out, so a leaf of long values costs no JSON text.
    let length = 0;
    for (const [key, value] of Object.entries(leaf)) {
      if (!textSaysAll(value)) return leaf;
      length += key.length + (typeof value === 'string' ? value.length : 24) + 6;
    }
    if (length > MAX_LEAF_TEXT) return leaf;
    // The JSON text is the leaf's identity: textSaysAll holds for each value.
    const text = `${array ? 'a' : 'o'}${JSON.stringify(leaf)}`;
    const shared = this.#leaves.get(text);
    if (shared !== undefined) return shared;
    if (this.#leaves.size >= this.#capacity || this.#leafText + text.length > LEAF_TEXT_BUDGET) {
      this.#leaves.clear();
      this.#leafText = 0;
    }
    this.#leaves.set(text, Object.freeze(leaf));
    this.#leafText += text.length;
    return leaf;
  }
}

/**
 * Whether a value's JSON text tells it apart from every other value: not `undefined` (left out of
 * the text), not -0 (written `0`, yet a deep comparison tells them apart), not NaN or an infinity
 * (written `null`). JSON.parse makes only -0 of these; a transform could make the others.
 */
const textSaysAll = (value: unknown): boolean =>
  typeof value === 'string' ||
  typeof value === 'boolean' ||
  value === null ||
  (typeof value === 'number' && Number.isFinite(value) && !Object.is(value, -0));

/** Longest leaf text shared, in characters. */
const MAX_LEAF_TEXT = 512;
/**
 * Characters of leaf text the table holds before it starts over: with the leaves themselves
 * (each of a shape of its own, in the worst case) about 1 MiB at most, whatever a tenant sends.
 */
const LEAF_TEXT_BUDGET = 256 * 1024;
const MAX_DEPTH = 12;
/** Objects and arrays of more values than this are not shared: the small ones repeat. */
const LEAF_FIELDS = 8;

const isPlainWritable = (value: unknown): value is object => {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return Array.isArray(value) ? prototype === Array.prototype : prototype === Object.prototype || prototype === null;
};
// `__proto__` too: a consumer's JSON may hold it as an own key, where an assignment would work,
// but a walk that never writes to that name need not be shown safe.
const UNIQUE_OR_SPECIAL = new Set(['uid', 'resourceVersion', '__proto__']);
