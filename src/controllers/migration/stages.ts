import { byCodeUnit } from '../../apis/order.ts';
import type { GroupVersionKind, MigrationConfiguration, MigrationStage } from '../../apis/types.ts';
import { celErrorMessage, celText, fromCel, toCel } from '../../cel/values.ts';
import { NotReadyError } from '../../runtime/errors.ts';
import { celEngine } from '../acceptapi/filters.ts';

/** A problem in a MigrationConfiguration, naming the field as `spec.stages[i]....`. */
export type StageProblem = { field: string; message: string };

/** Variables CEL sees: `from`, `to` and, after deployment, each template key. */
export type StageVariables = Record<string, unknown>;

export const stageField = (index: number, rest = ''): string => `spec.stages[${index}]${rest}`;

/** The configuration for objects moving between two kinds (version included), if any. */
export const findConfiguration = (
  configs: MigrationConfiguration[],
  from: GroupVersionKind,
  to: GroupVersionKind,
): MigrationConfiguration | undefined => {
  const same = (a: GroupVersionKind | undefined, b: GroupVersionKind): boolean =>
    a?.group === b.group && a.version === b.version && a.kind === b.kind;
  return configs
    .filter((c) => !c.metadata.deletionTimestamp && same(c.spec?.from, from) && same(c.spec?.to, to))
    .sort((a, b) => byCodeUnit(a.metadata.name ?? '', b.metadata.name ?? ''))[0];
};

/**
 * Splits a template string into literal text and `${...}` expressions. Braces inside an
 * expression (CEL map literals) and inside quoted strings are balanced, not terminators.
 */
export const splitInterpolation = (text: string): ({ literal: string } | { expression: string })[] => {
  const parts: ({ literal: string } | { expression: string })[] = [];
  let literal = '';
  let i = 0;
  while (i < text.length) {
    if (text[i] !== '$' || text[i + 1] !== '{') {
      literal += text[i++];
      continue;
    }
    let depth = 1;
    let quote: string | undefined;
    let j = i + 2;
    for (; j < text.length && depth > 0; j++) {
      const c = text[j]!;
      if (quote) {
        if (c === '\\') j++;
        else if (c === quote) quote = undefined;
      } else if (c === '"' || c === "'") quote = c;
      else if (c === '{') depth++;
      else if (c === '}') depth--;
    }
    if (depth > 0) throw new Error(`unterminated \${ in "${text}"`);
    if (literal) parts.push({ literal });
    literal = '';
    parts.push({ expression: text.slice(i + 2, j - 1).trim() });
    i = j;
  }
  if (literal) parts.push({ literal });
  return parts;
};

const walkStrings = (value: unknown, path: string, visit: (text: string, path: string) => void): void => {
  if (typeof value === 'string') visit(value, path);
  else if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) walkStrings(v, `${path}[${i}]`, visit);
  } else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) walkStrings(v, `${path}.${k}`, visit);
};

/** Every problem of one stage: each message names its field. Empty when the stage can run. */
export const validateStage = (stage: MigrationStage, index: number): StageProblem[] => {
  const problems: StageProblem[] = [];
  // Outside the try below: an engine still loading is not a compile error.
  const { compileCel } = celEngine.get();
  const compiles = (expression: unknown, field: string): void => {
    if (typeof expression !== 'string' || expression.trim() === '') {
      problems.push({ field, message: 'must be a non-empty CEL expression' });
      return;
    }
    try {
      compileCel(expression);
    } catch (err) {
      problems.push({ field, message: `CEL does not compile: ${celErrorMessage(err)} (in \`${expression}\`)` });
    }
  };
  if (!stage.name) problems.push({ field: stageField(index, '.name'), message: 'must not be empty' });
  for (const list of ['preconditions', 'successConditions', 'failureConditions'] as const) {
    for (const [i, e] of (stage[list] ?? []).entries()) compiles(e, stageField(index, `.${list}[${i}]`));
  }
  for (const [key, template] of Object.entries(stage.templates ?? {})) {
    const field = stageField(index, `.templates.${key}`);
    if (['from', 'to'].includes(key))
      problems.push({ field, message: 'key must not be "from" or "to": CEL already names the two copies so' });
    if (!/^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(key))
      problems.push({ field, message: 'key must be a lowercase DNS label: it becomes part of the object name' });
    if (typeof template?.['apiVersion'] !== 'string' || typeof template['kind'] !== 'string')
      problems.push({ field, message: 'manifest needs apiVersion and kind' });
    walkStrings(template, field, (text, path) => {
      let parts: ReturnType<typeof splitInterpolation>;
      try {
        parts = splitInterpolation(text);
      } catch (err) {
        problems.push({ field: path, message: celErrorMessage(err) });
        return;
      }
      for (const part of parts) if ('expression' in part) compiles(part.expression, path);
    });
  }
  if (stage.timeoutSeconds !== undefined && !(Number.isInteger(stage.timeoutSeconds) && stage.timeoutSeconds > 0)) {
    problems.push({ field: stageField(index, '.timeoutSeconds'), message: 'must be a positive integer' });
  }
  return problems;
};

