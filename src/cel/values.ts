/**
 * CEL values and limits without the engine: what callers need before (or without) compiling an
 * expression. The engine (src/cel/cel.ts, with cel-js and re2js) is loaded on first use
 * (`celEngine` in src/controllers/acceptapi/filters.ts), so a broker whose AcceptAPIs and
 * MigrationConfigurations use no CEL does not keep its code.
 */

export const CEL_LIMITS = Object.freeze({
  /** Characters of one expression (the schemas allow 1024 for filters, 4096 for stages). */
  maxExpressionLength: 4096,
  /**
   * Cost units of one evaluation: about 25 ms of this machine's event loop (a unit is a node
   * evaluation, ~100 ns); a filter over a list of 10,000 elements costs ~50,000. Kubernetes'
   * per-call limit is 1,000,000 of its (cheaper, Go) units.
   */
  maxCost: 250_000,
  /**
   * Wall-clock backstop of one evaluation, in milliseconds: generous, because a legitimate
   * evaluation must never fail on a busy machine (a filter that stops matching moves objects).
   */
  maxMillis: 500,
  /** Estimated JSON bytes of the variables of one evaluation. */
  maxInputBytes: 512 * 1024,
  /** Nesting depth of the variables of one evaluation. */
  maxInputDepth: 64,
  /** Characters of one regular expression. */
  maxPatternLength: 4096,
  /** Estimated RE2 program size (instructions) of one regular expression. */
  maxPatternProgram: 10_000,
  /** Compiled expressions kept (LRU). */
  programCacheSize: 512,
  /** Compiled regular expressions kept (LRU). */
  regexCacheSize: 256,
});

/** A small least-recently-used map: a Map keeps insertion order, so the first key is the oldest. */
export class Lru<K, V> {
  readonly #max: number;
  readonly #map = new Map<K, V>();
  constructor(max: number) {
    this.#max = max;
  }
  get size(): number {
    return this.#map.size;
  }
  get(key: K): V | undefined {
    const value = this.#map.get(key);
    if (value !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, value);
    }
    return value;
  }
  set(key: K, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value as K);
  }
}

/** An evaluation ran past its budget (cost units or time). */
export class CelBudgetError extends Error {
  override name = 'CelBudgetError';
}

/** Variables refused by toCel: too large or too deep. */
export class CelInputError extends Error {
  override name = 'CelInputError';
}

/** The budget of one evaluation; pass one budget to several programs to bound them together. */
export type CelBudget = {
  readonly cost: number;
  readonly millis: number;
  readonly deadline: number;
  remaining: number;
  steps: number;
  exceeded?: string;
};

/** A fresh budget; the clock starts now. */
export const celBudget = (cost: number = CEL_LIMITS.maxCost, millis: number = CEL_LIMITS.maxMillis): CelBudget => ({
  cost,
  millis,
  deadline: performance.now() + millis,
  remaining: cost,
  steps: 0,
});

// The budget of the evaluation running now. Evaluation is synchronous (no async function is

/** The name `matches` calls get in the parsed AST (src/cel/cel.ts says why); messages show `matches`. */
export const RE2_MATCHES = 'matchesRE2';

/** First line of a CEL error: the library appends a caret diagram we do not want in conditions. */
export const celErrorMessage = (err: unknown): string =>
  (err instanceof Error ? err.message.split('\n')[0]! : String(err)).replaceAll(RE2_MATCHES, 'matches');

// ---------------------------------------------------------------------------------------------
// Values.

const describePath = (path: (string | number)[]): string => {
  const text = path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
  return text.length > 120 ? `${text.slice(0, 120)}…` : text || '(top level)';
};

/**
 * JSON to CEL values: numbers that are integers become CEL ints, so `self.memory >= 128`
 * compares int to int (as Kubernetes does for integer fields). Refuses (CelInputError) values
 * larger than CEL_LIMITS.maxInputBytes (estimated JSON size) or nested deeper than
 * CEL_LIMITS.maxInputDepth, naming where, instead of converting gigantic values.
 */
export const toCel = (value: unknown, limits: { maxBytes?: number; maxDepth?: number } = {}): unknown => {
  const maxBytes = limits.maxBytes ?? CEL_LIMITS.maxInputBytes;
  const maxDepth = limits.maxDepth ?? CEL_LIMITS.maxInputDepth;
  const path: (string | number)[] = [];
  let bytes = 0;
  const add = (n: number): void => {
    bytes += n;
    if (bytes > maxBytes)
      throw new CelInputError(`input too large for CEL: more than ${maxBytes} bytes (reached at ${describePath(path)})`);
  };
  const convert = (v: unknown): unknown => {
    if (path.length > maxDepth) throw new CelInputError(`input too deep for CEL: more than ${maxDepth} levels (at ${describePath(path)})`);
    if (typeof v === 'string') {
      add(v.length + 2);
      return v;
    }
    if (typeof v === 'number') {
      add(8);
      return Number.isInteger(v) ? BigInt(v) : v;
    }
    if (Array.isArray(v)) {
      add(2);
      return v.map((item, i) => {
        path.push(i);
        const out = convert(item);
        path.pop();
        return out;
      });
    }
    if (v !== null && typeof v === 'object') {
      add(2);
      const entries: [string, unknown][] = [];
      for (const [k, item] of Object.entries(v)) {
        add(k.length + 4);
        path.push(k);
        entries.push([k, convert(item)]);
        path.pop();
      }
      return Object.fromEntries(entries);
    }
    add(5);
    return v;
  };
  return convert(value);
};

/** Back to JSON: CEL ints become numbers, maps become objects. */
export const fromCel = (value: unknown): unknown => {
  if (typeof value === 'bigint') return Number(value);
  if (Array.isArray(value)) return value.map(fromCel);
  if (value instanceof Map) return Object.fromEntries([...value.entries()].map(([k, v]) => [String(k), fromCel(v)]));
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromCel(v)]));
  return value;
};

/** How a CEL value reads in a message or inside a template string. */
export const celText = (value: unknown): string => {
  const json = fromCel(value);
  return typeof json === 'string' ? json : JSON.stringify(json);
};
