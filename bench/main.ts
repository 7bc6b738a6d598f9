/**
 * Benchmarks: `npm run bench -- <suite> [options]`. Each suite prints progress on stderr and, as its last
 * stdout line, one JSON object with its figures.
 */
const suites: Record<string, () => Promise<{ run(args: string[]): Promise<void> }>> = {
  engine: () => import('./engine.ts'),
  runtime: () => import('./runtime.ts'),
  serve: () => import('./serve.ts'),
  train: () => import('./train.ts'),
};

const [name, ...args] = process.argv.slice(2);
const load = name ? suites[name] : undefined;
if (!load) {
  console.error(`usage: npm run bench -- <suite> [options]; suites: ${Object.keys(suites).join(', ')}`);
  process.exitCode = 2;
} else {
  await (await load()).run(args);
}
