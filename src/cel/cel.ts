import { parse } from '@marcbachmann/cel-js';

/** A compiled CEL program: call it with the variables. */
export type CelProgram = ReturnType<typeof parse>;

const programs = new Map<string, CelProgram>();

/** Compiles once per expression text; throws the library's ParseError when it does not compile. */
export const compileCel = (expression: string): CelProgram => {
  let program = programs.get(expression);
  if (!program) {
    program = parse(expression);
    programs.set(expression, program);
  }
  return program;
};

/** First line of a CEL error: the library appends a caret diagram we do not want in conditions. */
export const celErrorMessage = (err: unknown): string => (err instanceof Error ? err.message.split('\n')[0]! : String(err));

/** JSON numbers that are integers become CEL ints, so `self.memory >= 128` compares int to int (as Kubernetes does for integer fields). */
export const toCel = (value: unknown): unknown => {
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  if (Array.isArray(value)) return value.map(toCel);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toCel(v)]));
  return value;
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
