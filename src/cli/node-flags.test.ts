import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BROKER_MALLOC_ENV, BROKER_NODE_FLAGS } from './node-flags.ts';

const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');
// The final stage: what the image runs.
const runStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));

describe('how the broker process is started', () => {
  it("runs the image's ENTRYPOINT with the V8 flags the bench measured", () => {
    const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(runStage)?.[1];
    expect(entrypoint).toBeDefined();
    expect(JSON.parse(entrypoint!)).toEqual(['node', ...BROKER_NODE_FLAGS, 'bin/resource-broker.js']);
  });

  it('sets the malloc settings the bench measured in the image, on a C library that reads them', () => {
    const env = Object.fromEntries(
      [...runStage.matchAll(/^ENV (.+)$/gm)].flatMap((m) => m[1]!.split(/\s+/).map((pair) => pair.split('=') as [string, string])),
    );
    expect(env).toMatchObject(BROKER_MALLOC_ENV);
    // musl (Alpine) ignores glibc's settings: the image must be a glibc one.
    expect(/^FROM (\S+)/m.exec(runStage)?.[1]).not.toMatch(/alpine/);
  });
});
