// Compiles the AssemblyScript kernels in asm/ into build/wasm/: `vista-relaxed.wasm` (SIMD + threads +
// relaxed SIMD, fused multiply-add) and `vista-simd.wasm` (SIMD + threads, plain mul+add). Both import one
// shared memory and allocate nothing: every buffer, scratch included, is handed in by the JS side.
// Memory map (see src/backend/wasm/index.ts): [256, 260) job counter, [4096, data_end) the standard
// library's static tables (f64 math), [65536, 327680) the f16→f32 table, then the arena.
// Skips the work when both outputs are newer than every asm/ source (pass --force to rebuild).
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const srcDir = path.join(root, 'asm');
const outDir = path.join(root, 'build', 'wasm');
const entry = path.join(srcDir, 'index.ts');
const force = process.argv.includes('--force');

export const BUILDS = [
  { file: 'vista-relaxed.wasm', features: 'simd,threads,relaxed-simd' },
  { file: 'vista-simd.wasm', features: 'simd,threads' },
];

function newestSource() {
  let t = statSync(path.join(root, 'scripts', 'build-wasm.mjs')).mtimeMs;
  for (const f of readdirSync(srcDir)) if (f.endsWith('.ts')) t = Math.max(t, statSync(path.join(srcDir, f)).mtimeMs);
  return t;
}

function upToDate(file, srcTime) {
  try {
    return statSync(path.join(outDir, file)).mtimeMs >= srcTime;
  } catch {
    return false;
  }
}

const srcTime = newestSource();
const todo = BUILDS.filter((b) => force || !upToDate(b.file, srcTime));
if (todo.length) {
  const { default: asc } = await import('assemblyscript/asc');
  mkdirSync(outDir, { recursive: true });
  for (const b of todo) {
    const args = [
      path.relative(process.cwd(), entry),
      '--outFile', path.join(outDir, b.file),
      '--textFile', path.join(outDir, b.file.replace(/\.wasm$/, '.wat')),
      '--enable', b.features,
      '--importMemory', '--sharedMemory', '--memoryBase', '4096', '--initialMemory', '1', '--maximumMemory', '65536',
      '--runtime', 'stub', '--noAssert', '--use', 'abort=', '--optimizeLevel', '3', '--shrinkLevel', '0',
    ];
    const { error, stderr } = await asc.main(args, {});
    if (error) {
      console.error(stderr.toString());
      throw new Error(`build-wasm: ${b.file} failed: ${error.message}`);
    }
    console.error(`build-wasm: wrote build/wasm/${b.file}`);
  }
  writeFileSync(path.join(outDir, 'BUILT'), new Date().toISOString() + '\n');
}
