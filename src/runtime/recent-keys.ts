/**
 * Keys this process remembers for a while and up to a count, the oldest forgotten first: what it
 * wrote lately (so a cache that lags behind that write is not mistaken for a crash's leftover),
 * or what it knows exists (so it is not created again). Forgetting costs at most a repeated
 * request, so the memory stays bounded whatever the number of tenants.
 */
export class RecentKeys {
  readonly #ttlMs: number;
  readonly #capacity: number;
  readonly #now: () => number;
  /** Key -> when it was added; in insertion order, so the first entry is the oldest. */
  readonly #added = new Map<string, number>();

  constructor(options: { capacity: number; ttlMs?: number; now?: () => number }) {
    this.#capacity = options.capacity;
    this.#ttlMs = options.ttlMs ?? Number.POSITIVE_INFINITY;
    this.#now = options.now ?? Date.now;
  }

  add(key: string): void {
    this.#added.delete(key);
    this.#added.set(key, this.#now());
    if (this.#added.size > this.#capacity) this.#added.delete(this.#added.keys().next().value!);
  }

  has(key: string): boolean {
    const at = this.#added.get(key);
    if (at === undefined) return false;
    if (this.#now() - at < this.#ttlMs) return true;
    this.#added.delete(key);
    return false;
  }

  delete(key: string): void {
    this.#added.delete(key);
  }

  get size(): number {
    return this.#added.size;
  }
}
