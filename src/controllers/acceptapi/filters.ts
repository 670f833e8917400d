import type { AcceptAPIFilter } from '../../apis/types.ts';
import type { CelProgram } from '../../cel/cel.ts';
import { celBudget, celErrorMessage, CelInputError, toCel } from '../../cel/values.ts';
import { lazyModule } from '../../runtime/lazy-module.ts';

/**
 * The CEL engine (cel-js and re2js, over 1 MiB of heap), loaded when the first AcceptAPI filter or
 * migration stage with an expression is checked; until then a reconcile that needs it waits
 * (NotReadyError).
 */
export const celEngine = lazyModule('the CEL engine', () => import('../../cel/cel.ts'));

type Compile = (expression: string) => CelProgram;

/** The engine's compile when a filter has an expression (throws NotReadyError while it loads). */
const compilerFor = (filters: AcceptAPIFilter[]): Compile | undefined =>
  filters.some((f) => f?.expression !== undefined) ? celEngine.get().compileCel : undefined;

/**
 * Limits on an AcceptAPI's filters. The schema (apiexports/broker/acceptapis.yaml) enforces the
 * same numbers (filters.test.ts checks they agree); the broker checks them again for AcceptAPIs
 * stored before the schema had them, so 20,000 filters give one problem, not 20,000.
 */
export const FILTER_LIMITS = Object.freeze({
  filters: 32,
  keyLength: 256,
  valueIn: 256,
  /** valueIn items, suffix and prefix. */
  textLength: 1024,
  expressionLength: 1024,
});

export type FilterProblem = { index: number; key: string; message: string };

const filterName = (index: number, filter: AcceptAPIFilter, field = ''): string =>
  `spec.filters[${index}]${field} (key "${String(filter.key).slice(0, 64)}")`;

/** A value as it reads in a reason: long ones are cut (a consumer's value may be 1 MiB). */
export const quote = (text: string, max = 128): string =>
  text.length > max ? `"${text.slice(0, max)}…" (${text.length} characters)` : `"${text}"`;

const listText = (items: string[]): string => {
  const text = items.join(', ');
  return text.length > 256 ? `${text.slice(0, 256)}… (${items.length} values)` : text;
};

const tooLong = (text: unknown, max: number): boolean => typeof text === 'string' && text.length > max;

/** Problems that make an AcceptAPI unusable; each names the filter. Empty when valid. */
export const validateFilters = (filters: AcceptAPIFilter[] | undefined): FilterProblem[] => {
  if ((filters?.length ?? 0) > FILTER_LIMITS.filters) {
    return [
      { index: FILTER_LIMITS.filters, key: '', message: `spec.filters: ${filters!.length} filters; at most ${FILTER_LIMITS.filters}` },
    ];
  }
  const problems: FilterProblem[] = [];
  const compile = compilerFor(filters ?? []);
  (filters ?? []).forEach((filter, index) => {
    const add = (message: string, field = ''): void =>
      void problems.push({ index, key: filter.key, message: `${filterName(index, filter, field)}: ${message}` });
    if (typeof filter.key !== 'string' || filter.key.trim() === '') add('key must not be empty');
    else if (filter.key.length > FILTER_LIMITS.keyLength)
      add(`key is ${filter.key.length} characters long; at most ${FILTER_LIMITS.keyLength}`);
    else if (filter.key.startsWith('spec.')) add('key is a path below spec and must not start with "spec."');
    else if (filter.key.split('.').some((part) => part === '')) add('key has an empty path segment');
    if ((filter.valueIn?.length ?? 0) > FILTER_LIMITS.valueIn)
      add(`${filter.valueIn!.length} values; at most ${FILTER_LIMITS.valueIn}`, '.valueIn');
    else if (filter.valueIn?.some((v) => tooLong(v, FILTER_LIMITS.textLength)))
      add(`a value is longer than ${FILTER_LIMITS.textLength} characters`, '.valueIn');
    for (const field of ['suffix', 'prefix'] as const) {
      if (tooLong(filter[field], FILTER_LIMITS.textLength))
        add(`${filter[field]!.length} characters long; at most ${FILTER_LIMITS.textLength}`, `.${field}`);
    }
    const { min, max } = filter.boundary ?? {};
    if (min !== undefined && !Number.isInteger(min)) add('boundary.min must be an integer');
    if (max !== undefined && !Number.isInteger(max)) add('boundary.max must be an integer');
    if (min !== undefined && max !== undefined && min > max) add(`boundary.min (${min}) is greater than boundary.max (${max})`);
    if (filter.expression !== undefined) {
      if (tooLong(filter.expression, FILTER_LIMITS.expressionLength)) {
        add(`expression is ${filter.expression.length} characters long; at most ${FILTER_LIMITS.expressionLength}`, '.expression');
      } else {
        try {
          compile!(filter.expression);
        } catch (err) {
          add(`expression does not compile: ${celErrorMessage(err)}`, '.expression');
        }
      }
    }
  });
  return problems;
};

