#!/usr/bin/env node
// Entry point of the `resource-broker` command: the compiled CLI when built, else the
// TypeScript source (Node 24 strips types natively).
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/cli/main.js', import.meta.url);
const { main } = await import(existsSync(compiled) ? compiled.href : new URL('../src/cli/main.ts', import.meta.url).href);
process.exitCode = await main(process.argv.slice(2));
// Everything is closed by now; a handle left open (a socket kcp keeps half-open) must not keep a
// stopped broker alive.
setTimeout(() => process.exit(), 2_000).unref();
