import { NotReadyError } from './errors.ts';

/** A module loaded on first use: `get` has it synchronously once loaded. */
export type LazyModule<T> = {
  /** The module; throws NotReadyError (and starts loading) until it is loaded. */
  get(): T;
  /** Loads it (once); a failed load is tried again on the next call. */
  load(): Promise<T>;
};

/**
 * Code only some configurations use (CEL, for AcceptAPI filters and migration stages) stays out
 * of memory until one does: a loaded module is never unloaded, and its source and functions stay
 * on the heap for the life of the process.
 */
export const lazyModule = <T>(what: string, importModule: () => Promise<T>): LazyModule<T> => {
  let loaded: T | undefined;
  let loading: Promise<T> | undefined;
  const load = (): Promise<T> =>
    (loading ??= importModule().then(
      (module) => (loaded = module),
      (err: unknown) => {
        loading = undefined;
        throw err;
      },
    ));
  return {
    get: () => {
      if (loaded !== undefined) return loaded;
      const ready = load();
      // The caller's reconcile waits on it through the NotReadyError; never an unhandled rejection.
      ready.catch(() => undefined);
      throw new NotReadyError(what, ready);
    },
    load,
  };
};
