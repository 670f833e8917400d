import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    reporters: ['default', ['json', { outputFile: 'test-results/results.json' }]],
    // Two test files at a time. Every e2e file makes its own worlds (unique workspace trees) on the
    // one kcp of the run, and most of an e2e test's time is kcp settling (workspaces, bindings,
    // deletions), not CPU: two at once on these 2-core machines take far less than twice one.
    // Vitest runs the projects of one group from one pool, so the limit is set here, for all.
    maxWorkers: 2,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'hack/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/harness/global-setup.ts'],
          setupFiles: ['test/harness/failure-logs.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
