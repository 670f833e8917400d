import { NotReadyError } from './errors.ts';

/** A module loaded on first use: `get` has it synchronously once loaded. */
export type LazyModule<T> = {
  /** The module; throws NotReadyError (and starts loading) until it is loaded. */
  get(): T;
  /** Loads it (once); a failed load is tried again on the next call. */
  load(): Promise<T>;
  /** Why the last load failed, until one succeeds (readiness reports it). */
  readonly failure: unknown;
};

/**
 * Code only some configurations use (CEL, for AcceptAPI filters and migration stages) stays out
 * of memory until one does: a loaded module is never unloaded, and its source and functions stay
 * on the heap for the life of the process.
 */
export const lazyModule = <T>(what: string, importModule: () => Promise<T>): LazyModule<T> => {
  // Boxed: a module that is `undefined` is loaded too.
  let loaded: { module: T } | undefined;
  let loading: Promise<T> | undefined;
  let failure: unknown;
  const load = (): Promise<T> =>
    (loading ??= Promise.resolve()
      .then(importModule)
      .then(
        (module) => {
          loaded = { module };
          failure = undefined;
          return module;
        },
        (err: unknown) => {
          // Tried again on the next call: a file missing now may be there then. A module whose
          // own code threw fails the same way every time (Node keeps its error); `failure` says so.
          loading = undefined;
          failure = err;
          throw err;
        },
      ));
  return {
    get: () => {
      if (loaded) return loaded.module;
      const ready = load();
      // The caller's reconcile waits on it through the NotReadyError; never an unhandled rejection.
      ready.catch(() => undefined);
      throw new NotReadyError(what, ready);
    },
    load,
    get failure() {
      return failure;
    },
  };
};
