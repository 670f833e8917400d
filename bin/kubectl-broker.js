#!/usr/bin/env node
// Entry point of the kubectl plugin: installed (or linked) as `kubectl-broker` on PATH, kubectl
// runs it for `kubectl broker ...`. See src/cli/kubectl-broker.ts.
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/cli/kubectl-broker.js', import.meta.url);
const { kubectlBroker } = await import(
  existsSync(compiled) ? compiled.href : new URL('../src/cli/kubectl-broker.ts', import.meta.url).href
);
process.exitCode = await kubectlBroker(process.argv.slice(2));
setTimeout(() => process.exit(), 2_000).unref();
