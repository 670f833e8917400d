// The CEL engine. Over 300 lines on purpose: the cost budget and the RE2 `matches` both hook the
// same cel-js AST walk; split, each half would reach into the other's internals. Limits, budgets
// and value conversion, which need no engine, are in values.ts.
import { Environment, EvaluationError } from '@marcbachmann/cel-js';
import { RE2JS } from 're2js';
import { CEL_LIMITS, CelBudgetError, type CelBudget, celBudget, Lru, RE2_MATCHES } from './values.ts';

/*
 * Bounded costs (issue "Trust boundaries", item 6). CEL runs expressions written by providers
 * (AcceptAPI filters) and the platform (migration stages) over values written by consumers and
 * providers, on the broker's single event loop: one expensive evaluation delays every tenant.
 * What is bounded here, for every program compileCel returns (stages and filters alike):
 *
 * - Expression text: at most CEL_LIMITS.maxExpressionLength characters, and cel-js's parse
 *   limits (AST nodes, nesting depth); anything longer is refused at compile time.
 * - Regular expressions (`matches`): RE2 semantics through re2js, matching in time linear in the
 *   input (JS RegExp backtracks: `^(a+)+$` against 'a'*40+'b' takes hours). RE2 syntax is
 *   what Kubernetes CEL accepts; backreferences and lookaround are refused. Patterns are limited
 *   in length and in estimated program size (re2js compiles `a{1000}` x 500 for seconds), a
 *   literal pattern is checked at compile time, and compiled patterns are cached in a small LRU.
 * - Input: toCel refuses values whose estimated JSON size or nesting depth passes
 *   CEL_LIMITS.maxInputBytes / maxInputDepth, with an error naming where.
 * - Evaluation: cel-js has no cost or step limit (only parse-time limits), so each AST node is
 *   instrumented: evaluating a node costs 1 unit; a node that builds a value (operators,
 *   functions, literals, comprehensions) also pays 1 per list element and per 8 characters it
 *   built (so `cel.bind` doubling a string or list pays for what it builds), a node that passes
 *   a string on pays 1 per 64 characters (what string functions will scan), and `matches` costs
 *   by input length times program size. Past CEL_LIMITS.maxCost units the
 *   evaluation fails, deterministically (the same expression and input fail on every machine,
 *   as Kubernetes' CEL cost limit does). As a backstop for work the units do not see (a
 *   linear string function on a large string counts as one node), the wall clock is checked
 *   every 128 nodes and the evaluation fails after CEL_LIMITS.maxMillis. The largest value one
 *   step can build before the budget stops it is about maxCost list elements or 8 x maxCost
 *   characters.
 */
// registered), so one slot is enough; it is restored after each evaluation.
let active: CelBudget | undefined;

const charge = (units: number): void => {
  const budget = active;
  if (!budget) return;
  if (budget.exceeded) throw new CelBudgetError(budget.exceeded);
  budget.remaining -= units;
  if (budget.remaining < 0) {
    budget.exceeded = `CEL evaluation exceeded its cost budget of ${budget.cost} units (too much work for this input)`;
  } else if ((++budget.steps & 127) === 0 && performance.now() > budget.deadline) {
    budget.exceeded = `CEL evaluation exceeded its time budget of ${budget.millis} ms`;
  }
  if (budget.exceeded) throw new CelBudgetError(budget.exceeded);
};

// Operators and functions build new values; the other nodes (variables, fields, indexes,
// literals, logic) pass on values that already exist.
const BUILDS = new Set(['+', 'call', 'rcall', 'list', 'map', 'comprehension']);

/** Units for the value a node yields, beyond the 1 every node costs. */
const valueUnits = (op: string, value: unknown): number => {
  if (BUILDS.has(op)) {
    // What was built: a list element costs a unit, as does every 8th character or byte.
    if (Array.isArray(value)) return value.length;
    if (value instanceof Map || value instanceof Set) return value.size;
    if (typeof value === 'string' || value instanceof Uint8Array) return value.length >>> 3;
    return 0;
  }
  // A string passed on is what string functions (contains, startsWith, size...) scan next.
  return typeof value === 'string' ? value.length >>> 6 : 0;
};

