/**
 * Which verification workspaces reconciles are using right now, and which one the clean-up is
 * deleting. A reconcile holds its workspace while it creates or reads it and waits for a delete
 * of it in flight; the clean-up deletes a workspace only while nobody holds it. The check and the
 * start of the delete happen in one synchronous step, so neither side can slip in between.
 */
export class WorkspaceHolds {
  readonly #holders = new Map<string, number>();
  readonly #deleting = new Map<string, Promise<void>>();

  /** Holds `name` once no delete of it is in flight; call the returned function to let go. */
  async hold(name: string): Promise<() => void> {
    for (let inFlight = this.#deleting.get(name); inFlight; inFlight = this.#deleting.get(name)) await inFlight;
    this.#holders.set(name, (this.#holders.get(name) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#holders.get(name) ?? 1) - 1;
      if (left > 0) this.#holders.set(name, left);
      else this.#holders.delete(name);
    };
  }

  /**
   * Runs `remove` unless a reconcile holds `name` (or a delete of it is in flight already) or
   * `wanted()` says an AcceptAPI names it. `wanted` is asked in the same step as the check, so it
   * reads the cache as it is when the delete starts.
   */
  async deleteUnlessHeld(name: string, wanted: () => boolean, remove: () => Promise<void>): Promise<'deleted' | 'held' | 'wanted'> {
    if ((this.#holders.get(name) ?? 0) > 0 || this.#deleting.has(name)) return 'held';
    if (wanted()) return 'wanted';
    const done = remove();
    this.#deleting.set(
      name,
      done.then(
        () => undefined,
        () => undefined,
      ),
    );
    try {
      await done;
      return 'deleted';
    } finally {
      this.#deleting.delete(name);
    }
  }
}
