import { describe, expect, it } from 'vitest';
import { evaluateFilters, goString, validateFilters } from './filters.ts';

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
});
