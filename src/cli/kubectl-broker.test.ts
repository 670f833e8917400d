import { describe, expect, it } from 'vitest';
import { explainArgs, workspaceOfServer } from './kubectl-broker.ts';

describe('kubectl broker', () => {
  it('reads the workspace from a kcp server URL', () => {
    expect(workspaceOfServer('https://kcp.example.org:6443/clusters/root:team-a')).toBe('root:team-a');
    expect(workspaceOfServer('https://kcp.example.org:6443/clusters/root:team-a/')).toBe('root:team-a');
    expect(workspaceOfServer('https://kcp.example.org:6443')).toBeUndefined();
  });

  it('turns kubectl-style arguments into explain flags, with the current workspace and namespace', () => {
    const current = { currentServer: 'https://kcp:6443/clusters/root:team', currentNamespace: 'apps' };
    expect(explainArgs(['explain', 'certificate/app'], current).args).toEqual([
      'explain',
      '--workspace',
      'root:team',
      '--resource',
      'certificate',
      '--name',
      'app',
      '--namespace',
      'apps',
    ]);
    expect(
      explainArgs(['explain', 'certificates', 'app', '-n', 'other', '-o=json', '--server', 'https://kcp:6443/clusters/root:x'], current)
        .args,
    ).toEqual([
      'explain',
      '--workspace',
      'root:x',
      '--resource',
      'certificates',
      '--name',
      'app',
      '--namespace',
      'other',
      '--output',
      'json',
    ]);
    // kubectl's attached short forms, and an empty --namespace meaning the context's.
    expect(explainArgs(['explain', 'certificate/app', '-nother', '-ojson'], current).args).toEqual(
      expect.arrayContaining(['--namespace', 'other', '--output', 'json']),
    );
    expect(explainArgs(['explain', 'certificate/app', '--namespace='], current).args).toEqual(
      expect.arrayContaining(['--namespace', 'apps']),
    );
    // No namespace anywhere: explain picks "default" for namespaced resources, none for cluster-scoped ones.
    expect(explainArgs(['explain', 'vm/db'], { currentServer: 'https://kcp/clusters/root:t' }).args).not.toContain('--namespace');
  });

  it('refuses what it cannot run, naming the fix', () => {
    const current = { currentServer: 'https://kcp:6443/clusters/root:team' };
    expect(() => explainArgs([], current)).toThrow('a command is required');
    expect(() => explainArgs(['describe', 'certificate/app'], current)).toThrow('unknown command "describe"');
    expect(() => explainArgs(['explain', 'certificate'], current)).toThrow('TYPE/NAME or TYPE NAME');
    expect(() => explainArgs(['explain', 'certificate/app', 'extra'], current)).toThrow('TYPE/NAME or TYPE NAME');
    expect(() => explainArgs(['explain', 'certificate/app', '--bogus'], current)).toThrow('unknown flag --bogus');
    expect(() => explainArgs(['explain', 'certificate/app', '-n'], current)).toThrow('-n needs a value');
    expect(() => explainArgs(['explain', 'certificate/app'], { currentServer: 'https://kcp:6443' })).toThrow('kubectl ws <workspace>');
    expect(() => explainArgs(['explain', 'certificate/app', '--server', 'not a url'], current)).toThrow('is not a URL');
  });
});
