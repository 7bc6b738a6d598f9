/**
 * The few WebAssembly JS-API types vista uses. The project's lib settings (ES2022 + @types/node 20)
 * do not declare the `WebAssembly` global, so it is typed here locally rather than globally.
 */
export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  grow(pages: number): number;
}
export type WasmModule = object;
export type WasmExports = Record<string, unknown>;
export interface WasmInstance {
  readonly exports: WasmExports;
}

interface WasmApi {
  Memory: new (d: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (m: WasmModule, imports: Record<string, Record<string, unknown>>) => WasmInstance;
  validate(bytes: Uint8Array): boolean;
}

export const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
