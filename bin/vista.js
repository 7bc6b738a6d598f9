#!/usr/bin/env node
// The `vista` command: runs the compiled CLI (built by `npm install` / `npm run build`).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/src/cli/run.js', import.meta.url);
if (!existsSync(entry)) {
  console.error('vista: the project is not built yet; run `npm install` (or `npm run build`) first');
  process.exit(1);
}
await import(entry.href);
