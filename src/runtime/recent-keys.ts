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
  /** Only on the real clock: a timer runs on real time, so against an injected clock it would fire for ever. */
  readonly #sweepsAtRest: boolean;
  /** Key -> when it was added; in insertion order, so the first entry is the oldest. */
  readonly #added = new Map<string, number>();
  /** Drops expired keys once nothing asks any more (a burst's keys would otherwise stay at rest). */
  #sweep: ReturnType<typeof setTimeout> | undefined;

  constructor(options: { capacity: number; ttlMs?: number; now?: () => number }) {
    this.#capacity = options.capacity;
    this.#ttlMs = options.ttlMs ?? Number.POSITIVE_INFINITY;
    this.#now = options.now ?? Date.now;
    this.#sweepsAtRest = options.now === undefined;
  }

  add(key: string): void {
    this.#added.delete(key);
    this.#added.set(key, this.#now());
    if (this.#added.size > this.#capacity) this.#added.delete(this.#added.keys().next().value!);
    this.#dropExpired();
  }

  /** Deletes the expired keys (the oldest first, so it stops at the first one still fresh) and sets the timer for the next. */
  #dropExpired(): void {
    if (this.#ttlMs === Number.POSITIVE_INFINITY) return;
    const now = this.#now();
    for (const [key, at] of this.#added) {
      if (now - at < this.#ttlMs) {
        if (this.#sweepsAtRest && this.#sweep === undefined) {
          this.#sweep = setTimeout(
            () => {
              this.#sweep = undefined;
              this.#dropExpired();
            },
            at + this.#ttlMs - now,
          );
          this.#sweep.unref();
        }
        return;
      }
      this.#added.delete(key);
    }
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
