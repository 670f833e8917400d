import type { AcceptAPIFilter } from '../../apis/types.ts';
import { celErrorMessage, compileCel as compile, toCel } from '../../cel/cel.ts';

export type FilterProblem = { index: number; key: string; message: string };

const filterName = (index: number, filter: AcceptAPIFilter): string => `spec.filters[${index}] (key "${filter.key}")`;

/** Problems that make an AcceptAPI unusable; each names the filter. Empty when valid. */
export const validateFilters = (filters: AcceptAPIFilter[] | undefined): FilterProblem[] => {
  const problems: FilterProblem[] = [];
  (filters ?? []).forEach((filter, index) => {
    const add = (message: string): void =>
      void problems.push({ index, key: filter.key, message: `${filterName(index, filter)}: ${message}` });
    if (typeof filter.key !== 'string' || filter.key.trim() === '') add('key must not be empty');
    else if (filter.key.startsWith('spec.')) add('key is a path below spec and must not start with "spec."');
    else if (filter.key.split('.').some((part) => part === '')) add('key has an empty path segment');
    const { min, max } = filter.boundary ?? {};
    if (min !== undefined && !Number.isInteger(min)) add('boundary.min must be an integer');
    if (max !== undefined && !Number.isInteger(max)) add('boundary.max must be an integer');
    if (min !== undefined && max !== undefined && min > max) add(`boundary.min (${min}) is greater than boundary.max (${max})`);
    if (filter.expression !== undefined) {
      try {
        compile(filter.expression);
      } catch (err) {
        add(`expression does not compile: ${celErrorMessage(err)}`);
      }
    }
  });
  return problems;
};

/** Reads a dot path below an object. */
export const lookup = (root: unknown, path: string): { found: boolean; value?: unknown } => {
  let current: unknown = root;
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object' || !(part in current)) return { found: false };
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
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return Number(value);
  return undefined;
};

export type FilterVerdict = { pass: true } | { pass: false; reason: string };

/**
 * Whether an object's spec passes every filter (AND). A key missing on the object passes, as
 * upstream does; the reason names the first filter that failed.
 */
export const evaluateFilters = (filters: AcceptAPIFilter[] | undefined, spec: unknown): FilterVerdict => {
  for (const [index, filter] of (filters ?? []).entries()) {
    const name = filterName(index, filter);
    const { found, value } = lookup(spec, filter.key);
    if (found) {
      const text = goString(value);
      if (filter.valueIn && !filter.valueIn.includes(text))
        return { pass: false, reason: `${name}: value "${text}" is not in [${filter.valueIn.join(', ')}]` };
      if (filter.suffix !== undefined && !text.endsWith(filter.suffix))
        return { pass: false, reason: `${name}: value "${text}" does not end with "${filter.suffix}"` };
      if (filter.prefix !== undefined && !text.startsWith(filter.prefix))
        return { pass: false, reason: `${name}: value "${text}" does not start with "${filter.prefix}"` };
      const { min, max } = filter.boundary ?? {};
      if (min !== undefined || max !== undefined) {
        const n = asInteger(value);
        if (n === undefined) return { pass: false, reason: `${name}: value "${text}" is not an integer` };
        if (min !== undefined && n < min) return { pass: false, reason: `${name}: value ${n} is below the minimum ${min}` };
        if (max !== undefined && n > max) return { pass: false, reason: `${name}: value ${n} is above the maximum ${max}` };
      }
    }
    if (filter.expression !== undefined) {
      let result: unknown;
      try {
        result = compile(filter.expression)({ self: toCel(spec ?? {}) });
      } catch (err) {
        return { pass: false, reason: `${name}: expression failed: ${celErrorMessage(err)}` };
      }
      if (result !== true) return { pass: false, reason: `${name}: expression "${filter.expression}" is ${goString(result)}` };
    }
  }
  return { pass: true };
};
