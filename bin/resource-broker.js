#!/usr/bin/env node
// Entry point of the `resource-broker` command: the compiled CLI when built, else the
// TypeScript source (Node 24 strips types natively).
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/cli/main.js', import.meta.url);
await import(existsSync(compiled) ? compiled.href : new URL('../src/cli/main.ts', import.meta.url).href);