/** Reads a dot path below an object. */
export const lookup = (root: unknown, path: string): { found: boolean; value?: unknown } => {
  let current: unknown = root;
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, part)) return { found: false };
    current = (current as Record<string, unknown>)[part];
  }
  return { found: true, value: current };
};

/** How Go's fmt prints a decoded JSON value: 512, 1.5, true, text. */
export const goString = (value: unknown): string => {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === null || value === undefined) return '<nil>';
  return JSON.stringify(value);
};

const asInteger = (value: unknown): number | undefined => {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string' && value.length <= 20 && /^-?\d+$/.test(value)) return Number(value);
  return undefined;
};

export type FilterVerdict = { pass: true } | { pass: false; reason: string };

const evaluateFilter = (
  index: number,
  filter: AcceptAPIFilter,
  spec: unknown,
  cel: () => Record<string, unknown>,
  budget: ReturnType<typeof celBudget>,
  compile: Compile | undefined,
): FilterVerdict => {
  const name = filterName(index, filter);
  const { found, value } = lookup(spec, filter.key);
  if (found) {
    const text = goString(value);
    if (filter.valueIn && !filter.valueIn.includes(text))
      return { pass: false, reason: `${name}: value ${quote(text)} is not in [${listText(filter.valueIn)}]` };
    if (filter.suffix !== undefined && !text.endsWith(filter.suffix))
      return { pass: false, reason: `${name}: value ${quote(text)} does not end with ${quote(filter.suffix)}` };
    if (filter.prefix !== undefined && !text.startsWith(filter.prefix))
      return { pass: false, reason: `${name}: value ${quote(text)} does not start with ${quote(filter.prefix)}` };
    const { min, max } = filter.boundary ?? {};
    if (min !== undefined || max !== undefined) {
      const n = asInteger(value);
      if (n === undefined) return { pass: false, reason: `${name}: value ${quote(text)} is not an integer` };
      if (min !== undefined && n < min) return { pass: false, reason: `${name}: value ${n} is below the minimum ${min}` };
      if (max !== undefined && n > max) return { pass: false, reason: `${name}: value ${n} is above the maximum ${max}` };
    }
  }
  if (filter.expression !== undefined) {
    const field = filterName(index, filter, '.expression');
    if (tooLong(filter.expression, FILTER_LIMITS.expressionLength))
      return { pass: false, reason: `${field}: expression is longer than ${FILTER_LIMITS.expressionLength} characters` };
    let result: unknown;
    try {
      result = compile!(filter.expression)(cel(), budget);
    } catch (err) {
      if (err instanceof CelInputError) return { pass: false, reason: `${field}: the object's spec is not evaluated: ${err.message}` };
      return { pass: false, reason: `${field}: expression failed: ${celErrorMessage(err)}` };
    }
    if (result !== true)
      return { pass: false, reason: `${field}: expression ${quote(filter.expression)} is ${quote(goString(result), 64)}` };
  }
  return { pass: true };
};

/**
 * Whether an object's spec passes every filter (AND). A key missing on the object passes, as
 * upstream does; the reason names the first filter that failed. Never throws: a failed CEL
 * evaluation, a spec too large or too deep for CEL, or a filter list over the limit is a
 * reason. The CEL expressions of one call share one budget (see src/cel/cel.ts), so 32
 * expression filters cost no more than one.
 */
export const evaluateFilters = (filters: AcceptAPIFilter[] | undefined, spec: unknown): FilterVerdict => {
  const list = filters ?? [];
  if (list.length > FILTER_LIMITS.filters)
    return { pass: false, reason: `spec.filters: ${list.length} filters; at most ${FILTER_LIMITS.filters}` };
  const compile = compilerFor(list);
  const budget = celBudget();
  let variables: Record<string, unknown> | undefined;
  let inputError: unknown;
  // The spec is converted for CEL once, and only when an expression needs it.
  const cel = (): Record<string, unknown> => {
    if (inputError) throw inputError;
    try {
      variables ??= { self: toCel(spec ?? {}) };
      return variables;
    } catch (err) {
      inputError = err;
      throw err;
    }
  };
  for (const [index, filter] of list.entries()) {
    let verdict: FilterVerdict;
    try {
      verdict = evaluateFilter(index, filter, spec, cel, budget, compile);
    } catch (err) {
      verdict = { pass: false, reason: `${filterName(index, filter)}: not evaluated: ${celErrorMessage(err)}` };
    }
    if (!verdict.pass) return verdict;
  }
  return { pass: true };
};
