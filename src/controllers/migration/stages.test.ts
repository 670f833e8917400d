import { beforeAll, describe, expect, it } from 'vitest';
import type { MigrationConfiguration } from '../../apis/types.ts';
import { celEngine } from '../acceptapi/filters.ts';
import { allTrue, anyTrue, findConfiguration, renderTemplate, splitInterpolation, validateStage } from './stages.ts';

// The stage runner loads the engine before a stage runs; so do these tests.
beforeAll(() => celEngine.load());

const from = { spec: { arch: 'x86_64', memory: 512 }, status: { status: 'Available' } };
const to = { spec: { arch: 'arm64', memory: 1024 }, status: {} };

describe('template interpolation', () => {
  it('keeps the type when a string is exactly one expression, and writes text otherwise', () => {
    const rendered = renderTemplate(
      {
        data: { arch: '${from.spec.arch}', name: 'pre-${to.spec.arch}', both: '${from.spec.arch}->${to.spec.arch}' },
        replicas: '${to.spec.memory}',
        big: '${to.spec.memory > 512}',
        list: ['${[1, 2]}'],
        plain: 7,
      },
      { from, to },
      'spec.stages[0].templates.job',
    );
    expect(rendered).toEqual({
      data: { arch: 'x86_64', name: 'pre-arm64', both: 'x86_64->arm64' },
      replicas: 1024,
      big: true,
      list: [[1, 2]],
      plain: 7,
    });
  });

  it('balances braces of CEL map literals and quotes inside an expression', () => {
    expect(splitInterpolation("a${ {'k': '}'}['k'] }b")).toEqual([{ literal: 'a' }, { expression: "{'k': '}'}['k']" }, { literal: 'b' }]);
    expect(renderTemplate("${ {'k': 'v'}['k'] }", {}, 'x')).toBe('v');
    expect(() => splitInterpolation('a ${from.spec')).toThrow(/unterminated/);
  });

  it('names the path and expression when evaluation fails', () => {
    expect(() => renderTemplate({ data: { x: '${to.status.status}' } }, { from, to }, 'spec.stages[1].templates.job')).toThrow(
      /spec\.stages\[1\]\.templates\.job\.data\.x: `to\.status\.status` failed/,
    );
  });
});

describe('stage validation', () => {
  it('names every field whose CEL does not compile, and bad templates', () => {
    const problems = validateStage(
      {
        name: 'copy',
        preconditions: ['from.spec.('],
        successConditions: ['true', 'to.status.'],
        templates: { job: { apiVersion: 'v1', kind: 'ConfigMap', data: { a: '${from.spec.(}' } }, from: { kind: 'ConfigMap' } },
        timeoutSeconds: -1,
      },
      2,
    );
    expect(problems.map((p) => p.field)).toEqual([
      'spec.stages[2].preconditions[0]',
      'spec.stages[2].successConditions[1]',
      'spec.stages[2].templates.job.data.a',
      'spec.stages[2].templates.from',
      'spec.stages[2].templates.from',
      'spec.stages[2].timeoutSeconds',
    ]);
    expect(problems[0]!.message).toMatch(/^CEL does not compile: .+ \(in `from\.spec\.\(`\)$/);
    expect(
      validateStage(
        { name: 'ok', preconditions: ['from.spec.arch == "x86_64"'], templates: { job: { apiVersion: 'v1', kind: 'ConfigMap' } } },
        0,
      ),
    ).toEqual([]);
  });
});

describe('conditions', () => {
  it('are all true, or name the first that is false, not boolean, or cannot be evaluated yet', () => {
    expect(allTrue(['from.spec.memory >= 512', 'to.spec.arch == "arm64"'], 'spec.stages[0].successConditions', { from, to })).toEqual({
      kind: 'true',
    });
    expect(allTrue(['true', 'to.spec.memory < 100'], 'f', { from, to })).toMatchObject({
      kind: 'false',
      field: 'f[1]',
      detail: 'is false',
    });
    expect(allTrue(['to.spec.memory'], 'f', { from, to })).toMatchObject({
      kind: 'notBoolean',
      field: 'f[0]',
      detail: 'evaluates to number 1024, not a bool',
    });
    expect(allTrue(['to.status.status == "Available"'], 'f', { from, to })).toMatchObject({ kind: 'false', field: 'f[0]' });
    expect(allTrue(undefined, 'f', {})).toEqual({ kind: 'true' });
  });

  it('failure conditions: the first true one; errors are not failures', () => {
    expect(anyTrue(['to.status.status == "Failed"', 'from.spec.memory > 100'], 'g', { from, to })).toMatchObject({
      kind: 'true',
      field: 'g[1]',
    });
    expect(anyTrue(['"text"'], 'g', { from, to })).toMatchObject({ kind: 'notBoolean', field: 'g[0]' });
    expect(anyTrue(['false'], 'g', {})).toEqual({ kind: 'none' });
  });
});

describe('findConfiguration', () => {
  const config = (name: string, kind: string): MigrationConfiguration => ({
    metadata: { name },
    spec: { from: { group: 'g', version: 'v1', kind }, to: { group: 'g', version: 'v1', kind }, stages: [] },
  });
  it('matches group, version and kind of both ends', () => {
    const configs = [config('b', 'VM'), config('a', 'VM'), config('c', 'Certificate')];
    expect(
      findConfiguration(configs, { group: 'g', version: 'v1', kind: 'VM' }, { group: 'g', version: 'v1', kind: 'VM' })?.metadata.name,
    ).toBe('a');
    expect(
      findConfiguration(configs, { group: 'g', version: 'v2', kind: 'VM' }, { group: 'g', version: 'v1', kind: 'VM' }),
    ).toBeUndefined();
  });
});
