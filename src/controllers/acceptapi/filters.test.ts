import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { celEngine, evaluateFilters, FILTER_LIMITS, goString, validateFilters } from './filters.ts';

// In the broker a reconcile waits for the engine (cel-loading.test.ts); these tests load it first.
beforeAll(() => celEngine.load());

const APIEXPORTS_DIR = join(import.meta.dirname, '..', '..', '..', 'apiexports');

const reasonOf = (verdict: ReturnType<typeof evaluateFilters>): string => (verdict.pass ? '' : verdict.reason);

describe('AcceptAPI filters', () => {
  it('matches suffix, prefix, valueIn and boundary, AND-ed', () => {
    const filters = [
      { key: 'fqdn', suffix: '.corp.com' },
      { key: 'fqdn', prefix: 'app.' },
    ];
    expect(evaluateFilters(filters, { fqdn: 'app.corp.com' })).toEqual({ pass: true });
    const miss = evaluateFilters(filters, { fqdn: 'app.internal.corp' });
    expect(miss.pass).toBe(false);
    expect(miss.pass === false && miss.reason).toContain(
      'spec.filters[0] (key "fqdn"): value "app.internal.corp" does not end with ".corp.com"',
    );
    expect(evaluateFilters([{ key: 'arch', valueIn: ['arm64'] }], { arch: 'x86_64' }).pass).toBe(false);
    expect(evaluateFilters([{ key: 'memory', boundary: { min: 128, max: 1024 } }], { memory: 512 }).pass).toBe(true);
    expect(evaluateFilters([{ key: 'memory', boundary: { max: 256 } }], { memory: 512 }).pass).toBe(false);
    expect(evaluateFilters([{ key: 'memory', boundary: { min: 1 } }], { memory: 1.5 }).pass).toBe(false);
  });

  it('passes a filter whose key the object lacks, as upstream does', () => {
    expect(evaluateFilters([{ key: 'a.b', valueIn: ['x'] }], { a: {} })).toEqual({ pass: true });
  });

  it('stringifies values the way Go prints them', () => {
    expect([goString(512), goString(1.5), goString(true), goString('x')]).toEqual(['512', '1.5', 'true', 'x']);
    expect(evaluateFilters([{ key: 'memory', valueIn: ['512'] }], { memory: 512 }).pass).toBe(true);
  });

  it('evaluates CEL over the spec, integers as ints', () => {
    expect(
      evaluateFilters([{ key: 'memory', expression: 'self.memory >= 128 && self.arch == "arm64"' }], { memory: 512, arch: 'arm64' }).pass,
    ).toBe(true);
    expect(evaluateFilters([{ key: 'memory', expression: 'self.memory > 1024' }], { memory: 512 }).pass).toBe(false);
  });

  it('names the filter in every validation problem', () => {
    const problems = validateFilters([
      { key: 'spec.fqdn', suffix: 'x' },
      { key: 'memory', boundary: { min: 10, max: 1 } },
      { key: 'memory', expression: 'self.memory >>> 1' },
      { key: 'ok', suffix: '.corp' },
    ]);
    expect(problems.map((p) => p.index)).toEqual([0, 1, 2]);
    expect(problems[0]?.message).toMatch(/^spec\.filters\[0\] \(key "spec\.fqdn"\): .*must not start with "spec\."/);
    expect(problems[1]?.message).toContain('boundary.min (10) is greater than boundary.max (1)');
    expect(problems[2]?.message).toContain('expression does not compile');
  });

  describe('bounded costs (untrusted providers and consumers)', () => {
    it('answers a catastrophic-backtracking regex over a crafted value at once: RE2, not JS RegExp', () => {
      const filters = [{ key: 'name', expression: "self.name.matches('^(a+)+$')" }];
      const started = performance.now();
      const verdict = evaluateFilters(filters, { name: `${'a'.repeat(40)}b` });
      expect(verdict.pass).toBe(false);
      expect(reasonOf(verdict)).toContain(
        'spec.filters[0].expression (key "name"): expression "self.name.matches(\'^(a+)+$\')" is "false"',
      );
      expect(evaluateFilters(filters, { name: `${'a'.repeat(50_000)}!` }).pass).toBe(false);
      expect(evaluateFilters(filters, { name: 'aaa' }).pass).toBe(true);
      // JS RegExp takes hours for the first value; RE2 milliseconds.
      expect(performance.now() - started).toBeLessThan(2_000);
    });

    it('refuses a backreference or lookahead when validating, naming spec.filters[i].expression', () => {
      const problems = validateFilters([
        { key: 'fqdn', suffix: '.corp' },
        { key: 'name', expression: "self.name.matches('(a)\\\\1')" },
        { key: 'name', expression: "self.name.matches('^(?=x)')" },
      ]);
      expect(problems.map((p) => p.index)).toEqual([1, 2]);
      expect(problems[0]?.message).toMatch(
        /^spec\.filters\[1\]\.expression \(key "name"\): expression does not compile: regular expression .* is not valid RE2 syntax .*invalid escape sequence/,
      );
      expect(problems[1]?.message).toMatch(/^spec\.filters\[2\]\.expression .*not valid RE2 syntax/);
    });

    it('gives a reason, never an exception, for a spec too large or too deep for CEL', () => {
      const filters = [
        { key: 'fqdn', suffix: '.corp' },
        { key: 'data', expression: 'self.data.size() > 0' },
      ];
      const verdict = evaluateFilters(filters, { fqdn: 'a.corp', data: 'x'.repeat(600 * 1024) });
      expect(reasonOf(verdict)).toMatch(
        /^spec\.filters\[1\]\.expression \(key "data"\): the object's spec is not evaluated: input too large for CEL: more than 524288 bytes \(reached at data\)/,
      );
      let deep: Record<string, unknown> = {};
      const spec = { data: deep };
      for (let i = 0; i < 200; i++) {
        const next: Record<string, unknown> = {};
        deep['d'] = next;
        deep = next;
      }
      expect(reasonOf(evaluateFilters(filters.slice(1), spec))).toContain('input too deep for CEL');
      // without an expression nothing is converted: plain filters still work on a large spec
      expect(evaluateFilters(filters.slice(0, 1), { fqdn: 'a.corp', data: 'x'.repeat(600 * 1024) }).pass).toBe(true);
    });

    it('turns an expensive or failing expression into a reason, and bounds all expressions of one evaluation together', () => {
      const l = Array.from({ length: 3_000 }, (_, i) => i);
      expect(reasonOf(evaluateFilters([{ key: 'l', expression: 'self.l.all(a, self.l.all(b, a + b >= 0))' }], { l }))).toMatch(
        /^spec\.filters\[0\]\.expression \(key "l"\): expression failed: CEL evaluation exceeded its (cost|time) budget/,
      );
      const each = { key: 'l', expression: 'self.l.all(a, a >= 0)' };
      expect(evaluateFilters([each], { l })).toEqual({ pass: true });
      expect(
        reasonOf(
          evaluateFilters(
            Array.from({ length: 32 }, () => each),
            { l },
          ),
        ),
      ).toContain('budget');
      expect(reasonOf(evaluateFilters([{ key: 'x', expression: 'self.x / 0 == 1' }], { x: 1 }))).toContain('expression failed');
    });

    it('cuts a consumer value in a reason', () => {
      const reason = reasonOf(evaluateFilters([{ key: 'fqdn', suffix: '.corp' }], { fqdn: 'a'.repeat(100_000) }));
      expect(reason).toContain('(100000 characters)');
      expect(reason.length).toBeLessThan(400);
    });

    it('reports an AcceptAPI over the limits in one problem, whatever its size', () => {
      const many = Array.from({ length: 20_000 }, (_, i) => ({ key: `k${i}`, expression: '1 +' }));
      expect(validateFilters(many)).toEqual([{ index: 32, key: '', message: 'spec.filters: 20000 filters; at most 32' }]);
      expect(reasonOf(evaluateFilters(many, {}))).toBe('spec.filters: 20000 filters; at most 32');
      const problems = validateFilters([
        { key: 'k'.repeat(300) },
        { key: 'a', valueIn: Array.from({ length: 300 }, () => 'v') },
        { key: 'a', suffix: 's'.repeat(2_000) },
        { key: 'a', expression: `${'1 + '.repeat(300)}1` },
      ]);
      expect(problems.map((p) => p.message)).toEqual([
        expect.stringContaining('key is 300 characters long; at most 256'),
        expect.stringMatching(/^spec\.filters\[1\]\.valueIn .*300 values; at most 256/),
        expect.stringMatching(/^spec\.filters\[2\]\.suffix .*2000 characters long; at most 1024/),
        expect.stringMatching(/^spec\.filters\[3\]\.expression .*1201 characters long; at most 1024/),
      ]);
    });

    it('uses the limits the AcceptAPI schema enforces', () => {
      const [schema] = readFileSync(join(APIEXPORTS_DIR, 'broker', 'acceptapis.yaml'), 'utf8')
        .split(/^---$/m)
        .map((doc) => parse(doc));
      const filters = schema.spec.versions[0].schema.properties.spec.properties.filters;
      const item = filters.items.properties;
      expect({
        filters: filters.maxItems,
        keyLength: item.key.maxLength,
        valueIn: item.valueIn.maxItems,
        textLength: item.valueIn.items.maxLength,
        expressionLength: item.expression.maxLength,
      }).toEqual(FILTER_LIMITS);
      expect([item.suffix.maxLength, item.prefix.maxLength]).toEqual([FILTER_LIMITS.textLength, FILTER_LIMITS.textLength]);
    });
  });
});
