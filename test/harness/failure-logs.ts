import { beforeEach } from 'vitest';
import { brokerLogTails } from './broker-process.ts';

// CI keeps only what the run prints: when an end-to-end test fails, print what its brokers
// logged last, so the failure can be understood without reproducing it.
beforeEach((context) => {
  context.onTestFailed(() => {
    const tails = brokerLogTails(40);
    if (tails) process.stderr.write(`\n${tails}\n`);
  });
});
