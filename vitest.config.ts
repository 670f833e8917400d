import { defineConfig } from 'vitest/config';

/**
 * The end-to-end files run in two lanes at once, each on its own kcp (the global setup runs per
 * project), each lane one file after another: most of an e2e test's time is kcp settling
 * (workspaces, bindings, deletions), so two lanes on these 2-core machines take far less than
 * twice one. Lane 2 holds the crash-at-every-write run (about 13 min, three worlds of its own
 * inside) and a few files beside it; lane 1 everything else (a new file lands there by default).
 */
const LANE_2 = [
  'test/e2e/crash-every-write.test.ts',
  'test/e2e/sharded-kcp.test.ts',
  'test/e2e/migration-crash.test.ts',
  'test/e2e/foundation.test.ts',
];

const e2e = {
  globalSetup: ['test/harness/global-setup.ts'],
  setupFiles: ['test/harness/failure-logs.ts'],
  testTimeout: 180_000,
  hookTimeout: 180_000,
  fileParallelism: false,
};

export default defineConfig({
  test: {
    reporters: ['default', ['json', { outputFile: 'test-results/results.json' }]],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'hack/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      { test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'], exclude: LANE_2, ...e2e } },
      { test: { name: 'e2e-lane-2', include: LANE_2, ...e2e } },
    ],
  },
});