// ---------------------------------------------------------------------------------------------
// Regular expressions: RE2 (re2js), as Kubernetes CEL.

type Regex = { re: RE2JS; units: number } | { error: string };
const regexes = new Lru<string, Regex>(CEL_LIMITS.regexCacheSize);

/**
 * An upper estimate of the RE2 program size of a pattern, from its text, before compiling it
 * (compiling is what takes long). Counted repetition multiplies the size of what it repeats.
 * Only an estimate: re2js still parses the pattern and reports syntax errors.
 */
export const estimateRegexProgram = (pattern: string): number => {
  const stack = [{ total: 0, last: 0 }];
  const top = (): { total: number; last: number } => stack[stack.length - 1]!;
  const atom = (size: number): void => {
    top().total += size;
    top().last = size;
  };
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i]!;
    if (c === '\\') {
      const next = pattern[i + 1];
      i += 2;
      if (next === 'Q') {
        const end = pattern.indexOf('\\E', i);
        const stop = end < 0 ? pattern.length : end;
        atom(stop - i);
        top().last = 1;
        i = end < 0 ? stop : end + 2;
        continue;
      }
      if ((next === 'p' || next === 'P' || next === 'x') && pattern[i] === '{') {
        const end = pattern.indexOf('}', i);
        i = end < 0 ? pattern.length : end + 1;
      }
      atom(1);
    } else if (c === '[') {
      i++;
      if (pattern[i] === '^') i++;
      if (pattern[i] === ']') i++;
      while (i < pattern.length && pattern[i] !== ']') {
        if (pattern[i] === '\\') i += 2;
        else if (pattern[i] === '[' && pattern[i + 1] === ':') {
          const end = pattern.indexOf(':]', i + 2);
          i = end < 0 ? i + 1 : end + 2;
        } else i++;
      }
      i++;
      atom(1);
    } else if (c === '(') {
      i++;
      if (pattern[i] === '?') {
        // (?flags), (?flags:re), (?P<name>re), (?<name>re)
        while (i < pattern.length && pattern[i] !== ':' && pattern[i] !== ')' && pattern[i] !== '>') i++;
        if (pattern[i] !== ')') i++;
      }
      stack.push({ total: 0, last: 0 });
    } else if (c === ')') {
      i++;
      if (stack.length > 1) atom(stack.pop()!.total + 2);
    } else if (c === '|' || c === '*' || c === '+' || c === '?') {
      i++;
      top().total += 1;
      if (c === '|') top().last = 0;
    } else if (c === '{') {
      // A 16-character window keeps this JS RegExp linear and small.
      const m = /^\{(\d{1,6})(,(\d{0,6}))?\}/.exec(pattern.slice(i, i + 16));
      if (!m) {
        atom(1);
        i++;
        continue;
      }
      const min = Number(m[1]);
      const max = m[3] ? Number(m[3]) : m[2] ? min + 1 : min;
      const frame = top();
      const times = Math.max(min, max, 1);
      frame.total += frame.last * (times - 1) + times;
      frame.last *= times;
      i += m[0].length;
    } else {
      atom(1);
      i++;
    }
  }
  while (stack.length > 1) atom(stack.pop()!.total + 2);
  return stack[0]!.total;
};

const describePattern = (pattern: string): string => JSON.stringify(pattern.length > 80 ? `${pattern.slice(0, 80)}…` : pattern);