// One stage run evaluates many expressions and template strings over the same variables (whole
// staging copies): convert them to CEL values once per variables object.
const celVariables = new WeakMap<StageVariables, Record<string, unknown>>();
const evaluate = (expression: string, vars: StageVariables): unknown => {
  let celVars = celVariables.get(vars);
  if (!celVars) {
    celVars = toCel(vars) as Record<string, unknown>;
    celVariables.set(vars, celVars);
  }
  return celEngine.get().compileCel(expression)(celVars);
};

/**
 * Renders a template: each `${expr}` inside a string is replaced by its value; a string that is
 * exactly one `${...}` becomes the value itself (number, bool, map...). Throws naming the path.
 */
export const renderTemplate = (template: unknown, vars: StageVariables, path: string): unknown => {
  if (typeof template === 'string') {
    const parts = splitInterpolation(template);
    const value = (expression: string): unknown => {
      try {
        return evaluate(expression, vars);
      } catch (err) {
        if (err instanceof NotReadyError) throw err;
        throw new Error(`${path}: \`${expression}\` failed: ${celErrorMessage(err)}`, { cause: err });
      }
    };
    const only = parts.length === 1 ? parts[0] : undefined;
    if (only && 'expression' in only) return fromCel(value(only.expression));
    return parts.map((p) => ('literal' in p ? p.literal : celText(value(p.expression)))).join('');
  }
  if (Array.isArray(template)) return template.map((v, i) => renderTemplate(v, vars, `${path}[${i}]`));
  if (template !== null && typeof template === 'object') {
    return Object.fromEntries(Object.entries(template).map(([k, v]) => [k, renderTemplate(v, vars, `${path}.${k}`)]));
  }
  return template;
};

/** Outcome of a list of conditions: an error in evaluation (a key not there yet) counts as not true. */
export type ConditionsVerdict =
  | { kind: 'true' }
  | { kind: 'false'; field: string; expression: string; detail: string }
  | { kind: 'notBoolean'; field: string; expression: string; detail: string };

/** One condition: its boolean value, the evaluation error, or the non-boolean it produced. */
const evaluateCondition = (expression: string, vars: StageVariables): { value: boolean } | { error: string } | { notBoolean: string } => {
  let result: unknown;
  try {
    result = evaluate(expression, vars);
  } catch (err) {
    if (err instanceof NotReadyError) throw err;
    return { error: celErrorMessage(err) };
  }
  if (typeof result !== 'boolean') return { notBoolean: `evaluates to ${typeof fromCel(result)} ${celText(result)}, not a bool` };
  return { value: result };
};

/** Whether every expression is true; otherwise the first that is not, by field. */
export const allTrue = (expressions: string[] | undefined, field: string, vars: StageVariables): ConditionsVerdict => {
  for (const [i, expression] of (expressions ?? []).entries()) {
    const outcome = evaluateCondition(expression, vars);
    const at = { field: `${field}[${i}]`, expression };
    if ('error' in outcome) return { kind: 'false', ...at, detail: outcome.error };
    if ('notBoolean' in outcome) return { kind: 'notBoolean', ...at, detail: outcome.notBoolean };
    if (!outcome.value) return { kind: 'false', ...at, detail: 'is false' };
  }
  return { kind: 'true' };
};

/** The first expression that is true (failure conditions), or none; not-bool is reported, errors count as false. */
export const anyTrue = (
  expressions: string[] | undefined,
  field: string,
  vars: StageVariables,
): { kind: 'none' } | { kind: 'true' | 'notBoolean'; field: string; expression: string; detail: string } => {
  for (const [i, expression] of (expressions ?? []).entries()) {
    const outcome = evaluateCondition(expression, vars);
    const at = { field: `${field}[${i}]`, expression };
    if ('notBoolean' in outcome) return { kind: 'notBoolean', ...at, detail: outcome.notBoolean };
    if ('value' in outcome && outcome.value) return { kind: 'true', ...at, detail: 'is true' };
  }
  return { kind: 'none' };
};

/** Name of a stage object in the compute workspace. */
export const stageObjectName = (migration: string, key: string): string => `${migration}-${key}`;
