import type { KubeObject } from '../kcp-client-ts/types.ts';
import { encodeKey, objectKeyOf, type ObjectKey } from './object-key.ts';

/** The informer's in-memory copy of a resource, keyed by (cluster, namespace, name). */
export class ObjectStore<T extends KubeObject = KubeObject> {
  readonly #objects = new Map<string, T>();
  readonly #indexes = new Map<string, { fn: (obj: T) => string[]; values: Map<string, IndexEntry> }>();
  readonly #tallies = new Map<string, { fn: (obj: T) => string | undefined; counts: Map<string, number> }>();
  #revision = 0;

  /** Changes whenever the contents change: a figure computed over `list()` stays valid while it does not. */
  get revision(): number {
    return this.#revision;
  }

  get size(): number {
    return this.#objects.size;
  }

  get(key: ObjectKey): T | undefined {
    return this.#objects.get(encodeKey(key));
  }

  /** By an encoded key (`encodeKey`). */
  getByKey(key: string): T | undefined {
    return this.#objects.get(key);
  }

  list(filter?: (obj: T) => boolean): T[] {
    const all = [...this.#objects.values()];
    return filter ? all.filter(filter) : all;
  }

  keys(): string[] {
    return [...this.#objects.keys()];
  }

  /** Adds an index; `byIndex(name, value)` then answers without a scan. */
  addIndex(name: string, fn: (obj: T) => string[]): void {
    const values = new Map<string, IndexEntry>();
    this.#indexes.set(name, { fn, values });
    for (const [key, obj] of this.#objects) addToIndex(values, fn(obj), key);
  }

  byIndex(name: string, value: string): T[] {
    const keys = this.#indexes.get(name)?.values.get(value);
    if (keys === undefined) return [];
    return (typeof keys === 'string' ? [keys] : [...keys]).map((k) => this.#objects.get(k)).filter((o): o is T => o !== undefined);
  }

  /**
   * Adds a tally: how many stored objects give each value of `fn` (`undefined`: not counted).
   * Unlike an index it keeps no keys, only a number per value, so a figure over every object
   * (load per provider) costs nothing per object and no scan. Adding a name again with the same
   * function keeps the first: several owners may share one store.
   */
  addTally(name: string, fn: (obj: T) => string | undefined): void {
    const existing = this.#tallies.get(name);
    if (existing && existing.fn !== fn) throw new Error(`tally ${name} is kept already, by another function`);
    if (existing) return;
    const counts = new Map<string, number>();
    this.#tallies.set(name, { fn, counts });
    for (const obj of this.#objects.values()) count(counts, fn(obj), 1);
  }

  /** The counts of a tally, live: copy them to keep or change them. */
  tally(name: string): ReadonlyMap<string, number> {
    return this.#tallies.get(name)?.counts ?? new Map();
  }

  /**
   * Stores the object; returns the previous version. `key` is its encoded key when the caller has
   * it already: the informer keeps the same string in its per-source key set, and one string
   * kept twice costs half of two equal ones.
   */
  upsert(obj: T, key = encodeKey(objectKeyOf(obj))): T | undefined {
    const old = this.#objects.get(key);
    if (old) this.#unindex(key, old);
    this.#revision++;
    this.#objects.set(key, obj);
    for (const { fn, values } of this.#indexes.values()) addToIndex(values, fn(obj), key);
    for (const { fn, counts } of this.#tallies.values()) count(counts, fn(obj), 1);
    return old;
  }

  remove(obj: T): T | undefined {
    const key = encodeKey(objectKeyOf(obj));
    const old = this.#objects.get(key);
    if (!old) return undefined;
    this.#unindex(key, old);
    this.#revision++;
    this.#objects.delete(key);
    return old;
  }

  #unindex(key: string, obj: T): void {
    for (const { fn, counts } of this.#tallies.values()) count(counts, fn(obj), -1);
    for (const { fn, values } of this.#indexes.values()) {
      for (const value of fn(obj)) {
        const entry = values.get(value);
        if (entry === key) values.delete(value);
        else if (typeof entry === 'object') {
          entry.delete(key);
          if (entry.size === 1) values.set(value, entry.values().next().value!);
        }
      }
    }
  }
}

/**
 * The keys of the objects with one index value: a lone key as itself, more in a Set. Most values
 * of some indexes (an Assignment's owner) name one object each, and a Set per object costs more
 * than the object's key.
 */
type IndexEntry = string | Set<string>;

const count = (counts: Map<string, number>, value: string | undefined, by: 1 | -1): void => {
  if (value === undefined) return;
  const next = (counts.get(value) ?? 0) + by;
  // Below 0 only if a stored object was changed in place: never counted negative.
  if (next <= 0) counts.delete(value);
  else counts.set(value, next);
};

const addToIndex = (values: Map<string, IndexEntry>, indexValues: string[], key: string): void => {
  for (const value of indexValues) {
    const entry = values.get(value);
    if (entry === undefined || entry === key) values.set(value, key);
    else if (typeof entry === 'string') values.set(value, new Set([entry, key]));
    else entry.add(key);
  }
};
