import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BROKER_NODE_FLAGS } from './node-flags.ts';

describe('the V8 flags the broker runs with', () => {
  it("are the image's ENTRYPOINT flags, so the image runs what the bench measured", () => {
    const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');
    const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1];
    expect(entrypoint).toBeDefined();
    expect(JSON.parse(entrypoint!)).toEqual(['node', ...BROKER_NODE_FLAGS, 'bin/resource-broker.js']);
  });
});
