import { describe, expect, it } from 'vitest';
import { NotReadyError } from './errors.ts';
import { lazyModule } from './lazy-module.ts';

const notReady = (get: () => unknown): NotReadyError => {
  try {
    get();
  } catch (err) {
    if (err instanceof NotReadyError) return err;
    throw err;
  }
  throw new Error('get() returned: the module was loaded already');
};

describe('lazyModule', () => {
  it('loads on first use, once; until loaded, get() says what is loading and when it is ready', async () => {
    let imports = 0;
    const engine = { answer: 42 };
    const lazy = lazyModule('the engine', async () => {
      imports++;
      return engine;
    });
    expect(imports).toBe(0);
    const first = notReady(lazy.get);
    expect(first.message).toBe('the engine is loading');
    notReady(lazy.get);
    await first.ready;
    expect(lazy.get()).toBe(engine);
    expect(await lazy.load()).toBe(engine);
    expect(imports).toBe(1);
  });

  it('tries again after a failed load', async () => {
    let imports = 0;
    const lazy = lazyModule('the engine', async () => {
      if (++imports === 1) throw new Error('disk hiccup');
      return 'module';
    });
    await expect(notReady(lazy.get).ready).rejects.toThrow('disk hiccup');
    // Readiness reports it until a load succeeds.
    expect(String(lazy.failure)).toMatch(/disk hiccup/);
    expect(await notReady(lazy.get).ready).toBe('module');
    expect(lazy.failure).toBeUndefined();
    expect(lazy.get()).toBe('module');
    expect(imports).toBe(2);
  });

  it('counts a module that is undefined as loaded, and a synchronous throw as a failed load', async () => {
    const nothing = lazyModule('nothing', async () => undefined);
    await notReady(nothing.get).ready;
    expect(nothing.get()).toBeUndefined();
    const throwing = lazyModule('throwing', () => {
      throw new Error('at once');
    });
    await expect(notReady(throwing.get).ready).rejects.toThrow('at once');
  });
});