const regexFor = (pattern: string): Regex => {
  let regex = regexes.get(pattern);
  if (regex) return regex;
  const name = `regular expression ${describePattern(pattern)}`;
  if (pattern.length > CEL_LIMITS.maxPatternLength) {
    regex = { error: `${name} is ${pattern.length} characters long; at most ${CEL_LIMITS.maxPatternLength}` };
  } else if (estimateRegexProgram(pattern) > CEL_LIMITS.maxPatternProgram) {
    regex = {
      error: `${name} is too large: its repetitions expand to about ${estimateRegexProgram(pattern)} instructions; at most ${CEL_LIMITS.maxPatternProgram}`,
    };
  } else {
    try {
      const re = RE2JS.compile(pattern);
      const program = re.re2Input?.prog?.inst?.length ?? 1;
      regex = { re, units: Math.ceil(program / 32) };
    } catch (err) {
      const detail = (err instanceof Error ? err.message : String(err)).replace(/^error parsing regexp: /, '');
      regex = { error: `${name} is not valid RE2 syntax (Kubernetes CEL's; no backreferences or lookaround): ${detail}` };
    }
  }
  regexes.set(pattern, regex);
  return regex;
};

/** Compiles a pattern with RE2 semantics (cached); throws a message naming the pattern. */
export const compileRegex = (pattern: string): RE2JS => {
  const regex = regexFor(pattern);
  if ('error' in regex) throw new Error(regex.error);
  return regex.re;
};

/** CEL `matches`: an unanchored RE2 search, as RE2::PartialMatch in cel-go. */
const re2Matches = (text: string, pattern: string): boolean => {
  const regex = regexFor(pattern);
  if ('error' in regex) throw new EvaluationError(regex.error);
  // The search is linear in the text; its constant grows with the program size.
  charge(Math.ceil(text.length / 16) * regex.units);
  return regex.re.test(text);
};

// ---------------------------------------------------------------------------------------------
// The environment and the AST preparation.

// cel-js's built-in `string.matches(string)` uses JS RegExp, and the environment refuses a second
// overload with the same signature. So `matches` calls are renamed in the parsed AST to this
// function (an RE2 one, RE2_MATCHES); cel-js is pinned exactly in package.json because this touches its AST
// shape (node.op, node.args, node.meta), and cel.test.ts fails if that shape changes.

const environment = new Environment({ unlistedVariablesAreDyn: true })
  .registerFunction(`string.${RE2_MATCHES}(string): bool`, re2Matches)
  // The global form of the CEL standard library, which cel-js lacks.
  .registerFunction('matches(string, string): bool', re2Matches);

type AstNode = { op: string; args: unknown; meta: Record<string, unknown>; evaluate: (...args: unknown[]) => unknown };

/** Every AST node reachable from the root: arguments, and macro expansions (comprehensions, has, bind). */
const astNodes = (root: AstNode): AstNode[] => {
  const NodeClass = root.constructor;
  const seen = new Set<AstNode>();
  const visit = (value: unknown): void => {
    if (value instanceof NodeClass) {
      const node = value as AstNode;
      if (seen.has(node)) return;
      seen.add(node);
      visit(node.args);
      visit(node.meta['alternate']);
      visit(node.meta['macro']);
    } else if (Array.isArray(value)) {
      for (const v of value) visit(v);
    } else if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
      for (const v of Object.values(value)) visit(v);
    }
  };
  visit(root);
  return [...seen];
};

/** A string literal argument, if the node is one. */
const literal = (node: unknown): string | undefined => {
  const n = node as AstNode | undefined;
  return n?.op === 'value' && typeof n.args === 'string' ? n.args : undefined;
};

/** Counts a node's evaluations against the active budget (see the comment at the top). */
const instrument = (node: AstNode): void => {
  // ASTNode#evaluate replaces itself on first use (`this.evaluate = ...`): keep the replacement
  // in `inner` and keep answering with the counting wrapper.
  let inner = node.evaluate;
  const op = node.op;
  const counted = function (this: AstNode, ...args: unknown[]): unknown {
    charge(1);
    const result = inner.apply(this, args);
    const units = valueUnits(op, result);
    if (units > 0) charge(units);
    return result;
  };
  Object.defineProperty(node, 'evaluate', {
    configurable: true,
    get: () => counted,
    set: (fn: AstNode['evaluate']) => {
      inner = fn;
    },
  });
};

