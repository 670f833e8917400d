import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { inject } from 'vitest';

/**
 * Holds a lock shared by every test file of this e2e run (files run in separate workers, two at a
 * time): for a workspace tree whose name the manifests fix, such as `root:platform`, which two
 * files must not publish at the same time. The lock is a directory made atomically beside the run's
 * kubeconfig, so it dies with the run. Returns its release.
 */
export const holdExclusive = async (name: string, timeoutMs = 900_000): Promise<() => Promise<void>> => {
  const dir = join(dirname(inject('kcp').kubeconfig), `${name}.lock`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await mkdir(dir);
      return () => rm(dir, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (Date.now() > deadline) throw new Error(`${name} still held by another test file after ${timeoutMs} ms (${dir})`);
      await sleep(1_000);
    }
  }
};
