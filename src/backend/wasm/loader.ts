/**
 * Finds (building if missing or stale in a source checkout) and compiles the kernels' wasm. Relaxed SIMD
 * (fused multiply-add) needs a V8 flag in Node 20: it is set before the first compile, and the relaxed
 * build is used only if it then validates; otherwise the plain SIMD build (mul+add).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { WA, type WasmModule } from './wasm-api.ts';

export type WasmFlavour = 'relaxed' | 'simd';

function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && (existsSync(path.join(dir, 'asm')) || existsSync(path.join(dir, 'build', 'wasm'))))
      return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('vista wasm backend: cannot find the package root (build/wasm)');
    dir = up;
  }
}

function stale(root: string): boolean {
  const asm = path.join(root, 'asm');
  const out = path.join(root, 'build', 'wasm');
  const files = ['vista-relaxed.wasm', 'vista-simd.wasm'].map((f) => path.join(out, f));
  if (!files.every((f) => existsSync(f))) return true;
  if (!existsSync(asm)) return false;
  const built = Math.min(...files.map((f) => statSync(f).mtimeMs));
  let src = 0;
  for (const f of readdirSync(asm)) if (f.endsWith('.ts')) src = Math.max(src, statSync(path.join(asm, f)).mtimeMs);
  return src > built;
}

/** wasm bytes of one flavour, rebuilding first when the sources are newer (source checkouts only) */
export function wasmBytes(flavour: WasmFlavour): Uint8Array {
  const root = packageRoot();
  const script = path.join(root, 'scripts', 'build-wasm.mjs');
  if (stale(root) && existsSync(script)) execFileSync(process.execPath, [script], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  const file = path.join(root, 'build', 'wasm', `vista-${flavour}.wasm`);
  if (!existsSync(file)) throw new Error(`vista wasm backend: ${file} is missing; run \`npm run build:wasm\``);
  return readFileSync(file);
}

let flagsSet = false;

/** Turn on relaxed SIMD (and optimise wasm eagerly) before the first compile. */
function setFlags(): void {
  if (flagsSet) return;
  flagsSet = true;
  try {
    v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    // compile the kernels with the optimising tier straight away: they are few, small and hot, and
    // worker threads otherwise run baseline (Liftoff) code for a while after start-up
    if (!process.env.VISTA_WASM_LIFTOFF) v8.setFlagsFromString('--no-liftoff');
  } catch {
    /* older/newer V8: the validate probe decides */
  }
}

export interface CompiledKernels {
  module: WasmModule;
  flavour: WasmFlavour;
}

/** Compile the relaxed build when this V8 accepts it (unless `prefer` says simd), else the plain one. */
export function compileKernels(prefer: WasmFlavour | 'auto' = 'auto'): CompiledKernels {
  setFlags();
  if (prefer !== 'simd') {
    const bytes = wasmBytes('relaxed');
    if (WA.validate(bytes)) return { module: new WA.Module(bytes), flavour: 'relaxed' };
    if (prefer === 'relaxed') throw new Error('vista wasm backend: relaxed SIMD is not supported by this Node/V8');
  }
  return { module: new WA.Module(wasmBytes('simd')), flavour: 'simd' };
}
