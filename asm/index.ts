// Entry of the wasm kernels (see scripts/build-wasm.mjs). Every export takes byte pointers into the one
// shared memory; parallel kernels take (ith, nth) last and do their share of the work.
export * from "./gemm";
export * from "./quant";
export { data_end, f16_table_init, zero_bytes } from "./common";
export * from "./nn";
export * from "./unary";
export * from "./layout";