/** Renames `matches` to the RE2 function, checks literal patterns now, and instruments every node. */
const prepare = (root: AstNode): void => {
  for (const node of astNodes(root)) {
    const args = node.args as unknown[];
    if (node.op === 'rcall' && args[0] === 'matches' && Array.isArray(args[2]) && args[2].length === 1) {
      args[0] = RE2_MATCHES;
      const pattern = literal(args[2][0]);
      if (pattern !== undefined) compileRegex(pattern);
    } else if (node.op === 'call' && args[0] === 'matches' && Array.isArray(args[1]) && args[1].length === 2) {
      const pattern = literal(args[1][1]);
      if (pattern !== undefined) compileRegex(pattern);
    }
    instrument(node);
  }
};

// ---------------------------------------------------------------------------------------------
// Programs.

/**
 * A compiled CEL program: call it with the variables (already converted by toCel) and,
 * optionally, a budget shared with other evaluations; without one it gets its own.
 */
export type CelProgram = (variables?: Record<string, unknown>, budget?: CelBudget) => unknown;

type Parsed = ((variables?: Record<string, unknown>) => unknown) & { ast: AstNode };

const programs = new Lru<string, CelProgram | { error: Error }>(CEL_LIMITS.programCacheSize);

const run = (parsed: Parsed, variables: Record<string, unknown>, budget: CelBudget): unknown => {
  const previous = active;
  active = budget;
  try {
    const result = parsed(variables);
    // A budget error inside all()/exists() is collected by cel-js, and `||`/`&&` may absorb an
    // error: once exceeded, the evaluation fails whatever it returned.
    if (budget.exceeded) throw new CelBudgetError(budget.exceeded);
    if (result instanceof Promise) throw new Error('CEL evaluation returned a promise');
    return result;
  } catch (err) {
    if (budget.exceeded && !(err instanceof CelBudgetError)) throw new CelBudgetError(budget.exceeded);
    throw err;
  } finally {
    active = previous;
  }
};

/**
 * Compiles once per expression text (an LRU of CEL_LIMITS.programCacheSize; failures are cached
 * too). Throws the library's ParseError when it does not compile, and an Error naming the
 * problem for an expression that is too long or a literal `matches` pattern that is not RE2.
 */
export const compileCel = (expression: string): CelProgram => {
  const cached = programs.get(expression);
  if (cached) {
    if ('error' in cached) throw cached.error;
    return cached;
  }
  try {
    if (typeof expression !== 'string') throw new Error('expression must be a string');
    if (expression.length > CEL_LIMITS.maxExpressionLength) {
      throw new Error(`expression is ${expression.length} characters long; at most ${CEL_LIMITS.maxExpressionLength}`);
    }
    const parsed = environment.parse(expression) as unknown as Parsed;
    prepare(parsed.ast);
    const program: CelProgram = (variables = {}, budget = celBudget()) => run(parsed, variables, budget);
    programs.set(expression, program);
    return program;
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    programs.set(expression, { error });
    throw error;
  }
};

// Fail closed: should a cel-js release change the AST this file relies on, `matches` would use
// JS RegExp again and nothing would be counted. Refuse to load instead (a few microseconds).
{
  let re2 = false;
  try {
    compileCel("'a'.matches('(?=a)')");
  } catch {
    re2 = true;
  }
  let counted = false;
  try {
    compileCel('[1, 2, 3].all(x, x > 0)')({}, celBudget(3));
  } catch (err) {
    counted = err instanceof CelBudgetError;
  }
  if (!re2 || !counted)
    throw new Error(
      `src/cel/cel.ts: @marcbachmann/cel-js no longer has the AST shape this file relies on (RE2 matches: ${re2}, cost counting: ${counted})`,
    );
}
