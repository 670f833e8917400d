/**
 * Shares equal strings between the objects informers keep. JSON.parse makes every string value
 * afresh, so the cluster ids, annotation and label keys' values, namespaces, timestamps and
 * condition texts that thousands of cached objects have in common are each held thousands of
 * times (about a third of a small object's heap, measured). Strings are immutable, so sharing
 * them changes nothing a reader can see.
 *
 * Bounded both ways: strings longer than `longest` are left alone, and when the table is full it
 * starts over, so strings unique to one object (names) cost at most one table's worth, and a
 * common string is shared again from its next sighting.
 */
export class StringTable {
  readonly #strings = new Map<string, string>();
  readonly #capacity: number;
  readonly #longest: number;

  constructor(options: { capacity: number; longest: number }) {
    this.#capacity = options.capacity;
    this.#longest = options.longest;
  }

  get size(): number {
    return this.#strings.size;
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
   * Replaces, in place, the string values of a parsed object by shared ones. Not below
   * `MAX_DEPTH` (an object nested deeper is a consumer's choice, not worth a deep walk), and not
   * the values of `uid` and `resourceVersion`, which are unique to one object and would only
   * churn the table. Only plain objects and arrays that can be written, as JSON.parse makes
   * them: a transform's Buffer, frozen or class-made output is left as it is.
   *
   * One table for every tenant: a consumer whose objects are full of unique short strings
   * clears it more often, which costs the others their sharing (never more memory than without
   * the table) and costs no more CPU than one walk per event, about a third of its JSON.parse.
   */
  internValuesOf(value: unknown): void {
    try {
      this.#walk(value, 0);
    } catch {
      // A property that cannot be written (an accessor a transform made): the rest stays as it is.
    }
  }

  #walk(value: unknown, depth: number): void {
    if (depth > MAX_DEPTH || !isPlainWritable(value)) return;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const item: unknown = value[i];
        if (typeof item === 'string') value[i] = this.intern(item);
        else this.#walk(item, depth + 1);
      }
      return;
    }
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      const item = record[key];
      if (typeof item === 'string') {
        if (!UNIQUE_OR_SPECIAL.has(key)) record[key] = this.intern(item);
      } else this.#walk(item, depth + 1);
    }
  }
}

const MAX_DEPTH = 12;

const isPlainWritable = (value: unknown): value is object => {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return Array.isArray(value) ? prototype === Array.prototype : prototype === Object.prototype || prototype === null;
};
// `__proto__` too: a consumer's JSON may hold it as an own key, where an assignment would work,
// but a walk that never writes to that name need not be shown safe.
const UNIQUE_OR_SPECIAL = new Set(['uid', 'resourceVersion', '__proto__']);
