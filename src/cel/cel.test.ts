import { describe, expect, it } from 'vitest';
import { compileCel, compileRegex, estimateRegexProgram } from './cel.ts';
import { CEL_LIMITS, CelBudgetError, CelInputError, celBudget, celErrorMessage, fromCel, Lru, toCel } from './values.ts';

const evaluate = (expression: string, vars: Record<string, unknown>): unknown =>
  compileCel(expression)(toCel(vars) as Record<string, unknown>);
const failure = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    return celErrorMessage(err);
  }
  throw new Error('expected an error');
};

describe('CEL', () => {
  it('evaluates with JSON integers as CEL ints, and converts back', () => {
    expect(evaluate('self.memory >= 128 && self.arch == "arm64"', { self: { memory: 512, arch: 'arm64' } })).toBe(true);
    expect(fromCel(evaluate('{"a": [from.spec.n + 1]}', { from: { spec: { n: 1 } } }))).toEqual({ a: [2] });
  });

  describe('matches uses RE2 (linear time), as Kubernetes does', () => {
    it('answers a catastrophic-backtracking pattern at once (JS RegExp would take hours)', () => {
      const started = performance.now();
      expect(evaluate("self.name.matches('^(a+)+$')", { self: { name: `${'a'.repeat(40)}b` } })).toBe(false);
      expect(evaluate("self.name.matches('^(a+)+$')", { self: { name: `${'a'.repeat(50_000)}!` } })).toBe(false);
      expect(evaluate("self.name.matches('^(a+)+$')", { self: { name: 'a'.repeat(50_000) } })).toBe(true);
      expect(performance.now() - started).toBeLessThan(2_000);
    });

    it('searches unanchored, with the global form too, and the patterns of the input', () => {
      expect(evaluate("self.fqdn.matches('corp')", { self: { fqdn: 'app.corp.com' } })).toBe(true);
      expect(evaluate("matches(self.fqdn, '^app\\\\.')", { self: { fqdn: 'app.corp.com' } })).toBe(true);
      expect(evaluate('self.fqdn.matches(self.pattern)', { self: { fqdn: 'x', pattern: '^(x+x+)+y$' } })).toBe(false);
      expect(evaluate("self.names.exists(n, n.matches('^b'))", { self: { names: ['a', 'b'] } })).toBe(true);
    });

    it('refuses what RE2 refuses when the expression compiles, naming the pattern', () => {
      expect(failure(() => compileCel("self.name.matches('(a)\\\\1')"))).toMatch(
        /regular expression "\(a\)\\\\1" is not valid RE2 syntax.*invalid escape sequence/,
      );
      expect(failure(() => compileCel("self.name.matches('foo(?=bar)')"))).toContain('not valid RE2 syntax');
      expect(failure(() => compileCel("matches(self.name, '(?<!x)y')"))).toContain('not valid RE2 syntax');
      expect(failure(() => compileCel("self.l.all(x, x.matches('['))"))).toContain('missing closing ]');
    });

    it('reports a bad pattern from the input as an evaluation error', () => {
      expect(failure(() => evaluate('self.a.matches(self.p)', { self: { a: 'x', p: '(a)\\1' } }))).toContain('not valid RE2 syntax');
    });

    it('refuses patterns whose repetitions expand to a large program, before compiling them', () => {
      expect(estimateRegexProgram('^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$')).toBeLessThan(200);
      expect(estimateRegexProgram('(a{100}){100}')).toBeGreaterThan(CEL_LIMITS.maxPatternProgram - 1);
      expect(failure(() => compileRegex('a{1000}'.repeat(20)))).toContain('is too large');
      expect(failure(() => compileRegex('a'.repeat(CEL_LIMITS.maxPatternLength + 1)))).toContain('characters long');
    });

    it('keeps the cel-js names in messages', () => {
      expect(failure(() => evaluate("self.n.matches('a')", { self: { n: 1 } }))).toContain("'int.matches(string)'");
    });
  });

  describe('bounded cost', () => {
    const list = Array.from({ length: 2_000 }, (_, i) => i);

    it('stops a quadratic comprehension at the cost budget', () => {
      expect(() => evaluate('self.l.all(a, self.l.all(b, a + b >= 0))', { self: { l: list } })).toThrow(CelBudgetError);
      expect(failure(() => evaluate('self.l.map(a, self.l.map(b, a * b)).size() > 0', { self: { l: list } }))).toMatch(
        /exceeded its (cost|time) budget/,
      );
    });

    it('stops values doubled by cel.bind before they take the memory', () => {
      const doubling = (first: string, levels: number): string => {
        let expression = `v${levels}.size()`;
        for (let i = levels; i >= 1; i--) expression = `cel.bind(v${i}, ${i === 1 ? first : `v${i - 1} + v${i - 1}`}, ${expression})`;
        return expression;
      };
      expect(() => evaluate(doubling('self.s + self.s', 40), { self: { s: 'x'.repeat(1_000) } })).toThrow(CelBudgetError);
      expect(() => evaluate(doubling('self.l + self.l', 40), { self: { l: list } })).toThrow(CelBudgetError);
    });

    it('fails even where cel-js would absorb the error (exists, ||)', () => {
      expect(() => evaluate('self.l.exists(a, self.l.all(b, b >= 0) && a < 0) || true', { self: { l: list } })).toThrow(CelBudgetError);
    });

    it('shares a budget between programs, and has a time backstop', () => {
      const budget = celBudget(1_000);
      const program = compileCel('self.l.all(a, a >= 0)');
      const vars = toCel({ self: { l: list.slice(0, 100) } }) as Record<string, unknown>;
      expect(program(vars, budget)).toBe(true);
      expect(() => {
        for (let i = 0; i < 10; i++) program(vars, budget);
      }).toThrow(/cost budget of 1000 units/);
      expect(() => program(vars, celBudget(Number.MAX_SAFE_INTEGER, -1))).toThrow(/time budget/);
    });

    it('lets ordinary expressions run', () => {
      expect(evaluate('self.l.all(a, a >= 0) && self.l.size() == 2000', { self: { l: list } })).toBe(true);
      expect(evaluate("has(plan.data.approved) && plan.data.approved == 'yes'", { plan: { data: { approved: 'yes' } } })).toBe(true);
    });
  });

  describe('bounded inputs', () => {
    it('refuses expressions over the length limit', () => {
      expect(failure(() => compileCel(`${'1 + '.repeat(CEL_LIMITS.maxExpressionLength / 4)}1`))).toContain(
        `at most ${CEL_LIMITS.maxExpressionLength}`,
      );
    });

    it('refuses values too large or too deep for CEL, naming where', () => {
      expect(() => toCel({ spec: { data: 'x'.repeat(CEL_LIMITS.maxInputBytes) } })).toThrow(CelInputError);
      expect(failure(() => toCel({ spec: { data: 'x'.repeat(CEL_LIMITS.maxInputBytes) } }))).toContain(
        'more than 524288 bytes (reached at spec.data)',
      );
      let deep: Record<string, unknown> = {};
      const root = deep;
      for (let i = 0; i < 100; i++) {
        const next: Record<string, unknown> = {};
        deep['a'] = next;
        deep = next;
      }
      expect(failure(() => toCel({ self: root }))).toMatch(/more than 64 levels \(at self\.a\.a/);
      expect(toCel({ list: Array.from({ length: 1_000 }, () => ({ a: 'b' })) })).toBeDefined();
    });

    it('keeps a __proto__ key as data', () => {
      const converted = toCel(JSON.parse('{"__proto__": {"polluted": 1}}')) as Record<string, unknown>;
      expect(Object.hasOwn(converted, '__proto__')).toBe(true);
      expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    });
  });

  it('caches programs, and failures, in a bounded LRU', () => {
    const lru = new Lru<string, number>(2);
    lru.set('a', 1);
    lru.set('b', 2);
    lru.get('a');
    lru.set('c', 3);
    expect([lru.get('a'), lru.get('b'), lru.get('c'), lru.size]).toEqual([1, undefined, 3, 2]);
    expect(compileCel('1 + 1')).toBe(compileCel('1 + 1'));
    for (let i = 0; i < CEL_LIMITS.programCacheSize + 10; i++) compileCel(`self.x == ${i}`);
    expect(failure(() => compileCel('1 +'))).toBe(failure(() => compileCel('1 +')));
  });
});
