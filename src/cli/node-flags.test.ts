import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  BROKER_JEMALLOC_CONF,
  BROKER_MALLOC_ENV,
  BROKER_NODE_FLAGS,
  BROKER_THREAD_ENV,
  brokerMallocEnv,
  brokerProcessEnv,
  IMAGE_JEMALLOC,
} from './node-flags.ts';

const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');
// The final stage: what the image runs.
const runStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));

/** `ENV A=1 B=2` lines of the run stage (the only form the Dockerfile uses), split at each pair's first `=`. */
const imageEnv = (): Record<string, string> =>
  Object.fromEntries(
    [...runStage.matchAll(/^ENV (.+)$/gm)].flatMap((m) =>
      m[1]!.split(/\s+/).map((pair) => {
        const at = pair.indexOf('=');
        expect(at, `ENV ${m[1]}: write it as KEY=value pairs`).toBeGreaterThan(0);
        return [pair.slice(0, at), pair.slice(at + 1)];
      }),
    ),
  );

describe('how the broker process is started', () => {
  it("runs the image's ENTRYPOINT with the V8 flags the bench measured", () => {
    const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(runStage)?.[1];
    expect(entrypoint).toBeDefined();
    expect(JSON.parse(entrypoint!)).toEqual(['node', ...BROKER_NODE_FLAGS, 'bin/resource-broker.js']);
  });

  it('sets exactly the allocator settings the bench measured in the image, on a C library that reads them', () => {
    const malloc = Object.fromEntries(
      Object.entries(imageEnv()).filter(([k]) => k.startsWith('MALLOC_') || k === 'GLIBC_TUNABLES' || k === 'LD_PRELOAD'),
    );
    expect(malloc).toEqual({ ...BROKER_MALLOC_ENV, LD_PRELOAD: IMAGE_JEMALLOC, MALLOC_CONF: BROKER_JEMALLOC_CONF });
    // The preloaded library is installed, at the path preloaded.
    expect(runStage).toMatch(/apt-get install [^\n]*libjemalloc2/);
    expect(runStage).toMatch(new RegExp(`ln -s "\\$\\(dpkg -L libjemalloc2 [^\\n]*\\)" ${IMAGE_JEMALLOC}`));
    expect(runStage).toContain(`test -e ${IMAGE_JEMALLOC}`);
    // Installed before the image drops to its user: apt needs root.
    expect(runStage.indexOf('libjemalloc2')).toBeLessThan(runStage.indexOf('USER node'));
    // musl (Alpine) ignores glibc's settings: the image must be a glibc one.
    const base = /^FROM (.+)$/m
      .exec(runStage)?.[1]
      ?.split(/\s+/)
      .find((word) => !word.startsWith('--'));
    expect(base).toMatch(/^node:24-(bookworm|bullseye|trixie)/);
  });

  it("sets the thread pool's size the bench measured, in the image and for local brokers", () => {
    expect(imageEnv()['UV_THREADPOOL_SIZE']).toBe(BROKER_THREAD_ENV.UV_THREADPOOL_SIZE);
    expect(brokerProcessEnv(() => false)).toEqual({ ...BROKER_THREAD_ENV, ...BROKER_MALLOC_ENV });
  });

  it('starts local brokers on jemalloc where it is installed, and on glibc with its setting where not', () => {
    expect(brokerMallocEnv(() => false)).toEqual(BROKER_MALLOC_ENV);
    // The image's path first, then the distribution's.
    expect(brokerMallocEnv(() => true)).toEqual({ ...BROKER_MALLOC_ENV, LD_PRELOAD: IMAGE_JEMALLOC, MALLOC_CONF: BROKER_JEMALLOC_CONF });
    expect(brokerMallocEnv((path) => path === '/usr/lib64/libjemalloc.so.2')).toEqual({
      ...BROKER_MALLOC_ENV,
      LD_PRELOAD: '/usr/lib64/libjemalloc.so.2',
      MALLOC_CONF: BROKER_JEMALLOC_CONF,
    });
  });
});
