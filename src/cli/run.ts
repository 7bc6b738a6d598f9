#!/usr/bin/env node
// Entry point of the `vista` command (bin/vista.js runs the compiled copy; tests run this file with tsx).
import { main } from './main.ts';

// `vista info big.gguf | head`: a closed pipe ends the output quietly
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});
process.exitCode = await main(process.argv.slice(2));
